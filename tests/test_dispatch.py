"""The dispatcher for targets implementing RPC interfaces: a peer reaches exactly the declared
members, by wire name, with arguments checked (and converted) before any application code
runs. A bad argument rejects that one call; the session goes on."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Literal, Protocol, TypedDict

import pytest
from helpers import SessionPair

from capnweb import RpcStub, RpcTarget, RpcTypeError, undefined
from capnweb.interface import camel_case, rpc_interface, rpc_method, rpc_property

pytestmark = pytest.mark.timeout(10)


@dataclasses.dataclass
class Point:
    x: int
    y: int = 0


class Labels(TypedDict):
    name: str
    count: int


@rpc_interface(names=camel_case)
class Counter(Protocol):
    @rpc_method
    def increment(self, amount: int = 1) -> int: ...


@rpc_interface(names=camel_case)
class Checked(Protocol):
    @rpc_method
    def take_int(self, x: int) -> Any: ...

    @rpc_method
    def take_float(self, x: float) -> Any: ...

    @rpc_method
    def take_str(self, x: str) -> Any: ...

    @rpc_method
    def take_bool(self, x: bool) -> Any: ...

    @rpc_method
    def take_optional(self, x: int | None = None) -> Any: ...

    @rpc_method
    def take_union(self, x: int | str) -> Any: ...

    @rpc_method
    def take_literal(self, x: Literal["asc", "desc"]) -> Any: ...

    @rpc_method
    def take_list(self, x: list[int]) -> Any: ...

    @rpc_method
    def take_tuple(self, x: tuple[int, str]) -> Any: ...

    @rpc_method
    def take_dict(self, x: dict[str, int]) -> Any: ...

    @rpc_method
    def take_typeddict(self, x: Labels) -> Any: ...

    @rpc_method
    def take_point(self, x: Point) -> Any: ...

    @rpc_method
    def take_datetime(self, x: datetime) -> Any: ...

    @rpc_method
    def take_bytes(self, x: bytes) -> Any: ...

    @rpc_method
    async def take_counter(self, x: Counter) -> Any: ...

    @rpc_method
    async def take_callback(self, x: Callable[[int], Awaitable[int]]) -> Any: ...

    @rpc_method
    def take_any(self, x: Any) -> Any: ...

    @rpc_method
    def two(self, a: int, b: str = "b") -> Any: ...

    @property
    @rpc_property
    def answer(self) -> int: ...

    @rpc_method
    def make_counter(self) -> Counter: ...


class CounterImpl(RpcTarget, Counter):
    def __init__(self) -> None:
        self.value = 0

    def increment(self, amount: int = 1) -> int:
        self.value += amount
        return self.value


class CheckedImpl(RpcTarget, Checked):
    """Echoes what each method received, as (type name, value)."""

    def __init__(self) -> None:
        self.calls = 0
        self.note = "an instance attribute"

    def _seen(self, x: Any) -> Any:
        self.calls += 1
        if isinstance(x, tuple | Point):
            return [type(x).__name__, dataclasses.asdict(x) if isinstance(x, Point) else list(x)]
        return [type(x).__name__, x]

    def take_int(self, x: int) -> Any:
        return self._seen(x)

    def take_float(self, x: float) -> Any:
        return self._seen(x)

    def take_str(self, x: str) -> Any:
        return self._seen(x)

    def take_bool(self, x: bool) -> Any:
        return self._seen(x)

    def take_optional(self, x: int | None = None) -> Any:
        return self._seen(x)

    def take_union(self, x: int | str) -> Any:
        return self._seen(x)

    def take_literal(self, x: Literal["asc", "desc"]) -> Any:
        return self._seen(x)

    def take_list(self, x: list[int]) -> Any:
        return self._seen(x)

    def take_tuple(self, x: tuple[int, str]) -> Any:
        return self._seen(x)

    def take_dict(self, x: dict[str, int]) -> Any:
        return self._seen(x)

    def take_typeddict(self, x: Labels) -> Any:
        return self._seen(x)

    def take_point(self, x: Point) -> Any:
        return self._seen(x)

    def take_datetime(self, x: datetime) -> Any:
        return self._seen(x)

    def take_bytes(self, x: bytes) -> Any:
        return self._seen(x)

    async def take_counter(self, x: Counter) -> Any:
        self.calls += 1
        stub: Any = x
        return await stub.increment(5)

    async def take_callback(self, x: Callable[[int], Awaitable[int]]) -> Any:
        self.calls += 1
        return await x(20)

    def take_any(self, x: Any) -> Any:
        return self._seen(x)

    def two(self, a: int, b: str = "b") -> Any:
        self.calls += 1
        return [a, b]

    @property
    def answer(self) -> int:
        return 42

    def make_counter(self) -> Counter:
        return CounterImpl()

    # not declared in any interface: never reachable
    def undeclared(self) -> str:
        return "leaked"

    def _private(self) -> str:
        return "leaked"


class Unchecked(CheckedImpl):
    rpc_validate = False


NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)

ACCEPTED: list[tuple[str, Any, list[Any]]] = [
    ("takeInt", 5, ["int", 5]),
    ("takeFloat", 2, ["int", 2]),
    ("takeFloat", 2.5, ["float", 2.5]),
    ("takeStr", "hi", ["str", "hi"]),
    ("takeBool", True, ["bool", True]),
    ("takeOptional", None, ["NoneType", None]),
    ("takeOptional", 3, ["int", 3]),
    ("takeUnion", "s", ["str", "s"]),
    ("takeUnion", 7, ["int", 7]),
    ("takeLiteral", "desc", ["str", "desc"]),
    ("takeList", [1, 2], ["list", [1, 2]]),
    ("takeList", (1, 2), ["list", [1, 2]]),
    ("takeTuple", [1, "a"], ["tuple", [1, "a"]]),
    ("takeDict", {"a": 1}, ["dict", {"a": 1}]),
    ("takeTypeddict", {"name": "n", "count": 2}, ["dict", {"name": "n", "count": 2}]),
    ("takePoint", {"x": 1, "y": 2}, ["Point", {"x": 1, "y": 2}]),
    ("takePoint", {"x": 1}, ["Point", {"x": 1, "y": 0}]),
    ("takeDatetime", NOW, ["datetime", NOW]),
    ("takeBytes", b"\x00\x01", ["bytes", b"\x00\x01"]),
    ("takeAny", {"anything": [1, "x"]}, ["dict", {"anything": [1, "x"]}]),
]


@pytest.mark.parametrize(("method", "arg", "seen"), ACCEPTED)
async def test_well_typed_arguments_are_converted_and_delivered(
    method: str, arg: Any, seen: list[Any]
) -> None:
    async with SessionPair(CheckedImpl()) as pair:
        assert await pair.main[method](arg) == seen


REJECTED: list[tuple[str, Any, str]] = [
    ("takeInt", "5", "argument 'x' must be int, got str"),
    ("takeInt", 1.5, "argument 'x' must be int, got float"),
    ("takeInt", True, "argument 'x' must be int, got bool"),
    ("takeFloat", "1", "argument 'x' must be float, got str"),
    ("takeStr", 1, "argument 'x' must be str, got int"),
    ("takeBool", 1, "argument 'x' must be bool, got int"),
    ("takeOptional", "x", "argument 'x' must be int | None, got str"),
    ("takeUnion", 1.5, "argument 'x' must be int | str, got float"),
    ("takeLiteral", "up", "argument 'x' must be one of ['asc', 'desc'], got 'up'"),
    ("takeList", [1, "2"], "argument 'x'[1] must be int, got str"),
    ("takeList", {"a": 1}, "argument 'x' must be list[int], got dict"),
    ("takeTuple", [1, 2], "argument 'x'[1] must be str, got int"),
    ("takeTuple", [1], "argument 'x' must be tuple[int, str], got [1]"),
    ("takeDict", {"a": "1"}, "argument 'x'['a'] must be int, got str"),
    ("takeDict", [1], "argument 'x' must be dict[str, int], got list"),
    ("takeTypeddict", {"name": "n"}, "argument 'x' (Labels) is missing key(s) ['count']"),
    ("takeTypeddict", {"name": "n", "count": "2"}, "argument 'x'['count'] must be int, got str"),
    ("takePoint", {"y": 1}, "argument 'x' (Point) is missing field 'x'"),
    ("takePoint", {"x": "1"}, "argument 'x'.x must be int, got str"),
    ("takeDatetime", 5, "argument 'x' must be datetime, got int"),
    ("takeBytes", "AQI", "argument 'x' must be bytes, got str"),
    ("takeCounter", 5, "argument 'x' must be a capability (Counter), got int"),
    ("takeCallback", "f", "argument 'x' must be a capability"),
]


@pytest.mark.parametrize(("method", "arg", "message"), REJECTED)
async def test_mismatch_rejects_the_call_naming_the_parameter_and_the_session_goes_on(
    method: str, arg: Any, message: str
) -> None:
    impl = CheckedImpl()
    async with SessionPair(impl) as pair:
        with pytest.raises(RpcTypeError) as info:
            await pair.main[method](arg)
        assert message in str(info.value)
        assert str(info.value).startswith("CheckedImpl.")
        assert impl.calls == 0  # no application code ran
        assert await pair.main.takeInt(1) == ["int", 1]
        assert pair.server.broken is None and pair.client.broken is None
        await pair.assert_clean(collect=True)


async def test_arity_is_checked() -> None:
    async with SessionPair(CheckedImpl()) as pair:
        missing = r"CheckedImpl\.two\(\) missing required argument 'a'"
        with pytest.raises(RpcTypeError, match=missing):
            await pair.main.two()
        with pytest.raises(RpcTypeError, match=r"takes 2 argument\(s\) but 3 were given"):
            await pair.main.two(1, "x", 3)
        assert await pair.main.two(1) == [1, "b"]
        assert await pair.main.two(1, undefined) == [1, "b"]  # undefined takes the default
        assert await pair.main.two(1, "c") == [1, "c"]


async def test_undefined_is_a_value_for_parameters_that_admit_it() -> None:
    async with SessionPair(CheckedImpl()) as pair:
        assert await pair.main.takeAny(undefined) == ["UndefinedType", undefined]
        assert await pair.main.takeAny() == ["UndefinedType", undefined]
        with pytest.raises(RpcTypeError, match="missing required argument 'x'"):
            await pair.main.takeInt(undefined)


async def test_capabilities_and_callbacks_are_accepted() -> None:
    async def callback(x: int) -> int:
        return x + 1

    async with SessionPair(CheckedImpl()) as pair:
        counter = await pair.main.makeCounter()
        assert await pair.main.takeCounter(counter) == 5
        assert await pair.main.takeCounter(pair.main.makeCounter()) == 5  # a promise of one
        assert await pair.main.takeCallback(callback) == 21
        counter.dispose()
        await pair.assert_clean(collect=True)


async def test_promise_arguments_are_checked_once_resolved() -> None:
    async with SessionPair(CheckedImpl()) as pair:
        assert await pair.main.takeInt(pair.main.answer) == ["int", 42]
        with pytest.raises(RpcTypeError, match="argument 'x' must be str, got int"):
            await pair.main.takeStr(pair.main.answer)


UNREACHABLE = [
    "undeclared",  # public but not declared by an interface
    "_private",
    "__init__",
    "__class__",
    "__dict__",
    "note",  # an instance attribute
    "calls",
    "rpc_validate",
    "on_dispose",
    "take_int",  # the Python name of a member whose wire name is takeInt
    "make_counter",
]


@pytest.mark.parametrize("name", UNREACHABLE)
async def test_only_declared_members_are_reachable(name: str) -> None:
    impl = CheckedImpl()
    async with SessionPair(impl) as pair:
        with pytest.raises(RpcTypeError):
            await pair.main[name]()
        value = await pair.main[name] if name not in ("note", "calls") else undefined
        assert value is undefined
        assert await pair.main.takeInt(1) == ["int", 1]
        assert impl.calls == 1


@pytest.mark.parametrize(
    "path",
    [
        ("takeInt", "__globals__"),
        ("takeInt", "__func__", "__globals__"),
        ("takeInt", "__self__", "note"),
        ("answer", "__class__"),
        ("makeCounter", "__closure__"),
    ],
)
async def test_traversal_through_declared_members_never_leaks(path: tuple[str, ...]) -> None:
    async with SessionPair(CheckedImpl()) as pair:
        stub: Any = pair.main
        for part in path:
            stub = stub[part]
        try:
            value = await stub
        except RpcTypeError as e:  # reading a property of undefined, as in JavaScript
            assert "Cannot read properties of undefined" in str(e)
        else:
            assert value is undefined


async def test_properties_are_read_by_wire_name() -> None:
    async with SessionPair(CheckedImpl()) as pair:
        assert await pair.main.answer == 42


async def test_validation_off_per_target_class() -> None:
    impl = Unchecked()
    async with SessionPair(impl) as pair:
        assert await pair.main.takeInt("not an int") == ["str", "not an int"]
        assert await pair.main.takePoint({"x": 1}) == ["dict", {"x": 1}]
        with pytest.raises(RpcTypeError):  # still declared members only
            await pair.main.undeclared()


@rpc_interface
class Mixed(Protocol):
    @rpc_method
    def now(self, x: int) -> int: ...

    @rpc_method
    async def later(self, x: int) -> int: ...


class MixedImpl(RpcTarget, Mixed):
    def __init__(self) -> None:
        self.order: list[str] = []

    def now(self, x: int) -> int:
        self.order.append(f"now {x}")
        return x

    async def later(self, x: int) -> int:
        await asyncio.sleep(0)
        self.order.append(f"later {x}")
        return x * 10


async def test_sync_and_async_implementations_are_both_served() -> None:
    impl = MixedImpl()
    async with SessionPair(impl) as pair:
        assert list(await asyncio.gather(pair.main.later(1), pair.main.now(2))) == [10, 2]
        assert impl.order == ["now 2", "later 1"]
        with pytest.raises(RpcTypeError, match=r"MixedImpl\.later\(\) argument 'x'"):
            await pair.main.later("x")


BAD_VALUES: list[Any] = [
    None,
    undefined,
    True,
    -1,
    2**60,
    1.5,
    float("nan"),
    "",
    "x" * 1000,
    b"\xff",
    [],
    [[[]]],
    {},
    {"x": None},
    {"name": 1, "count": None},
    NOW,
    ValueError("boom"),
]


async def test_bad_arguments_never_break_the_server() -> None:
    """Every declared method, called with values of every wrong shape: each call settles
    (resolves or rejects with an error), and the session keeps serving."""
    async with SessionPair(CheckedImpl()) as pair:
        methods = [m for m in CheckedImpl.__dict__ if m.startswith("take_")] + ["two"]
        methods = [camel_case(m) for m in methods if m not in ("take_counter", "take_callback")]
        calls = [pair.main[m](v) for m in methods for v in BAD_VALUES]
        calls += [pair.main[m](v, v, v) for m in methods for v in BAD_VALUES[:3]]
        results = await asyncio.gather(*calls, return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        assert errors and all(isinstance(e, RpcTypeError) for e in errors)
        assert pair.server.broken is None and pair.client.broken is None
        assert await pair.main.takeInt(3) == ["int", 3]


class CounterView(RpcStub):
    """A hand-written typed view of a Counter stub (generated stubs work the same way)."""


@rpc_interface
class TakesView(Protocol):
    @rpc_method
    async def use(self, c: CounterView) -> Any: ...


class TakesViewImpl(RpcTarget, TakesView):
    async def use(self, c: CounterView) -> Any:
        return [type(c).__name__, await c.increment(2)]


async def test_a_received_stub_is_handed_over_as_the_annotated_stub_class() -> None:
    async with SessionPair(TakesViewImpl()) as pair:
        assert await pair.main.use(CounterImpl()) == ["CounterView", 2]
        await pair.assert_clean(collect=True)
