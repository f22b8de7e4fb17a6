// Benchmark server on the official capnweb package (the reference side of the suite).
//
// Usage: node --expose-gc --import ./setup.mjs server.mjs
// Listens on 127.0.0.1 with free ports and prints one JSON line once ready:
//   {"rpc_port": N, "echo_port": M, "pid": P}
//
//   /rpc     BenchTarget: WebSocket sessions (upgrade) and HTTP batch sessions (POST)
//   /stats   GET: {"posts", "cpu_s", "rss", "peak_rss"} (cpu_s: CPU seconds used so far); ?gc=1 collects garbage first, ?reset_peak=1
//            resets the peak RSS (Linux /proc/self/clear_refs) after reading it
//   echo     a plain `ws` echo server on its own port (the raw floor)
//
// Exits on SIGTERM/SIGINT.

import fs from "node:fs";
import http from "node:http";
import { WebSocketServer } from "ws";
import { RpcTarget, newWebSocketRpcSession, nodeHttpBatchRpcResponse } from "capnweb";

class Counter extends RpcTarget {
  #value;

  constructor(value) {
    super();
    this.#value = value;
  }

  increment(amount = 1) {
    this.#value += amount;
    return this.#value;
  }
}

class BenchTarget extends RpcTarget {
  square(i) {
    return i * i;
  }

  makeCounter(start = 0) {
    return new Counter(start);
  }

  echo(x) {
    return x;
  }
}

let posts = 0;

function memory() {
  const status = fs.readFileSync("/proc/self/status", "utf8");
  const field = name => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? 0) * 1024;
  return { rss: field("VmRSS"), peak_rss: field("VmHWM") };
}

function stats(query) {
  if (query.get("gc") === "1" && typeof globalThis.gc === "function") {
    globalThis.gc();
    globalThis.gc();
  }
  const cpu = process.cpuUsage();
  const result = { posts, cpu_s: (cpu.user + cpu.system) / 1e6, ...memory() };
  if (query.get("reset_peak") === "1") {
    try {
      fs.writeFileSync("/proc/self/clear_refs", "5");
    } catch {
      // not Linux, or not permitted: the peak stays the lifetime peak
    }
  }
  return result;
}

const rpcSockets = new WebSocketServer({ noServer: true });
rpcSockets.on("connection", socket => {
  newWebSocketRpcSession(socket, new BenchTarget());
});

const server = http.createServer((request, response) => {
  const url = new URL(request.url ?? "/", "http://localhost");
  if (url.pathname === "/rpc") {
    posts += 1;
    nodeHttpBatchRpcResponse(request, response, new BenchTarget()).catch(err => {
      console.error("batch request failed:", err);
      if (!response.headersSent) response.writeHead(500);
      response.end();
    });
  } else if (url.pathname === "/stats") {
    response.writeHead(200, { "Content-Type": "application/json" });
    response.end(JSON.stringify(stats(url.searchParams)));
  } else {
    response.writeHead(404).end();
  }
});

server.on("upgrade", (request, socket, head) => {
  rpcSockets.handleUpgrade(request, socket, head, ws => rpcSockets.emit("connection", ws, request));
});

const echo = new WebSocketServer({ host: "127.0.0.1", port: 0 });
echo.on("connection", socket => {
  socket.on("message", (data, isBinary) => socket.send(data, { binary: isBinary }));
});

await new Promise(resolve => echo.once("listening", resolve));
await new Promise(resolve => server.listen(0, "127.0.0.1", resolve));
console.log(
  JSON.stringify({ rpc_port: server.address().port, echo_port: echo.address().port, pid: process.pid }),
);

for (const signal of ["SIGTERM", "SIGINT"]) process.on(signal, () => process.exit(0));
