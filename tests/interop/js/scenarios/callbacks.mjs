// Calls from the server back into client functions (WebSocket only: a batch cannot carry them).

import { assertEqual, assertRejects } from "../lib/compare.mjs";
import { WS, eventually, scenario, sleep } from "../lib/context.mjs";

/** Fails unless the client session's tables are back to `baseline` within ~2 s. */
function released(session, baseline, what) {
  return eventually(() => assertEqual(session.getStats(), baseline, what));
}

const rich = {
  big: 2n ** 70n, neg: -3n, d: new Date(-5), b: new Uint8Array([0, 255, 7]), u: undefined,
  arr: [[], [null]], inf: -Infinity, e: new RangeError("as value"), s: "\u2028\ud800",
};

export const scenarios = [
  scenario("callbacks.sync_function", WS, async ctx => {
    const api = ctx.open();
    assertEqual(await api.callFunction(i => i * 2, 3), { result: 6 }, "callFunction(i => 2i, 3)");
  }),

  scenario("callbacks.async_function", WS, async ctx => {
    const api = ctx.open();
    const func = async i => {
      await sleep(20);
      return `got ${i}`;
    };
    assertEqual(await api.callFunction(func, 5), { result: "got 5" }, "callFunction(async)");
  }),

  scenario("callbacks.throws_type_error", WS, async ctx => {
    const api = ctx.open();
    const func = () => { throw new TypeError("callback failed"); };
    await assertRejects(api.callFunction(func, 1), TypeError, "callback failed", "callFunction");
    assertEqual(await api.square(3), 9, "session still works");
  }),

  scenario("callbacks.async_throws_range_error", WS, async ctx => {
    const api = ctx.open();
    const func = async () => {
      await sleep(10);
      throw new RangeError("late failure");
    };
    await assertRejects(api.callFunction(func, 1), RangeError, "late failure", "callFunction");
  }),

  scenario("callbacks.rich_values", WS, async ctx => {
    const api = ctx.open();
    const received = [];
    const func = x => {
      received.push(x);
      return rich;
    };
    assertEqual(await api.callFunction(func, rich), { result: rich }, "result");
    assertEqual(received, [rich], "argument the callback received");
  }),

  scenario("callbacks.reentrant", WS, async ctx => {
    const api = ctx.open();
    // While the server awaits this callback, the callback calls the server again.
    const func = async i => (await api.square(i)) + 1;
    assertEqual(await api.callFunction(func, 4), { result: 17 }, "callFunction(reentrant)");
  }),

  scenario("callbacks.released_after_call", WS, async ctx => {
    const { api, session } = ctx.openWs();
    const baseline = session.getStats();
    assertEqual(await api.callFunction(i => i + 1, 1), { result: 2 }, "callFunction");
    await released(session, baseline, "client stats after callFunction");
  }),

  scenario("callbacks.session_closed_while_server_waits", WS, async ctx => {
    const first = ctx.openWs();
    const pending = first.api.callFunction(() => new Promise(() => {}), 1);
    pending.catch(() => {});
    await sleep(100);
    first.close();  // the server is still awaiting the client function
    assertEqual(await ctx.open().square(4), 16, "a new session works");
  }),

  scenario("callbacks.holder_invokes_in_order", WS, async ctx => {
    const api = ctx.open();
    const calls = [];
    const func = async x => {
      calls.push(x);
      await sleep(5 * (4 - x));
      return x * 10;
    };
    const holder = await api.makeCallbackHolder(func);
    await sleep(50);  // the holder keeps the function after makeCallbackHolder returned
    const results = await Promise.all([1, 2, 3].map(x => holder.invoke(x)));
    assertEqual(results, [10, 20, 30], "invoke results");
    assertEqual(calls, [1, 2, 3], "order of calls into the client");
    assertEqual(await holder.invoke(4), 40, "a later invoke");
    holder[Symbol.dispose]();
  }),

  scenario("callbacks.holder_pipelined", WS, async ctx => {
    const api = ctx.open();
    const holder = api.makeCallbackHolder(x => [x, x]);
    assertEqual(await holder.invoke("a"), ["a", "a"], "invoke on the unresolved holder");
  }),

  scenario("callbacks.holder_error", WS, async ctx => {
    const api = ctx.open();
    const holder = await api.makeCallbackHolder(x => {
      if (x < 0) throw new RangeError(`negative: ${x}`);
      return x;
    });
    await assertRejects(holder.invoke(-1), RangeError, "negative: -1", "invoke(-1)");
    assertEqual(await holder.invoke(2), 2, "invoke(2) after the error");
    holder[Symbol.dispose]();
  }),

  scenario("callbacks.holder_release", WS, async ctx => {
    const { api, session } = ctx.openWs();
    const baseline = session.getStats();
    const holder = await api.makeCallbackHolder(x => x + 1);
    assertEqual(await holder.invoke(1), 2, "invoke(1)");
    const held = session.getStats();
    assertEqual(held.exports, baseline.exports + 1,
        `client exports while the holder is alive (stats ${JSON.stringify(held)})`);
    holder[Symbol.dispose]();
    // Releasing the holder must make the server release the client function.
    await released(session, baseline, "client stats after releasing the holder");
  }),
];
