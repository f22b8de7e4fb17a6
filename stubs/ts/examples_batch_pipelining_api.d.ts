// generated from examples.batch_pipelining.api:Api — do not edit
//
// TypeScript declarations of these capnweb interfaces, for clients of a server implementing
// them (regenerate with `python -m capnweb_codegen --lang ts`):
//
//   import { newWebSocketRpcSession } from "capnweb";
//   import type { Api } from "./examples_batch_pipelining_api.js";
//   const api = newWebSocketRpcSession<Api>("ws://127.0.0.1:8080/rpc");

import type { RpcTarget } from "capnweb";

/** The main capability of the batch pipelining example server. */
export interface Api extends RpcTarget {
  /** The user `token` belongs to (a RangeError when it belongs to nobody). */
  authenticate(token: string): User;
  /** The profile of user `user_id`. */
  profile(user_id: number): Profile;
  /** The notifications of user `user_id`, newest first. */
  notifications(user_id: number): Notification[];
}

/** One message waiting for a user. */
export interface Notification {
  id: number;
  text: string;
  unread: boolean;
}

/** What a user tells about themselves. */
export interface Profile {
  user_id: number;
  display_name: string;
  bio: string;
}

/** Who a token belongs to. */
export interface User {
  id: number;
  name: string;
}
