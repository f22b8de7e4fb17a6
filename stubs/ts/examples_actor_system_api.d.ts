// generated from examples.actor_system.api:Actor — do not edit
// generated from examples.actor_system.api:Supervisor — do not edit
//
// TypeScript declarations of these capnweb interfaces, for clients of a server implementing
// them (regenerate with `python -m capnweb_codegen --lang ts`):
//
//   import { newWebSocketRpcSession } from "capnweb";
//   import type { Actor } from "./examples_actor_system_api.js";
//   const api = newWebSocketRpcSession<Actor>("ws://127.0.0.1:8080/rpc");

import type { RpcTarget } from "capnweb";

/** One actor: it handles the messages sent to it one at a time, in order. */
export interface Actor extends RpcTarget {
  /** Hand the actor `message`; its reply (rejects `ActorCrashed`/`ActorStopped`). */
  send(message: string): string;
  /** The actor's current state (works in every status). */
  state(): ActorState;
  /** Stop the actor for good (idempotent); its final state. */
  stop(): ActorState;
}

/** A snapshot of one actor, as its supervisor sees it. */
export interface ActorState {
  name: string;
  kind: "counter" | "echo";
  status: "running" | "stopped" | "failed";
  restarts: number;
  handled: number;
  last_error: string | null;
}

/** Live entries of one session's import and export tables (`capnweb.Session.stats()`). */
export interface SessionStats {
  imports: number;
  exports: number;
}

/** The main capability: one supervisor per session, owning that session's actors. */
export interface Supervisor extends RpcTarget {
  /**
   * Start an actor of `kind` called `name` (unique among the running ones); the
   * supervisor restarts it after a crash at most `max_restarts` times.
   */
  spawn(kind: "counter" | "echo", name: string, max_restarts?: number): Actor;
  /** The running actors, in the order they were spawned. */
  actors(): ActorState[];
  /**
   * The live import and export entries of the caller's session, read from the library
   * (the main capability and this call in flight included).
   */
  stats(): SessionStats;
}
