"""One test per row of docs/values.md: the exact wire JSON a Python value is sent as, and the
exact Python value (and type) a wire form is received as; plus the reference's test vectors."""

from __future__ import annotations

import asyncio
import base64
import math
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from codec_impls import codec_impl  # noqa: F401 (the fixture: compiled and pure codec)
from helpers import CLEAN, ScriptedPeer, assert_exact

from capnweb import (
    INVALID_DATE,
    URL,
    BigInt,
    Headers,
    JsDate,
    Request,
    Response,
    RpcAggregateError,
    RpcError,
    RpcEvalError,
    RpcPromise,
    RpcProtocolError,
    RpcRangeError,
    RpcReferenceError,
    RpcStub,
    RpcSyntaxError,
    RpcTarget,
    RpcTypeError,
    RpcURIError,
    TypedArray,
    undefined,
)
from capnweb._codec import PROTO_KEYS, decode, dumps, encode, encode_text, loads
from capnweb._values import TYPED_ARRAY_KINDS

pytestmark = [pytest.mark.timeout(10), pytest.mark.usefixtures("codec_impl")]


def wire(value: Any) -> str:
    """The JSON text ``value`` is sent as."""
    return dumps(encode(value))


def receive(text: str) -> Any:
    """The Python value a message carrying ``text`` delivers."""
    return decode(loads(text))


def roundtrip_case(value: Any, text: str, decoded: Any, id: str) -> Any:
    return pytest.param(value, text, decoded, id=id)


def check_row(value: Any, text: str, decoded: Any) -> None:
    assert wire(value) == text
    assert encode_text(value) == text
    assert_exact(receive(text), decoded)


# -- None, undefined, bool, int, BigInt, float, str, list/tuple, dict


@pytest.mark.parametrize(
    ("value", "text", "decoded"),
    [
        roundtrip_case(None, "null", None, id="none"),
        roundtrip_case(undefined, '["undefined"]', undefined, id="undefined"),
        roundtrip_case(
            {"u": undefined}, '{"u":["undefined"]}', {"u": undefined}, id="undefined-value"
        ),
        roundtrip_case([undefined], '[[["undefined"]]]', [undefined], id="undefined-element"),
        roundtrip_case(True, "true", True, id="bool-true"),
        roundtrip_case(False, "false", False, id="bool-false"),
    ],
)
def test_none_undefined_bool(value: Any, text: str, decoded: Any) -> None:
    check_row(value, text, decoded)


def test_undefined_is_not_none() -> None:
    assert receive('["undefined"]') is undefined
    assert receive("null") is None
    assert not undefined


@pytest.mark.parametrize(
    ("value", "text", "decoded"),
    [
        roundtrip_case(0, "0", 0, id="zero"),
        roundtrip_case(-42, "-42", -42, id="negative"),
        roundtrip_case(2**53 - 1, "9007199254740991", 2**53 - 1, id="max-safe"),
        roundtrip_case(-(2**53 - 1), "-9007199254740991", -(2**53 - 1), id="min-safe"),
    ],
)
def test_int_within_safe_range(value: int, text: str, decoded: int) -> None:
    check_row(value, text, decoded)


@pytest.mark.parametrize(
    ("value", "text", "decoded"),
    [
        roundtrip_case(2**53, '["bigint","9007199254740992"]', BigInt(2**53), id="max-safe+1"),
        roundtrip_case(
            -(2**53), '["bigint","-9007199254740992"]', BigInt(-(2**53)), id="min-safe-1"
        ),
        roundtrip_case(
            2**100, '["bigint","1267650600228229401496703205376"]', BigInt(2**100), id="2**100"
        ),
    ],
)
def test_int_beyond_safe_range_is_a_bigint(value: int, text: str, decoded: int) -> None:
    check_row(value, text, decoded)


def test_int_beyond_safe_range_is_a_bigint_at_any_size() -> None:
    huge = -(10**5000)  # beyond int()'s own 4300-digit limit on str conversion
    check_row(huge, '["bigint","-1' + "0" * 5000 + '"]', BigInt(huge))


@pytest.mark.parametrize(
    ("value", "text", "decoded"),
    [
        roundtrip_case(BigInt(5), '["bigint","5"]', BigInt(5), id="small"),
        roundtrip_case(BigInt(0), '["bigint","0"]', BigInt(0), id="zero"),
        roundtrip_case(BigInt(-123), '["bigint","-123"]', BigInt(-123), id="negative"),
        roundtrip_case(
            BigInt(-(10**5000)),
            '["bigint","-1' + "0" * 5000 + '"]',
            BigInt(-(10**5000)),
            id="beyond-int-str-limit",
        ),
    ],
)
def test_bigint(value: BigInt, text: str, decoded: BigInt) -> None:
    check_row(value, text, decoded)


def test_received_bigint_is_sent_back_as_bigint() -> None:
    value = receive('["bigint","7"]')
    assert isinstance(value, int) and value == 7
    assert wire(value) == '["bigint","7"]'


@pytest.mark.parametrize("digits", ["0x10", "1.5", "", " 1", "+1", "1e3", "--1"])
def test_bigint_other_spellings_are_rejected(digits: str) -> None:
    with pytest.raises(RpcProtocolError, match="invalid bigint"):
        decode(["bigint", digits])


@pytest.mark.parametrize(
    ("text", "decoded"),
    [
        pytest.param("9007199254740993", 9007199254740992.0, id="beyond-2**53-is-a-double"),
        pytest.param("-9007199254740993", -9007199254740992.0, id="below-minus-2**53"),
        pytest.param("18446744073709551616", 18446744073709551616.0, id="beyond-2**64"),
        pytest.param("1" + "0" * 400, math.inf, id="too-large-for-a-double"),
        pytest.param("-1" + "0" * 5000, -math.inf, id="beyond-int-str-limit"),
        pytest.param("1e400", math.inf, id="exponent-overflow"),
    ],
)
def test_integral_numbers_beyond_the_safe_range_decode_to_float(text: str, decoded: float) -> None:
    assert_exact(receive(text), decoded)


