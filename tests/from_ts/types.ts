// One member per row of the TypeScript -> Python type mapping (docs/typed-stubs.md, "From
// TypeScript"), and awkward cases that must not break the generator. tests/test_from_ts.py
// generates Python from it (`--interface Types`) and checks each annotation.

import { RpcTarget, type RpcStub } from "capnweb";

/** A string-literal union, kept as an alias. */
export type Color = "red" | "green";

export enum Size {
  Small = "s",
  Large = "l",
}

/** An object type passed by value. */
export interface Item {
  name: string;
  /** Optional: may be absent. */
  note?: string;
  "content-type": string;
  from: number;
  str: string;
}

export interface Box<T> {
  value: T;
}

export type Id = string & { readonly __brand: "Id" };

export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

export class Plain {
  x = 1;
}

export class Child extends RpcTarget {
  ping(): string {
    return "pong";
  }
}

export interface Types {
  number(x: number): number;
  bigint(x: bigint): bigint;
  string(x: string): string;
  boolean(x: boolean): boolean;
  null(): null;
  undefined(): undefined;
  void(): void;
  nullable(x: string | null): string | undefined;
  optional(a: number, b?: string): void;
  rest(a: number, ...more: string[]): void;
  date(x: Date): Date;
  bytes(x: Uint8Array): Uint8Array;
  buffer(x: ArrayBuffer): Int32Array;
  array(x: string[]): ReadonlyArray<number>;
  tuple(): [string, number];
  optionalTuple(): [string, number?];
  restTuple(): [string, ...number[]];
  record(): Record<string, number>;
  item(x: Item): Item;
  literal(): Color;
  enum(): Size;
  mixed(): "a" | 1 | true | null;
  union(x: string | number): Item | Child;
  promise(): Promise<string>;
  callback(f: (x: string, n: number) => void): void;
  returnsFunction(): (x: number) => Promise<string>;
  target(): Child;
  stub(): RpcStub<Child>;
  anyStub(x: RpcTarget): void;
  stream(): ReadableStream<Uint8Array>;
  writable(x: WritableStream<string>): void;
  blob(x: Blob): File;
  request(x: Request): Response;
  headers(x: Headers): URL;
  error(): Error;
  generic(): Box<number>;
  genericMethod<T>(x: T): T;
  branded(x: Id): Id;
  json(): Json;
  unknown(x: unknown): any;
  map(): Map<string, number>;
  symbol(): symbol;
  plain(): Plain;
  never(): never;
  anonymous(): { ok: boolean; child: Child };
  self(): this;
  readonly count: number;
  list(): string;
  import: string;
}
