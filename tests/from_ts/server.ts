// A capnweb server written in TypeScript: a small user directory. tests/test_from_ts.py
// generates Python stubs from this file (`python -m capnweb_codegen --from-ts server.ts
// --interface Api`), compiles it with tsc --strict and runs it on Node, then calls it from
// client.py through those stubs.
//
// Usage: node --import ../interop/js/setup.mjs build/server.js
// Listens on a free port of 127.0.0.1 and prints `listening <port>`.

import { RpcStub, RpcTarget, newWebSocketRpcSession } from "capnweb";
import { WebSocketServer } from "ws";

/** What a user may do. */
export type Role = "admin" | "member";

/** What anyone may know about a user. */
export interface Profile {
  id: number;
  name: string;
  /** Free text, absent until set. */
  bio?: string;
  role: Role;
  tags: string[];
  joined: Date;
  karma: bigint;
  avatar: Uint8Array | null;
}

/** One page of a listing. */
export interface Page<T> {
  items: T[];
  next: string | null;
}

/** Called by the server for each event it reports. */
export type Listener = (event: string, id: number) => void | Promise<void>;

/** One user of the directory. */
export class User extends RpcTarget {
  #profile: Profile;
  visits = 0; // an instance property: not reachable over RPC

  constructor(profile: Profile) {
    super();
    this.#profile = profile;
  }

  /** The user's name. */
  get name(): string {
    return this.#profile.name;
  }

  /** The user's public profile. */
  get profile(): Profile {
    return this.#profile;
  }

  /** Replace the bio (`null` removes it); returns the updated profile. */
  async setBio(bio: string | null): Promise<Profile> {
    const { bio: _old, ...rest } = this.#profile;
    this.#profile = bio === null ? rest : { ...rest, bio };
    return this.#profile;
  }

  /** A greeting, `Hello` unless told otherwise. */
  greet(greeting?: string): string {
    return `${greeting ?? "Hello"}, ${this.#profile.name}!`;
  }

  /** Where the user sits: [row, seat]. */
  seat(): [number, number] {
    return [this.#profile.id, this.#profile.id * 10];
  }

  /** This user again, as a capability. */
  self(): this {
    return this;
  }
}

/** The users of the directory. */
export class Users extends RpcTarget {
  #users = new Map<number, User>();

  constructor() {
    super();
    this.add("ann", "admin");
    this.add("bob", "member");
  }

  /** Add a user; returns it. */
  add(name: string, role: Role): User {
    const id = this.#users.size + 1;
    const profile: Profile = {
      id,
      name,
      role,
      tags: [role],
      joined: new Date(Date.UTC(2024, 0, id)),
      karma: 2n ** 60n + BigInt(id),
      avatar: id === 1 ? new Uint8Array([1, 2, 3]) : null,
    };
    const user = new User(profile);
    this.#users.set(id, user);
    return user;
  }

  /** The user with this id; fails when there is none. */
  get(id: number): User {
    const user = this.#users.get(id);
    if (!user) throw new RangeError(`no user ${id}`);
    return user;
  }

  /** The profile of the user called `name`, or `null`. */
  find(name: string): Profile | null {
    for (const user of this.#users.values()) if (user.name === name) return user.profile;
    return null;
  }

  /** Profiles, optionally only those with `role`. */
  list(role?: Role): Page<Profile> {
    const items = [...this.#users.values()].map(u => u.profile);
    return { items: items.filter(p => role === undefined || p.role === role), next: null };
  }
}

/** The directory service. */
export interface Api {
  /** The users. */
  readonly users: Users;
  /** The server's version. */
  version(): string;
  /** Adds numbers. */
  add(a: number, b: number): number;
  /** Doubles a bigint. */
  double(x: bigint): bigint;
  /** The bytes, reversed. */
  reverse(data: Uint8Array): Uint8Array;
  /** A day after `when`. */
  nextDay(when: Date): Date;
  /** Counts of users per role. */
  stats(): { users: number; admins: number; roles: Record<string, number> };
  /** Calls `listener` once per user, then returns how many calls it made. */
  notify(listener: Listener): Promise<number>;
  /** A user, as a stub. */
  userStub(id: number): RpcStub<User>;
  /** `undefined` when `key` is unknown. */
  lookup(key: string): string | undefined;
  /** Headers the server would answer with. */
  headers(): Headers;
  /** Lines of a log, streamed: one per user. */
  tail(): ReadableStream<string>;
  /** How many lines `lines` has (it is read to its end). */
  countLines(lines: ReadableStream<string>): Promise<number>;
  /** Writes `n`, `n - 1`... down to 1 into `sink`, then closes it. */
  countdown(n: number, sink: WritableStream<number>): Promise<void>;
}

export class ApiServer extends RpcTarget implements Api {
  #users = new Users();

  get users(): Users {
    return this.#users;
  }

  version(): string {
    return "1.0";
  }

  add(a: number, b: number): number {
    return a + b;
  }

  double(x: bigint): bigint {
    return x * 2n;
  }

  reverse(data: Uint8Array): Uint8Array {
    return data.slice().reverse();
  }

  nextDay(when: Date): Date {
    return new Date(when.getTime() + 86_400_000);
  }

  stats(): { users: number; admins: number; roles: Record<string, number> } {
    const items = this.#users.list().items;
    const roles: Record<string, number> = {};
    for (const p of items) roles[p.role] = (roles[p.role] ?? 0) + 1;
    return { users: items.length, admins: roles["admin"] ?? 0, roles };
  }

  async notify(listener: Listener): Promise<number> {
    const items = this.#users.list().items;
    for (const p of items) await listener("hello", p.id);
    return items.length;
  }

  userStub(id: number): RpcStub<User> {
    return new RpcStub(this.#users.get(id));
  }

  lookup(key: string): string | undefined {
    return key === "motto" ? "typed both ways" : undefined;
  }

  headers(): Headers {
    return new Headers({ "content-type": "text/plain" });
  }

  tail(): ReadableStream<string> {
    const names = this.#users.list().items.map(p => `${p.name} joined`);
    return new ReadableStream<string>({
      start(controller) {
        for (const line of names) controller.enqueue(line);
        controller.close();
      },
    });
  }

  async countLines(lines: ReadableStream<string>): Promise<number> {
    const reader = lines.getReader();
    let count = 0;
    while (!(await reader.read()).done) count++;
    return count;
  }

  async countdown(n: number, sink: WritableStream<number>): Promise<void> {
    const writer = sink.getWriter();
    for (let i = n; i > 0; i--) await writer.write(i);
    await writer.close();
  }
}

const server = new WebSocketServer({ host: "127.0.0.1", port: 0 });
server.on("connection", socket => {
  newWebSocketRpcSession(socket, new ApiServer());
});
server.on("listening", () => {
  console.log(`listening ${server.address().port}`);
});
