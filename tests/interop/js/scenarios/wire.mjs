// Hand-written frames: malformed input, exact wire shapes, HTTP details, abrupt session ends.

import { CheckFailure, assert, assertEqual, difference } from "../lib/compare.mjs";
import { BATCH, WS, eventually, scenario } from "../lib/context.mjs";

const push = (expr) => ["push", expr];
const call = (id, method, args) => ["pipeline", id, [method], args];

/**
 * Drops what the contract leaves open in a wire expression: base64 padding of `bytes` and the
 * optional stack/props elements of `error`. Plain JSON otherwise (arrays stay as sent).
 */
function normalizeWire(expr) {
  if (Array.isArray(expr)) {
    if (expr[0] === "bytes" && typeof expr[1] === "string") {
      return ["bytes", expr[1].replace(/=+$/, ""), ...expr.slice(2)];
    }
    if (expr[0] === "error") return expr.slice(0, 3);
    return expr.map(normalizeWire);
  }
  if (expr !== null && typeof expr === "object") {
    return Object.fromEntries(Object.entries(expr).map(([k, v]) => [k, normalizeWire(v)]));
  }
  return expr;
}

/** After a malformed session, the server must still serve a fresh one. */
async function freshSessionWorks(ctx) {
  assertEqual(await ctx.open().square(5), 25, "square(5) on a fresh session");
}

/** Reads frames until the session ends or `["reject", id, ...]` arrives. */
async function expectEndOrReject(raw, id, timeout = 3000) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const event = await raw.next(Math.max(0, deadline - Date.now()));
    if (event === null) {
      throw new CheckFailure(`no abort, close or reject of ${id} in ${timeout} ms`);
    }
    if (event.type !== "message") return `${event.type} ${event.code ?? ""}`;
    const [type, msgId] = Array.isArray(event.json) ? event.json : [];
    if (type === "abort" || (type === "reject" && msgId === id)) return event.text;
    if (type === "resolve" && msgId === id) throw new CheckFailure(`resolved: ${event.text}`);
  }
}

/** A WebSocket scenario: send `frames` on a raw socket; the server must end that session. */
function malformed(name, frames) {
  return scenario(`malformed.${name}`, WS, async ctx => {
    const raw = await ctx.raw();
    for (const frame of frames) raw.send(frame);
    const detail = await raw.expectEnd();
    await freshSessionWorks(ctx);
    return detail;
  });
}

/** Like `malformed`, but rejecting push 1 (pulled) is an acceptable answer too. */
function malformedCall(name, expr) {
  return scenario(`malformed.${name}`, WS, async ctx => {
    const raw = await ctx.raw();
    raw.send(push(expr));
    raw.send(["pull", 1]);
    const detail = await expectEndOrReject(raw, 1);
    await freshSessionWorks(ctx);
    return detail;
  });
}

/** POSTs `lines` to the batch endpoint; returns the status and the parsed response lines. */
async function postBatch(url, lines, method = "POST") {
  const response = await fetch(url, method === "POST"
      ? { method, body: lines.map(l => (typeof l === "string" ? l : JSON.stringify(l))).join("\n") }
      : { method });
  const text = await response.text();
  return { status: response.status, text, lines: text === "" ? [] : text.split("\n") };
}

/** A batch whose input is malformed must be answered (abort frame or an HTTP error). */
function malformedBatch(name, lines) {
  return scenario(`malformed.${name}`, BATCH, async ctx => {
    const { status, text } = await postBatch(ctx.httpUrl, lines);
    const aborted = status === 200 && text.split("\n").some(l => l.startsWith("[\"abort\""));
    assert(aborted || status >= 400,
        `expected an abort frame or an HTTP error, got ${status} ${text}`);
    await freshSessionWorks(ctx);
    return `${status} ${text.slice(0, 200)}`;
  });
}

/** Opens a raw session that owns live Counters; returns the socket and the session id. */
async function rawSessionWithCounters(ctx) {
  const raw = await ctx.raw();
  raw.send(push(call(0, "getSessionId", [])));
  raw.send(["pull", 1]);
  raw.send(push(call(0, "makeCounter", [1])));
  raw.send(["pull", 2]);
  const [, , id] = await raw.expect(m => m?.[0] === "resolve" && m[1] === 1, "resolve of 1");
  const [, , exp] = await raw.expect(m => m?.[0] === "resolve" && m[1] === 2, "resolve of 2");
  assert(Array.isArray(exp) && exp[0] === "export" && exp[1] < 0, `not an export: ${exp}`);
  assertEqual(await ctx.open().getLiveCounters(id), 1, "live counters of the raw session");
  return { raw, id };
}

