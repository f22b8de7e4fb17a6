// Section 4 of the contract: every value round-trips through `echo(x)` exactly.

import { assertEqual } from "../lib/compare.mjs";
import { BOTH, scenario } from "../lib/context.mjs";

/** `echo(value)` must come back strictly equal to `expected` (default: `value` itself). */
function echo(name, value, expected = value) {
  return scenario(`values.${name}`, BOTH, async ctx => {
    const api = ctx.open();
    assertEqual(await api.echo(value), expected, `echo(${name})`);
  });
}

const allBytes = Uint8Array.from({ length: 256 }, (_, i) => i);
const bigBytes = Uint8Array.from({ length: 100_003 }, (_, i) => (i * 7919 + (i >> 8)) & 0xff);

export const scenarios = [
  // null, booleans, strings
  echo("null", null),
  echo("true", true),
  echo("false", false),
  echo("string", "hello, world"),
  echo("string_empty", ""),
  echo("string_nul", "a\u0000b\u0000"),
  echo("string_control_chars", "\t\n\r\b\f\u0001\u001f\u007f\"\\/"),
  echo("string_line_separators", "x\u2028y\u2029z"),
  echo("string_non_ascii", "héllo wörld ключ 日本語 \u00a0\ufeff\uffff"),
  echo("string_astral", "😀 𝄞 \u{10ffff}"),
  echo("string_lone_high_surrogate", "a\ud800b"),
  echo("string_lone_low_surrogate", "a\udc00b"),
  echo("string_reversed_surrogates", "\udc00\ud800"),
  echo("string_json_lookalike", "[\"import\",0]"),

  // numbers
  echo("int_zero", 0),
  echo("int_small", 42),
  echo("int_negative", -7),
  echo("negative_zero", -0, 0),
  echo("int_max_safe", Number.MAX_SAFE_INTEGER),
  echo("int_min_safe", -Number.MAX_SAFE_INTEGER),
  echo("int_2_pow_53", 2 ** 53),
  echo("int_2_pow_60", 2 ** 60),
  echo("int_neg_2_pow_64", -(2 ** 64)),
  echo("float_tenth", 0.1),
  echo("float_neg_huge", -1.5e300),
  echo("float_max", Number.MAX_VALUE),
  echo("float_min_subnormal", Number.MIN_VALUE),
  echo("float_third", 1 / 3),
  echo("float_epsilon", 1 + Number.EPSILON),
  echo("infinity", Infinity),
  echo("neg_infinity", -Infinity),
  echo("nan", NaN),
  echo("nonfinite_nested", { a: [Infinity, -Infinity, NaN], b: { c: NaN, d: [[-Infinity]] } }),

  // undefined
  echo("undefined", undefined),
  echo("undefined_in_array", [1, undefined, 3, undefined]),
  echo("undefined_object_value", { a: undefined, b: 1, c: { d: undefined } }),

  // arrays
  echo("array_empty", []),
  echo("array_nested", [1, [2, [3, [4, []]]], [], [[]]]),
  echo("array_mixed", [null, true, "s", 1.5, { a: [1] }]),
  echo("array_date_lookalike", ["date", 5]),
  echo("array_import_lookalike", ["import", 0]),
  echo("array_tag_lookalikes", [
    ["bigint", "5"], ["error", "Error", "x"], ["undefined"], ["inf"], ["nan"], ["bytes", "AQI"],
    ["pipeline", 0, ["square"], [3]], ["export", -1], ["promise", -1], ["remap", 0, [], [], []],
  ]),
  echo("array_single_string", ["undefined"]),

  // plain objects
  echo("object_empty", {}),
  echo("object_keys",
      { "": 1, "0": 2, "123": 3, "-1": 4, "1.5": 5, "ключ": 6, "😀": 7, "a b": 8 }),
  echo("object_nested", { a: { b: { c: { d: [1, { e: "f" }] } } } }),
  echo("object_with_array_values", { list: [1, 2], empty: [], nested: [[1], [2, [3]]] }),

  // dates
  echo("date", new Date(1_700_000_000_123)),
  echo("date_epoch", new Date(0)),
  echo("date_negative", new Date(-123_456_789)),
  echo("date_nested", { when: [new Date(86_400_000), new Date(-1)] }),

  // bytes
  echo("bytes_empty", new Uint8Array(0)),
  echo("bytes_all_values", allBytes),
  echo("bytes_odd_lengths", [1, 2, 3, 4, 5, 7].map(n => allBytes.slice(250 - n, 250))),
  echo("bytes_large", bigBytes),

  // bigint
  echo("bigint_small", 5n),
  echo("bigint_zero", 0n),
  echo("bigint_negative", -7n),
  echo("bigint_huge", 2n ** 100n),
  echo("bigint_huge_negative", -(2n ** 100n) - 1n),
  echo("bigint_nested", { a: [1n, 1], b: 2n ** 64n }),

  // errors as values
  echo("error", new Error("plain error")),
  echo("error_type", new TypeError("bad type")),
  echo("error_range", new RangeError("out of range")),
  echo("error_empty_message", new Error("")),
  echo("error_unicode_message", new TypeError("ü 😀 \u2028 \u0000")),
  echo("errors_nested", { errors: [new Error("a"), new RangeError("b")] }),

  // everything at once (the wire example of contract section 7)
  echo("mixed", {
    a: [1, [2]], u: undefined, d: new Date(5), b: new Uint8Array([1, 2]), n: 5n, i: Infinity,
    e: new TypeError("x"),
  }),
];
