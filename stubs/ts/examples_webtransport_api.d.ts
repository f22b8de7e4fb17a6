// generated from examples.webtransport.api:Counter — do not edit
// generated from examples.webtransport.api:Listener — do not edit
// generated from examples.webtransport.api:Service — do not edit
//
// TypeScript declarations of these capnweb interfaces, for clients of a server implementing
// them (regenerate with `python -m capnweb_codegen --lang ts`):
//
//   import { newWebSocketRpcSession } from "capnweb";
//   import type { Counter } from "./examples_webtransport_api.js";
//   const api = newWebSocketRpcSession<Counter>("ws://127.0.0.1:8080/rpc");

import type { RpcTarget } from "capnweb";

/** A counter held by the server for one session. */
export interface Counter extends RpcTarget {
  /** Add `amount`; the new value. */
  increment(amount?: number): number;
  /** The current value. */
  readonly value: number;
}

/** What `greet` answers: the text, and which session of the server answered. */
export interface Greeting {
  text: string;
  session: number;
}

/** Implemented by the client: the server calls it back. */
export interface Listener extends RpcTarget {
  /** Tick number `n`. */
  onTick(n: number): null;
}

/** The main capability of each session. */
export interface Service extends RpcTarget {
  /** A greeting for `name`. */
  greet(name: string): Greeting;
  /** `x * x`. */
  square(x: number): number;
  /** A new counter starting at `start`. */
  makeCounter(start?: number): Counter;
  /**
   * Call `listener.on_tick` for `n`, `n - 1`, ..., 1 (each awaited, in order);
   * the number of ticks.
   */
  countdown(n: number, listener: Listener): number;
  /** Raise ValueError(`message`), which arrives as an RpcRangeError. */
  fail(message: string): null;
}
