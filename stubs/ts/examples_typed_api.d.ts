// generated from examples.typed.api:Api — do not edit
// generated from examples.typed.api:Counter — do not edit
// generated from examples.typed.api:User — do not edit
//
// TypeScript declarations of these capnweb interfaces, for clients of a server implementing
// them (regenerate with `python -m capnweb_codegen --lang ts`):
//
//   import { newWebSocketRpcSession } from "capnweb";
//   import type { Api } from "./examples_typed_api.js";
//   const api = newWebSocketRpcSession<Api>("ws://127.0.0.1:8080/rpc");

import type { RpcTarget } from "capnweb";

/** The directory service: the main capability of the typed example server. */
export interface Api extends RpcTarget {
  /** The user called `name` (created on first use). */
  user(name: string): User;
  /** The names of every user, sorted in `order`. */
  userNames(order?: "asc" | "desc"): string[];
  /** The profile of user `name`, or None when there is no such user. */
  find(name: string): Profile | null;
  /** `x * x`. */
  square(x: number): number;
  /** The first `n` Fibonacci numbers. */
  fibonacci(n: number): number[];
  /** A new counter starting at `start`. */
  makeCounter(start?: number): Counter;
  /** Call `callback(x)` on the caller's side and return what it returned, plus one. */
  callBack(callback: (arg0: number) => number | Promise<number>, x: number): number;
  /** How many users and counters the directory holds. */
  stats(): Stats;
}

/** A counter living on the server; whoever holds a stub may increment it. */
export interface Counter extends RpcTarget {
  /** Add `amount` and return the new value. */
  increment(amount?: number): number;
  /** The current value. */
  readonly value: number;
}

/** What anyone may know about a user. */
export interface Profile {
  name: string;
  bio: string;
  tags: string[];
}

/** Numbers about the directory. */
export interface Stats {
  users: number;
  counters: number;
}

/** One user of the directory. */
export interface User extends RpcTarget {
  /** The user's public profile. */
  readonly profile: Profile;
  /** Replace the user's bio; returns the updated profile. */
  setBio(bio: string): Profile;
  /** The counter of this user's profile visits (the same counter on every call). */
  visits(): Counter;
}