@pytest.mark.parametrize(
    ("value", "text", "decoded"),
    [
        roundtrip_case(1.5, "1.5", 1.5, id="fraction"),
        roundtrip_case(1.0, "1.0", 1.0, id="integral"),
        roundtrip_case(-0.0, "-0.0", -0.0, id="negative-zero"),
        roundtrip_case(1e300, "1e+300", 1e300, id="large"),
        roundtrip_case(5e-324, "5e-324", 5e-324, id="subnormal"),
        roundtrip_case(math.inf, '["inf"]', math.inf, id="inf"),
        roundtrip_case(-math.inf, '["-inf"]', -math.inf, id="-inf"),
        roundtrip_case(math.nan, '["nan"]', math.nan, id="nan"),
        roundtrip_case(
            [math.nan, {"i": math.inf}],
            '[[["nan"],{"i":["inf"]}]]',
            [math.nan, {"i": math.inf}],
            id="nested",
        ),
    ],
)
def test_float(value: float, text: str, decoded: float) -> None:
    check_row(value, text, decoded)


def test_decoding_an_int_too_large_for_a_double_gives_inf() -> None:
    assert_exact(decode([[10**400, -(10**400)]]), [math.inf, -math.inf])


def test_integral_number_from_javascript_is_an_int() -> None:
    assert_exact(receive("1"), 1)  # JavaScript sends the number 1.0 as "1"


@pytest.mark.parametrize("text", ["NaN", "[NaN]", '["date",NaN]', "Infinity", "-Infinity"])
def test_non_json_number_literals_are_rejected(text: str) -> None:
    with pytest.raises(RpcProtocolError, match="not valid JSON"):
        loads(text)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        pytest.param("", '""', id="empty"),
        pytest.param("foo", '"foo"', id="ascii"),
        pytest.param("héllo €", '"héllo €"', id="non-ascii"),
        pytest.param("😀", '"😀"', id="astral"),
        pytest.param("\ud800", '"\\ud800"', id="lone-high-surrogate"),
        pytest.param("a\udfffb", '"a\\udfffb"', id="lone-low-surrogate"),
        pytest.param('\x00\u2028\u2029\n"\\', '"\\u0000\u2028\u2029\\n\\"\\\\"', id="controls"),
    ],
)
def test_str(value: str, text: str) -> None:
    check_row(value, text, value)


def test_str_lone_surrogates_alone_are_escaped() -> None:
    value = ["é😀", "\ud800", {"\udfff": "a\u2028"}]
    text = '[["é😀","\\ud800",{"\\udfff":"a\u2028"}]]'
    check_row(value, text, value)
    assert text.encode().decode() == text  # UTF-8 carries it


def test_str_raw_utf8_and_surrogates_are_received() -> None:
    assert_exact(receive('"h\u00e9llo 😀"'), "héllo 😀")
    assert_exact(receive('"\\ud83d\\ude00"'), "😀")


@pytest.mark.parametrize(
    ("value", "text", "decoded"),
    [
        roundtrip_case([], "[[]]", [], id="empty"),
        roundtrip_case([1, [2]], "[[1,[[2]]]]", [1, [2]], id="nested"),
        roundtrip_case([[]], "[[[[]]]]", [[]], id="empty-inside"),
        roundtrip_case((1, "a"), '[[1,"a"]]', [1, "a"], id="tuple"),
        roundtrip_case(((),), "[[[[]]]]", [[]], id="nested-tuple"),
        roundtrip_case(["date", 1], '[["date",1]]', ["date", 1], id="looks-like-a-date"),
        roundtrip_case(["import", 0], '[["import",0]]', ["import", 0], id="looks-like-an-import"),
    ],
)
def test_list_and_tuple(value: Any, text: str, decoded: list[Any]) -> None:
    check_row(value, text, decoded)


class Key(str):
    pass


@pytest.mark.parametrize(
    ("value", "text", "decoded"),
    [
        roundtrip_case({}, "{}", {}, id="empty"),
        roundtrip_case(
            {"a": 1, "b": {"c": [True]}},
            '{"a":1,"b":{"c":[[true]]}}',
            {"a": 1, "b": {"c": [True]}},
            id="nested",
        ),
        roundtrip_case(
            {"": 1, "0": 2, "é": 3},
            '{"":1,"0":2,"é":3}',
            {"": 1, "0": 2, "é": 3},
            id="odd-keys",
        ),
        roundtrip_case(OrderedDict(x=1), '{"x":1}', {"x": 1}, id="dict-subclass"),
        roundtrip_case({Key("k"): 1}, '{"k":1}', {"k": 1}, id="str-subclass-key"),
    ],
)
def test_dict(value: Any, text: str, decoded: dict[str, Any]) -> None:
    check_row(value, text, decoded)


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        pytest.param({1: "x"}, "1", id="int"),
        pytest.param({None: "x"}, "None", id="none"),
        pytest.param({(1, 2): "x"}, r"\(1, 2\)", id="tuple"),
        pytest.param({b"k": "x"}, "b'k'", id="bytes"),
        pytest.param({"ok": {2.5: "x"}}, "2.5", id="nested"),
    ],
)
def test_dict_with_other_keys_is_not_sent(value: dict[Any, Any], shown: str) -> None:
    with pytest.raises(TypeError, match=f"non-string key {shown}: "):
        encode(value)


@dataclass
class Point:
    x: int
    y: Any = None


@dataclass(frozen=True, slots=True)
class Line:
    start: Point
    end: Point


