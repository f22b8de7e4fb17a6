// E-order, concurrency, disposal and session lifetime, big messages.

import { assert, assertEqual } from "../lib/compare.mjs";
import { BATCH, BOTH, WS, eventually, scenario, sleep } from "../lib/context.mjs";

/** Fails unless `getLiveCounters(sessionId)` reaches `expected` within ~2 s. */
function liveCountersReach(api, expected, sessionId = undefined, what = "live counters") {
  return eventually(async () => {
    assertEqual(await api.getLiveCounters(sessionId), expected, what);
  });
}

export const scenarios = [
  // E-order: calls to one capability are delivered in the order they were sent.
  scenario("eorder.pipelined_counter", BOTH, async ctx => {
    const api = ctx.open();
    const counter = api.makeCounter(0);
    const results = await Promise.all([1, 2, 3, 4, 5].map(() => counter.increment(1)));
    assertEqual(results, [1, 2, 3, 4, 5], "concurrent increments");
  }),

  scenario("eorder.mixed_calls_and_properties", BOTH, async ctx => {
    const api = ctx.open();
    const counter = api.makeCounter(0);
    // A property read is only sent when it is awaited (then() called), so call then() right away.
    const read = () => counter.value.then(v => v);
    const results = await Promise.all([
      counter.increment(1), read(), counter.increment(2), read(),
      counter.increment(3), read(),
    ]);
    assertEqual(results, [1, 1, 3, 3, 6, 6], "interleaved calls");
  }),

  scenario("eorder.resolved_counter", WS, async ctx => {
    const api = ctx.open();
    const counter = await api.makeCounter(100);
    const results = await Promise.all(Array.from({ length: 20 }, () => counter.increment(1)));
    assertEqual(results, Array.from({ length: 20 }, (_, i) => 101 + i), "concurrent increments");
    counter[Symbol.dispose]();
  }),

  // Concurrency: a call that awaits must not block the session's other calls.
  scenario("concurrency.delayed_echo_does_not_block", WS, async ctx => {
    const api = ctx.open();
    await api.square(1);  // connection is up
    const start = Date.now();
    let slowDone = false;
    const slow = api.delayedEcho(500, "slow").then(v => {
      slowDone = true;
      return v;
    });
    assertEqual(await api.square(3), 9, "square(3)");
    const fastMs = Date.now() - start;
    assert(!slowDone && fastMs < 400, `square waited for delayedEcho (${fastMs} ms)`);
    assertEqual(await slow, "slow", "delayedEcho result");
  }),

  scenario("concurrency.parallel_delays", BOTH, async ctx => {
    const api = ctx.open();
    const start = Date.now();
    const results = await Promise.all([1, 2, 3, 4, 5].map(i => api.delayedEcho(400, i)));
    const ms = Date.now() - start;
    assertEqual(results, [1, 2, 3, 4, 5], "results");
    assert(ms < 1500, `five 400 ms delayedEcho calls took ${ms} ms: not concurrent`);
  }),

  scenario("concurrency.batch_waits_for_slow_calls", BATCH, async ctx => {
    const api = ctx.open();
    const results = await Promise.all([api.delayedEcho(300, "late"), api.square(2)]);
    assertEqual(results, ["late", 4], "results");
  }),

  // Disposal: Counters are released when the client lets go of them.
  scenario("dispose.counter_release", WS, async ctx => {
    const api = ctx.open();
    const counter = await api.makeCounter(1);
    assertEqual(await api.getLiveCounters(), 1, "live counters while held");
    counter[Symbol.dispose]();
    await liveCountersReach(api, 0);
  }),

  scenario("dispose.used_then_released", WS, async ctx => {
    const api = ctx.open();
    const counter = await api.makeCounter(4);
    assertEqual(await counter.increment(2), 6, "increment");
    assertEqual(await api.incrementCounter(counter, 1), 7, "incrementCounter");
    assertEqual(await api.getLiveCounters(), 1, "live counters while held");
    counter[Symbol.dispose]();
    await liveCountersReach(api, 0);
  }),

  scenario("dispose.never_pulled", WS, async ctx => {
    const api = ctx.open();
    const promise = api.makeCounter(5);
    assertEqual(await promise.value, 5, "makeCounter(5).value");
    assertEqual(await api.getLiveCounters(), 1, "live counters while the push is held");
    promise[Symbol.dispose]();  // releases the never-pulled push
    await liveCountersReach(api, 0);
  }),

  scenario("dispose.pipelined_argument", WS, async ctx => {
    const api = ctx.open();
    const promise = api.makeCounter(2);
    assertEqual(await api.incrementCounter(promise, 3), 5, "incrementCounter(makeCounter(2), 3)");
    promise[Symbol.dispose]();
    await liveCountersReach(api, 0);
  }),

  scenario("dispose.make_counters", WS, async ctx => {
    const api = ctx.open();
    const result = await api.makeCounters([1, 2, 3]);
    assertEqual(await api.getLiveCounters(), 3, "live counters while held");
    result.counters[1][Symbol.dispose]();
    await liveCountersReach(api, 2, undefined, "after releasing one");
    result[Symbol.dispose]();
    await liveCountersReach(api, 0, undefined, "after releasing all");
  }),

  scenario("dispose.session_end", BOTH, async ctx => {
    const first = ctx.open();
    const [id, , , live] = await Promise.all([
      first.getSessionId(), first.makeCounter(1), first.makeCounters([2, 3]),
      first.getLiveCounters(),
    ]);
    assertEqual(live, 3, "live counters in the first session");
    if (ctx.transport === "ws") {
      assertEqual(await ctx.open().getLiveCounters(id), 3, "seen from another session");
      first[Symbol.dispose]();  // closes the socket
    }
    // A batch session ends with its response. Check from fresh sessions.
    await eventually(async () => {
      assertEqual(await ctx.open().getLiveCounters(id), 0, "live counters after session end");
    }, { timeout: 3000, interval: 100 });
  }, { timeout: 8000 }),

  // Sessions are independent.
  scenario("session.state_isolated", WS, async ctx => {
    const a = ctx.open();
    await a.makeCounter(1);
    const b = ctx.open();
    assertEqual(await b.getLiveCounters(), 0, "other session's own count");
    assertEqual(await a.getLiveCounters(), 1, "first session's count");
  }),

  scenario("session.many_concurrent", BOTH, async ctx => {
    const results = await Promise.all(Array.from({ length: 12 }, async (_, i) => {
      const api = ctx.open();
      const counter = api.makeCounter(i);
      return await Promise.all([counter.increment(1), api.square(i), api.getLiveCounters()]);
    }));
    assertEqual(results, Array.from({ length: 12 }, (_, i) => [i + 1, i * i, 1]), "results");
  }, { timeout: 8000 }),

  // Big batches and big messages.
  scenario("big.batch_1000_messages", BATCH, async ctx => {
    const api = ctx.open();
    // 500 pushes + 500 pulls in one request body.
    const results = await Promise.all(Array.from({ length: 500 }, (_, i) => api.square(i)));
    assertEqual(results, Array.from({ length: 500 }, (_, i) => i * i), "results");
  }, { timeout: 10_000 }),

  scenario("big.many_calls", WS, async ctx => {
    const api = ctx.open();
    const results = await Promise.all(Array.from({ length: 1000 }, (_, i) => api.square(i)));
    assertEqual(results, Array.from({ length: 1000 }, (_, i) => i * i), "results");
  }, { timeout: 10_000 }),

  scenario("big.string_1mib", BOTH, async ctx => {
    const api = ctx.open();
    const chunk = "abcdefghijklmnopqrstuvwxyz0123456789-é😀\u2028\"\\";
    const big = chunk.repeat(Math.ceil((1 << 20) / chunk.length)).slice(0, 1 << 20);
    const result = await api.echo(big);
    assert(result === big, `1 MiB string came back different (length ${result?.length})`);
  }, { timeout: 10_000 }),

  scenario("big.bytes_1mib", BOTH, async ctx => {
    const api = ctx.open();
    const bytes = Uint8Array.from({ length: 1 << 20 }, (_, i) => (i * 31 + (i >> 10)) & 0xff);
    assertEqual(await api.echo(bytes), bytes, "1 MiB of bytes");
  }, { timeout: 10_000 }),

  scenario("big.deep_nesting", BOTH, async ctx => {
    const api = ctx.open();
    let value = "leaf";
    for (let i = 0; i < 60; i++) value = i % 2 ? [value] : { k: value };
    assertEqual(await api.echo(value), value, "60 levels of nesting");
  }),

  scenario("big.slow_connection_ok", WS, async ctx => {
    const api = ctx.open();
    await sleep(300);  // an idle session stays usable
    assertEqual(await api.square(12), 144, "square after idling");
  }),
];
