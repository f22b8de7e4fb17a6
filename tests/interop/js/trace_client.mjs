// Records the exact frames the official client sends for a few call sequences, so that the
// Python client's frames can be compared with them byte for byte (test_py_client.py).
//
//   node --import ./setup.mjs trace_client.mjs --url ws://127.0.0.1:PORT/rpc
//
// Each sequence runs in its own WebSocket session (so push IDs start at 1). Prints one JSON
// object on stdout: {sequenceName: [frameText, ...]}, the frames in the order they were sent.
// Exits 1 (message on stderr) if a sequence fails or gives an unexpected result.

import { parseArgs } from "node:util";
import { WebSocket } from "ws";
import { RpcSession, WebSocketTransport } from "capnweb";

/** Forwards to `inner`, remembering the text of every frame sent. */
class RecordingTransport {
  constructor(inner) {
    this.inner = inner;
    this.sent = [];
  }

  send(message) {
    this.sent.push(message);
    return this.inner.send(message);
  }

  receive() {
    return this.inner.receive();
  }

  abort(reason) {
    this.inner.abort?.(reason);
  }
}

function check(actual, expected, what) {
  if (JSON.stringify(actual) !== JSON.stringify(expected)) {
    throw new Error(`${what}: got ${JSON.stringify(actual)}, expected ${JSON.stringify(expected)}`);
  }
}

/** The call sequences; keep them in step with WIRE_SEQUENCES in _py_cases.py. */
const SEQUENCES = {
  async square(api) {
    check(await api.square(3), 9, "square(3)");
  },
  async pipelined_increment(api) {
    const counter = api.makeCounter(2);
    check(await counter.increment(3), 5, "makeCounter(2).increment(3)");
    counter[Symbol.dispose]();
  },
  async pipelined_three_calls(api) {
    const counter = api.makeCounter(2);
    const results = await Promise.all([counter.increment(3), api.incrementCounter(counter, 4)]);
    check(results, [5, 9], "three pipelined calls");
    counter[Symbol.dispose]();
  },
  async callback(api) {
    check(await api.callFunction(i => i * 2, 3), { result: 6 }, "callFunction(i => i * 2, 3)");
  },
};

async function record(url, run) {
  const ws = new WebSocket(url);
  const transport = new RecordingTransport(new WebSocketTransport(ws));
  const session = new RpcSession(transport);
  const api = session.getRemoteMain();
  try {
    await run(api);
    return transport.sent.slice();
  } finally {
    api[Symbol.dispose]();
    ws.close();
  }
}

const { values } = parseArgs({ options: { url: { type: "string" } } });
if (!values.url) {
  console.error("usage: trace_client.mjs --url ws://HOST:PORT/rpc");
  process.exit(2);
}
const out = {};
try {
  for (const [name, run] of Object.entries(SEQUENCES)) out[name] = await record(values.url, run);
} catch (err) {
  console.error(err?.stack ?? String(err));
  process.exit(1);
}
console.log(JSON.stringify(out));
process.exit(0);
