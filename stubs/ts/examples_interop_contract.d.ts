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

/** The sizes of a session's import and export tables. */
export interface SessionStats {
  imports: number;
  exports: number;
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