export const scenarios = [
  malformed("not_json", ["this is not json"]),
  malformed("truncated_json", ["[\"push\",[\"pipeline\",0,[\"square\"],[3]]"]),
  malformed("not_an_array", ["{\"push\":1}"]),
  malformed("empty_array", [[]]),
  malformed("unknown_message_type", [["frobnicate", 1]]),
  malformed("push_without_expression", [["push"]]),
  malformed("release_unknown_id", [["release", 12345, 1]]),
  malformed("pull_unknown_id", [["pull", 999]]),
  malformedCall("import_unknown_id", call(0, "echo", [["import", 77]])),
  malformedCall("pipeline_unknown_id", ["pipeline", 55, ["square"], [2]]),
  malformedCall("unknown_expression_tag", call(0, "echo", [["frobnicate", 1]])),

  scenario("malformed.other_sessions_unaffected", WS, async ctx => {
    const api = ctx.open();
    const slow = api.delayedEcho(300, "still here");
    const raw = await ctx.raw();
    raw.send("garbage");
    await raw.expectEnd();
    assertEqual(await slow, "still here", "delayedEcho on the other session");
    assertEqual(await api.square(3), 9, "other session keeps working");
  }),

  malformedBatch("batch_not_json", ["this is not json"]),
  malformedBatch("batch_unknown_message", [["frobnicate", 1]]),

  // Exact wire shapes.
  scenario("wire.push_ids_and_pull_order", WS, async ctx => {
    const raw = await ctx.raw();
    raw.send(push(call(0, "square", [2])));
    raw.send(push(call(0, "square", [3])));
    raw.send(["pull", 2]);
    raw.send(["pull", 1]);
    const got = new Map();
    while (got.size < 2) {
      const msg = await raw.expect(m => m?.[0] === "resolve", "resolve");
      got.set(msg[1], msg[2]);
    }
    assertEqual(Object.fromEntries(got), { 1: 4, 2: 9 }, "resolutions by id");
  }),

  scenario("wire.encodings", WS, async ctx => {
    const raw = await ctx.raw();
    const value = {
      a: [[1, [[]], [["date", 5]]]], u: ["undefined"], d: ["date", -5], b: ["bytes", "AQI"],
      n: ["bigint", "-5"], i: ["inf"], e: ["error", "TypeError", "x"],
    };
    raw.send(push(call(0, "echo", [value])));
    raw.send(["pull", 1]);
    raw.send(push(call(0, "returnUndefined", [])));
    raw.send(["pull", 2]);
    raw.send(push(call(0, "generateFibonacci", [0])));
    raw.send(["pull", 3]);
    const r1 = await raw.expect(m => m?.[0] === "resolve" && m[1] === 1, "resolve of 1");
    const d = difference(normalizeWire(r1[2]), value);
    assert(d === null, `echo came back as ${JSON.stringify(r1[2])} (${d})`);
    const r2 = await raw.expect(m => m?.[0] === "resolve" && m[1] === 2, "resolve of 2");
    assertEqual(r2, ["resolve", 2, ["undefined"]], "returnUndefined frame");
    const r3 = await raw.expect(m => m?.[0] === "resolve" && m[1] === 3, "resolve of 3");
    assertEqual(r3, ["resolve", 3, [[]]], "generateFibonacci(0) frame");
  }),

  scenario("wire.reject_frame", WS, async ctx => {
    const raw = await ctx.raw();
    raw.send(push(call(0, "throwError", [])));
    raw.send(["pull", 1]);
    const msg = await raw.expect(m => m?.[0] === "reject" && m[1] === 1, "reject of 1");
    assertEqual(msg[2].slice(0, 3), ["error", "RangeError", "test error"], "error expression");
  }),

  scenario("wire.exports_and_releases", WS, async ctx => {
    const raw = await ctx.raw();
    raw.send(push(call(0, "makeCounter", [1])));
    raw.send(["pull", 1]);
    raw.send(push(call(0, "makeCounter", [2])));
    raw.send(["pull", 2]);
    const [, , e1] = await raw.expect(m => m?.[0] === "resolve" && m[1] === 1, "resolve of 1");
    const [, , e2] = await raw.expect(m => m?.[0] === "resolve" && m[1] === 2, "resolve of 2");
    assert(e1[0] === "export" && e2[0] === "export" && e1[1] < 0 && e2[1] < 0 && e1[1] !== e2[1],
        `expected two distinct negative exports, got ${JSON.stringify([e1, e2])}`);
    raw.send(["release", 1, 1]);
    raw.send(["release", 2, 1]);
    raw.send(push(["pipeline", e2[1], ["increment"], [5]]));
    raw.send(["pull", 3]);
    raw.send(push(call(0, "incrementCounter", [["import", e1[1]], 10])));
    raw.send(["pull", 4]);
    assertEqual(await raw.expect(m => m?.[1] === 3, "answer to 3"), ["resolve", 3, 7], "increment");
    assertEqual(await raw.expect(m => m?.[1] === 4, "answer to 4"), ["resolve", 4, 11],
        "incrementCounter of the passed-back counter");
    raw.send(["release", e1[1], 1]);
    raw.send(["release", e2[1], 1]);
    let next = 5;
    await eventually(async () => {
      const id = next++;
      raw.send(push(call(0, "getLiveCounters", [])));
      raw.send(["pull", id]);
      const msg = await raw.expect(m => m?.[1] === id, `answer to ${id}`);
      assertEqual(msg, ["resolve", id, 0], "getLiveCounters after releases");
    });
  }),

  scenario("wire.server_calls_client", WS, async ctx => {
    const raw = await ctx.raw();
    raw.send(push(call(0, "callFunction", [["export", -1], 3])));
    raw.send(["pull", 1]);
    const callMsg = await raw.expect(m => m?.[0] === "push", "the server's push");
    assertEqual(callMsg, ["push", ["pipeline", -1, [], [3]]], "server's call of the client");
    assertEqual(await raw.expect(m => m?.[0] === "pull", "the server's pull"), ["pull", 1],
        "server's pull (its first push is id 1)");
    raw.send(["resolve", 1, 6]);
    let resolved = false;
    let releasedFunc = false;
    const deadline = Date.now() + 2000;
    while (!(resolved && releasedFunc) && Date.now() < deadline) {
      const msg = await raw.expect(() => true, "more frames", Math.max(1, deadline - Date.now()));
      if (msg[0] === "resolve" && msg[1] === 1) {
        assertEqual(msg, ["resolve", 1, { result: 6 }], "callFunction result");
        resolved = true;
      } else if (msg[0] === "release" && msg[1] === -1) {
        assertEqual(msg, ["release", -1, 1], "release of the client function");
        releasedFunc = true;
      }
    }
    assert(resolved && releasedFunc, `resolved=${resolved} released=${releasedFunc}`);
  }),

  scenario("wire.client_promise_argument", WS, async ctx => {
    const raw = await ctx.raw();
    raw.send(push(call(0, "square", [["promise", -1]])));
    raw.send(["pull", 1]);
    raw.send(["resolve", -1, 7]);
    assertEqual(await raw.expect(m => m?.[0] === "resolve" && m[1] === 1, "resolve of 1"),
        ["resolve", 1, 49], "square(client promise of 7)");
  }),

  // Sessions ended abruptly release everything.
  scenario("dispose.abort_message", WS, async ctx => {
    const { raw, id } = await rawSessionWithCounters(ctx);
    raw.send(["abort", ["error", "Error", "client is leaving"]]);
    await eventually(async () => {
      assertEqual(await ctx.open().getLiveCounters(id), 0, "live counters after abort");
    }, { timeout: 3000, interval: 100 });
  }, { timeout: 8000 }),

  scenario("dispose.socket_dropped", WS, async ctx => {
    const { raw, id } = await rawSessionWithCounters(ctx);
    raw.terminate();  // no close frame: the TCP connection just goes away
    await eventually(async () => {
      assertEqual(await ctx.open().getLiveCounters(id), 0, "live counters after the drop");
    }, { timeout: 3000, interval: 100 });
  }, { timeout: 8000 }),

  // HTTP details of the batch endpoint.
  scenario("http.get_is_405", BATCH, async ctx => {
    const { status } = await postBatch(ctx.httpUrl, [], "GET");
    assertEqual(status, 405, "GET status");
  }),

  scenario("http.empty_batch", BATCH, async ctx => {
    const { status, text } = await postBatch(ctx.httpUrl, []);
    assertEqual([status, text], [200, ""], "empty POST");
  }),

  scenario("http.raw_batch", BATCH, async ctx => {
    const { status, lines } = await postBatch(ctx.httpUrl, [
      push(call(0, "square", [3])), ["pull", 1], push(call(0, "square", [4])),
      push(["pipeline", 1, []]), ["pull", 3],
    ]);
    assertEqual(status, 200, "status");
    const parsed = lines.map(l => JSON.parse(l)).sort((a, b) => a[1] - b[1]);
    assertEqual(parsed, [["resolve", 1, 9], ["resolve", 3, 9]], "response lines (only pulled ids)");
  }),
];
