// generated from examples.streaming.api:Storage — do not edit
//
// TypeScript declarations of these capnweb interfaces, for clients of a server implementing
// them (regenerate with `python -m capnweb_codegen --lang ts`):
//
//   import { newWebSocketRpcSession } from "capnweb";
//   import type { Storage } from "./examples_streaming_api.js";
//   const api = newWebSocketRpcSession<Storage>("ws://127.0.0.1:8080/rpc");

import type { RpcTarget } from "capnweb";

/** Logs and files: the main capability of the streaming example server. */
export interface Storage extends RpcTarget {
  /** Append `line` to `log`; returns how many lines it has now. */
  append(log: string, line: string): number;
  /** Close `log`: its followers' streams end after its last line, and it is forgotten. */
  closeLog(log: string): null;
  /**
   * The lines of `log`: those it has, then each one as it is appended, until the log
   * is closed.
   */
  tail(log: string): ReadableStream<string>;
  /**
   * Store the chunks of `data` as file `name`; after each chunk, the number of bytes
   * received so far is written to `progress`, which is closed at the end.
   */
  upload(name: string, data: ReadableStream<Uint8Array>, progress?: WritableStream<number> | null): Stored;
  /**
   * File `name` in chunks of at most `chunk_size` bytes (an error at once when there
   * is no such file).
   */
  download(name: string, chunk_size?: number): ReadableStream<Uint8Array>;
  /** File `name` whole, as a `Blob` with a MIME type guessed from its name. */
  read(name: string): Blob;
}

/** A file the server stored: its name, its size in bytes and its SHA-256 (hex). */
export interface Stored {
  name: string;
  size: number;
  sha256: string;
}
