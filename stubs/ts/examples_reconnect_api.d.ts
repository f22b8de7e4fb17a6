// generated from examples.reconnect.api:Api — do not edit
// generated from examples.reconnect.api:Counter — do not edit
//
// TypeScript declarations of these capnweb interfaces, for clients of a server implementing
// them (regenerate with `python -m capnweb_codegen --lang ts`):
//
//   import { newWebSocketRpcSession } from "capnweb";
//   import type { Api } from "./examples_reconnect_api.js";
//   const api = newWebSocketRpcSession<Api>("ws://127.0.0.1:8080/rpc");

import type { RpcTarget } from "capnweb";

/** The main capability of the reconnect example server. */
export interface Api extends RpcTarget {
  /** Start a new counter for `name`, at 0: the counter and the token that resumes it. */
  login(name: string): [Counter, string];
  /** The counter `token` was issued for (a RangeError if unknown or expired). */
  resume(token: string): Counter;
}

/** A counter owned by one user, kept in the server's store. */
export interface Counter extends RpcTarget {
  /** The name the counter was started for. */
  readonly owner: string;
  /** The current value. */
  readonly value: number;
  /** Add `amount` and return the new value (stored before the answer is sent). */
  increment(amount?: number): number;
}