@pytest.mark.parametrize(
    ("value", "text", "decoded"),
    [
        roundtrip_case(Point(1, 2), '{"x":1,"y":2}', {"x": 1, "y": 2}, id="fields-in-order"),
        roundtrip_case(
            Point(1, [undefined]),
            '{"x":1,"y":[[["undefined"]]]}',
            {"x": 1, "y": [undefined]},
            id="values-encoded",
        ),
        roundtrip_case(
            Line(Point(0), Point(1)),
            '{"start":{"x":0,"y":null},"end":{"x":1,"y":null}}',
            {"start": {"x": 0, "y": None}, "end": {"x": 1, "y": None}},
            id="nested-frozen-slots",
        ),
    ],
)
def test_dataclass(value: Any, text: str, decoded: dict[str, Any]) -> None:
    check_row(value, text, decoded)


def test_dataclass_class_is_not_sent() -> None:
    with pytest.raises(TypeError, match="Cannot serialize value of type type"):
        encode(Point)


# -- bytes and typed arrays


@pytest.mark.parametrize(
    ("value", "text", "decoded"),
    [
        roundtrip_case(b"hello!", '["bytes","aGVsbG8h"]', b"hello!", id="bytes"),
        roundtrip_case(b"", '["bytes",""]', b"", id="empty"),
        roundtrip_case(bytearray(b"hi"), '["bytes","aGk"]', b"hi", id="bytearray"),
        roundtrip_case(memoryview(b"hello")[1:], '["bytes","ZWxsbw"]', b"ello", id="memoryview"),
        roundtrip_case(
            bytes([1, 2, 3, 4, 5]),
            '["bytes","AQIDBAU"]',
            bytes([1, 2, 3, 4, 5]),
            id="padding-stripped",
        ),
        roundtrip_case(b"Hello=", '["bytes","SGVsbG89"]', b"Hello=", id="trailing-byte-61"),
        roundtrip_case(
            bytes(range(256)),
            '["bytes","' + base64.b64encode(bytes(range(256))).decode().rstrip("=") + '"]',
            bytes(range(256)),
            id="all-byte-values",
        ),
    ],
)
def test_bytes(value: Any, text: str, decoded: bytes) -> None:
    check_row(value, text, decoded)
    assert "=" not in text


@pytest.mark.parametrize(
    ("text", "decoded"),
    [
        pytest.param('["bytes","AQIDBAU="]', bytes([1, 2, 3, 4, 5]), id="padded"),
        pytest.param('["bytes","aGk="]', b"hi", id="padded-2"),
        pytest.param('["bytes","SGVsbG8","Uint8Array"]', b"Hello", id="explicit-uint8array"),
    ],
)
def test_bytes_received_forms(text: str, decoded: bytes) -> None:
    assert_exact(receive(text), decoded)


@pytest.mark.parametrize("text", ['["bytes","a"]', '["bytes","!!!!"]', '["bytes",1]', '["bytes"]'])
def test_bytes_malformed(text: str) -> None:
    with pytest.raises(RpcProtocolError, match="bytes"):
        receive(text)


@pytest.mark.parametrize("kind", sorted(TYPED_ARRAY_KINDS))
def test_typed_array_each_marker(kind: Any) -> None:
    size = TYPED_ARRAY_KINDS[kind]
    data = bytes(range(1, 2 * size + 1))  # two elements
    b64 = {1: "AQI", 2: "AQIDBA", 4: "AQIDBAUGBwg", 8: "AQIDBAUGBwgJCgsMDQ4PEA"}[size]
    text = f'["bytes","{b64}","{kind}"]'
    assert wire(TypedArray(kind, data)) == text
    assert_exact(receive(text), data if kind == "Uint8Array" else TypedArray(kind, data))


def test_typed_array_reference_vectors() -> None:
    # Uint16Array([1, 258]) and Uint32Array([0x01020304]): little-endian elements
    check_row(
        TypedArray("Uint16Array", bytes([1, 0, 2, 1])),
        '["bytes","AQACAQ","Uint16Array"]',
        TypedArray("Uint16Array", bytes([1, 0, 2, 1])),
    )
    check_row(
        TypedArray("Uint32Array", bytes([4, 3, 2, 1])),
        '["bytes","BAMCAQ","Uint32Array"]',
        TypedArray("Uint32Array", bytes([4, 3, 2, 1])),
    )
    check_row(
        TypedArray("ArrayBuffer", b"Hello"),
        '["bytes","SGVsbG8","ArrayBuffer"]',
        TypedArray("ArrayBuffer", b"Hello"),
    )


@pytest.mark.parametrize(
    ("kind", "length", "size"),
    [("Int16Array", 1, 2), ("Float32Array", 3, 4), ("BigUint64Array", 7, 8)],
)
def test_typed_array_misaligned_length_is_rejected(kind: str, length: int, size: int) -> None:
    message = f"Invalid byte length {length} for {kind}; expected a multiple of {size}"
    with pytest.raises(RpcProtocolError) as info:
        decode(["bytes", encode(bytes(length))[1], kind])
    assert info.value.message == message and info.value.name == "TypeError"
    with pytest.raises(ValueError, match=message):
        TypedArray(kind, bytes(length))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("marker", "message"),
    [
        pytest.param(
            "invalidUint8Array", "Unknown bytes type marker: invalidUint8Array", id="unknown"
        ),
        pytest.param("X" * 100, "Unknown bytes type marker: " + "X" * 64, id="long-truncated"),
        pytest.param(123, "Unknown bytes type marker type: number", id="number"),
        pytest.param(None, "Unknown bytes type marker type: object", id="null"),
        pytest.param(True, "Unknown bytes type marker type: boolean", id="boolean"),
    ],
)
def test_typed_array_bad_marker_is_rejected(marker: Any, message: str) -> None:
    with pytest.raises(RpcProtocolError) as info:
        decode(["bytes", "SGVsbG8", marker])
    assert info.value.message == message and info.value.name == "TypeError"


def test_typed_array_unknown_kind_cannot_be_built() -> None:
    with pytest.raises(ValueError, match="Unknown bytes type marker: Int128Array"):
        TypedArray("Int128Array", b"")  # type: ignore[arg-type]


# -- dates


