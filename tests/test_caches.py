"""What the dispatcher remembers per class and per function stays bounded.

A peer picks the names it calls: unknown names must not grow a table, and a table keyed by
application code (classes, functions) must not keep that code alive.
"""

from __future__ import annotations

import asyncio
import gc
import tracemalloc
import weakref
from typing import Any, Protocol

import pytest
from helpers import SessionPair

from capnweb import RpcError, RpcStub, RpcTarget, _target, undefined
from capnweb.interface import rpc_method

pytestmark = pytest.mark.timeout(60)

MADE_UP = 20_000
BATCH = 2_000


class Api(RpcTarget):
    def square(self, x: int) -> int:
        return x * x

    @property
    def version(self) -> str:
        return "1"


class Counter(Protocol):
    @rpc_method
    def increment(self, by: int = 1) -> int: ...


class CounterImpl(RpcTarget, Counter):
    def __init__(self) -> None:
        self.n = 0

    def increment(self, by: int = 1) -> int:
        self.n += by
        return self.n

    def helper(self) -> int:  # public, but not declared: unreachable
        return 0


def table_size(cls: type) -> int:
    """Names remembered for ``cls`` (0 before its first lookup)."""
    members = _target._classes.get(cls)
    return 0 if members is None else len(members.found)


async def call_made_up_names(main: RpcStub, prefix: str, count: int) -> None:
    for start in range(0, count, BATCH):
        calls = [main[f"{prefix}{i}"](i) for i in range(start, min(start + BATCH, count))]
        results = await asyncio.gather(*calls, return_exceptions=True)
        assert all(isinstance(r, RpcError) for r in results)  # "... is not a function"


def held_by_member_lookup(snapshot: tracemalloc.Snapshot) -> int:
    """Bytes allocated by the member lookup's own lines and still held."""
    traces = snapshot.filter_traces([tracemalloc.Filter(True, _target.__file__)])
    return sum(stat.size for stat in traces.statistics("filename"))


async def test_made_up_names_leave_the_table_of_a_class_as_it_was() -> None:
    async with SessionPair(Api()) as pair:
        assert await pair.main.square(3) == 9
        assert await pair.main.version == "1"
        known = table_size(Api)
        assert known == 2
        classes = len(_target._classes)

        await call_made_up_names(pair.main, "nope", MADE_UP)
        assert table_size(Api) == known
        assert len(_target._classes) == classes
        assert await pair.main.square(4) == 16  # the known ones still resolve
        await pair.assert_clean()


async def test_made_up_names_leave_no_memory_held_by_the_member_lookup() -> None:
    async with SessionPair(Api()) as pair:
        assert await pair.main.square(3) == 9
        tracemalloc.start()
        try:
            before = held_by_member_lookup(tracemalloc.take_snapshot())
            await call_made_up_names(pair.main, "other", BATCH)
            gc.collect()
            after = held_by_member_lookup(tracemalloc.take_snapshot())
        finally:
            tracemalloc.stop()
        assert after - before < 4096  # an entry per name would be over a hundred kilobytes
        await pair.assert_clean()


async def test_made_up_names_leave_the_table_of_an_interface_class_as_it_was() -> None:
    async with SessionPair(CounterImpl()) as pair:
        assert await pair.main.increment(2) == 2
        known = table_size(CounterImpl)
        assert known == 1  # exactly the declared members

        await call_made_up_names(pair.main, "helper", MADE_UP)
        assert table_size(CounterImpl) == known
        assert await pair.main.increment() == 3
        await pair.assert_clean()


def _make_class() -> type[RpcTarget]:
    class Temporary(RpcTarget):
        def greet(self, who: str = "you") -> str:
            return f"hi {who}"

    return Temporary


async def test_a_class_that_was_served_can_be_collected() -> None:
    cls = _make_class()
    async with SessionPair(cls()) as pair:
        assert await pair.main.greet(undefined) == "hi you"  # the trailing-undefined table too
        assert await pair.main.nothing_here is undefined
    del pair
    ref = weakref.ref(cls)
    del cls
    gc.collect()
    assert ref() is None


class Greeter:
    """A callable served as a capability (not an RpcTarget): a key of the defaults table."""

    def __call__(self, who: str = "you") -> str:
        return f"hi {who}"


async def test_a_callable_that_was_served_can_be_collected() -> None:
    greeter = Greeter()

    def plain(who: str = "you") -> str:
        return f"hello {who}"

    stub, function = RpcStub(greeter), RpcStub(plain)
    assert await stub(undefined) == "hi you"  # trailing undefined: the default applies
    assert await function(undefined) == "hello you"
    stub.dispose()
    function.dispose()
    refs = [weakref.ref(greeter), weakref.ref(plain)]
    del stub, function, greeter, plain
    gc.collect()
    assert [r() for r in refs] == [None, None]


async def test_defaults_apply_to_a_function_used_as_a_method_and_alone() -> None:
    def pick(owner: Any, first: Any, second: str = "default") -> list[Any]:
        return [first, second]

    class Holder(RpcTarget):
        pass

    Holder.pick = pick  # type: ignore[attr-defined]
    method, alone = RpcStub(Holder().pick), RpcStub(pick)  # type: ignore[attr-defined]
    assert await method(1, undefined) == [1, "default"]
    assert await alone(None, 1, undefined) == [1, "default"]
    assert await method(1, undefined) == [1, "default"]  # from the table this time
    method.dispose()
    alone.dispose()
