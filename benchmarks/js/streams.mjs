// Stream benchmarks on the official capnweb package: the server (--serve) and the client of the
// stream workloads; benchmarks/streams.py is the same on this project, workload for workload
// (what each one measures is described there and in benchmarks/README.md).
//
// Usage: node --expose-gc --import ./setup.mjs streams.mjs --serve
//          Listens on 127.0.0.1 (a free port) and prints {"rpc_port": N, "echo_port": 0, "pid": P}.
//          /rpc     StreamTarget over WebSocket
//          /stats   GET {"cpu_s", "rss", "peak_rss", "produced"} (produced: bytes the byte
//                   streams handed to the RPC layer); ?gc=1 collects garbage first,
//                   ?reset_peak=1 resets the peak RSS (/proc/self/clear_refs) and `produced`
//        node --expose-gc --import ./setup.mjs streams.mjs --workload NAME --url URL
//            --stats-url URL [--params JSON] [--runs R] [--warmup W] [--gate 1]
//          Prints {"runs": [...]} (with --gate 1, one {"run": ...} line per line read on stdin).

import fs from "node:fs";
import http from "node:http";
import { performance } from "node:perf_hooks";
import readline from "node:readline";
import { setTimeout as sleep } from "node:timers/promises";
import { WebSocketServer } from "ws";
import { RpcTarget, newWebSocketRpcSession } from "capnweb";

const MB = 1e6;

function parseArgs(argv) {
  const args = { params: "{}", runs: "3", warmup: "1", gate: "0", serve: false };
  for (let i = 0; i < argv.length; i++) {
    if (!argv[i].startsWith("--")) throw new Error(`unexpected argument ${argv[i]}`);
    const name = argv[i].slice(2).replace(/-/g, "_");
    if (name === "serve") args.serve = true;
    else args[name] = argv[++i];
  }
  args.params = JSON.parse(args.params);
  args.runs = Number(args.runs);
  args.warmup = Number(args.warmup);
  args.gate = args.gate === "1";
  return args;
}

// The bytes every byte-stream chunk carries (the same in benchmarks/streams.py).
function pattern(size) {
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i++) out[i] = i & 255;
  return out;
}

function memory() {
  const status = fs.readFileSync("/proc/self/status", "utf8");
  const field = name => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? 0) * 1024;
  return { rss: field("VmRSS"), peak_rss: field("VmHWM") };
}

function resetPeak() {
  try {
    fs.writeFileSync("/proc/self/clear_refs", "5");
  } catch {
    // not Linux, or not permitted: the peak stays the lifetime peak
  }
}

function collect() {
  if (typeof globalThis.gc === "function") {
    globalThis.gc();
    globalThis.gc();
  }
}

// -- server

let produced = 0;

// `total` bytes in `chunk`-byte chunks, made as the reader pulls them.
function byteStream(total, chunk) {
  const block = pattern(chunk);
  let left = total;
  return new ReadableStream({
    pull(controller) {
      if (left <= 0) {
        controller.close();
        return;
      }
      const piece = left >= chunk ? block : block.subarray(0, left);
      left -= piece.byteLength;
      produced += piece.byteLength;
      controller.enqueue(piece);
    },
  });
}

class StreamTarget extends RpcTarget {
  ping() {
    return true;
  }

  download(total, chunk) {
    return byteStream(total, chunk);
  }

  async upload(stream) {
    let total = 0;
    const reader = stream.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
    }
    return total;
  }

  objects(n) {
    let i = 0;
    return new ReadableStream({
      pull(controller) {
        if (i >= n) {
          controller.close();
          return;
        }
        controller.enqueue({ i, name: `item-${i}` });
        i++;
      },
    });
  }
}

async function serve() {
  const sockets = new WebSocketServer({ noServer: true });
  sockets.on("connection", socket => newWebSocketRpcSession(socket, new StreamTarget()));
  const server = http.createServer((request, response) => {
    const url = new URL(request.url ?? "/", "http://localhost");
    if (url.pathname !== "/stats") {
      response.writeHead(404).end();
      return;
    }
    if (url.searchParams.get("gc") === "1") collect();
    const cpu = process.cpuUsage();
    const result = { cpu_s: (cpu.user + cpu.system) / 1e6, produced, ...memory() };
    if (url.searchParams.get("reset_peak") === "1") {
      resetPeak();
      produced = 0;
    }
    response.writeHead(200, { "Content-Type": "application/json" });
    response.end(JSON.stringify(result));
  });
  server.on("upgrade", (request, socket, head) => {
    sockets.handleUpgrade(request, socket, head, ws => sockets.emit("connection", ws, request));
  });
  await new Promise(resolve => server.listen(0, "127.0.0.1", resolve));
  console.log(JSON.stringify({ rpc_port: server.address().port, echo_port: 0, pid: process.pid }));
  for (const signal of ["SIGTERM", "SIGINT"]) process.on(signal, () => process.exit(0));
}

// -- client

const now = () => performance.now() / 1000; // seconds

function session(args) {
  return newWebSocketRpcSession(args.url.replace(/^http/, "ws"));
}

async function getStats(args, query = "") {
  const response = await fetch(`${args.stats_url}${query}`);
  return await response.json();
}

function closeStub(stub) {
  try {
    stub[Symbol.dispose]();
  } catch {
    // already gone
  }
}

