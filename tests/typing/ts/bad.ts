// Wrong uses of the generated declarations: `tsc --noEmit --strict -p tsconfig.bad.json` must
// fail, with the error code written after `expect` on each line.

import { newWebSocketRpcSession } from "capnweb";
import type { Api } from "../../../stubs/ts/examples_typed_api.js";
import type { Storage } from "../../../stubs/ts/examples_streaming_api.js";

const api = newWebSocketRpcSession<Api>("ws://127.0.0.1:1/rpc");

await api.square("four"); // expect TS2345: a string where a number is declared
await api.noSuchMethod(); // expect TS2339: not a method of Api
const text: string = await api.square(2); // expect TS2322: the result is a number
await api.user("ann").profile.nmae; // expect TS2339: not a field of Profile
await api.makeCounter(1, 2); // expect TS2554: one optional argument

// Streams (stubs/ts/examples_streaming_api.d.ts): chunk types are checked both ways.
const storage = newWebSocketRpcSession<Storage>("ws://127.0.0.1:1/rpc");
await storage.upload("a.bin", "not a stream"); // expect TS2345: a ReadableStream is declared
await storage.upload("a.bin", new ReadableStream<string>()); // expect TS2345: chunks are Uint8Array
await storage.upload("a.bin", new ReadableStream<Uint8Array>(), new WritableStream<string>()); // expect TS2345: progress takes numbers
for await (const line of await storage.tail("build")) {
  const count: number = line; // expect TS2322: a line is a string
}
