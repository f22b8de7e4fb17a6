// generated from examples.chat.api:Chat — do not edit
// generated from examples.chat.api:Room — do not edit
// generated from examples.chat.api:Subscriber — do not edit
//
// TypeScript declarations of these capnweb interfaces, for clients of a server implementing
// them (regenerate with `python -m capnweb_codegen --lang ts`):
//
//   import { newWebSocketRpcSession } from "capnweb";
//   import type { Chat } from "./examples_chat_api.js";
//   const api = newWebSocketRpcSession<Chat>("ws://127.0.0.1:8080/rpc");

import type { RpcTarget } from "capnweb";

/** The chat server: the main capability of each session. */
export interface Chat extends RpcTarget {
  /**
   * Join `room` (made on first use) as `name`, a name nobody in the room has yet;
   * `subscriber` is called for every message of the room from now on.
   */
  join(room: string, name: string, subscriber: Subscriber): Room;
  /** Every room that has members, by name, with its members. */
  rooms(): RoomInfo[];
}

/** One event of a room, pushed to every member: something said, or someone coming or going. */
export interface Message {
  room: string;
  sender: string;
  text: string;
  at: Date;
  kind: "message" | "joined" | "left";
}

/** One member's capability in one room: whoever holds it speaks as that member. */
export interface Room extends RpcTarget {
  /** Say `text` in the room: every member's subscriber gets it, the sender's too. */
  send(text: string): null;
  /** The names of the room's members, in the order they joined. */
  members(): string[];
  /** Leave the room: the others see this member go, and this capability stops working. */
  leave(): null;
}

/** A room and who is in it. */
export interface RoomInfo {
  room: string;
  members: string[];
}

/** What a member passes to `join`: the server calls it for each message of the room. */
export interface Subscriber extends RpcTarget {
  /** Show `message` (sent once per message, in the order the room saw them). */
  onMessage(message: Message): null;
}
