"""Cases and helpers for ``test_py_client.py``: the Python client against the TypeScript server.

- :data:`ECHO_CASES`: every row of the value table (INTEROP-CONTRACT.md section 4 plus the
  Python-side mappings) as ``(value sent, value expected back)``.
- :func:`strict_difference`: equality that tells ``BigInt`` from ``int`` from ``float``,
  ``undefined`` from ``None``, compares floats bit for bit, and errors by class, name, message
  and props.
- :class:`FrameLog`: records the frames one client session sends and receives, in order.
- :data:`WIRE_SEQUENCES`: the frames the TypeScript client sends for a few calls, as captured
  from npm ``capnweb`` 0.12.0 (PROTOCOL-NOTES.md section 2.2, INTEROP-CONTRACT.md section 7).
"""

from __future__ import annotations

import asyncio
import json
import math
import struct
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, TypeVar

from capnweb import (
    INVALID_DATE,
    URL,
    BigInt,
    Headers,
    JsDate,
    RpcError,
    RpcRangeError,
    RpcTarget,
    RpcTypeError,
    TypedArray,
    undefined,
)
from capnweb.errors import make_error

T = TypeVar("T")

# --------------------------------------------------------------------------------------------
# Strict comparison


def _float_bits(x: float) -> bytes:
    return struct.pack("<d", x)


def strict_difference(got: Any, want: Any, path: str = "$") -> str | None:
    """``None`` when ``got`` is strictly ``want``, else where and how they first differ."""
    if type(got) is not type(want):
        return f"{path}: got {type(got).__name__} {got!r}, expected {type(want).__name__} {want!r}"
    if isinstance(want, float):
        if math.isnan(want) and math.isnan(got):
            return None
        if _float_bits(got) != _float_bits(want):
            return f"{path}: got {got!r}, expected {want!r} (float bits differ)"
        return None
    if isinstance(want, list):
        if len(got) != len(want):
            return f"{path}: got {len(got)} elements, expected {len(want)}"
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            diff = strict_difference(g, w, f"{path}[{i}]")
            if diff is not None:
                return diff
        return None
    if isinstance(want, dict):
        if set(got) != set(want):
            return f"{path}: got keys {sorted(got)}, expected {sorted(want)}"
        for key in want:
            diff = strict_difference(got[key], want[key], f"{path}[{key!r}]")
            if diff is not None:
                return diff
        return None
    if isinstance(want, datetime):
        if got != want or got.utcoffset() != timedelta(0):
            return f"{path}: got {got!r}, expected {want!r} in UTC"
        return None
    if isinstance(want, RpcError):
        if (got.name, got.message) != (want.name, want.message):
            return f"{path}: got {got!r}, expected {want!r}"
        return strict_difference(got.props, want.props, f"{path}.props")
    if got != want:
        return f"{path}: got {got!r}, expected {want!r}"
    return None


def assert_strict(got: Any, want: Any, what: str = "value") -> None:
    """Fails unless ``got`` is strictly ``want`` (see :func:`strict_difference`)."""
    diff = strict_difference(got, want)
    assert diff is None, f"{what}: {diff}"


# --------------------------------------------------------------------------------------------
# The value table


@dataclass(frozen=True)
class EchoCase:
    """``echo(value)`` must come back strictly equal to ``expected``."""

    id: str
    value: Any
    expected: Any


_SAME = object()


def _case(case_id: str, value: Any, expected: Any = _SAME) -> EchoCase:
    return EchoCase(case_id, value, value if expected is _SAME else expected)


def _utc_ms(ms: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)


ALL_BYTES = bytes(range(256))
BIG_BYTES = bytes((i * 7919 + (i >> 8)) & 0xFF for i in range(100_003))
MAX_SAFE = 2**53 - 1

