// Benchmark client on the official capnweb package: runs one workload against a server and prints
// one JSON line, {"runs": [{metric: value, ...}, ...]} (one object per measured run).
//
// Usage: node --import ./setup.mjs client.mjs --workload NAME [--transport ws|batch]
//            [--url http://127.0.0.1:N/rpc] [--echo-url ws://127.0.0.1:M] [--stats-url URL]
//            [--params JSON] [--runs R] [--warmup W] [--gate 1]
//
// --gate 1: each run (warm-up runs too) starts on a line read from stdin and prints
// {"run": {...}, "warmup": bool} as it ends, so the suite can take several clients' runs in turn.
//
// The workloads and their parameters mirror benchmarks/workloads.py exactly (same data, same
// counts); see benchmarks/README.md.

import { performance } from "node:perf_hooks";
import readline from "node:readline";
import { WebSocket } from "ws";
import { deserialize, newHttpBatchRpcSession, newWebSocketRpcSession, serialize } from "capnweb";

function parseArgs(argv) {
  const args = { transport: "ws", params: "{}", runs: "3", warmup: "1", gate: "0" };
  for (let i = 0; i < argv.length; i += 2) {
    if (!argv[i].startsWith("--")) throw new Error(`unexpected argument ${argv[i]}`);
    args[argv[i].slice(2).replace(/-/g, "_")] = argv[i + 1];
  }
  args.params = JSON.parse(args.params);
  args.runs = Number(args.runs);
  args.warmup = Number(args.warmup);
  args.gate = args.gate === "1";
  return args;
}

const args = parseArgs(process.argv.slice(2));
const P = args.params;
const wsUrl = () => args.url.replace(/^http/, "ws");

// -- shared data (identical to benchmarks/workloads.py)

export function makePayload(items) {
  const out = [];
  for (let i = 0; i < items; i++) {
    out.push({
      id: i,
      name: `user-${i}`,
      email: `user${i}@example.com`,
      age: 20 + (i % 50),
      score: i * 3,
      city: "Amsterdam",
    });
  }
  return out;
}

function makeMixed() {
  const rows = [];
  for (let i = 0; i < 50; i++) {
    rows.push({
      title: `Stra\u00dfe ${i} \u2014 caf\u00e9 \u{1F600}`,
      values: [i, i + 0.5, -i - 1, 1e10 + i],
      flags: [true, false, null],
      nested: { depth: [[i, [i + 1, [i + 2]]]], empty: {}, none: null },
    });
  }
  return { kind: "mixed", count: rows.length, rows };
}

const CODEC_MESSAGES = () => ({
  call_args: [7],
  user: makePayload(1)[0],
  mixed: makeMixed(),
  payload: makePayload(P.items ?? 10000),
});

// -- helpers

const now = () => performance.now();

function percentile(sorted, q) {
  if (sorted.length === 0) return NaN;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[idx];
}

async function getStats(query = "") {
  const response = await fetch(`${args.stats_url}${query}`);
  return await response.json();
}

function wsSession() {
  return newWebSocketRpcSession(wsUrl());
}

function batchSession() {
  return newHttpBatchRpcSession(args.url);
}

function closeStub(stub) {
  try {
    stub[Symbol.dispose]();
  } catch {
    // already gone
  }
}

// -- workloads: each returns a function running one measured run

async function sequential() {
  const n = P.n ?? 2000;
  const lat = new Array(n);
  const before = await getStats();
  const cpu0 = process.cpuUsage();
  let api = args.transport === "ws" ? wsSession() : null;
  if (api) await api.square(1);
  const start = now();
  for (let i = 0; i < n; i++) {
    const t0 = now();
    let r;
    if (api) {
      r = await api.square(i);
    } else {
      const b = batchSession();
      r = await b.square(i);
    }
    lat[i] = now() - t0;
    if (r !== i * i) throw new Error(`square(${i}) gave ${r}`);
  }
  const total = (now() - start) / 1000;
  if (api) closeStub(api);
  const cpu = process.cpuUsage(cpu0);
  const after = await getStats();
  lat.sort((a, b) => a - b);
  return {
    calls_per_s: n / total,
    p50_us: percentile(lat, 0.5) * 1000,
    p99_us: percentile(lat, 0.99) * 1000,
    client_cpu_us: (cpu.user + cpu.system) / n,
    server_cpu_us: ((after.cpu_s - before.cpu_s) * 1e6) / n,
  };
}

