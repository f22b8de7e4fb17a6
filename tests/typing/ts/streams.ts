// A TypeScript client of the Python streaming example server (examples/streaming/server.py),
// typed only by the declarations capnweb_codegen generated from the Python Protocol
// (stubs/ts/examples_streaming_api.d.ts): ReadableStream<T>, WritableStream<T> and Blob.
// Usage: node --import ./setup.mjs build/streams.js ws://127.0.0.1:PORT/rpc

import { newWebSocketRpcSession, type RpcStub } from "capnweb";
import type { Storage, Stored } from "../../../stubs/ts/examples_streaming_api.js";

const url = process.argv[2];
if (url === undefined) throw new Error("usage: streams.js ws://127.0.0.1:PORT/rpc");

const api: RpcStub<Storage> = newWebSocketRpcSession<Storage>(url);

// A log tail: lines arrive while other calls append them; the stream ends when the log closes.
const tail: ReadableStream<string> = await api.tail("ts-build");
const writing = (async () => {
  for (const line of ["one", "two"]) await api.append("ts-build", line);
  await api.closeLog("ts-build");
})();
const lines: string[] = [];
for await (const line of tail) lines.push(line);
await writing;

// An upload: a ReadableStream of bytes, and progress written into a WritableStream of ours.
const content = new Uint8Array(3000).map((_, i) => i % 251);
const upload = new ReadableStream<Uint8Array>({
  start(controller) {
    for (let i = 0; i < content.length; i += 1000) controller.enqueue(content.slice(i, i + 1000));
    controller.close();
  },
});
const progress: number[] = [];
const sink = new WritableStream<number>({
  write(chunk) {
    progress.push(chunk);
  },
});
const stored: Stored = await api.upload("ts.bin", upload, sink);

// A download: bytes chunks; then the whole file as a Blob.
const chunks: Uint8Array[] = [];
for await (const chunk of await api.download("ts.bin", 1024)) chunks.push(chunk);
const blob: Blob = await api.read("ts.bin");

console.log(
  JSON.stringify({
    lines,
    progress,
    size: stored.size,
    sha256: stored.sha256.length,
    chunks: chunks.map((c) => c.length),
    blob: [blob.size, blob.type],
  }),
);
api[Symbol.dispose]();
