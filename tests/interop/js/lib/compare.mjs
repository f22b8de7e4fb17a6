// Strict structural comparison and small assertion helpers for the conformance runner.
//
// "Strict" means: bigint and number are different, `undefined`, `null` and a missing key are all
// different, NaN equals NaN, -0 differs from 0, a Uint8Array is not an array, an Error must have
// the same class, message and own enumerable properties, a Date compares by its time value, a URL
// by its href, Headers by their [name, value] pairs in iteration order, and plain objects must have
// exactly the same own enumerable keys. (A Node Buffer counts as a
// Uint8Array: it is what capnweb decodes bytes to on Node.)

/** Thrown by assertions; its message becomes the scenario's `detail`. */
export class CheckFailure extends Error {}

/** Short, JSON-ish, lossless-enough rendering of a value for failure messages. */
export function show(value, depth = 0) {
  if (depth > 4) return "…";
  switch (typeof value) {
    case "undefined": return "undefined";
    case "bigint": return `${value}n`;
    case "number": return Object.is(value, -0) ? "-0" : String(value);
    case "string": {
      const s = JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value);
      return value.length > 80 ? `${s} (length ${value.length})` : s;
    }
    case "function": return "[stub]";
    case "symbol": return value.toString();
    case "boolean": return String(value);
  }
  if (value === null) return "null";
  if (value instanceof Date) return `Date(${value.getTime()})`;
  if (value instanceof URL) return `URL(${JSON.stringify(value.href)})`;
  if (value instanceof Headers) return `Headers(${JSON.stringify([...value])})`;
  if (value instanceof Uint8Array) {
    const head = Array.from(value.subarray(0, 16)).join(",");
    return `Uint8Array[${value.length}](${head}${value.length > 16 ? ",…" : ""})`;
  }
  if (value instanceof Error) return `${value.constructor.name}(${JSON.stringify(value.message)})`;
  if (Array.isArray(value)) {
    const items = value.slice(0, 10).map(v => show(v, depth + 1));
    if (value.length > 10) items.push(`… ${value.length} items`);
    return `[${items.join(", ")}]`;
  }
  const proto = Object.getPrototypeOf(value);
  const prefix = proto === Object.prototype ? "" : `${proto?.constructor?.name ?? "null-proto"} `;
  const entries = Object.keys(value).slice(0, 10)
      .map(k => `${JSON.stringify(k)}: ${show(value[k], depth + 1)}`);
  return `${prefix}{${entries.join(", ")}}`;
}

function kindOf(value) {
  if (value === null) return "null";
  if (typeof value !== "object") return typeof value;
  if (Array.isArray(value)) return "array";
  if (value instanceof Date) return "Date";
  if (value instanceof URL) return "URL";
  if (value instanceof Headers) return "Headers";
  if (value instanceof Uint8Array) return "Uint8Array";
  if (value instanceof Error) return "Error";
  return Object.getPrototypeOf(value) === Object.prototype ? "object" : "other object";
}

/**
 * Returns null when `actual` strictly equals `expected`, otherwise a description of the first
 * difference found (with its path, e.g. `$.a[2]`).
 */
export function difference(actual, expected, path = "$") {
  const ka = kindOf(actual);
  const ke = kindOf(expected);
  if (ka !== ke) return `${path}: expected ${ke} ${show(expected)}, got ${ka} ${show(actual)}`;
  switch (ka) {
    case "number":
    case "bigint":
    case "string":
    case "boolean":
    case "undefined":
    case "null":
      return Object.is(actual, expected)
          ? null : `${path}: expected ${show(expected)}, got ${show(actual)}`;
    case "function":
      return actual === expected ? null : `${path}: a different function/stub`;
    case "Date":
      return Object.is(actual.getTime(), expected.getTime())
          ? null : `${path}: expected ${show(expected)}, got ${show(actual)}`;
    case "URL":
      return actual.href === expected.href
          ? null : `${path}: expected ${show(expected)}, got ${show(actual)}`;
    case "Headers":
      return difference([...actual], [...expected], `${path}.pairs`);
    case "Uint8Array": {
      // On Node, capnweb decodes ["bytes", ...] to a Buffer, a Uint8Array subclass: accept it.
      if (actual.length !== expected.length) {
        return `${path}: expected ${expected.length} bytes, got ${actual.length}`;
      }
      const i = actual.findIndex((b, j) => b !== expected[j]);
      return i < 0 ? null : `${path}[${i}]: expected byte ${expected[i]}, got ${actual[i]}`;
    }
    case "Error": {
      if (Object.getPrototypeOf(actual) !== Object.getPrototypeOf(expected)) {
        return `${path}: expected ${show(expected)}, got ${show(actual)}`;
      }
      if (actual.message !== expected.message || actual.name !== expected.name) {
        return `${path}: expected ${show(expected)}, got ${show(actual)}`;
      }
      return keysDifference(actual, expected, path);
    }
    case "array": {
      if (actual.length !== expected.length) {
        return `${path}: expected array of ${expected.length}, ` +
            `got ${actual.length}: ${show(actual)}`;
      }
      for (let i = 0; i < expected.length; i++) {
        if (!(i in actual)) return `${path}[${i}]: hole in array`;
        const d = difference(actual[i], expected[i], `${path}[${i}]`);
        if (d) return d;
      }
      return null;
    }
    case "object":
      return keysDifference(actual, expected, path);
    default:
      return `${path}: cannot compare ${show(actual)}`;
  }
}

function keysDifference(actual, expected, path) {
  const ak = Object.keys(actual).sort();
  const ek = Object.keys(expected).sort();
  const missing = ek.filter(k => !Object.hasOwn(actual, k));
  const extra = ak.filter(k => !Object.hasOwn(expected, k));
  if (missing.length || extra.length) {
    return `${path}: keys differ (missing ${JSON.stringify(missing)}, ` +
        `unexpected ${JSON.stringify(extra)}) in ${show(actual)}`;
  }
  for (const k of ek) {
    const d = difference(actual[k], expected[k], `${path}[${JSON.stringify(k)}]`);
    if (d) return d;
  }
  return null;
}

/** Fails unless `actual` strictly equals `expected`. */
export function assertEqual(actual, expected, what = "result") {
  const d = difference(actual, expected);
  if (d) throw new CheckFailure(`${what}: ${d}`);
}

/** Fails unless `condition` holds. */
export function assert(condition, message) {
  if (!condition) throw new CheckFailure(message);
}

/**
 * Awaits `promise` and fails unless it rejects with an error of exactly class `ErrorClass`
 * (when given) and message `message` (when given). Returns the rejection reason.
 */
export async function assertRejects(promise, ErrorClass, message, what = "call") {
  let value;
  try {
    value = await promise;
  } catch (err) {
    const sameClass = err instanceof Error && Object.getPrototypeOf(err) === ErrorClass?.prototype;
    if (ErrorClass && !sameClass) {
      throw new CheckFailure(`${what}: expected ${ErrorClass.name} rejection, got ${show(err)}`);
    }
    if (message !== undefined && err?.message !== message) {
      throw new CheckFailure(
          `${what}: expected message ${JSON.stringify(message)}, got ${show(err)}`);
    }
    return err;
  }
  throw new CheckFailure(`${what}: expected a rejection, got ${show(value)}`);
}