async function concurrent() {
  const n = P.n ?? 10000;
  const before = await getStats();
  const cpu0 = process.cpuUsage();
  const api = args.transport === "ws" ? wsSession() : batchSession();
  if (args.transport === "ws") await api.square(1);
  const start = now();
  const calls = [];
  for (let i = 0; i < n; i++) calls.push(api.square(i));
  const results = await Promise.all(calls);
  const total = (now() - start) / 1000;
  if (results[n - 1] !== (n - 1) * (n - 1)) throw new Error("wrong result");
  closeStub(api);
  const cpu = process.cpuUsage(cpu0);
  const after = await getStats();
  return {
    calls_per_s: n / total,
    client_cpu_us: (cpu.user + cpu.system) / n,
    server_cpu_us: ((after.cpu_s - before.cpu_s) * 1e6) / n,
  };
}

async function pipelined() {
  const n = P.n ?? 100;
  const before = await getStats();
  const api = args.transport === "ws" ? wsSession() : batchSession();
  if (args.transport === "ws") await api.square(1);
  const start = now();
  const counter = api.makeCounter(0);
  const calls = [];
  for (let i = 0; i < n; i++) calls.push(counter.increment(1));
  const results = await Promise.all(calls);
  const total = now() - start;
  if (results[n - 1] !== n) throw new Error(`last increment gave ${results[n - 1]}`);
  closeStub(counter);
  closeStub(api);
  const after = await getStats();
  return { wall_ms: total, http_requests: after.posts - before.posts };
}

async function payload() {
  const n = P.n ?? 20;
  const data = makePayload(P.items ?? 10000);
  const bytes = Buffer.byteLength(JSON.stringify(data));
  let api = args.transport === "ws" ? wsSession() : null;
  if (api) await api.square(1);
  const start = now();
  for (let i = 0; i < n; i++) {
    const target = api ?? batchSession();
    const echoed = await target.echo(data);
    if (echoed.length !== data.length) throw new Error("echo lost items");
  }
  const total = (now() - start) / 1000;
  if (api) closeStub(api);
  return { mb_per_s: (2 * bytes * n) / total / 1e6, payload_bytes: bytes };
}

async function manySessions() {
  const sessions = P.sessions ?? 200;
  const calls = P.calls ?? 50;
  await getStats("?gc=1&reset_peak=1");
  const start = now();
  await Promise.all(
    Array.from({ length: sessions }, async () => {
      const api = wsSession();
      for (let i = 0; i < calls; i++) {
        const r = await api.square(i);
        if (r !== i * i) throw new Error("wrong result");
      }
      closeStub(api);
    }),
  );
  const total = (now() - start) / 1000;
  const after = await getStats();
  return { calls_per_s: (sessions * calls) / total, server_peak_rss_mb: after.peak_rss / 1e6 };
}

function timeOp(fn, minSeconds) {
  // Repeat fn until minSeconds passed; returns seconds per call.
  let count = 0;
  const start = now();
  let elapsed = 0;
  do {
    fn();
    count++;
    elapsed = (now() - start) / 1000;
  } while (elapsed < minSeconds);
  return elapsed / count;
}

