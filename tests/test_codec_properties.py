"""Properties of the codec: decoding what was encoded gives the value back, and no incoming
text, however odd, crashes or hangs a session.

The round-trip identity is ``decode(encode(v)) == received(v)``, compared with exact types,
where ``received`` is what docs/values.md says a peer reading the wire form gets:

- ``int`` beyond +/-(2**53 - 1) -> ``BigInt`` of the same value (a bigint on the wire);
- ``tuple`` -> ``list``; ``bytearray``/``memoryview`` and ``TypedArray("Uint8Array")`` -> ``bytes``;
- an aware ``datetime`` -> the same instant as a ``datetime`` in UTC;
- everything else (``None``, ``undefined``, bools, floats including nan, inf and -0.0, strings
  including lone surrogates, ``BigInt``, other typed arrays, dates, errors built by
  ``make_error``, lists, dicts) -> itself.
"""

from __future__ import annotations

import asyncio
import json
import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from codec_impls import codec_impl  # noqa: F401 (the fixture: compiled and pure codec)
from helpers import assert_exact
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from capnweb import (
    INVALID_DATE,
    URL,
    BigInt,
    Headers,
    JsDate,
    RpcDisconnectedError,
    RpcError,
    RpcTarget,
    Session,
    TypedArray,
    memory_pair,
    undefined,
)
from capnweb._codec import PROTO_KEYS, decode, dumps, encode, loads
from capnweb._values import TYPED_ARRAY_KINDS
from capnweb.errors import make_error

pytestmark = [pytest.mark.timeout(120), pytest.mark.usefixtures("codec_impl")]

MAX_SAFE = 2**53 - 1

# -- strategies for plain values

text = st.text(
    st.one_of(
        st.characters(exclude_categories=()),
        st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF, exclude_categories=()),
    ),
    max_size=12,
)
keys = text.filter(lambda k: k not in PROTO_KEYS)
ints = st.one_of(
    st.integers(),
    st.integers(-MAX_SAFE - 2, -MAX_SAFE + 2),
    st.integers(MAX_SAFE - 2, MAX_SAFE + 2),
    st.integers(-(2**300), 2**300),
)
floats = st.one_of(st.floats(), st.sampled_from([0.0, -0.0, math.inf, -math.inf, math.nan]))


@st.composite
def typed_arrays(draw: st.DrawFn) -> TypedArray:
    kind = draw(st.sampled_from(sorted(TYPED_ARRAY_KINDS)))
    size = TYPED_ARRAY_KINDS[kind]
    return TypedArray(kind, draw(st.binary(max_size=4)) * size)  # type: ignore[arg-type]


datetimes = st.builds(
    lambda dt, ms, offset: (dt.replace(microsecond=ms * 1000) + offset).replace(
        tzinfo=timezone(offset)
    ),
    st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31)),
    st.integers(0, 999),
    st.sampled_from([timedelta(0), timedelta(hours=5, minutes=30), timedelta(hours=-8)]),
)
js_dates = st.one_of(
    st.just(INVALID_DATE),
    st.integers(-8_640_000_000_000_000, -62_135_596_800_001).map(JsDate),
    st.integers(253_402_300_800_000, 8_640_000_000_000_000).map(JsDate),
)
error_names = st.one_of(
    st.sampled_from(
        [
            "Error",
            "TypeError",
            "RangeError",
            "ReferenceError",
            "SyntaxError",
            "EvalError",
            "URIError",
            "AggregateError",
            "constructor",
        ]
    ),
    text,
)

scalars = st.one_of(
    st.none(),
    st.just(undefined),
    st.booleans(),
    ints,
    ints.map(BigInt),
    floats,
    text,
    st.binary(max_size=16),
    st.binary(max_size=16).map(bytearray),
    st.binary(max_size=16).map(lambda b: memoryview(b)),
    typed_arrays(),
    datetimes,
    js_dates,
    text.map(URL),
    st.lists(st.tuples(text, text), max_size=3).map(Headers),
)


def containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    props = st.dictionaries(
        keys.filter(lambda k: k not in ("name", "message", "stack")), children, max_size=3
    )
    return st.one_of(
        st.lists(children, max_size=4),
        st.lists(children, max_size=4).map(tuple),
        st.dictionaries(keys, children, max_size=4),
        st.builds(make_error, error_names, text, props),
    )


values = st.recursive(scalars, containers, max_leaves=25)


def received(v: Any) -> Any:
    """What a peer decodes from ``encode(v)`` (see the module docstring)."""
    t = type(v)
    if t is int and not -MAX_SAFE <= v <= MAX_SAFE:
        return BigInt(v)
    if t is list or t is tuple:
        return [received(x) for x in v]
    if t is dict:
        return {k: received(x) for k, x in v.items()}
    if t is bytearray or t is memoryview:
        return bytes(v)
    if t is TypedArray and v.kind == "Uint8Array":
        return v.data
    if t is datetime:
        return v.astimezone(UTC)
    if isinstance(v, RpcError):
        return make_error(v.name, v.message, received(v.props))
    return v


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(values)
def test_decode_of_encode_is_what_a_peer_receives(value: Any) -> None:
    assert_exact(decode(encode(value)), received(value))


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(values)
def test_round_trip_through_json_text(value: Any) -> None:
    text = dumps(encode(value))
    assert text.encode().decode() == text  # UTF-8 can carry it: lone surrogates are escaped
    assert_exact(decode(loads(text)), received(value))
    assert_exact(decode(loads(text.encode())), received(value))


def without_uint8_marker(wire: Any) -> Any:
    """``wire`` with ``["bytes", b64, "Uint8Array"]`` written the usual way, ``["bytes", b64]``."""
    if type(wire) is dict:
        return {k: without_uint8_marker(x) for k, x in wire.items()}
    if type(wire) is not list or not wire:
        return wire
    if len(wire) == 1 and type(wire[0]) is list:  # an escaped array: its elements are values
        return [[without_uint8_marker(x) for x in wire[0]]]
    if wire[:1] == ["bytes"] and wire[2:] == ["Uint8Array"]:
        return wire[:2]
    return [wire[0], *(without_uint8_marker(x) for x in wire[1:])]


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(values)
def test_echoing_what_was_received_sends_the_same_wire_form(value: Any) -> None:
    wire = encode(value)
    assert dumps(encode(decode(wire))) == dumps(without_uint8_marker(wire))


# -- random input never crashes or hangs a session

json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-5, 5),
        st.integers(),
        st.floats(allow_nan=False, allow_infinity=False),
        text,
    ),
    lambda c: st.one_of(st.lists(c, max_size=4), st.dictionaries(text, c, max_size=4)),
    max_leaves=15,
)
EXPRESSION_TAGS = [
    "undefined",
    "inf",
    "-inf",
    "nan",
    "bigint",
    "date",
    "bytes",
    "error",
    "url",
    "headers",
    "request",
    "response",
    "import",
    "pipeline",
    "export",
    "promise",
    "remap",
    "readable",
    "writable",
    "blob",
    "regexp",
]
MESSAGE_TAGS = ["push", "pull", "resolve", "reject", "release", "abort", "stream", "pipe", "x"]
small_ids = st.integers(-3, 3)
paths = st.lists(st.one_of(st.sampled_from(["echo", "make", "hello", "constructor"]), small_ids))
expressions = st.recursive(
    json_values,
    lambda c: st.one_of(
        st.lists(c, max_size=3).map(lambda xs: [xs]),
        st.dictionaries(st.sampled_from(["a", "__proto__", "toJSON", "body"]), c, max_size=3),
        st.tuples(st.sampled_from(EXPRESSION_TAGS), st.lists(c, max_size=4)).map(
            lambda t: [t[0], *t[1]]
        ),
        st.tuples(st.sampled_from(["import", "pipeline"]), small_ids, paths, st.lists(c)).map(
            lambda t: [t[0], t[1], t[2], t[3]]
        ),
        st.tuples(st.sampled_from(["export", "promise"]), small_ids).map(list),
    ),
    max_leaves=12,
)
message_args = st.lists(st.one_of(small_ids, expressions), max_size=3)
messages = st.one_of(
    st.tuples(st.sampled_from(MESSAGE_TAGS), message_args).map(lambda t: [t[0], *t[1]]),
    expressions,
    json_values,
)
texts = st.one_of(
    messages.map(json.dumps),
    st.text(max_size=40),
    messages.map(lambda m: json.dumps(m)[:-1]),  # truncated
)


