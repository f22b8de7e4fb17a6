// `.map()` (the `remap` expression): record-replay mappers run by the server.

import { RpcStub, RpcTarget } from "capnweb";
import { assert, assertEqual, assertRejects } from "../lib/compare.mjs";
import { BOTH, WS, eventually, scenario } from "../lib/context.mjs";

/** A client capability captured by mappers; records what it was asked. */
class Doubler extends RpcTarget {
  #seen = [];

  double(x) {
    this.#seen.push(x);
    return x * 2;
  }

  get seen() {
    return this.#seen;
  }
}

/** `call(api)` must resolve strictly equal to `expected`, on both transports. */
function returns(name, call, expected) {
  return scenario(`map.${name}`, BOTH, async ctx => {
    assertEqual(await call(ctx.open()), expected, name);
  });
}

export const scenarios = [
  returns("fibonacci_square", api => api.generateFibonacci(6).map(i => api.square(i)),
      [0, 1, 1, 4, 9, 25]),
  returns("identity", api => api.generateFibonacci(5).map(i => i), [0, 1, 1, 2, 3]),
  returns("on_empty_array", api => api.generateFibonacci(0).map(i => api.square(i)), []),
  returns("on_number", api => api.returnNumber(7).map(x => api.square(x)), 49),
  returns("on_object", api => api.echo({ a: 3, b: [4] }).map(o => api.square(o.a)), 9),
  // The mapper would reject if it ran: null/undefined must come back without running it.
  returns("on_null", api => api.returnNull().map(() => api.throwError()), null),
  returns("on_undefined", api => api.returnUndefined().map(() => api.throwError()), undefined),
  returns("nested", api => api.generateFibonacci(6)
      .map(i => api.generateFibonacci(i).map(j => api.square(j))),
  [[], [0], [0], [0, 1], [0, 1, 1], [0, 1, 1, 4, 9]]),
  returns("chained_calls", api => api.generateFibonacci(5).map(i => api.square(api.square(i))),
      [0, 1, 1, 16, 81]),
  returns("build_objects", api => api.generateFibonacci(4).map(i => ({
    n: i, sq: api.square(i), pair: [i, api.square(i)], empty: [], nested: { list: [[i]] },
  })), [0, 1, 1, 2].map(i => ({
    n: i, sq: i * i, pair: [i, i * i], empty: [], nested: { list: [[i]] },
  }))),
  returns("make_counters", api => api.generateFibonacci(4)
      .map(i => api.makeCounter(i).increment(10)), [10, 11, 11, 12]),
  returns("counter_property", api => api.generateFibonacci(4)
      .map(i => api.makeCounter(i).value), [0, 1, 1, 2]),
  returns("over_stubs_at_path", api => api.makeCounters([1, 2, 3]).counters
      .map(c => c.increment(5)), [6, 7, 8]),

  scenario("map.rejection", BOTH, async ctx => {
    const api = ctx.open();
    await assertRejects(api.generateFibonacci(3).map(() => api.throwError()),
        RangeError, "test error", "map(() => throwError())");
  }),

  scenario("map.capture_client_stub", WS, async ctx => {
    const api = ctx.open();
    const doubler = new Doubler();
    const stub = new RpcStub(doubler);
    const result = await api.generateFibonacci(5).map(i => [i, stub.double(i)]);
    assertEqual(result, [[0, 0], [1, 2], [1, 2], [2, 4], [3, 6]], "map result");
    assertEqual([...doubler.seen].sort(), [0, 1, 1, 2, 3], "values the client stub received");
    stub[Symbol.dispose]();
  }),

  scenario("map.returns_counters", WS, async ctx => {
    const api = ctx.open();
    const counters = await api.generateFibonacci(4).map(i => api.makeCounter(i));
    assert(counters.length === 4 && counters.every(c => typeof c === "function"),
        "map did not return 4 stubs");
    assertEqual(await Promise.all(counters.map(c => c.increment(1))), [1, 2, 2, 3], "increments");
    assertEqual(await api.getLiveCounters(), 4, "live counters");
    counters[Symbol.dispose]();
    await eventually(async () => assertEqual(await api.getLiveCounters(), 0, "after dispose"));
  }),

  scenario("map.intermediate_counters_released", WS, async ctx => {
    const api = ctx.open();
    const values = await api.generateFibonacci(3).map(i => api.makeCounter(i).increment(1));
    assertEqual(values, [1, 2, 2], "map result");
    // The counters only existed inside the mapper: nothing holds them afterwards.
    await eventually(async () => assertEqual(await api.getLiveCounters(), 0, "live counters"));
  }),
];