ECHO_CASES: list[EchoCase] = [
    # null, booleans, strings
    _case("null", None),
    _case("true", True),
    _case("false", False),
    _case("string", "hello, world"),
    _case("string_empty", ""),
    _case("string_nul", "a\u0000b\u0000"),
    _case("string_control_chars", '\t\n\r\b\f\u0001\u001f\u007f"\\/'),
    _case("string_line_separators", "x\u2028y\u2029z"),
    _case("string_non_ascii", "héllo wörld ключ 日本語 \u00a0\ufeff\uffff"),
    _case("string_astral", "😀 𝄞 \U0010ffff"),
    _case("string_lone_high_surrogate", "a\ud800b"),
    _case("string_lone_low_surrogate", "a\udc00b"),
    _case("string_reversed_surrogates", "\udc00\ud800"),
    _case("string_json_lookalike", '["import",0]'),
    # integers: JSON numbers within +-(2**53 - 1), bigint beyond
    _case("int_zero", 0),
    _case("int_small", 42),
    _case("int_negative", -7),
    _case("int_max_safe", MAX_SAFE),
    _case("int_min_safe", -MAX_SAFE),
    _case("int_2_pow_53_is_bigint", 2**53, BigInt(2**53)),
    _case("int_2_pow_60_is_bigint", 2**60, BigInt(2**60)),
    _case("int_neg_2_pow_64_is_bigint", -(2**64), BigInt(-(2**64))),
    # floats: bit-exact; integral ones come back as JSON integers, hence Python ints
    _case("float_2_pow_60", float(2**60)),
    _case("float_neg_2_pow_64", -float(2**64)),
    _case("float_tenth", 0.1),
    _case("float_third", 1 / 3),
    _case("float_epsilon", 1 + sys.float_info.epsilon),
    _case("float_neg_huge", -1.5e300),
    _case("float_max", sys.float_info.max),
    _case("float_min_subnormal", 5e-324),
    _case("float_small_exponent", 1.5e-7),
    _case("float_1e21", 1e21),
    _case("float_integral_is_int", 1.0, 1),
    _case("float_negative_zero_is_zero", -0.0, 0),
    _case("infinity", math.inf),
    _case("neg_infinity", -math.inf),
    _case("nan", math.nan),
    _case(
        "nonfinite_nested",
        {"a": [math.inf, -math.inf, math.nan], "b": {"c": math.nan, "d": [[-math.inf]]}},
    ),
    # bigint: always stays a BigInt, whatever its size
    _case("bigint_small", BigInt(5)),
    _case("bigint_zero", BigInt(0)),
    _case("bigint_negative", BigInt(-7)),
    _case("bigint_huge", 2**100, BigInt(2**100)),
    _case("bigint_huge_negative", -(2**100) - 1, BigInt(-(2**100) - 1)),
    _case(
        "bigint_nested",
        {"a": [BigInt(1), 1], "b": 2**64},
        {"a": [BigInt(1), 1], "b": BigInt(2**64)},
    ),
    # undefined
    _case("undefined", undefined),
    _case("undefined_in_list", [1, undefined, 3, undefined]),
    _case("undefined_dict_value", {"a": undefined, "b": 1, "c": {"d": undefined}}),
    # lists
    _case("list_empty", []),
    _case("list_nested", [1, [2, [3, [4, []]]], [], [[]]]),
    _case("list_mixed", [None, True, "s", 1.5, {"a": [1]}]),
    _case("tuple_is_list", (1, (2, 3)), [1, [2, 3]]),
    _case("list_date_lookalike", ["date", 5]),
    _case("list_import_lookalike", ["import", 0]),
    _case(
        "list_tag_lookalikes",
        [
            ["bigint", "5"],
            ["error", "Error", "x"],
            ["undefined"],
            ["inf"],
            ["nan"],
            ["bytes", "AQI"],
            ["pipeline", 0, ["square"], [3]],
            ["export", -1],
            ["promise", -1],
            ["remap", 0, [], [], []],
        ],
    ),
    _case("list_single_string", ["undefined"]),
    # dicts
    _case("dict_empty", {}),
    _case(
        "dict_keys",
        {"": 1, "0": 2, "123": 3, "-1": 4, "1.5": 5, "ключ": 6, "😀": 7, "a b": 8},
    ),
    _case("dict_nested", {"a": {"b": {"c": {"d": [1, {"e": "f"}]}}}}),
    _case("dict_with_list_values", {"list": [1, 2], "empty": [], "nested": [[1], [2, [3]]]}),
    # JavaScript drops keys of Object.prototype (and toJSON) from received objects.
    _case(
        "dict_prototype_keys_dropped",
        {"__proto__": {"x": 1}, "constructor": 1, "toString": 2, "toJSON": 3, "k": 4},
        {"k": 4},
    ),
    # dates: millisecond precision, UTC
    _case("date", _utc_ms(1_700_000_000_123)),
    _case("date_epoch", _utc_ms(0)),
    _case("date_pre_1970", _utc_ms(-123_456_789)),
    _case("date_minus_one_ms", _utc_ms(-1)),
    _case("date_nested", {"when": [_utc_ms(86_400_000), _utc_ms(-1)]}),
    _case(
        "date_other_timezone_is_utc",
        datetime(2020, 1, 1, 5, 30, tzinfo=timezone(timedelta(hours=5, minutes=30))),
        datetime(2020, 1, 1, tzinfo=UTC),
    ),
    _case("date_far_future", datetime(9999, 12, 31, 23, 59, 59, 999_000, tzinfo=UTC)),
    # A JavaScript Date holds whole milliseconds: a fraction is truncated toward zero.
    _case("date_sub_ms_truncated", _utc_ms(1) + timedelta(microseconds=500), _utc_ms(1)),
    _case("date_sub_ms_negative_truncated", _utc_ms(-2) + timedelta(microseconds=500), _utc_ms(-1)),
    _case("date_invalid", INVALID_DATE),
    _case("date_beyond_datetime", JsDate(-8.64e15)),
    # bytes
    _case("bytes_empty", b""),
    _case("bytes_all_values", ALL_BYTES),
    _case("bytes_odd_lengths", [ALL_BYTES[250 - n : 250] for n in (1, 2, 3, 4, 5, 7)]),
    _case("bytearray_is_bytes", bytearray(b"\x00\xff\x10"), b"\x00\xff\x10"),
    _case("memoryview_is_bytes", memoryview(b"view"), b"view"),
    _case("bytes_large", BIG_BYTES),
    # other byte containers keep their marker (little-endian elements)
    _case("typed_uint16", TypedArray("Uint16Array", struct.pack("<2H", 1, 258))),
    _case("typed_float64", TypedArray("Float64Array", struct.pack("<3d", 1.5, -0.0, math.inf))),
    _case("typed_float32", TypedArray("Float32Array", struct.pack("<2f", 0.5, -2.0))),
    _case("typed_int8", TypedArray("Int8Array", bytes([0x80, 0x7F, 0xFF]))),
    _case("typed_uint8_clamped", TypedArray("Uint8ClampedArray", b"\x00\xff")),
    _case("typed_int16", TypedArray("Int16Array", struct.pack("<h", -2))),
    _case("typed_int32", TypedArray("Int32Array", struct.pack("<2i", -1, 2**31 - 1))),
    _case("typed_uint32", TypedArray("Uint32Array", struct.pack("<I", 2**32 - 1))),
    _case("typed_bigint64", TypedArray("BigInt64Array", struct.pack("<q", -(2**63)))),
    _case("typed_biguint64", TypedArray("BigUint64Array", struct.pack("<Q", 2**64 - 1))),
    _case("typed_array_buffer", TypedArray("ArrayBuffer", b"abc")),
    _case("typed_data_view", TypedArray("DataView", b"\x01\x02\x03")),
    _case("typed_empty", TypedArray("Float64Array", b"")),
    # An explicit Uint8Array marker is a plain Uint8Array on the other side: bytes again.
    _case("typed_uint8_is_bytes", TypedArray("Uint8Array", b"ab"), b"ab"),
    # errors as values (returned, not thrown)
    _case("error", RpcError("plain error")),
    _case("error_type", RpcTypeError("bad type")),
    _case("error_range", RpcRangeError("out of range")),
    _case("error_empty_message", RpcError("")),
    _case("error_unicode_message", RpcTypeError("ü 😀 \u2028 \u0000")),
    _case("error_with_props", make_error("RangeError", "coded", {"code": "E1", "n": [1, None]})),
    _case("python_type_error", TypeError("py type"), RpcTypeError("py type")),
    _case("python_value_error", ValueError("py value"), RpcRangeError("py value")),
    _case("python_runtime_error", RuntimeError("py runtime"), RpcError("py runtime")),
    _case(
        "errors_nested",
        {"errors": [RpcError("a"), RpcRangeError("b")]},
    ),
    # values beyond the contract that the reference also echoes
    _case("url", URL("https://example.com/path?q=1")),
    # Fetch Headers lower-case their names.
    _case(
        "headers",
        Headers([("X-One", "1"), ("x-two", "2")]),
        Headers([("x-one", "1"), ("x-two", "2")]),
    ),
    # the wire example of the contract, section 7
    _case(
        "mixed",
        {
            "a": [1, [2]],
            "u": undefined,
            "d": _utc_ms(5),
            "b": b"\x01\x02",
            "n": BigInt(5),
            "i": math.inf,
            "e": RpcTypeError("x"),
        },
    ),
]