@pytest.mark.parametrize(
    ("value", "text", "decoded"),
    [
        roundtrip_case(
            datetime(1970, 1, 1, 0, 0, 1, 234000, UTC),
            '["date",1234]',
            datetime(1970, 1, 1, 0, 0, 1, 234000, UTC),
            id="utc",
        ),
        roundtrip_case(
            datetime(1969, 12, 31, 23, 59, 59, tzinfo=UTC),
            '["date",-1000]',
            datetime(1969, 12, 31, 23, 59, 59, tzinfo=UTC),
            id="before-1970",
        ),
        roundtrip_case(
            datetime(2020, 1, 1, 1, tzinfo=timezone(timedelta(hours=1))),
            '["date",1577836800000]',
            datetime(2020, 1, 1, tzinfo=UTC),
            id="other-timezone",
        ),
        roundtrip_case(
            datetime(1970, 1, 1, 0, 0, 0, 1500, UTC),
            '["date",1.5]',
            datetime(1970, 1, 1, 0, 0, 0, 1500, UTC),
            id="sub-millisecond",
        ),
        roundtrip_case(
            datetime(1, 1, 1, tzinfo=UTC),
            '["date",-62135596800000]',
            datetime(1, 1, 1, tzinfo=UTC),
            id="year-1",
        ),
    ],
)
def test_aware_datetime(value: datetime, text: str, decoded: datetime) -> None:
    check_row(value, text, decoded)
    assert receive(text).tzinfo is UTC


def test_naive_datetime_is_not_sent() -> None:
    with pytest.raises(TypeError, match="naive datetime"):
        encode(datetime(2020, 1, 1))
    with pytest.raises(TypeError, match="naive datetime"):
        encode({"when": [datetime(2020, 1, 1)]})


@pytest.mark.parametrize(
    ("value", "text", "decoded"),
    [
        roundtrip_case(INVALID_DATE, '["date",null]', INVALID_DATE, id="invalid-date"),
        roundtrip_case(
            JsDate(8_640_000_000_000_000),
            '["date",8640000000000000]',
            JsDate(8_640_000_000_000_000),
            id="largest-js-date",
        ),
        roundtrip_case(
            JsDate(-62135596800001),
            '["date",-62135596800001]',
            JsDate(-62135596800001),
            id="before-year-1",
        ),
    ],
)
def test_invalid_date_and_jsdate(value: JsDate, text: str, decoded: JsDate) -> None:
    check_row(value, text, decoded)
    assert decoded.valid is (decoded.ms is not None)


@pytest.mark.parametrize("ms", ["8640000000000001", "-8640000000000001", "1e300", "1" + "0" * 400])
def test_date_beyond_javascript_range_is_invalid(ms: str) -> None:
    assert receive(f'["date",{ms}]') is INVALID_DATE


# -- errors (the name table both ways; the wire forms are in test_codec.py)


class Custom(Exception):
    pass


@pytest.mark.parametrize(
    ("exc", "text"),
    [
        pytest.param(TypeError("m"), '["error","TypeError","m"]', id="TypeError"),
        pytest.param(ValueError("m"), '["error","RangeError","m"]', id="ValueError"),
        pytest.param(UnicodeError("m"), '["error","RangeError","m"]', id="ValueError-subclass"),
        pytest.param(IndexError("m"), '["error","RangeError","m"]', id="IndexError"),
        pytest.param(OverflowError("m"), '["error","RangeError","m"]', id="OverflowError"),
        pytest.param(NameError("m"), '["error","ReferenceError","m"]', id="NameError"),
        pytest.param(
            UnboundLocalError("m"), '["error","ReferenceError","m"]', id="UnboundLocalError"
        ),
        pytest.param(SyntaxError("m"), '["error","SyntaxError","m"]', id="SyntaxError"),
        pytest.param(KeyError("k"), '["error","Error","\'k\'"]', id="KeyError"),
        pytest.param(RuntimeError("m"), '["error","Error","m"]', id="RuntimeError"),
        pytest.param(ZeroDivisionError("m"), '["error","Error","m"]', id="ZeroDivisionError"),
        pytest.param(Custom("m"), '["error","Error","m"]', id="custom"),
        pytest.param(Exception(), '["error","Error",""]', id="no-message"),
        pytest.param(RpcError("m"), '["error","Error","m"]', id="RpcError"),
        pytest.param(RpcRangeError("m"), '["error","RangeError","m"]', id="RpcRangeError"),
        pytest.param(RpcError("m", name="MyError"), '["error","MyError","m"]', id="RpcError-named"),
        pytest.param(RpcTypeError("m", name="Odd"), '["error","Odd","m"]', id="name-wins"),
    ],
)
def test_exception_names_sent(exc: BaseException, text: str) -> None:
    assert wire(exc) == text


@pytest.mark.parametrize(
    ("name", "cls", "builtin"),
    [
        pytest.param("Error", RpcError, Exception, id="Error"),
        pytest.param("TypeError", RpcTypeError, TypeError, id="TypeError"),
        pytest.param("RangeError", RpcRangeError, ValueError, id="RangeError"),
        pytest.param("ReferenceError", RpcReferenceError, NameError, id="ReferenceError"),
        pytest.param("SyntaxError", RpcSyntaxError, RpcError, id="SyntaxError"),
        pytest.param("EvalError", RpcEvalError, RpcError, id="EvalError"),
        pytest.param("URIError", RpcURIError, RpcError, id="URIError"),
        pytest.param("AggregateError", RpcAggregateError, RpcError, id="AggregateError"),
        pytest.param("MyError", RpcError, RpcError, id="unknown-name"),
        pytest.param("constructor", RpcError, RpcError, id="prototype-name-constructor"),
        pytest.param("__proto__", RpcError, RpcError, id="prototype-name-proto"),
        pytest.param("toString", RpcError, RpcError, id="prototype-name-toString"),
    ],
)
def test_exception_names_received(name: str, cls: type[RpcError], builtin: type) -> None:
    got = receive(f'["error","{name}","the message"]')
    assert type(got) is cls and isinstance(got, builtin)
    assert (got.name, got.message, got.props, got.stack) == (name, "the message", {}, None)
    assert wire(got) == f'["error","{name}","the message"]'