// Runs body(api) in a fresh session: its seconds, and the CPU time of both sides per `per` units.
async function timed(args, body, per, unit) {
  const scale = { ms: 1e3, us: 1e6 }[unit];
  const api = session(args);
  try {
    if ((await api.ping()) !== true) throw new Error("ping failed");
    const before = await getStats(args);
    const cpu0 = process.cpuUsage();
    const start = now();
    await body(api);
    const seconds = now() - start;
    const cpu = process.cpuUsage(cpu0);
    const after = await getStats(args);
    return [
      seconds,
      {
        [`client_cpu_${unit}`]: ((cpu.user + cpu.system) / 1e6 / per) * scale,
        [`server_cpu_${unit}`]: ((after.cpu_s - before.cpu_s) / per) * scale,
      },
    ];
  } finally {
    closeStub(api);
  }
}

const perMb = cpu => Object.fromEntries(Object.entries(cpu).map(([k, v]) => [`${k}_per_mb`, v]));

function sameBytes(a, b) {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

async function streamDownload(args) {
  const P = args.params;
  const total = P.bytes ?? 64 << 20;
  const chunk = P.chunk ?? 64 << 10;
  const first = pattern(Math.min(chunk, total));
  const [seconds, cpu] = await timed(
    args,
    async api => {
      const reader = (await api.download(total, chunk)).getReader();
      let got = 0;
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        if (got === 0 && !sameBytes(value, first)) throw new Error("wrong bytes");
        got += value.byteLength;
      }
      if (got !== total) throw new Error(`got ${got} of ${total} bytes`);
    },
    total / MB,
    "ms",
  );
  return { mb_per_s: total / MB / seconds, ...perMb(cpu) };
}

async function streamUpload(args) {
  const P = args.params;
  const total = P.bytes ?? 64 << 20;
  const chunk = P.chunk ?? 64 << 10;
  const [seconds, cpu] = await timed(
    args,
    async api => {
      // a fresh pattern source each run, as the Python client's generator
      const block = pattern(chunk);
      let left = total;
      const source = new ReadableStream({
        pull(controller) {
          if (left <= 0) {
            controller.close();
            return;
          }
          const piece = left >= chunk ? block : block.subarray(0, left);
          left -= piece.byteLength;
          controller.enqueue(piece);
        },
      });
      const got = await api.upload(source);
      if (got !== total) throw new Error(`server got ${got} of ${total} bytes`);
    },
    total / MB,
    "ms",
  );
  return { mb_per_s: total / MB / seconds, ...perMb(cpu) };
}

async function streamObjects(args) {
  const n = args.params.n ?? 100000;
  const [seconds, cpu] = await timed(
    args,
    async api => {
      const reader = (await api.objects(n)).getReader();
      let count = 0;
      let last;
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        if (value.i !== count) throw new Error(`chunk ${count} is ${JSON.stringify(value)}`);
        last = value;
        count++;
      }
      if (count !== n || last.name !== `item-${n - 1}`) throw new Error(`got ${count} of ${n} chunks`);
    },
    n,
    "us",
  );
  return { chunks_per_s: n / seconds, ...cpu };
}

async function streamSlow(args) {
  const P = args.params;
  const total = P.bytes ?? 1 << 30;
  const chunk = P.chunk ?? 64 << 10;
  const rate = (P.rate_mb_s ?? 32) * MB;
  const limit = P.seconds ?? 40;
  const every = P.sample_s ?? 0.25;
  const api = session(args);
  let read = 0;
  let ahead = 0;
  try {
    if ((await api.ping()) !== true) throw new Error("ping failed");
    collect();
    resetPeak();
    const ownBase = memory().rss;
    const base = await getStats(args, "?gc=1&reset_peak=1");
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        await sleep(every * 1000);
        if (!sampling) break;
        const { produced: p } = await getStats(args);
        ahead = Math.max(ahead, p - read);
      }
    })();
    const reader = (await api.download(total, chunk)).getReader();
    const start = now();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      read += value.byteLength;
      const t = now();
      if (t - start >= limit) break;
      const pause = start + read / rate - t; // keep to the pace
      if (pause > 0) await sleep(pause * 1000);
    }
    const seconds = now() - start;
    sampling = false;
    await sampler;
    const end = await getStats(args); // the stream is still open if it was not read through
    ahead = Math.max(ahead, end.produced - read);
    await reader.cancel();
    const ownPeak = memory().peak_rss;
    return {
      producer_peak_growth_mb: (end.peak_rss - base.rss) / MB,
      producer_baseline_mb: base.rss / MB,
      ahead_mb: ahead / MB,
      consumer_peak_growth_mb: (ownPeak - ownBase) / MB,
      read_mb: read / MB,
      read_mb_s: read / MB / seconds,
    };
  } finally {
    closeStub(api);
  }
}

const WORKLOADS = {
  stream_download: streamDownload,
  stream_upload: streamUpload,
  stream_objects: streamObjects,
  stream_slow: streamSlow,
};

async function client(args) {
  const workload = WORKLOADS[args.workload];
  if (!workload) throw new Error(`unknown workload ${args.workload}`);
  const gate = args.gate ? readline.createInterface({ input: process.stdin }) : null;
  const lines = gate ? gate[Symbol.asyncIterator]() : null;
  const runs = [];
  for (let i = 0; i < args.warmup + args.runs; i++) {
    if (lines && (await lines.next()).done) break;
    const result = await workload(args);
    if (i >= args.warmup) runs.push(result);
    if (lines) console.log(JSON.stringify({ run: result, warmup: i < args.warmup }));
  }
  gate?.close();
  console.log(JSON.stringify({ runs }));
  process.exit(0);
}

const args = parseArgs(process.argv.slice(2));
if (args.serve) await serve();
else await client(args);
