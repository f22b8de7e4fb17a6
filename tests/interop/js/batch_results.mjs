// Streams in HTTP batch results, read by the official client from a server that puts every
// write and the close in the response (INTEROP-CONTRACT.md 6.5 allows it; the reference server
// cannot). Prints one JSON object: what the client read, per case.
//
//   node --import ./setup.mjs batch_results.mjs --url http://127.0.0.1:PORT/rpc

import { parseArgs } from "node:util";
import { newHttpBatchRpcSession } from "capnweb";

const { values } = parseArgs({ options: { url: { type: "string" } } });

/** The chunks of `stream`, and the error that ended it (as "Name: message"), if any. */
async function readAll(stream) {
  const chunks = [];
  const reader = stream.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return { chunks };
      chunks.push(value instanceof Uint8Array ? Array.from(value) : value);
    }
  } catch (error) {
    return { chunks, error: `${error.constructor.name}: ${error.message}` };
  }
}

const cases = {
  numbers: api => api.streamNumbers(5).then(readAll),
  bytes: async api => {
    const { chunks, error } = await readAll(await api.streamBytes(1000, 300));
    return { sizes: chunks.map(c => c.length), first: chunks[0].slice(0, 3), error };
  },
  empty: api => api.streamNumbers(0).then(readAll),
  blob: async api => {
    const blob = await api.echoBlob(new Blob(["hello ü"], { type: "text/x-greeting" }));
    return { type: blob.type, text: await blob.text() };
  },
  response: async api => {
    const response = await api.makeResponse(201, "a body ü", [["x-a", "1"]]);
    return { status: response.status, a: response.headers.get("x-a"), text: await response.text() };
  },
  echo: api => api.echoStream(new ReadableStream({
    start(controller) {
      for (const x of [1, "two", { three: 3 }]) controller.enqueue(x);
      controller.close();
    },
  })).then(readAll),
  too_big: async api => {
    const { error } = await readAll(await api.streamBytes(4 * 1024 * 1024, 65536));
    return { error };
  },
};

const results = {};
for (const [name, run] of Object.entries(cases)) {
  const api = newHttpBatchRpcSession(values.url);  // one batch per case
  try {
    results[name] = await run(api);
  } catch (error) {
    results[name] = { thrown: `${error.constructor.name}: ${error.message}` };
  }
}
console.log(JSON.stringify(results));