def test_exception_cause_is_sent() -> None:
    try:
        try:
            raise KeyError("inner")
        except KeyError as inner:
            raise ValueError("outer") from inner
    except ValueError as exc:
        text = wire(exc)
    assert text == '["error","RangeError","outer",null,{"cause":["error","Error","\'inner\'"]}]'
    got = receive(text)
    assert got == RpcRangeError("outer", props={"cause": RpcError("'inner'")})


def test_implicit_context_is_not_a_cause() -> None:
    try:
        try:
            raise KeyError("inner")
        except KeyError:
            raise ValueError("outer")  # noqa: B904 - the point of the test
    except ValueError as exc:
        assert wire(exc) == '["error","RangeError","outer"]'


def test_exception_group_is_an_aggregate_error() -> None:
    group = ExceptionGroup("agg", [TypeError("a"), ValueError("b")])
    text = (
        '["error","AggregateError","agg",null,'
        '{"errors":[[["error","TypeError","a"],["error","RangeError","b"]]]}]'
    )
    assert wire(group) == text
    got = receive(text)
    assert type(got) is RpcAggregateError
    assert got.errors == [RpcTypeError("a"), RpcRangeError("b")]
    assert type(got.errors[1]) is RpcRangeError


def test_exception_props_are_public_attributes() -> None:
    exc = RuntimeError("boom")
    exc.code = "E1"  # type: ignore[attr-defined]
    exc._hidden = 1  # type: ignore[attr-defined]
    exc.add_note("a note")
    text = '["error","Error","boom",null,{"code":"E1"}]'
    assert wire(exc) == text
    assert receive(text) == RpcError("boom", props={"code": "E1"})


# -- URL, Headers, Request, Response


def test_url() -> None:
    check_row(
        URL("https://example.com/path?q=1"),
        '["url","https://example.com/path?q=1"]',
        URL("https://example.com/path?q=1"),
    )
    assert wire("https://example.com/") == '"https://example.com/"'  # a str is never a URL


@pytest.mark.parametrize("text", ['["url"]', '["url",1]', '["url","a","b"]'])
def test_url_malformed(text: str) -> None:
    with pytest.raises(RpcProtocolError, match="invalid url"):
        receive(text)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        pytest.param(Headers(), '["headers",[]]', id="empty"),
        pytest.param(
            Headers([("content-type", "text/plain"), ("x-custom", "hello")]),
            '["headers",[["content-type","text/plain"],["x-custom","hello"]]]',
            id="pairs",
        ),
        pytest.param(
            Headers({"X-A": "1"}), '["headers",[["X-A","1"]]]', id="mapping-names-as-given"
        ),
        pytest.param(
            Headers([("a", "1"), ("a", "2")]), '["headers",[["a","1"],["a","2"]]]', id="repeated"
        ),
    ],
)
def test_headers(value: Headers, text: str) -> None:
    check_row(value, text, value)


@pytest.mark.parametrize(
    "text", ['["headers"]', '["headers",[["a"]]]', '["headers",[["a",1]]]', '["headers",{"a":"b"}]']
)
def test_headers_malformed(text: str) -> None:
    with pytest.raises(RpcProtocolError, match="invalid headers"):
        receive(text)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        pytest.param(
            Request("http://example.com/", method="HEAD"),
            '["request","http://example.com/",{"method":"HEAD"}]',
            id="head",
        ),
        pytest.param(
            Request("http://example.com/", method="DELETE", headers=Headers([("x-foo", "bar")])),
            '["request","http://example.com/",{"method":"DELETE","headers":[["x-foo","bar"]]}]',
            id="delete-headers",
        ),
        pytest.param(
            Request("http://example.com/", extra={"redirect": "manual"}),
            '["request","http://example.com/",{"redirect":"manual"}]',
            id="extra",
        ),
        pytest.param(Request("http://e/"), '["request","http://e/",{}]', id="defaults"),
        pytest.param(
            Request("http://e/", method="POST", body="hi"),
            '["request","http://e/",{"method":"POST","body":"hi"}]',
            id="text-body",
        ),
        pytest.param(
            Request("http://e/", method="PUT", body=b"hi"),
            '["request","http://e/",{"method":"PUT","body":["bytes","aGk"]}]',
            id="bytes-body",
        ),
    ],
)
def test_request(value: Request, text: str) -> None:
    check_row(value, text, value)


@pytest.mark.parametrize(
    "text",
    [
        '["request","http://e/"]',
        '["request",1,{}]',
        '["request","http://e/",null]',
        '["request","http://e/",{"signal":["undefined"]}]',
        '["request","http://e/",{"headers":{"a":"b"}}]',
        '["request","http://e/",{"body":42}]',
    ],
)
def test_request_malformed(text: str) -> None:
    with pytest.raises(RpcProtocolError):
        receive(text)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        pytest.param(
            Response(None, status_text="OK"), '["response",null,{"statusText":"OK"}]', id="ok"
        ),
        pytest.param(
            Response(None, status=404, status_text="Not Found"),
            '["response",null,{"status":404,"statusText":"Not Found"}]',
            id="404",
        ),
        pytest.param(
            Response(
                None, status=201, status_text="Hello", headers=Headers([("x-custom", "value")])
            ),
            '["response",null,{"status":201,"statusText":"Hello","headers":[["x-custom","value"]]}]',
            id="headers",
        ),
        pytest.param(Response("text"), '["response","text",{}]', id="text-body"),
        pytest.param(Response(b"\x00\x01"), '["response",["bytes","AAE"],{}]', id="bytes-body"),
    ],
)
def test_response(value: Response, text: str) -> None:
    check_row(value, text, value)


def test_response_with_websocket_is_rejected() -> None:
    with pytest.raises(
        RpcProtocolError, match=r"Can't deserialize a Response containing a webSocket\."
    ):
        receive('["response",null,{"webSocket":1}]')