def nested_value(levels: int) -> Any:
    """``levels`` alternating dict/list wrappings around a string."""
    value: Any = "leaf"
    for i in range(levels):
        value = [value] if i % 2 else {"k": value}
    return value


_CHUNK = 'abcdefghijklmnopqrstuvwxyz0123456789-é😀\u2028"\\'
BIG_STRING = (_CHUNK * (2**20 // len(_CHUNK) + 1))[: 2**20]
BIG_BYTES_1MIB = bytes((i * 31 + (i >> 10)) & 0xFF for i in range(2**20))


# --------------------------------------------------------------------------------------------
# Frames on the wire


class FrameLog:
    """Every frame a client session sent (``"out"``) and received (``"in"``), in order.

    Attach it right after ``Connection.open()`` returned, before the event loop turns: the
    session's reader has not asked the transport for anything yet.
    """

    def __init__(self, transport: Any) -> None:
        self.events: list[tuple[str, str]] = []
        for name in ("send", "send_lazy", "send_soon"):
            if hasattr(transport, name):
                setattr(transport, name, self._logged_send(getattr(transport, name)))
        deliver = getattr(transport, "_deliver", None)
        if deliver is not None:  # a WebSocket connection hands messages to the session itself

            def logged_deliver(text: str) -> None:
                self.events.append(("in", text))
                deliver(text)

            transport._deliver = logged_deliver
            return
        receive = transport.receive

        async def logged_receive() -> str:
            text: str = await receive()
            self.events.append(("in", text))
            return text

        setattr(transport, "receive", logged_receive)  # noqa: B010 - instance-level instrumentation

    def _logged_send(self, send: Any) -> Any:
        def logged_send(text: str) -> None:
            self.events.append(("out", text))
            send(text)

        return logged_send

    def mark(self) -> int:
        """A position, for :meth:`sent_since` and :meth:`since`."""
        return len(self.events)

    def since(self, mark: int = 0) -> list[tuple[str, str]]:
        """Every event after ``mark``."""
        return self.events[mark:]

    def sent_since(self, mark: int = 0) -> list[str]:
        """The text of every frame sent after ``mark``."""
        return [text for direction, text in self.events[mark:] if direction == "out"]

    def parsed_sent(self, mark: int = 0) -> list[Any]:
        """The frames sent after ``mark``, parsed."""
        return [json.loads(text) for text in self.sent_since(mark)]


@dataclass(frozen=True)
class WireSequence:
    """A few calls and the frames the TypeScript client sends for them on a fresh session."""

    name: str
    frames: list[str]


# Captured from the official client (and reproduced by js/trace_client.mjs, which runs the same
# sequences): what a client must send, byte for byte.
WIRE_SEQUENCES: list[WireSequence] = [
    WireSequence(
        "square",
        [
            '["push",["pipeline",0,["square"],[3]]]',
            '["pull",1]',
            '["release",1,1]',
        ],
    ),
    WireSequence(
        "pipelined_increment",
        [
            '["push",["pipeline",0,["makeCounter"],[2]]]',
            '["push",["pipeline",1,["increment"],[3]]]',
            '["pull",2]',
            '["release",2,1]',
            '["release",1,1]',
        ],
    ),
    WireSequence(
        "pipelined_three_calls",
        [
            '["push",["pipeline",0,["makeCounter"],[2]]]',
            '["push",["pipeline",1,["increment"],[3]]]',
            '["push",["pipeline",0,["incrementCounter"],[["pipeline",1],4]]]',
            '["pull",2]',
            '["pull",3]',
            '["release",2,1]',
            '["release",3,1]',
            '["release",1,1]',
        ],
    ),
    WireSequence(
        "callback",
        [
            '["push",["pipeline",0,["callFunction"],[["export",-1],3]]]',
            '["pull",1]',
            '["resolve",1,6]',
            '["release",1,1]',
        ],
    ),
]


# --------------------------------------------------------------------------------------------
# Client-side capabilities


class ClientCounter(RpcTarget):
    """A client object with an ``increment`` method; records the amounts it was given."""

    def __init__(self, value: int) -> None:
        self._value = value
        self.amounts: list[int] = []

    def increment(self, amount: int) -> int:
        self.amounts.append(amount)
        self._value += amount
        return self._value

    @property
    def value(self) -> int:
        return self._value

    def _secret(self) -> str:
        return "never reachable"


class Doubler(RpcTarget):
    """A client capability that mappers capture; records what it was asked."""

    def __init__(self) -> None:
        self.seen: list[Any] = []
        self.disposed = asyncio.Event()

    def double(self, x: int) -> int:
        self.seen.append(x)
        return x * 2

    def on_dispose(self) -> None:
        self.disposed.set()


# --------------------------------------------------------------------------------------------
# Waiting for another process


async def eventually(
    check: Callable[[], Awaitable[T]], *, timeout: float = 3.0, interval: float = 0.05
) -> T:
    """Retries ``check`` until it stops raising AssertionError (for effects that another process
    applies on its own schedule, e.g. ending a closed session); re-raises after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await check()
        except AssertionError:
            if time.monotonic() >= deadline:
                raise
        await asyncio.sleep(interval)
