"""The codec's limits (at the codec and in a session) and the wire forms of errors."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from codec_impls import codec_impl  # noqa: F401 (the fixture: compiled and pure codec)
from helpers import ScriptedPeer, SessionPair

from capnweb import (
    DEFAULT_LIMITS,
    BigInt,
    Limits,
    RpcAggregateError,
    RpcError,
    RpcLimitError,
    RpcProtocolError,
    RpcRangeError,
    RpcTarget,
    RpcTypeError,
    Session,
    memory_pair,
)
from capnweb._codec import decode, dumps, encode, loads
from capnweb.errors import make_error

pytestmark = [pytest.mark.timeout(30), pytest.mark.usefixtures("codec_impl")]

SIZE = "Incoming message exceeds maximum size of {} UTF-16 code units."
DEPTH = "Deserialization exceeded maximum allowed message depth of {}."
BIGINT = "Deserialized bigint exceeds maximum length of {} digits."
SEND_DEPTH = "Serialization exceeded maximum allowed depth. (Does the message contain cycles?)"


def arrays(depth: int, inner: str = "1") -> str:
    """``inner`` inside ``depth`` escaped arrays: ``[[[[1]]]]`` for depth 2."""
    return "[[" * depth + inner + "]]" * depth


def objects(depth: int, inner: str = "1") -> str:
    """``inner`` inside ``depth`` nested objects."""
    return '{"a":' * depth + inner + "}" * depth


def call_args(depth: int) -> str:
    """A call whose only argument is a call, ``depth`` times: crosses call arguments."""
    return '["pipeline",0,["echo"],[' * depth + "1" + "]]" * depth


def error_props(depth: int) -> str:
    """An error whose prop holds a value at ``depth``."""
    return '["error","E","m",null,{"p":' + arrays(depth - 1) + "}]"


def nested_list(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


def limit_error(fn: Callable[[], Any]) -> str:
    with pytest.raises(RpcLimitError) as info:
        fn()
    error = info.value
    assert isinstance(error, TypeError) and error.name == "TypeError"
    return error.message


# -- limits at the codec


def test_default_limits_are_the_reference_ones() -> None:
    assert DEFAULT_LIMITS == Limits() == Limits(33_554_432, 256, 16_384)


@pytest.mark.parametrize(
    ("text", "units"),
    [
        pytest.param('"aaaa"', 6, id="ascii"),
        pytest.param('"é€"', 4, id="bmp"),
        pytest.param('"😀"', 4, id="astral-counts-2"),
        pytest.param('"😀😀"', 6, id="two-astral"),
        pytest.param('"\ud800"', 3, id="lone-surrogate-counts-1"),
        pytest.param('"\\ud83d\\ude00"', 14, id="escaped-astral"),
    ],
)
def test_message_size_in_utf16_units(text: str, units: int) -> None:
    loads(text, Limits(max_message_size=units))  # at the limit: accepted
    assert limit_error(lambda: loads(text, Limits(max_message_size=units - 1))) == SIZE.format(
        units - 1
    )


def test_message_size_of_utf8_bytes_counts_utf16_units() -> None:
    data = '"😀"'.encode()  # 6 bytes, 3 code points, 4 UTF-16 units
    assert loads(data, Limits(max_message_size=4)) == "😀"
    assert limit_error(lambda: loads(data, Limits(max_message_size=3))) == SIZE.format(3)


def test_message_size_at_the_default_limit() -> None:
    limit = DEFAULT_LIMITS.max_message_size
    assert len(loads('"' + "a" * (limit - 2) + '"')) == limit - 2
    over = '"' + "a" * (limit - 1) + '"'
    assert limit_error(lambda: loads(over)) == SIZE.format(limit)


@pytest.mark.parametrize(
    ("build", "deepest_ok"),
    [
        pytest.param(arrays, 255, id="arrays"),
        pytest.param(objects, 255, id="objects"),
        pytest.param(lambda d: arrays(d // 2, objects(d - d // 2)), 255, id="mixed"),
        pytest.param(error_props, 255, id="error-props"),
        pytest.param(lambda d: arrays(d, '"x"'), 255, id="string-leaf"),
        pytest.param(lambda d: arrays(d - 1, "[[]]"), 256, id="empty-array-leaf"),
    ],
)
def test_depth_limit(build: Callable[[int], str], deepest_ok: int) -> None:
    decode(loads(build(deepest_ok)))
    assert limit_error(lambda: decode(loads(build(deepest_ok + 1)))) == DEPTH.format(256)


def test_depth_limit_override() -> None:
    limits = Limits(max_depth=4)
    assert decode(loads(arrays(3)), limits=limits) == [[[1]]]
    assert limit_error(lambda: decode(loads(arrays(4)), limits=limits)) == DEPTH.format(4)
    assert limit_error(lambda: decode(loads(arrays(10)), limits=limits)) == DEPTH.format(4)
    assert decode(loads(arrays(10))) == nested_list(10)


@pytest.mark.parametrize(
    ("expr", "depth_of_body"),
    [
        pytest.param(["response", "x", {}], 1, id="response-body"),
        pytest.param(["request", "http://e/", {"body": "x"}], 1, id="request-body"),
    ],
)
def test_depth_counts_bodies(expr: Any, depth_of_body: int) -> None:
    decode(expr, limits=Limits(max_depth=depth_of_body + 1))
    assert limit_error(lambda: decode(expr, limits=Limits(max_depth=depth_of_body))) == (
        DEPTH.format(depth_of_body)
    )


@pytest.mark.parametrize(
    ("digits", "limit"),
    [
        pytest.param("9" * 16384, None, id="default"),
        pytest.param("-" + "9" * 16383, None, id="default-negative"),
        pytest.param("1234", 4, id="override"),
        pytest.param("-123", 4, id="override-negative"),
    ],
)
def test_bigint_length_limit(digits: str, limit: int | None) -> None:
    limits = DEFAULT_LIMITS if limit is None else Limits(max_bigint_digits=limit)
    got = decode(["bigint", digits], limits=limits)
    assert type(got) is BigInt and encode(got) == ["bigint", digits]
    over = digits + "9"
    assert limit_error(lambda: decode(["bigint", over], limits=limits)) == BIGINT.format(
        limits.max_bigint_digits
    )


def test_bigint_length_is_checked_before_its_spelling() -> None:
    assert limit_error(lambda: decode(["bigint", "x" * 16385])) == BIGINT.format(16384)
    with pytest.raises(RpcProtocolError):
        decode(["bigint", "x" * 16384])


def test_bigint_at_the_limit_is_sent_back_unchanged() -> None:
    digits = "-" + "7" * 16383
    assert encode(decode(["bigint", digits])) == ["bigint", digits]


@pytest.mark.parametrize(
    ("wrap", "levels"),
    [
        pytest.param(lambda v: v, 255, id="lists"),
        pytest.param(lambda v: {"k": v}, 254, id="in-a-dict"),
        pytest.param(lambda v: [{"k": v}], 253, id="in-a-list-in-a-dict"),
    ],
)
def test_send_depth(wrap: Callable[[Any], Any], levels: int) -> None:
    deepest = nested_list(levels)
    text = dumps(encode(wrap(deepest)))
    decode(loads(text))  # whatever the sender produces, a default receiver accepts
    with pytest.raises(TypeError) as info:
        encode(wrap([deepest]))
    assert str(info.value) == SEND_DEPTH


def test_send_depth_drops_too_deep_error_props() -> None:
    exc = RuntimeError("deep")
    exc.ok = 1  # type: ignore[attr-defined]
    exc.deep = nested_list(255)  # type: ignore[attr-defined]
    assert encode(exc) == ["error", "Error", "deep", None, {"ok": 1}]


# -- limits in a session: the session aborts with the reference's message


class Echo(RpcTarget):
    def echo(self, x: Any) -> Any:
        return x


async def expect_abort(frame: str, message: str, limits: Limits | None = None) -> None:
    options = {} if limits is None else {"limits": limits}
    async with ScriptedPeer(Echo(), **options) as peer:
        peer.send(frame)
        await peer.settle()
        assert peer.received() == [["abort", ["error", "TypeError", message]]]
        broken = peer.session.broken
        assert isinstance(broken, RpcLimitError) and broken.message == message
        assert peer.transport.closed
        peer.send('["push",1]', '["pull",1]')  # ignored: the session is over
        await peer.settle()
        assert len(peer.received()) == 1


async def expect_answer(frame: str, answer: Any, limits: Limits | None = None) -> None:
    options = {} if limits is None else {"limits": limits}
    async with ScriptedPeer(Echo(), **options) as peer:
        peer.send(frame, '["pull",1]')
        await peer.settle()
        assert peer.received() == [["resolve", 1, answer]]
        assert peer.session.broken is None


async def test_session_message_size() -> None:
    frame = '["push","' + "a" * 200 + '"]'
    await expect_abort(frame, SIZE.format(64), Limits(max_message_size=64))
    await expect_answer(frame, "a" * 200, Limits(max_message_size=len(frame)))
    await expect_abort(frame, SIZE.format(len(frame) - 1), Limits(max_message_size=len(frame) - 1))


async def test_session_message_size_counts_astral_characters_twice() -> None:
    frame = '["push","😀😀"]'  # 13 characters, 15 UTF-16 units
    assert len(frame) == 13
    await expect_answer(frame, "😀😀", Limits(max_message_size=15))
    await expect_abort(frame, SIZE.format(14), Limits(max_message_size=14))


async def test_session_message_size_default() -> None:
    limit = DEFAULT_LIMITS.max_message_size
    await expect_abort('["push","' + "a" * (limit - 10) + '"]', SIZE.format(limit))


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(arrays, id="arrays"),
        pytest.param(objects, id="objects"),
        pytest.param(error_props, id="error-props"),
    ],
)
async def test_session_depth(build: Callable[[int], str]) -> None:
    await expect_abort(f'["push",{build(256)}]', DEPTH.format(256))
    await expect_answer(f'["push",{build(255)}]', json.loads(build(255)))


async def test_session_depth_through_call_arguments() -> None:
    await expect_abort(f'["push",{call_args(256)}]', DEPTH.format(256))
    await expect_abort(f'["push",{call_args(300)}]', DEPTH.format(256))
    await expect_answer(f'["push",{call_args(64)}]', 1)
    await expect_answer(f'["push",{call_args(150)}]', 1)


async def test_session_depth_override() -> None:
    limits = Limits(max_depth=8)  # call arguments do not reset the depth
    await expect_abort(f'["push",{call_args(8)}]', DEPTH.format(8), limits)
    await expect_answer(f'["push",{call_args(7)}]', 1, limits)
    await expect_abort(f'["push",{arrays(10)}]', DEPTH.format(4), Limits(max_depth=4))
    await expect_answer(f'["push",{arrays(10)}]', json.loads(arrays(10)))


async def test_session_accepts_what_the_default_sender_produces() -> None:
    async with SessionPair(Echo()) as pair:
        deepest = nested_list(254)  # an argument: one level below the call
        assert await pair.main.echo(deepest) == deepest
        with pytest.raises(TypeError, match="maximum allowed depth"):
            await pair.main.echo([deepest])
        assert pair.server.broken is None and pair.client.broken is None


@pytest.mark.parametrize(
    ("digits", "limit"),
    [
        pytest.param("1234", 4, id="at"),
        pytest.param("-123", 4, id="at-negative"),
        pytest.param("9" * 16384, None, id="default"),
    ],
)
async def test_session_bigint_length(digits: str, limit: int | None) -> None:
    limits = None if limit is None else Limits(max_bigint_digits=limit)
    size = limit or DEFAULT_LIMITS.max_bigint_digits
    await expect_answer(f'["push",["bigint","{digits}"]]', ["bigint", digits], limits)
    await expect_abort(f'["push",["bigint","{digits}1"]]', BIGINT.format(size), limits)


async def test_fed_by_hand() -> None:
    near, _far = memory_pair()
    session = Session(near, Echo(), limits=Limits(max_message_size=10), start=False)
    session.feed('["push","' + "a" * 20 + '"]')
    assert [json.loads(t) for t in near.sent] == [
        ["abort", ["error", "TypeError", SIZE.format(10)]]
    ]
    assert isinstance(session.broken, RpcLimitError)
    session.feed('["pull",1]')  # ignored once broken
    assert len(near.sent) == 1


# -- errors: what is sent


class Exporter:
    """A session stand-in for encode(): only on_send_error matters here."""

    def __init__(self, hook: Callable[[BaseException], BaseException | None]) -> None:
        self.hook = hook
        self.seen: list[BaseException] = []

    def encode_ref(self, ref: Any) -> list[Any]:
        raise AssertionError("no capabilities expected")

    def encode_target(self, target: Any) -> list[Any]:
        raise AssertionError("no capabilities expected")

    def on_send_error(self, exc: BaseException) -> BaseException | None:
        self.seen.append(exc)
        return self.hook(exc)


def raised(exc: BaseException) -> BaseException:
    """``exc`` with a traceback."""
    try:
        raise exc
    except BaseException as e:
        return e


def test_error_three_elements_without_extras() -> None:
    assert encode(RpcError("plain")) == ["error", "Error", "plain"]
    assert encode(raised(ValueError("v"))) == ["error", "RangeError", "v"]  # never a stack


def test_error_five_elements_with_null_stack_when_props() -> None:
    exc = RuntimeError("x")
    exc.code = "X"  # type: ignore[attr-defined]
    assert dumps(encode(exc)) == '["error","Error","x",null,{"code":"X"}]'
    assert encode(RpcRangeError("r", props={"code": "E1"})) == [
        "error",
        "RangeError",
        "r",
        None,
        {"code": "E1"},
    ]


def test_error_props_hold_any_value() -> None:
    exc = RpcError("nested")
    exc.props.update(
        when=datetime.fromtimestamp(1.234, UTC),
        big=BigInt(12345678901234567890),
        data=b"hi!",
        obj={"a": 1, "b": [2, 3]},
        inner=TypeError("inner"),
        u=None,
    )
    received = RpcError("nested", props={**exc.props, "inner": RpcTypeError("inner")})
    text = dumps(encode(exc))
    assert text == (
        '["error","Error","nested",null,{"when":["date",1234],'
        '"big":["bigint","12345678901234567890"],"data":["bytes","aGkh"],'
        '"obj":{"a":1,"b":[[2,3]]},"inner":["error","TypeError","inner"],"u":null}]'
    )
    assert decode(loads(text)) == received


def test_error_name_message_and_stack_are_never_props() -> None:
    exc = RpcError("m", props={"name": "x", "message": "y", "stack": "z", "k": 1})
    assert encode(exc) == ["error", "Error", "m", None, {"k": 1}]


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        pytest.param(object(), "unsupported", id="unsupported"),
        pytest.param({1: "x"}, "non-string key", id="non-string-key"),
        pytest.param(datetime(2020, 1, 1), "naive datetime", id="naive-datetime"),
        pytest.param(None, "cycle", id="cycle"),
    ],
)
def test_unencodable_props_are_dropped(bad: Any, why: str) -> None:
    if why == "cycle":
        bad = {}
        bad["self"] = bad
    exc = RuntimeError("with-bad-prop")
    exc.code = "E_OK"  # type: ignore[attr-defined]
    exc.bad = bad  # type: ignore[attr-defined]
    assert encode(exc) == ["error", "Error", "with-bad-prop", None, {"code": "E_OK"}]


def test_error_with_only_unencodable_props_is_short() -> None:
    exc = RuntimeError("all-bad")
    exc.a = object()  # type: ignore[attr-defined]
    exc.b = {2, 3}  # type: ignore[attr-defined]
    assert encode(exc) == ["error", "Error", "all-bad"]


def test_stack_is_not_sent_when_on_send_error_returns_none() -> None:
    exporter = Exporter(lambda e: None)
    exc = raised(ValueError("boom"))
    assert encode(exc, exporter) == ["error", "RangeError", "boom"]
    assert exporter.seen == [exc]


def test_stack_is_sent_when_on_send_error_returns_the_error() -> None:
    exc = raised(ValueError("boom"))
    got = encode(exc, Exporter(lambda e: e))
    assert got[:3] == ["error", "RangeError", "boom"] and len(got) == 4
    assert got[3].startswith("Traceback") and "ValueError: boom" in got[3] and "raised" in got[3]


def test_stack_and_props_make_five_elements() -> None:
    exc = RpcTypeError("t", props={"code": 1}, stack="at here (x:1:1)")
    got = encode(exc, Exporter(lambda e: e))
    assert got == ["error", "TypeError", "t", "at here (x:1:1)", {"code": 1}]


def test_error_never_raised_has_no_stack_to_send() -> None:
    assert encode(ValueError("v"), Exporter(lambda e: e)) == ["error", "RangeError", "v"]


def test_on_send_error_can_substitute_an_error() -> None:
    replacement = RpcError("redacted", stack="nowhere")
    got = encode(raised(KeyError("secret")), Exporter(lambda e: replacement))
    assert got == ["error", "Error", "redacted", "nowhere"]


def test_on_send_error_can_edit_the_error_in_place() -> None:
    def scrub(e: BaseException) -> None:
        del e.token  # type: ignore[attr-defined]

    exc = RuntimeError("x")
    exc.token = "secret"  # type: ignore[attr-defined]
    exc.code = 1  # type: ignore[attr-defined]
    assert encode(exc, Exporter(scrub)) == ["error", "Error", "x", None, {"code": 1}]


def test_on_send_error_sees_nested_errors_too() -> None:
    inner = TypeError("inner")
    outer = RuntimeError("outer")
    outer.__cause__ = inner
    exporter = Exporter(lambda e: None)
    encode(outer, exporter)
    assert exporter.seen == [outer, inner]


async def test_session_sends_the_stack_only_with_on_send_error() -> None:
    class Failing(RpcTarget):
        def fail(self) -> None:
            raise ValueError("boom")

    frames = ['["push",["pipeline",0,["fail"],[]]]', '["pull",1]']
    async with ScriptedPeer(Failing()) as peer:
        peer.send(*frames)
        await peer.settle()
        assert peer.received() == [["reject", 1, ["error", "RangeError", "boom"]]]
    async with ScriptedPeer(Failing(), on_send_error=lambda e: e) as peer:
        peer.send(*frames)
        await peer.settle()
        [[tag, _, error]] = peer.received()
        assert tag == "reject" and error[:3] == ["error", "RangeError", "boom"]
        assert error[3].startswith("Traceback") and "ValueError: boom" in error[3]


# -- errors: what is received


def test_error_legacy_three_elements() -> None:
    got = decode(["error", "Error", "msg"])
    assert type(got) is RpcError and (got.message, got.stack, got.props) == ("msg", None, {})


def test_error_legacy_four_elements() -> None:
    got = decode(["error", "TypeError", "msg", "trace"])
    assert type(got) is RpcTypeError and (got.message, got.stack) == ("msg", "trace")


@pytest.mark.parametrize("stack", [None, 5, ["a"], {"s": 1}])
def test_error_non_string_stack_is_ignored(stack: Any) -> None:
    assert decode(["error", "Error", "m", stack]).stack is None


def test_error_five_elements() -> None:
    got = decode(["error", "RangeError", "boom", None, {"code": "E1", "n": [[1]]}])
    assert got == RpcRangeError("boom", props={"code": "E1", "n": [1]})
    assert got.stack is None


def test_error_elements_after_props_are_ignored() -> None:
    got = decode(["error", "Error", "m", "s", {"k": 1}, "future", 6])
    assert got == RpcError("m", props={"k": 1}) and got.stack == "s"


@pytest.mark.parametrize(
    "bag",
    ["not-an-object", 42, [[1, 2]], None, True],
    ids=["str", "number", "array", "null", "bool"],
)
def test_error_props_bag_must_be_an_object(bag: Any) -> None:
    with pytest.raises(RpcProtocolError, match="invalid error props") as info:
        decode(["error", "Error", "msg", None, bag])
    assert info.value.name == "TypeError"


@pytest.mark.parametrize("bag", ['"not-an-object"', "42", "[[1,2]]", "null"])
async def test_session_aborts_on_a_props_bag_that_is_not_an_object(bag: str) -> None:
    async with ScriptedPeer(Echo()) as peer:
        peer.send(f'["push",["error","Error","msg",null,{bag}]]')
        await peer.settle()
        [[tag, [error, name, message]]] = peer.received()
        assert (tag, error, name) == ("abort", "error", "TypeError")
        assert message.startswith("invalid error props: ")
        assert isinstance(peer.session.broken, RpcProtocolError)


def test_error_prototype_keys_in_props_are_dropped() -> None:
    text = (
        '["error","Error","boom","at test (x:1:1)",'
        '{"code":"E_TEST","toString":"nope","valueOf":"nope","hasOwnProperty":"nope",'
        '"toJSON":"nope","__proto__":{"polluted":true}}]'
    )
    got = decode(loads(text))
    assert type(got) is RpcError
    assert (got.message, got.stack, got.props) == ("boom", "at test (x:1:1)", {"code": "E_TEST"})


def test_error_props_named_like_the_fields_are_dropped() -> None:
    got = decode(["error", "Error", "m", None, {"name": "x", "message": "y", "stack": "z", "k": 1}])
    assert (got.name, got.message, got.stack, got.props) == ("Error", "m", None, {"k": 1})


def test_error_type_confusion_names_are_plain_errors() -> None:
    text = '["error","constructor","attacker-payload",null,{"injected":true,"httpStatus":200}]'
    got = decode(loads(text))
    assert type(got) is RpcError and got.name == "constructor"
    assert got.props == {"injected": True, "httpStatus": 200}
    for name in ("toString", "valueOf", "hasOwnProperty", "__proto__", "isPrototypeOf"):
        assert type(decode(["error", name, "msg"])) is RpcError


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("Error", RpcError),
        ("TypeError", RpcTypeError),
        ("RangeError", RpcRangeError),
        ("AggregateError", RpcAggregateError),
        ("MyError", RpcError),
    ],
)
def test_make_error(name: str, cls: type[RpcError]) -> None:
    got = make_error(name, "m", {"k": 1}, "st")
    assert type(got) is cls and (got.name, got.message, got.props, got.stack) == (
        name,
        "m",
        {"k": 1},
        "st",
    )


def test_aggregate_error_errors() -> None:
    text = '["error","AggregateError","agg",null,{"errors":[[["error","TypeError","a"]]]}]'
    got = decode(loads(text))
    assert isinstance(got, RpcAggregateError) and got.errors == [RpcTypeError("a")]
    odd = make_error("AggregateError", "m", {"errors": "nope"})
    assert isinstance(odd, RpcAggregateError) and odd.errors == []


def test_received_error_goes_back_unchanged() -> None:
    text = '["error","MyError","m",null,{"code":"E1","cause":["error","RangeError","c"]}]'
    assert dumps(encode(decode(loads(text)))) == text


@pytest.mark.parametrize(
    "options",
    [
        {"max_depth": -1},
        {"max_map_work": -1},
        {"batch_timeout": 0.0},
        {"send_high_water": 1000, "send_low_water": 1001},
    ],
)
def test_limits_refuse_values_that_bound_nothing(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="Limits"):
        Limits(**options)


# -- base64: pybase64 (the "fast" extra) when installed, else the standard library


BASE64_CASES = ["", "AQI", "AQID", "ab==", "abc=", "a", "a===", "ab=c", "a b=", "ab\n==", "é===",
                "ab==cd==", "====", "ab-_", "AQID\x00", "+/+/"]  # fmt: skip


@pytest.mark.parametrize("text", BASE64_CASES)
def test_the_base64_in_use_decodes_and_refuses_as_the_standard_library(text: str) -> None:
    import base64
    import binascii

    from capnweb import _codec

    padded = text + "=" * (-len(text) % 4)

    def outcome(decode: Any) -> Any:
        try:
            return decode(padded, validate=True)
        except (binascii.Error, ValueError):
            return "refused"

    assert outcome(_codec._b64decode) == outcome(base64.b64decode)


def test_the_base64_in_use_encodes_as_the_standard_library() -> None:
    import base64

    from capnweb import _codec

    for n in range(70):
        data = bytes(range(n))
        assert _codec._b64encode(data) == base64.b64encode(data)