# -- capabilities: RpcTarget instances, callables, stubs and promises (through a session)


class Thing(RpcTarget):
    def hello(self) -> str:
        return "hi"


class Api(RpcTarget):
    def __init__(self) -> None:
        self.seen: list[Any] = []
        self.thing = Thing()

    def make(self) -> Thing:
        return self.thing

    def twice(self) -> list[Thing]:
        return [self.thing, self.thing]

    def function(self) -> Any:
        return lambda x: x + 1

    def bound(self) -> Any:
        return self.thing.hello

    def num(self) -> int:
        return 7

    def obj(self) -> dict[str, int]:
        return {"a": 5}

    def take(self, x: Any) -> str:
        self.seen.append(x)
        return type(x).__name__

    def echo(self, x: Any) -> Any:
        return x

    async def call_it(self, stub: Any) -> Any:
        return await stub.hello()

    def unsendable(self) -> Any:
        return {1, 2}


def answers(peer: ScriptedPeer) -> dict[int, Any]:
    """The session's resolve/reject frames by id, as [tag, expr]."""
    return {f[1]: [f[0], f[2]] for f in peer.received() if f[0] in ("resolve", "reject")}


async def ask(peer: ScriptedPeer, *exprs: Any, first: int = 1) -> dict[int, Any]:
    """Push each expression (as ids ``first``, ``first + 1``, ...), pull them all, return the
    answers by id, then release the pushes (as a peer does once it has its answers)."""
    ids = range(first, first + len(exprs))
    peer.send(*(["push", e] for e in exprs), *(["pull", i] for i in ids))
    await peer.settle()
    got = answers(peer)
    peer.send(*(["release", i, 1] for i in ids))
    await peer.settle()
    return {i: got.get(i) for i in ids}


def call(method: str, *args: Any) -> list[Any]:
    return ["pipeline", 0, [method], list(args)]


@pytest.mark.parametrize(
    ("method", "answer"),
    [
        pytest.param("make", ["export", -1], id="rpc-target"),
        pytest.param("function", ["export", -1], id="lambda"),
        pytest.param("bound", ["export", -1], id="bound-method"),
        pytest.param("twice", [[["export", -1], ["export", -2]]], id="fresh-id-each-time"),
    ],
)
async def test_targets_and_callables_are_exported(method: str, answer: Any) -> None:
    async with ScriptedPeer(Api()) as peer:
        assert (await ask(peer, call(method)))[1] == ["resolve", answer]
        assert peer.session.broken is None


def test_targets_and_callables_need_a_session() -> None:
    for value in (Thing(), lambda: 1, Thing().hello):
        with pytest.raises(TypeError, match="without an RPC session"):
            encode(value)
    with pytest.raises(TypeError, match="Cannot serialize value of type type"):
        encode(Thing)  # a class is not a function capability


async def test_exported_function_is_called_with_an_empty_path() -> None:
    async with ScriptedPeer(Api()) as peer:
        await ask(peer, call("function"))
        got = await ask(peer, ["pipeline", -1, [], [41]], first=2)
        assert got[2] == ["resolve", 42]


async def test_received_export_is_a_stub_and_goes_back_as_import() -> None:
    api = Api()
    async with ScriptedPeer(api) as peer:
        got = await ask(peer, call("echo", ["export", -1]))
        assert got[1] == ["resolve", ["import", -1]]
        got = await ask(peer, call("take", ["export", -2]), first=2)
        assert got[2] == ["resolve", "RpcStub"] and type(api.seen[0]) is RpcStub


async def test_received_import_is_a_stub_for_our_own_export() -> None:
    api = Api()
    async with ScriptedPeer(api) as peer:
        await ask(peer, call("make"))  # our export -1: api.thing
        got = await ask(
            peer, call("take", ["import", -1]), call("call_it", ["import", -1]), first=2
        )
        assert got == {2: ["resolve", "RpcStub"], 3: ["resolve", "hi"]}
        assert type(api.seen[0]) is RpcStub  # a stub calling api.thing, not api.thing itself


@pytest.mark.parametrize(
    ("first", "ref", "delivered"),
    [
        pytest.param(call("num"), ["pipeline", 1], 7, id="pipeline"),
        pytest.param(call("obj"), ["pipeline", 1, ["a"]], 5, id="pipeline-path"),
        pytest.param(call("obj"), ["pipeline", 1], {"a": 5}, id="pipeline-object"),
    ],
)
async def test_received_pipeline_is_delivered_as_its_value(
    first: Any, ref: Any, delivered: Any
) -> None:
    api = Api()
    async with ScriptedPeer(api) as peer:
        got = await ask(peer, first, call("take", ref))
        assert got[2] == ["resolve", type(delivered).__name__]
        assert api.seen == [delivered]


async def test_received_promise_is_delivered_as_its_value() -> None:
    api = Api()
    async with ScriptedPeer(api) as peer:
        peer.send(["push", call("take", ["promise", -1])], ["pull", 1])
        await peer.settle()
        assert api.seen == [] and answers(peer) == {}  # waits for the promise
        peer.send(["resolve", -1, {"v": [[1, 2]]}])
        await peer.settle()
        assert api.seen == [{"v": [1, 2]}] and answers(peer) == {1: ["resolve", "dict"]}


async def test_received_promise_rejection_rejects_the_call() -> None:
    api = Api()
    async with ScriptedPeer(api) as peer:
        peer.send(["push", call("take", ["promise", -1])], ["pull", 1])
        peer.send(["reject", -1, ["error", "RangeError", "no"]])
        await peer.settle()
        assert api.seen == [] and answers(peer) == {1: ["reject", ["error", "RangeError", "no"]]}