async function codec() {
  const minSeconds = P.min_seconds ?? 0.3;
  const out = {};
  for (const [name, value] of Object.entries(CODEC_MESSAGES())) {
    const text = serialize(value);
    const tree = JSON.parse(text);
    const bytes = Buffer.byteLength(text);
    const check = deserialize(text);
    if (JSON.stringify(check) !== JSON.stringify(value)) throw new Error(`codec round trip of ${name}`);
    const mb = seconds => bytes / seconds / 1e6;
    out[`${name}.encode_mb_s`] = mb(timeOp(() => serialize(value), minSeconds));
    out[`${name}.decode_mb_s`] = mb(timeOp(() => deserialize(text), minSeconds));
    out[`${name}.json_encode_mb_s`] = mb(timeOp(() => JSON.stringify(tree), minSeconds));
    out[`${name}.json_decode_mb_s`] = mb(timeOp(() => JSON.parse(text), minSeconds));
  }
  return out;
}

const RAW_MESSAGE = JSON.stringify(["push", ["pipeline", 0, ["square"], [[7]]]]);

function openRaw() {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(args.echo_url);
    ws.once("open", () => resolve(ws));
    ws.once("error", reject);
  });
}

async function rawSequential() {
  const n = P.n ?? 2000;
  const ws = await openRaw();
  const lat = new Array(n);
  let pending = null;
  ws.on("message", () => pending());
  const start = now();
  for (let i = 0; i < n; i++) {
    const t0 = now();
    await new Promise(resolve => {
      pending = resolve;
      ws.send(RAW_MESSAGE);
    });
    lat[i] = now() - t0;
  }
  const total = (now() - start) / 1000;
  ws.close();
  lat.sort((a, b) => a - b);
  return { msgs_per_s: n / total, p50_us: percentile(lat, 0.5) * 1000, p99_us: percentile(lat, 0.99) * 1000 };
}

async function rawConcurrent() {
  const n = P.n ?? 10000;
  const ws = await openRaw();
  let got = 0;
  const done = new Promise(resolve => {
    ws.on("message", () => {
      if (++got === n) resolve();
    });
  });
  const start = now();
  for (let i = 0; i < n; i++) ws.send(RAW_MESSAGE);
  await done;
  const total = (now() - start) / 1000;
  ws.close();
  return { msgs_per_s: n / total };
}

async function memExports() {
  const n = P.n ?? 10000;
  const api = wsSession();
  await api.square(1);
  const before = await getStats("?gc=1");
  const stubs = await Promise.all(Array.from({ length: n }, (_, i) => api.makeCounter(i)));
  const check = await stubs[n - 1].increment(1);
  if (check !== n) throw new Error("counter misbehaves");
  const after = await getStats("?gc=1");
  for (const s of stubs) closeStub(s);
  closeStub(api);
  return { bytes_per_export: (after.rss - before.rss) / n };
}

async function memSessions() {
  const n = P.n ?? 10000;
  const chunk = 250;
  const before = await getStats("?gc=1");
  const apis = [];
  for (let i = 0; i < n; i += chunk) {
    const batch = Array.from({ length: Math.min(chunk, n - i) }, () => wsSession());
    await Promise.all(batch.map(api => api.square(2)));
    apis.push(...batch);
  }
  const after = await getStats("?gc=1");
  for (const api of apis) closeStub(api);
  return { bytes_per_session: (after.rss - before.rss) / n };
}

const WORKLOADS = {
  sequential,
  concurrent,
  pipelined,
  payload,
  sessions: manySessions,
  codec,
  raw_sequential: rawSequential,
  raw_concurrent: rawConcurrent,
  mem_exports: memExports,
  mem_sessions: memSessions,
};

const workload = WORKLOADS[args.workload];
if (!workload) throw new Error(`unknown workload ${args.workload}`);
const gate = args.gate ? readline.createInterface({ input: process.stdin }) : null;
const lines = gate ? gate[Symbol.asyncIterator]() : null;
const runs = [];
for (let i = 0; i < args.warmup + args.runs; i++) {
  if (lines && (await lines.next()).done) break;
  const result = await workload();
  if (i >= args.warmup) runs.push(result);
  if (lines) console.log(JSON.stringify({ run: result, warmup: i < args.warmup }));
}
gate?.close();
console.log(JSON.stringify({ runs }));
process.exit(0);
