// generated from examples.interop.contract:CallbackHolder — do not edit
// generated from examples.interop.contract:Counter — do not edit
// generated from examples.interop.contract:TestTarget — do not edit
//
// TypeScript declarations of these capnweb interfaces, for clients of a server implementing
// them (regenerate with `python -m capnweb_codegen --lang ts`):
//
//   import { newWebSocketRpcSession } from "capnweb";
//   import type { CallbackHolder } from "./examples_interop_contract.js";
//   const api = newWebSocketRpcSession<CallbackHolder>("ws://127.0.0.1:8080/rpc");

import type { RpcTarget } from "capnweb";

/** `blobInfo`'s answer. */
export interface BlobInfo {
  size: number;
  type: string;
}

/** Keeps a client function and calls it on `invoke`; releases it when released. */
export interface CallbackHolder extends RpcTarget {
  /** `await func(x)`. */
  invoke(x: unknown): unknown;
}

/** A counter; alive until the client releases it. */
export interface Counter extends RpcTarget {
  /** Add `amount` and return the new value. */
  increment(amount?: number): number;
  /** The current value. */
  readonly value: number;
}

/** What `makeCounters` returns: capabilities inside a structure. */
export interface CounterBatch {
  counters: Counter[];
  count: number;
}

/** `digestStream`'s summary of a byte stream. */
export interface Digest {
  bytes: number;
  sum: number;
  adler32: number;
}

/** `echoRequest`'s answer: headers sorted, body as text. */
export interface RequestInfo {
  method: string;
  url: string;
  headers: Array<string[]>;
  body: string | null;
}

/** `describeResponse`'s answer: headers sorted, body as text. */
export interface ResponseInfo {
  status: number;
  statusText: string;
  headers: Array<string[]>;
  body: string | null;
}

/** The sizes of a session's import and export tables. */
export interface SessionStats {
  imports: number;
  exports: number;
}

/** What `streamStatus` tells of the latest stream a session made. */
export interface StreamStatus {
  produced: number;
  state: string;
  reason: string | null;
}

/** The contract's main capability. */
export interface TestTarget extends RpcTarget {
  /** `i * i`. */
  square(i: number): number;
  /** `{result: target.square(i)}`, resolved before it is sent. */
  callSquare(target: TestTarget, i: number): Record<string, unknown>;
  /** `{result: await func(i)}`. */
  callFunction(func: (arg0: unknown) => unknown | Promise<unknown>, i: unknown): Record<string, unknown>;
  /** Throws `RangeError("test error")`. */
  throwError(): null;
  /** Throws an error of type `name` (Error, TypeError, RangeError) with `message`. */
  throwTypedError(name: string, message: string): null;
  /** A new Counter starting at `i`. */
  makeCounter(i?: number): Counter;
  /** One new Counter per value. */
  makeCounters(values: number[]): CounterBatch;
  /**
   * `counter.increment(i)`: a Counter (or a promise of one), or an object with an
   * `increment` function.
   */
  incrementCounter(counter: Counter | Record<string, unknown>, i?: number): number;
  /** The first `n` Fibonacci numbers. */
  generateFibonacci(n: number): number[];
  /** `null`. */
  returnNull(): null;
  /** `undefined`. */
  returnUndefined(): undefined;
  /** `i`. */
  returnNumber(i: number): number;
  /** `x`, exactly as received. */
  echo(x: unknown): unknown;
  /** `x` after `ms` milliseconds (capped at 10 s), without blocking other calls. */
  delayedEcho(ms: number, x: unknown): unknown;
  /** A new CallbackHolder keeping `func`. */
  makeCallbackHolder(func: (arg0: unknown) => unknown | Promise<unknown>): CallbackHolder;
  /** A string unique to this session. */
  getSessionId(): string;
  /** How many Counters of session `session_id` (default: this one) are alive. */
  getLiveCounters(session_id?: string | null): number;
  /** A stream of the numbers `0..n-1`, generated on demand. */
  streamNumbers(n: number): ReadableStream<number>;
  /** `total` bytes in chunks of `chunk`; byte `i` is `i % 251`. */
  streamBytes(total: number, chunk: number): ReadableStream<Uint8Array>;
  /** The latest stream of session `session_id` (default: this one). */
  streamStatus(session_id?: string | null): StreamStatus;
  /** `0..n-1`, then the stream fails with `Error(message)`. */
  failingStream(n: number, message: string): ReadableStream<number>;
  /** The sum of a stream of numbers. */
  sumStream(readable: ReadableStream<number>): number;
  /** Length, byte sum and Adler-32 of a byte stream, read after `delay_ms`. */
  digestStream(readable: ReadableStream<Uint8Array>, delay_ms?: number): Digest;
  /** The same chunks, read as the caller reads. */
  echoStream(readable: ReadableStream<unknown>): ReadableStream<unknown>;
  /** Writes `0..n-1` into `writable`, closes it, returns `n`. */
  writeNumbers(writable: WritableStream<number>, n: number): number;
  /** Aborts `writable` with `Error(reason)`. */
  abortWritable(writable: WritableStream<unknown>, reason: string): null;
  /** The same Blob. */
  echoBlob(blob: Blob): Blob;
  /** Its size and type. */
  blobInfo(blob: Blob): BlobInfo;
  /** What the request holds. */
  echoRequest(request: Request): RequestInfo;
  /** A Request made of these parts. */
  makeRequest(method: string, url: string, headers: Array<string[]>, body: string | null): Request;
  /** What the response holds. */
  describeResponse(response: Response): ResponseInfo;
  /** A Response made of these parts. */
  makeResponse(status: number, body: string | null, headers: Array<string[]>): Response;
  /** This session's import/export table sizes. */
  getStats(): SessionStats;
  /** `[await func(x), await func(x + 1)]`. */
  callTwice(func: (arg0: unknown) => unknown | Promise<unknown>, x: unknown): unknown[];
  /** `await cap[name](*args)`. */
  callMethod(cap: RpcTarget | ((...args: any[]) => unknown), name: string, args?: unknown): unknown;
  /** `await cap[name]`. */
  getProperty(cap: RpcTarget | ((...args: any[]) => unknown), name: string): unknown;
  /** Rejects with `v` itself. */
  throwValue(v: unknown): null;
  /** `{value: <promise of x after ms>}`. */
  returnNestedPromise(ms: number, x: unknown): Record<string, unknown>;
}
