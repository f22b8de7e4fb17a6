// generated from examples.peer_to_peer.api:Peer — do not edit
//
// TypeScript declarations of these capnweb interfaces, for clients of a server implementing
// them (regenerate with `python -m capnweb_codegen --lang ts`):
//
//   import { newWebSocketRpcSession } from "capnweb";
//   import type { Peer } from "./examples_peer_to_peer_api.js";
//   const api = newWebSocketRpcSession<Peer>("ws://127.0.0.1:8080/rpc");

import type { RpcTarget } from "capnweb";

/** One end of a peer-to-peer session: each process serves one to the other. */
export interface Peer extends RpcTarget {
  /**
   * `name` has connected: this peer starts its own calls to the caller (the caller's
   * main capability) and returns its own name.
   */
  hello(name: string): string;
  /** A greeting from `sender`; returns the reply. */
  greet(sender: string, message: string): string;
  /**
   * A question from `sender`: this peer answers by calling `answer` (a function in
   * the asking process) and returns what `answer` returned.
   */
  ask(sender: string, question: string, answer: (arg0: string) => string | Promise<string>): string;
  /**
   * The caller is done: returns once this peer has finished its own calls to the
   * caller, so that the caller may hang up.
   */
  bye(): null;
}
