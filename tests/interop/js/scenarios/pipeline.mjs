// Promise pipelining, capabilities passed both ways, and rejection propagation.

import { RpcPromise, RpcTarget } from "capnweb";
import { assert, assertEqual, assertRejects } from "../lib/compare.mjs";
import { BOTH, WS, eventually, scenario, sleep } from "../lib/context.mjs";

/** A client-side object with an `increment` method, recording the amounts it was given. */
class ClientCounter extends RpcTarget {
  #value;
  #amounts = [];

  constructor(value) {
    super();
    this.#value = value;
  }

  increment(amount) {
    this.#amounts.push(amount);
    this.#value += amount;
    return this.#value;
  }

  get amounts() {
    return this.#amounts;
  }
}

/** `call(api)` must resolve strictly equal to `expected`, on both transports. */
function returns(name, call, expected) {
  return scenario(name, BOTH, async ctx => {
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
  // Pipelining: dependent calls sent before any answer arrives.
  returns("pipeline.three_calls", api => {
    const counter = api.makeCounter(2);
    return Promise.all([counter.increment(3), api.incrementCounter(counter, 4)]);
  }, [5, 9]),
  returns("pipeline.increment_counter_of_promise",
      api => api.incrementCounter(api.makeCounter(2), 3), 5),
  returns("pipeline.property", api => api.makeCounter(5).value, 5),
  returns("pipeline.property_after_increment", api => {
    const counter = api.makeCounter(5);
    counter.increment(1);
    return counter.value;
  }, 6),
  returns("pipeline.call_square_self", api => api.callSquare(api, 3), { result: 9 }),
  returns("pipeline.call_square_promised_arg", api => api.callSquare(api, api.square(2)),
      { result: 16 }),
  returns("pipeline.property_of_nested_promise", api => api.callSquare(api, 4).result, 16),
  returns("pipeline.promise_argument", api => api.square(api.square(2)), 16),
  returns("pipeline.chain", api => api.square(api.square(api.square(2))), 256),
  returns("pipeline.promises_inside_argument",
      api => api.echo({ a: api.square(3), b: [api.returnNumber(4), api.makeCounter(7).value] }),
      { a: 9, b: [4, 7] }),
  returns("pipeline.nested_property", api => api.echo({ a: { b: [1, [2]] } }).a.b, [1, [2]]),
  returns("pipeline.missing_property", api => api.echo({ a: 1 }).nope, undefined),
  returns("pipeline.property_of_counters", api => api.makeCounters([4, 5]).count, 2),
  // The TS client sends every path element as a string, and the reference only indexes arrays
  // with numbers: `p[1]` (path ["1"]) and `p.length` on an array are undefined.
  returns("pipeline.array_string_path_is_undefined", api => {
    const fib = api.generateFibonacci(5);
    return Promise.all([fib[3], fib.length, api.echo({ a: [1, 2] }).a[1]]);
  }, [undefined, undefined, undefined]),

  // Capabilities passed back and forth.
  scenario("caps.server_counter_passed_back", WS, async ctx => {
    const api = ctx.open();
    const counter = await api.makeCounter(4);
    assertEqual(await counter.increment(2), 6, "increment(2)");
    assertEqual(await api.incrementCounter(counter, 1), 7, "incrementCounter(c, 1)");
    assertEqual(await api.incrementCounter(counter), 8, "incrementCounter(c)");
    counter[Symbol.dispose]();
  }),

  scenario("caps.counter_from_structure_passed_back", WS, async ctx => {
    const api = ctx.open();
    const { counters } = await api.makeCounters([10, 20]);
    assertEqual(await api.incrementCounter(counters[1], 5), 25, "incrementCounter(counters[1], 5)");
    assertEqual(await counters[0].value, 10, "counters[0].value");
  }),

  scenario("caps.client_object", WS, async ctx => {
    const { api, session } = ctx.openWs();
    const baseline = session.getStats();
    const local = new ClientCounter(100);
    assertEqual(await api.incrementCounter(local, 5), 105, "incrementCounter(obj, 5)");
    assertEqual(await api.incrementCounter(local), 106, "incrementCounter(obj)");
    assertEqual(local.amounts, [5, 1], "amounts the client object received");
    // The server must release its copies of the client object once the calls are done.
    await eventually(() => assertEqual(session.getStats(), baseline, "client stats"));
  }),

  scenario("caps.client_plain_object", WS, async ctx => {
    const seen = [];
    const local = { increment: amount => { seen.push(amount); return 40 + amount; } };
    const api = ctx.open();
    assertEqual(await api.incrementCounter(local, 2), 42, "incrementCounter({increment}, 2)");
    assertEqual(seen, [2], "amounts the client function received");
  }),

  // Rejections propagate to pipelined calls and to calls that received the promise.
  rejects("rejection.pipelined_call", api => api.throwError().someMethod(1),
      RangeError, "test error"),
  rejects("rejection.pipelined_property", api => api.throwError().someProperty,
      RangeError, "test error"),
  rejects("rejection.as_argument", api => api.square(api.throwError()), RangeError, "test error"),
  rejects("rejection.nested_in_argument",
      api => api.echo({ a: [api.throwTypedError("TypeError", "inner")] }), TypeError, "inner"),
  rejects("rejection.counter_argument",
      api => api.incrementCounter(api.throwTypedError("Error", "no counter")), Error, "no counter"),
  rejects("rejection.unknown_method_pipelined", api => api.noSuchMethod().value,
      undefined, undefined),

  scenario("rejection.unpulled_is_harmless", BOTH, async ctx => {
    const api = ctx.open();
    api.throwError();
    api.throwTypedError("TypeError", "ignored");
    assertEqual(await api.square(7), 49, "square(7) after unpulled rejections");
  }),

  scenario("rejection.client_promise_rejects", WS, async ctx => {
    const api = ctx.open();
    const promise = sleep(50).then(() => { throw new TypeError("client says no"); });
    promise.catch(() => {});
    await assertRejects(api.echo(new RpcPromise(promise)), TypeError, "client says no",
        "echo(rejecting client promise)");
    assertEqual(await api.square(2), 4, "session still works");
  }),

  scenario("rejection.client_promise_resolves", WS, async ctx => {
    const api = ctx.open();
    const promise = sleep(50).then(() => 6);
    assertEqual(await api.square(new RpcPromise(promise)), 36, "square(client promise of 6)");
  }),

];