class Echo(RpcTarget):
    def echo(self, x: Any) -> Any:
        return x

    def make(self) -> Echo:
        return Echo()

    def hello(self) -> str:
        return "hi"


def _next_push_id(text: str) -> int:
    """The id our probe push gets: the random message may have taken id 1."""
    try:
        msg = loads(text)
    except RpcError:
        return 1
    if type(msg) is list and msg and msg[0] in ("push", "stream") and len(msg) > 1:
        return 2
    return 2 if type(msg) is list and msg and msg[0] == "pipe" else 1


async def _feed_and_probe(text: str) -> None:
    loop = asyncio.get_running_loop()
    unhandled: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: unhandled.append(context))
    near, far = memory_pair()
    session = Session(near, Echo())
    probe = _next_push_id(text)
    try:
        async with asyncio.timeout(5):
            far.send(text)
            far.send(json.dumps(["push", ["pipeline", 0, ["echo"], [42]]]))
            far.send(json.dumps(["pull", probe]))
            outcome = None
            while outcome is None:
                try:
                    frame = json.loads(await far.receive())
                except RpcDisconnectedError:
                    outcome = "closed"
                    break
                assert type(frame) is list and frame and type(frame[0]) is str
                if frame[0] == "abort":
                    outcome = "aborted"
                    error = frame[1]
                    assert error[0] == "error" and type(error[1]) is str, frame
                    assert type(error[2]) is str and error[2], frame
                elif frame[0] in ("resolve", "reject") and frame[1] == probe:
                    assert frame == ["resolve", probe, 42], frame
                    outcome = "usable"
            if outcome == "usable":
                assert session.broken is None
            else:
                assert isinstance(session.broken, Exception)
                if outcome == "closed":  # only the peer's own abort ends it without a frame
                    assert loads(text)[0] == "abort"
    finally:
        await session.close()
        await asyncio.sleep(0)
    assert not unhandled, unhandled


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts)
def test_random_input_never_crashes_a_session(text: str) -> None:
    asyncio.run(_feed_and_probe(text))


@pytest.mark.parametrize(
    "text",
    [
        "",
        "null",
        "[]",
        '["push"]',
        '["push",["import",0,["echo"],[["import",0,["echo"],[1]]]]]',
        '["pull",0]',
        '["release",0,1]',
        '["resolve",0,1]',
        '["reject",0,["error","Error","x"]]',
        '["abort"]',
        '["abort",["error","Error","bye"]]',
        '["push",["remap",0,[],[],[]]]',
        '["push",["pipeline",0,["echo"],[["bigint","1' + "0" * 20000 + '"]]]]',
        '["push",' + "[[" * 300 + "1" + "]]" * 300 + "]",
        '["push",' + '["pipeline",0,["echo"],[' * 300 + "1" + "]]" * 300 + "]",
        '["push",["pipeline",0,["echo"],[' + "1" + "0" * 5000 + "]]]",
        '["push",["date",1e999]]',
        '["push",NaN]',
    ],
)
def test_odd_inputs_never_crash_a_session(text: str) -> None:
    asyncio.run(_feed_and_probe(text))
