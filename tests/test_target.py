"""What a peer can reach on an RpcTarget, and what it can never reach."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from helpers import CLEAN, ScriptedPeer, SessionPair

from capnweb import RpcError, RpcRangeError, RpcStub, RpcTarget, RpcTypeError, undefined

pytestmark = pytest.mark.timeout(10)

INSTANCE_PROPERTY = (
    "Attempted to access property 'secret', which is an instance property of the RpcTarget. "
    "To avoid leaking private internals, instance properties cannot be accessed over RPC. "
    "If you want to make this property available over RPC, define it as a method or property "
    "on the class, instead of an instance attribute."
)


class Base(RpcTarget):
    def inherited(self) -> str:
        return "from base"


class Target(Base):
    LIMIT = 10

    def __init__(self) -> None:
        self.secret = "hunter2"
        self.reads = 0
        self.disposed = 0

    def square(self, x: int) -> int:
        return x * x

    async def slowSquare(self, x: int) -> int:
        await asyncio.sleep(0)
        return x * x

    @property
    def value(self) -> int:
        self.reads += 1
        return 5

    @property
    def failing(self) -> int:
        raise ValueError("getter failed")

    def _private(self) -> str:
        return "private"

    @staticmethod
    def plusOne(x: int) -> int:
        return x + 1

    @classmethod
    def className(cls) -> str:
        return cls.__name__

    def greet(self, name: str, greeting: str = "hello", punct: str = "!") -> str:
        return f"{greeting} {name}{punct}"

    def count(self, *args: Any) -> int:
        return len(args)

    def data(self) -> dict[str, Any]:
        return {"items": [1, 2, 3], "name": "ann"}

    def on_dispose(self) -> None:
        self.disposed += 1


async def _get(stub: RpcStub, *path: str | int) -> Any:
    promise: Any = stub
    for part in path:
        promise = promise[part]
    return await promise


async def _call(stub: RpcStub, *path: str | int) -> Any:
    promise: Any = stub
    for part in path:
        promise = promise[part]
    return await promise()


async def test_public_sync_and_async_methods() -> None:
    async with SessionPair(Target()) as pair:
        assert await pair.main.square(3) == 9
        assert await pair.main.slowSquare(4) == 16
        assert await pair.main.inherited() == "from base"
        assert await pair.main.plusOne(1) == 2
        assert await pair.main.className() == "Target"
        await pair.assert_clean()


async def test_property_getter_runs_on_each_read() -> None:
    target = Target()
    async with SessionPair(target) as pair:
        assert await pair.main.value == 5
        assert await pair.main.value == 5
        assert target.reads == 2
        with pytest.raises(RpcTypeError, match="'value' is not a function"):
            await pair.main.value()
        await pair.assert_clean()


async def test_failing_getter_rejects_without_aborting() -> None:
    async with SessionPair(Target()) as pair:
        with pytest.raises(RpcRangeError, match="getter failed"):
            await pair.main.failing
        with pytest.raises(RpcRangeError, match="getter failed"):
            await pair.main.failing.anything()
        assert await pair.main.square(2) == 4
        await pair.assert_clean()


@pytest.mark.parametrize(
    "name",
    ["_private", "__class__", "__init__", "__dict__", "__weakref__", "LIMIT", "on_dispose"],
)
async def test_unreachable_names_read_as_undefined_and_are_not_callable(name: str) -> None:
    target = Target()
    async with SessionPair(target) as pair:
        assert await _get(pair.main, name) is undefined
        with pytest.raises(RpcTypeError, match=f"'{name}' is not a function."):
            await _call(pair.main, name)
        assert target.disposed == 0  # on_dispose in particular never ran
        await pair.assert_clean()


async def test_instance_attribute_raises_type_error() -> None:
    async with SessionPair(Target()) as pair:
        with pytest.raises(RpcTypeError) as info:
            await pair.main.secret
        assert info.value.message == INSTANCE_PROPERTY
        with pytest.raises(RpcTypeError) as info:
            await pair.main.secret()
        assert info.value.message == INSTANCE_PROPERTY
        await pair.assert_clean()


@pytest.mark.parametrize(
    "path",
    [
        ("square", "__globals__"),
        ("square", "__func__"),
        ("square", "__self__"),
        ("square", "__code__"),
        ("value", "__class__"),
        ("data", "__class__"),
        ("data", "constructor"),
        ("data", "items", "__len__"),
    ],
)
async def test_traversal_never_leaks(path: tuple[str, ...]) -> None:
    async with SessionPair(Target()) as pair:
        stub = pair.main
        if path[0] == "data":
            got = await _get(pair.main.data(), *path[1:])
        else:
            got = await _get(stub, *path)
        assert got is undefined
        with pytest.raises(RpcTypeError, match="is not a function"):
            if path[0] == "data":
                await _call(pair.main.data(), *path[1:])
            else:
                await _call(stub, *path)
        await pair.assert_clean(collect=True)


async def test_traversal_frames_give_undefined_and_type_error() -> None:
    async with ScriptedPeer(Target()) as peer:
        peer.send(
            ["push", ["pipeline", 0, ["square", "__globals__"]]],
            ["pull", 1],
            ["push", ["pipeline", 0, ["square", "__globals__"], []]],
            ["pull", 2],
            ["push", ["pipeline", 0, ["__class__", "__init__", "__globals__"]]],
            ["pull", 3],
        )
        await peer.settle()
        assert peer.received() == [
            ["resolve", 1, ["undefined"]],
            ["reject", 2, ["error", "TypeError", "'square.__globals__' is not a function."]],
            [
                "reject",
                3,
                ["error", "TypeError", "Cannot read properties of undefined (reading '__init__')"],
            ],
        ]
        peer.send(["release", 1, 1], ["release", 2, 1], ["release", 3, 1])
        await peer.settle()
        assert peer.session.broken is None
        assert peer.session.stats() == CLEAN


async def test_missing_method_rejects_and_the_session_goes_on() -> None:
    async with SessionPair(Target()) as pair:
        with pytest.raises(RpcTypeError) as info:
            await pair.main.nope()
        assert info.value.message == "'nope' is not a function."
        assert pair.server_frames()[0] == [
            "reject",
            1,
            ["error", "TypeError", "'nope' is not a function."],
        ]
        assert await pair.main.nope is undefined
        assert await pair.main.square(5) == 25
        await pair.assert_clean()


async def test_numeric_path_on_a_target_is_undefined() -> None:
    async with SessionPair(Target()) as pair:
        assert await pair.main[0] is undefined
        await pair.assert_clean()


async def test_trailing_undefined_arguments_use_defaults() -> None:
    async with SessionPair(Target()) as pair:
        assert await pair.main.greet("ann", undefined) == "hello ann!"
        assert await pair.main.greet("ann", undefined, undefined) == "hello ann!"
        assert await pair.main.greet("ann", undefined, "?") == "undefined ann?"
        assert await pair.main.greet("ann", "hi") == "hi ann!"
        assert await pair.main.greet("ann", None) == "None ann!"
        # without defaults the undefined arguments are passed through
        assert await pair.main.count(1, undefined, undefined) == 3
        await pair.assert_clean()


async def test_trailing_undefined_from_the_wire() -> None:
    async with ScriptedPeer(Target()) as peer:
        peer.send(
            ["push", ["pipeline", 0, ["greet"], ["ann", ["undefined"], ["undefined"]]]],
            ["pull", 1],
            ["release", 1, 1],
        )
        await peer.settle()
        assert peer.received() == [["resolve", 1, "hello ann!"]]
        assert peer.session.stats() == CLEAN


async def test_missing_required_argument_rejects() -> None:
    async with SessionPair(Target()) as pair:
        with pytest.raises(RpcTypeError):
            await pair.main.square()
        await pair.assert_clean()


async def test_returned_targets_are_reachable_by_the_same_rules() -> None:
    class Api(RpcTarget):
        def make(self) -> Target:
            return Target()

    async with SessionPair(Api()) as pair:
        target = await pair.main.make()
        assert await target.square(6) == 36
        with pytest.raises(RpcTypeError):
            await target.secret
        assert await target["_private"] is undefined
        target.dispose()
        await pair.assert_clean()


async def test_plain_function_as_main_is_called_with_empty_path() -> None:
    async with SessionPair(lambda x: x * 3) as pair:
        assert await pair.main(4) == 12
        assert await pair.main.anything is undefined
        await pair.assert_clean()


async def test_target_errors_do_not_break_the_session() -> None:
    class Flaky(RpcTarget):
        def explode(self) -> None:
            raise RuntimeError("kaboom")

        async def explodeLater(self) -> None:
            await asyncio.sleep(0)
            raise KeyError("missing")

    async with SessionPair(Flaky()) as pair:
        with pytest.raises(RpcError, match="kaboom") as info:
            await pair.main.explode()
        assert info.value.name == "Error"
        with pytest.raises(RpcError, match="'missing'"):
            await pair.main.explodeLater()
        await pair.assert_clean()


async def test_failing_on_dispose_does_not_break_the_session(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Grumpy(RpcTarget):
        def on_dispose(self) -> None:
            raise RuntimeError("not now")

    class Api(RpcTarget):
        def make(self) -> Grumpy:
            return Grumpy()

    async with SessionPair(Api()) as pair:
        grumpy = await pair.main.make()
        grumpy.dispose()
        await pair.settle()
        assert "error in on_dispose" in caplog.text
        await pair.assert_clean()
