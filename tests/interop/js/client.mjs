// Conformance runner: drives a TestTarget server (INTEROP-CONTRACT.md) with the official capnweb
// TypeScript client and checks every answer strictly.
//
//   node --import ./setup.mjs client.mjs --url http://127.0.0.1:PORT/rpc --transport ws|batch
//        [--only name1,name2] [--jobs N] [--trace]
//   node --import ./setup.mjs client.mjs --list [--transport ws|batch]
//
// Every scenario runs in its own session(s) (WebSocket: `ws://` on the same host and path; batch:
// one `newHttpBatchRpcSession` per session, all calls of a session pipelined into one request),
// bounded by its own timeout. One JSON line per scenario goes to stdout,
// `{"name": ..., "ok": true|false, "detail": ...}`, in the order the scenarios finish; the exit
// status is 0 only if every selected scenario passed (2 for usage errors). `--list` prints the
// scenario names (of one transport with --transport, else all) one per line, without connecting.
// `--jobs N` runs N scenarios at a time (default 1); exclusive scenarios (throughput measurements)
// then run one at a time, alone. `--trace` logs every frame of the client's WebSocket sessions and
// every batch request/response to stderr.

import { parseArgs } from "node:util";
import { WebSocketTransport } from "capnweb";
import { ScenarioContext } from "./lib/context.mjs";
import { scenarios as callbacks } from "./scenarios/callbacks.mjs";
import { scenarios as lifecycle } from "./scenarios/lifecycle.mjs";
import { scenarios as map } from "./scenarios/map.mjs";
import { scenarios as methods } from "./scenarios/methods.mjs";
import { scenarios as pipeline } from "./scenarios/pipeline.mjs";
import { scenarios as streams } from "./scenarios/streams.mjs";
import { scenarios as values } from "./scenarios/values.mjs";
import { scenarios as wire } from "./scenarios/wire.mjs";

const ALL = [
  ...values, ...methods, ...pipeline, ...callbacks, ...map, ...lifecycle, ...wire, ...streams,
];

function checkNames() {
  const seen = new Set();
  for (const { name } of ALL) {
    if (seen.has(name)) throw new Error(`duplicate scenario name ${name}`);
    seen.add(name);
  }
}

function usage(message) {
  console.error(`${message}\nusage: client.mjs --url http://HOST:PORT/rpc --transport ws|batch ` +
      "[--only a,b] [--jobs N] [--trace] | --list [--transport ws|batch]");
  process.exit(2);
}

/** Logs frames of the client's sessions to stderr (WebSocket transport and batch fetches). */
function installTracing() {
  const log = (dir, text) => process.stderr.write(`${dir} ${text}\n`);
  const { send } = WebSocketTransport.prototype;
  WebSocketTransport.prototype.send = function (message) {
    log("C->S", message);
    return send.call(this, message);
  };
  const { receive } = WebSocketTransport.prototype;
  WebSocketTransport.prototype.receive = async function () {
    const message = await receive.call(this);
    log("S->C", message);
    return message;
  };
  const realFetch = globalThis.fetch;
  globalThis.fetch = async (url, init) => {
    log("POST", `${url}\n${init?.body ?? ""}`);
    const response = await realFetch(url, init);
    const text = await response.clone().text();
    log(`HTTP ${response.status}`, text);
    return response;
  };
}

/** Runs one scenario with its timeout; never throws. */
async function runOne(scenario, options) {
  const ctx = new ScenarioContext(options);
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${scenario.timeout} ms`)),
        scenario.timeout);
  });
  try {
    const detail = await Promise.race([scenario.run(ctx), timeout]);
    return { name: scenario.name, ok: true, detail: detail ?? null };
  } catch (err) {
    const detail = err instanceof Error ? `${err.constructor.name}: ${err.message}` : String(err);
    return { name: scenario.name, ok: false, detail };
  } finally {
    clearTimeout(timer);
    ctx.close();
  }
}

async function main() {
  checkNames();
  let args;
  try {
    ({ values: args } = parseArgs({
      options: {
        url: { type: "string" },
        transport: { type: "string" },
        only: { type: "string" },
        jobs: { type: "string", default: "1" },
        list: { type: "boolean", default: false },
        trace: { type: "boolean", default: false },
      },
    }));
  } catch (err) {
    usage(err.message);
  }
  const transport = args.transport;
  if (args.list && transport === undefined) {
    for (const { name } of ALL) console.log(name);
    return 0;
  }
  if (transport !== "ws" && transport !== "batch") usage("--transport must be ws or batch");
  let selected = ALL.filter(s => s.transports.includes(transport));

  if (args.list) {
    for (const { name } of selected) console.log(name);
    return 0;
  }

  if (!args.url) usage("--url is required");
  let httpUrl, wsUrl;
  try {
    httpUrl = new URL(args.url);
    wsUrl = new URL(args.url);
  } catch {
    usage(`invalid --url ${args.url}`);
  }
  const secure = httpUrl.protocol === "https:" || httpUrl.protocol === "wss:";
  if (!["http:", "https:", "ws:", "wss:"].includes(httpUrl.protocol)) {
    usage("--url must be an http(s):// or ws(s):// URL");
  }
  httpUrl.protocol = secure ? "https:" : "http:";
  wsUrl.protocol = secure ? "wss:" : "ws:";

  if (args.only) {
    const wanted = new Set(args.only.split(",").map(s => s.trim()).filter(Boolean));
    const unknown = [...wanted].filter(n => !selected.some(s => s.name === n));
    if (unknown.length) usage(`unknown scenario(s) for ${transport}: ${unknown.join(", ")}`);
    selected = selected.filter(s => wanted.has(s.name));
  }
  if (args.trace) installTracing();

  const options = { httpUrl: httpUrl.href, wsUrl: wsUrl.href, transport };
  const jobs = Math.max(1, Number.parseInt(args.jobs, 10) || 1);
  let failures = 0;
  const runAll = async (scenarios, workers) => {
    const queue = [...scenarios];
    const worker = async () => {
      for (let next = queue.shift(); next; next = queue.shift()) {
        const result = await runOne(next, options);
        if (!result.ok) failures++;
        process.stdout.write(`${JSON.stringify(result)}\n`);
      }
    };
    await Promise.all(Array.from({ length: workers }, worker));
  };
  await runAll(selected.filter(s => !s.exclusive), jobs);
  await runAll(selected.filter(s => s.exclusive), 1);
  return failures === 0 ? 0 : 1;
}

// A misbehaving server can leave client promises rejected with nobody listening (e.g. the calls
// of a scenario that already failed); report them but keep running the other scenarios.
process.on("unhandledRejection", reason => {
  process.stderr.write(`unhandled rejection: ${reason?.stack ?? reason}\n`);
});

main().then(
  code => process.stdout.write("", () => process.exit(code)),
  err => {
    console.error(err);
    process.exit(2);
  },
);