async def test_stubs_and_promises_sent_to_the_peer() -> None:
    async with ScriptedPeer() as peer, ScriptedPeer() as other:
        main = peer.session.main
        pending = main.get()  # push 1 (not awaited: a pending result of this peer)
        main.take(pending)
        main.take(pending.x)
        main.take(Thing())
        main.take(lambda: 0)

        async def later() -> int:
            return 3

        main.take(RpcPromise.from_awaitable(later()))
        # a stub from another session (sent by push 7), one from this peer (got by push 8)
        elsewhere = asyncio.ensure_future(other.session.main.get_stub())
        await other.settle()
        other.send(["resolve", 1, ["export", -9]])
        main.take(await elsewhere)
        fetched = asyncio.ensure_future(main.get_stub())
        await peer.settle()
        peer.send(["resolve", 8, ["export", -5]])
        main.take(await fetched)
        await peer.settle()
        takes = [f[1][3][0] for f in peer.received() if f[0] == "push" and f[1][2] == ["take"]]
        assert takes == [
            ["pipeline", 1],
            ["pipeline", 1, ["x"]],
            ["export", -1],
            ["export", -2],
            ["promise", -3],
            ["export", -4],
            ["import", -5],
        ]
        assert ["resolve", -3, 3] in peer.received()  # the local promise is resolved unasked


# -- stripped object keys


@pytest.mark.parametrize("key", sorted(PROTO_KEYS))
def test_prototype_keys_are_stripped_on_receipt(key: str) -> None:
    assert_exact(decode({key: 1, "k": 2}), {"k": 2})
    got = decode(["error", "Error", "m", None, {key: 1, "k": 2}])
    assert got.props == {"k": 2}
    assert wire({key: 1}) == f'{{"{key}":1}}'  # sent as they are


def test_prototype_keys_reference_vector() -> None:
    assert_exact(receive('{"__proto__":{"x":1},"toJSON":1,"k":2}'), {"k": 2})
    assert_exact(receive('[[{"constructor":{"a":1},"b":[[{"valueOf":2}]]}]]'), [{"b": [{}]}])


async def test_stubs_under_stripped_keys_are_released() -> None:
    api = Api()
    async with ScriptedPeer(api) as peer:
        got = await ask(peer, call("take", {"__proto__": ["export", -1], "k": 1}))
        assert got[1] == ["resolve", "dict"] and api.seen == [{"k": 1}]
        assert ["release", -1, 1] in peer.received()
        assert peer.session.stats() == CLEAN


# -- everything else is not sent


@pytest.mark.parametrize(
    ("value", "name"),
    [
        pytest.param({1, 2}, "set", id="set"),
        pytest.param(frozenset(), "frozenset", id="frozenset"),
        pytest.param(Decimal("1.5"), "Decimal", id="Decimal"),
        pytest.param(date(2020, 1, 1), "date", id="date"),
        pytest.param(time(1), "time", id="time"),
        pytest.param(timedelta(1), "timedelta", id="timedelta"),
        pytest.param(1j, "complex", id="complex"),
        pytest.param(object(), "object", id="object"),
        pytest.param([{"deep": {3}}], "set", id="nested"),
    ],
)
def test_other_values_are_not_sent(value: Any, name: str) -> None:
    with pytest.raises(TypeError, match=f"Cannot serialize value of type {name}"):
        encode(value)


async def test_unsendable_result_rejects_the_call() -> None:
    async with ScriptedPeer(Api()) as peer:
        got = await ask(peer, call("unsendable"))
        assert got[1] == [
            "reject",
            ["error", "TypeError", "Cannot serialize value of type set: {1, 2}"],
        ]
        assert peer.session.broken is None


async def test_unsendable_argument_rejects_the_call_and_sends_nothing() -> None:
    async with ScriptedPeer() as peer:
        with pytest.raises(TypeError, match="Cannot serialize value of type set"):
            await peer.session.main.take({1})
        await peer.settle()
        assert peer.received() == []


@pytest.mark.parametrize("kind", ["list", "dict"])
def test_cycles_are_rejected_on_send(kind: str) -> None:
    cyclic: Any = [] if kind == "list" else {}
    if kind == "list":
        cyclic.append(cyclic)
    else:
        cyclic["self"] = cyclic
    with pytest.raises(
        TypeError,
        match=r"Serialization exceeded maximum allowed depth\. \(Does the message contain cycles",
    ):
        encode(cyclic)


# -- the reference's SERIALIZE_TEST_CASES (wire text <-> value, both ways)

REFERENCE_VECTORS = [
    ("123", 123),
    ("null", None),
    ('"foo"', "foo"),
    ("true", True),
    ('{"foo":123}', {"foo": 123}),
    ('{"foo":{"bar":123,"baz":456},"qux":789}', {"foo": {"bar": 123, "baz": 456}, "qux": 789}),
    ("[[123]]", [123]),
    ("[[[[123,456]]]]", [[123, 456]]),
    ('{"foo":[[123]]}', {"foo": [123]}),
    ('{"foo":[[123]],"bar":[[456,789]]}', {"foo": [123], "bar": [456, 789]}),
    ('["bigint","123"]', BigInt(123)),
    ('["date",1234]', datetime(1970, 1, 1, 0, 0, 1, 234000, UTC)),
    ('["bytes","aGVsbG8h"]', b"hello!"),
    ('["undefined"]', undefined),
    ('["error","Error","the message"]', RpcError("the message")),
    ('["error","TypeError","the message"]', RpcTypeError("the message")),
    ('["error","RangeError","the message"]', RpcRangeError("the message")),
    ('["inf"]', math.inf),
    ('["-inf"]', -math.inf),
    ('["nan"]', math.nan),
    ('["url","https://example.com/path?q=1"]', URL("https://example.com/path?q=1")),
    ('["headers",[]]', Headers()),
    (
        '["headers",[["content-type","text/plain"],["x-custom","hello"]]]',
        Headers([("content-type", "text/plain"), ("x-custom", "hello")]),
    ),
    (
        '["request","http://example.com/",{"method":"HEAD"}]',
        Request("http://example.com/", method="HEAD"),
    ),
    (
        '["request","http://example.com/",{"method":"DELETE","headers":[["x-foo","bar"]]}]',
        Request("http://example.com/", method="DELETE", headers=Headers([("x-foo", "bar")])),
    ),
    (
        '["request","http://example.com/",{"redirect":"manual"}]',
        Request("http://example.com/", extra={"redirect": "manual"}),
    ),
    ('["response",null,{"statusText":"OK"}]', Response(None, status_text="OK")),
    (
        '["response",null,{"status":404,"statusText":"Not Found"}]',
        Response(None, status=404, status_text="Not Found"),
    ),
    (
        '["response",null,{"status":201,"statusText":"Hello","headers":[["x-custom","value"]]}]',
        Response(None, status=201, status_text="Hello", headers=Headers([("x-custom", "value")])),
    ),
    ('["bytes","AQACAQ","Uint16Array"]', TypedArray("Uint16Array", bytes([1, 0, 2, 1]))),
    ('["bytes","SGVsbG8","ArrayBuffer"]', TypedArray("ArrayBuffer", b"Hello")),
    ('["date",null]', INVALID_DATE),
]


