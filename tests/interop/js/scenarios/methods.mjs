// Section 5 of the contract: every TestTarget method, defaults, thrown errors, sessions.
// Batch variants issue all their calls in the same macrotask, then await them.

import { assert, assertEqual, assertRejects } from "../lib/compare.mjs";
import { BOTH, WS, scenario } from "../lib/context.mjs";

/** `call(api)` must resolve strictly equal to `expected`, on both transports. */
function returns(name, call, expected) {
  return scenario(`methods.${name}`, BOTH, async ctx => {
    assertEqual(await call(ctx.open()), expected, name);
  });
}

/** `call(api)` must reject with exactly `ErrorClass(message)`, on both transports. */
function rejects(name, call, ErrorClass, message) {
  return scenario(name, BOTH, async ctx => {
    await assertRejects(call(ctx.open()), ErrorClass, message, name);
  });
}

export const scenarios = [
  returns("square", api => api.square(3), 9),
  returns("square_float", api => api.square(-1.5), 2.25),
  returns("call_square", api => api.callSquare(api, 3), { result: 9 }),
  returns("generate_fibonacci", api => api.generateFibonacci(10),
      [0, 1, 1, 2, 3, 5, 8, 13, 21, 34]),
  returns("generate_fibonacci_one", api => api.generateFibonacci(1), [0]),
  returns("generate_fibonacci_zero", api => api.generateFibonacci(0), []),
  returns("generate_fibonacci_negative", api => api.generateFibonacci(-3), []),
  returns("return_null", api => api.returnNull(), null),
  returns("return_undefined", api => api.returnUndefined(), undefined),
  returns("return_number", api => api.returnNumber(42), 42),
  returns("return_number_float", api => api.returnNumber(-0.5), -0.5),
  returns("delayed_echo", api => api.delayedEcho(50, { x: [1n] }), { x: [1n] }),
  returns("delayed_echo_zero", api => api.delayedEcho(0, "now"), "now"),
  returns("make_counter_default", api => api.makeCounter().value, 0),
  returns("make_counter_default_increment", api => {
    const counter = api.makeCounter();
    return Promise.all([counter.increment(), counter.increment(), counter.value]);
  }, [1, 2, 2]),
  returns("make_counter", api => api.makeCounter(5).increment(2), 7),
  returns("counter_increment_default", api => api.makeCounter(10).increment(), 11),
  returns("increment_counter_default", api => api.incrementCounter(api.makeCounter(3)), 4),
  returns("increment_counter", api => api.incrementCounter(api.makeCounter(3), 10), 13),
  returns("make_counters_count", api => api.makeCounters([1, 2, 3]).count, 3),
  returns("make_counters_empty", api => api.makeCounters([]), { counters: [], count: 0 }),
  returns("get_live_counters_fresh", api => api.getLiveCounters(), 0),
  returns("get_live_counters_counts", api => {
    api.makeCounter(1);
    api.makeCounters([1, 2]);
    return api.getLiveCounters();
  }, 3),

  scenario("methods.make_counters", BOTH, async ctx => {
    const api = ctx.open();
    const result = await api.makeCounters([1, 2, 3]);
    assertEqual(Object.keys(result).sort(), ["count", "counters"], "result keys");
    assertEqual(result.count, 3, "count");
    assert(Array.isArray(result.counters) && result.counters.length === 3,
        `counters is not an array of 3: ${typeof result.counters}`);
    assert(result.counters.every(c => typeof c === "function"), "counters are not stubs");
    if (ctx.transport === "ws") {
      const values = await Promise.all(result.counters.map((c, i) => c.increment(10 * i)));
      assertEqual(values, [1, 12, 23], "increments");
    }
    result[Symbol.dispose]();
  }),

  scenario("methods.make_counter_stub", WS, async ctx => {
    const api = ctx.open();
    const counter = await api.makeCounter(4);
    assert(typeof counter === "function", `makeCounter did not return a stub: ${typeof counter}`);
    assertEqual(await counter.increment(2), 6, "increment(2)");
    assertEqual(await counter.value, 6, "value");
    assertEqual(await api.incrementCounter(counter), 7, "incrementCounter(c)");
    assertEqual(await api.incrementCounter(counter, 3), 10, "incrementCounter(c, 3)");
    assertEqual(await counter.value, 10, "value after");
    counter[Symbol.dispose]();
  }),

  scenario("methods.delayed_echo_capped", WS, async ctx => {
    const api = ctx.open();
    await api.square(1);  // connection is up
    const start = Date.now();
    assertEqual(await api.delayedEcho(3_600_000, "capped"), "capped", "delayedEcho(1 h)");
    const ms = Date.now() - start;
    assert(ms >= 9000 && ms < 12_500, `delayedEcho(1 h) took ${ms} ms, not ~10 s`);
  }, { timeout: 14_000 }),

  scenario("methods.get_session_id", BOTH, async ctx => {
    const [a, b] = await Promise.all([ctx.open().getSessionId(), ctx.open().getSessionId()]);
    assert(typeof a === "string" && a.length > 0, `session id is not a non-empty string: ${a}`);
    assert(a !== b, `two sessions share the id ${JSON.stringify(a)}`);
  }),

  scenario("methods.get_session_id_stable", BOTH, async ctx => {
    const api = ctx.open();
    const [a, b] = await Promise.all([api.getSessionId(), api.getSessionId()]);
    assertEqual(a, b, "second getSessionId in the same session");
  }),

  scenario("methods.get_live_counters_other_session", WS, async ctx => {
    const a = ctx.open();
    const idA = await a.getSessionId();
    await a.makeCounter(1);
    const b = ctx.open();
    assertEqual(await b.getLiveCounters(), 0, "new session's own count");
    assertEqual(await b.getLiveCounters(idA), 1, "count of the other session");
    assertEqual(await b.getLiveCounters(undefined), 0, "explicit undefined = own session");
  }),

  rejects("methods.get_live_counters_unknown", api => api.getLiveCounters("no-such-session"),
      undefined, undefined),

  // Errors thrown by methods.
  rejects("errors.throw_error", api => api.throwError(), RangeError, "test error"),
  rejects("errors.typed_Error", api => api.throwTypedError("Error", "plain"), Error, "plain"),
  rejects("errors.typed_TypeError", api => api.throwTypedError("TypeError", "a type"),
      TypeError, "a type"),
  rejects("errors.typed_RangeError", api => api.throwTypedError("RangeError", "a range"),
      RangeError, "a range"),
  rejects("errors.typed_unicode_message",
      api => api.throwTypedError("TypeError", "ü 😀 \u2028 \"q\""),
      TypeError, "ü 😀 \u2028 \"q\""),

  scenario("errors.unknown_method", BOTH, async ctx => {
    const api = ctx.open();
    const bad = api.noSuchMethod(1);
    const good = api.square(5).then(v => v);  // pulled now: a batch is sent one macrotask later
    const err = await assertRejects(bad, undefined, undefined, "noSuchMethod()");
    assert(err instanceof Error, `rejection is not an Error: ${err}`);
    assertEqual(await good, 25, "square(5) after the unknown method");
    if (ctx.transport === "ws") assertEqual(await api.square(6), 36, "a later call");
  }),
];
