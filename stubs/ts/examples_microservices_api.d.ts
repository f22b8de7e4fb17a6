// generated from examples.microservices.api:Auth — do not edit
// generated from examples.microservices.api:AuthSession — do not edit
// generated from examples.microservices.api:Gateway — do not edit
// generated from examples.microservices.api:UserData — do not edit
// generated from examples.microservices.api:Users — do not edit
//
// TypeScript declarations of these capnweb interfaces, for clients of a server implementing
// them (regenerate with `python -m capnweb_codegen --lang ts`):
//
//   import { newWebSocketRpcSession } from "capnweb";
//   import type { Auth } from "./examples_microservices_api.js";
//   const api = newWebSocketRpcSession<Auth>("ws://127.0.0.1:8080/rpc");

import type { RpcTarget } from "capnweb";

/** The auth service: checks tokens, and vouches for the tickets of its sessions. */
export interface Auth extends RpcTarget {
  /** The session of the user `token` belongs to; an `AuthError` if it is unknown. */
  login(token: string): AuthSession;
  /**
   * The user a ticket was issued for; the ticket is spent. An `AuthError` if it is
   * unknown, spent or expired.
   */
  redeem(ticket: string): string;
}

/**
 * A signed-in user, held by whoever presented the user's token: it can prove who it is
 * to the auth service, and does nothing else.
 */
export interface AuthSession extends RpcTarget {
  /**
   * A fresh single-use ticket naming this session's user, to redeem with
   * `Auth.redeem` within seconds.
   */
  ticket(): string;
}

/** The public API: the only service a client talks to, and nothing but a way in. */
export interface Gateway extends RpcTarget {
  /** The data of the user `token` belongs to; an `AuthError` for an unknown token. */
  authenticate(token: string): UserData;
}

/** Who a user is, as the users service keeps it. */
export interface Profile {
  user: string;
  name: string;
  email: string;
}

/**
 * One user's data in the users service. Every member acts on that user: whoever holds
 * this capability can reach this user's data and nobody else's.
 */
export interface UserData extends RpcTarget {
  /** The user's profile. */
  profile(): Profile;
  /** The user's notes, oldest first. */
  notes(): string[];
  /** Append a note (1 to 500 characters); the notes after it. */
  addNote(text: string): string[];
}

/** The users service: opens a user's data for a session the auth service vouches for. */
export interface Users extends RpcTarget {
  /**
   * The data of the session's user, once the auth service has redeemed a ticket of the
   * session; an `AuthError` if it does not.
   */
  open(session: AuthSession): UserData;
}