@pytest.mark.parametrize(
    ("text", "value"), [pytest.param(t, v, id=t) for t, v in REFERENCE_VECTORS]
)
def test_reference_vector(text: str, value: Any) -> None:
    check_row(value, text, value)


@pytest.mark.parametrize(
    "text",
    [
        '{"unclosed": ',
        "[]",
        '["x"]',
        '["unknown_type","param"]',
        '["regexp","a","g"]',
        "[1,2]",
        "[null]",
        "[[1],[2]]",
        '["undefined",1]',
        '["inf",1]',
        '["date"]',
        '["date","x"]',
        '["date",true]',
        '["date",1,2]',
        '["error"]',
        '["error","Error"]',
        '["error",1,"m"]',
        '["error","Error",null]',
        '["bigint"]',
        '["bigint",123]',
        '["bigint","1.5"]',
        '["response",null]',
        '{"a":["x"]}',
        '[[1,["x"]]]',
    ],
)
def test_malformed_input_is_rejected(text: str) -> None:
    with pytest.raises(RpcProtocolError):
        receive(text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[]", "unknown special value: []"),
        ('["unknown_type", "param"]', 'unknown special value: ["unknown_type","param"]'),
        ('["x",{"a":[1]}]', 'unknown special value: ["x",{"a":[1]}]'),
    ],
)
def test_unknown_forms_have_the_reference_message(text: str, message: str) -> None:
    with pytest.raises(RpcProtocolError) as info:
        receive(text)
    assert (info.value.name, info.value.message) == ("TypeError", message)


# -- paths (docs/values.md, "Paths")


class Holder(RpcTarget):
    limit = 3

    def __init__(self) -> None:
        self.secret = 1

    def data(self) -> dict[str, Any]:
        return {"a": [10, 20], "1": "one", "constructor": 6, "toJSON": 7, "s": "str", "t": (1, 2)}

    def method(self) -> int:
        return 1

    @property
    def prop(self) -> int:
        return 2

    def _private(self) -> int:
        return 3


@pytest.mark.parametrize(
    ("path", "answer"),
    [
        pytest.param(["a", 1], ["resolve", 20], id="list-index"),
        pytest.param(["a", "1"], ["resolve", ["undefined"]], id="list-string-index"),
        pytest.param(["a", "length"], ["resolve", ["undefined"]], id="list-length"),
        pytest.param(["a", -1], ["resolve", ["undefined"]], id="list-negative"),
        pytest.param(["a", 2], ["resolve", ["undefined"]], id="list-out-of-range"),
        pytest.param(["1"], ["resolve", "one"], id="dict-key"),
        pytest.param([1], ["resolve", "one"], id="dict-int-part"),
        pytest.param(["missing"], ["resolve", ["undefined"]], id="dict-missing"),
        pytest.param(["constructor"], ["resolve", ["undefined"]], id="dict-prototype-key"),
        pytest.param(["toJSON"], ["resolve", 7], id="dict-toJSON-not-filtered-in-paths"),
        pytest.param(["s", "length"], ["resolve", ["undefined"]], id="str"),
        pytest.param(["t", 0], ["resolve", 1], id="tuple-index"),
    ],
)
async def test_path_through_data(path: list[Any], answer: Any) -> None:
    async with ScriptedPeer(Holder()) as peer:
        got = await ask(peer, call("data"), ["pipeline", 1, path])
        assert got[2] == answer


@pytest.mark.parametrize(
    ("path", "args", "answer"),
    [
        pytest.param(["method"], [], ["resolve", 1], id="method"),
        pytest.param(["prop"], None, ["resolve", 2], id="property"),
        pytest.param(["limit"], None, ["resolve", ["undefined"]], id="class-constant"),
        pytest.param(["_private"], None, ["resolve", ["undefined"]], id="private"),
        pytest.param(["on_dispose"], None, ["resolve", ["undefined"]], id="rpc-target-member"),
        pytest.param(["constructor"], None, ["resolve", ["undefined"]], id="prototype-name"),
        pytest.param(
            ["nope"],
            [],
            ["reject", ["error", "TypeError", "'nope' is not a function."]],
            id="missing-call",
        ),
        pytest.param(
            ["prop"],
            [],
            ["reject", ["error", "TypeError", "'prop' is not a function."]],
            id="call-non-function",
        ),
    ],
)
async def test_path_on_an_rpc_target(path: list[Any], args: list[Any] | None, answer: Any) -> None:
    async with ScriptedPeer(Holder()) as peer:
        expr = ["pipeline", 0, path] if args is None else ["pipeline", 0, path, args]
        got = await ask(peer, expr)
        assert got[1] == answer


async def test_path_to_an_instance_attribute_raises() -> None:
    async with ScriptedPeer(Holder()) as peer:
        got = await ask(peer, ["pipeline", 0, ["secret"]])
        tag, error = got[1]
        assert tag == "reject" and error[:2] == ["error", "TypeError"]
        assert error[2].startswith("Attempted to access property 'secret', which is an instance")
