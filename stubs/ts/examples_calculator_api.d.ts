// generated from examples.calculator.api:Calculator — do not edit
// generated from examples.calculator.api:Value — do not edit
//
// TypeScript declarations of these capnweb interfaces, for clients of a server implementing
// them (regenerate with `python -m capnweb_codegen --lang ts`):
//
//   import { newWebSocketRpcSession } from "capnweb";
//   import type { Calculator } from "./examples_calculator_api.js";
//   const api = newWebSocketRpcSession<Calculator>("ws://127.0.0.1:8080/rpc");

import type { RpcTarget } from "capnweb";

/** The calculator: the main capability of the example server. */
export interface Calculator extends RpcTarget {
  /** `a + b`. */
  add(a: number, b: number): number;
  /** `a - b`. */
  subtract(a: number, b: number): number;
  /** `a * b`. */
  multiply(a: number, b: number): number;
  /** `a / b` (a RangeError when `b` is 0). */
  divide(a: number, b: number): number;
  /** A `Value` capability holding `x`, to compute on step by step. */
  value(x: number): Value;
}

/** A number held by the server. Each operation returns a new `Value`; this one stays. */
export interface Value extends RpcTarget {
  /** This value plus `x`. */
  add(x: number): Value;
  /** This value minus `x`. */
  subtract(x: number): Value;
  /** This value times `x`. */
  multiply(x: number): Value;
  /** This value divided by `x` (a RangeError when `x` is 0). */
  divide(x: number): Value;
  /** The number. */
  get(): number;
}
