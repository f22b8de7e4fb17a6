"""Who owns a stub received as a call argument (docs/guide.md, "Lifetimes").

The implementation does, and the stub lives as long as it is reachable: stored, returned,
dup'ed or held by a running task, it stays callable; ignored, it is released when the call
is over. Seen from the caller: its export for the argument stays in its table while the
callee holds the stub, and goes (``on_dispose`` runs) once the callee lets go.
"""

from __future__ import annotations

import asyncio
import gc
import re
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import CLEAN, SessionPair

import capnweb
from capnweb import RpcStub, RpcTarget, Stats

pytestmark = pytest.mark.timeout(10)

HELD = Stats(1, 2)
"""The caller's stats while the callee holds the one argument it sent: main + that export."""


class Callback(RpcTarget):
    """The caller's capability handed to the callee as an argument."""

    def __init__(self) -> None:
        self.seen: list[int] = []
        self.disposed = 0

    def ping(self, x: int) -> int:
        self.seen.append(x)
        return x + 1

    def on_dispose(self) -> None:
        self.disposed += 1


class _Box:
    def __init__(self) -> None:
        self.stub: Any = None


class Callee(RpcTarget):
    def __init__(self) -> None:
        self.items: list[Any] = []
        self.by_name: dict[str, Any] = {}
        self.box = _Box()
        self.later: Callable[[int], Any] | None = None
        self.gate = asyncio.Event()
        self.tasks: set[asyncio.Task[Any]] = set()
        self.cycle: Any = None

    # -- keeping it

    def store(self, how: str, cb: RpcStub) -> str:
        if how == "list":
            self.items.append(cb)
        elif how == "dict":
            self.by_name["cb"] = cb
        elif how == "attribute":
            self.box.stub = cb
        elif how == "closure":
            self.later = lambda x: cb.ping(x)
        return how

    def keep_dup(self, cb: RpcStub) -> None:
        self.items.append(cb.dup())

    def keep_in_task(self, cb: RpcStub) -> None:
        async def use_later() -> None:
            await self.gate.wait()
            self.items.append(await cb.ping(7))

        task = asyncio.create_task(use_later())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def wait_then_ping(self, cb: RpcStub) -> int:
        await self.gate.wait()
        return await cb.ping(3)  # type: ignore[no-any-return]

    def store_then_fail(self, cb: RpcStub) -> None:
        self.items.append(cb)
        raise ValueError("stored, then failed")

    def store_in_cycle(self, cb: RpcStub) -> None:
        box = _Box()
        box.stub = [box, cb]  # box -> list -> box: only the collector frees it

    # -- using what was kept

    async def ping_kept(self, x: int) -> int:
        if self.items:
            return await self.items[0].ping(x)  # type: ignore[no-any-return]
        if "cb" in self.by_name:
            return await self.by_name["cb"].ping(x)  # type: ignore[no-any-return]
        if self.box.stub is not None:
            return await self.box.stub.ping(x)  # type: ignore[no-any-return]
        assert self.later is not None
        return await self.later(x)  # type: ignore[no-any-return]

    def drop(self) -> None:
        self.items.clear()
        self.by_name.clear()
        self.box.stub = None
        self.later = None

    # -- not keeping it

    def ignore(self, cb: RpcStub) -> int:
        return 1

    async def ignore_async(self, cb: RpcStub) -> int:
        await asyncio.sleep(0)
        return 2

    def fail(self, cb: RpcStub) -> None:
        raise ValueError("failed without keeping it")

    def ping_once(self, cb: RpcStub) -> Any:
        return cb.ping(1)  # the call goes out; the stub is not kept

    def echo(self, cb: RpcStub) -> RpcStub:
        return cb


@pytest.fixture
def callee() -> Callee:
    return Callee()


@pytest.fixture
async def pair(callee: Callee) -> AsyncIterator[SessionPair]:
    async with SessionPair(callee) as p:
        yield p


@pytest.mark.parametrize("how", ["list", "dict", "attribute", "closure"])
async def test_a_stored_stub_stays_callable_and_goes_once_dropped(
    pair: SessionPair, how: str
) -> None:
    cb = Callback()
    assert await pair.main.store(how, cb) == how
    await pair.collect()
    assert pair.client.stats() == HELD and cb.disposed == 0
    assert await pair.main.ping_kept(41) == 42
    assert cb.seen == [41]

    await pair.main.drop()
    await pair.settle()
    assert pair.client.stats() == CLEAN
    assert cb.disposed == 1
    await pair.assert_clean()


async def test_an_ignored_stub_is_released_when_the_call_returns(pair: SessionPair) -> None:
    cb = Callback()
    mark = pair.mark()
    assert await pair.main.ignore(cb) == 1
    await pair.settle()
    assert pair.client.stats() == CLEAN
    assert cb.disposed == 1
    _, server = pair.since(mark)
    assert ["release", -1, 1] in server  # the callee released the caller's export


async def test_an_async_method_releases_what_it_ignored_when_it_finishes(
    pair: SessionPair,
) -> None:
    cb = Callback()
    assert await pair.main.ignore_async(cb) == 2
    await pair.settle()
    assert pair.client.stats() == CLEAN and cb.disposed == 1


async def test_a_suspended_method_holds_its_argument_until_it_finishes(
    pair: SessionPair, callee: Callee
) -> None:
    cb = Callback()
    pending = asyncio.ensure_future(pair.main.wait_then_ping(cb))
    await pair.collect()
    assert pair.client.stats() == Stats(2, 2)  # the call in flight, and the argument
    assert cb.disposed == 0
    callee.gate.set()
    assert await pending == 4
    await pair.settle()
    assert pair.client.stats() == CLEAN and cb.disposed == 1


async def test_a_task_the_method_started_keeps_the_stub(pair: SessionPair, callee: Callee) -> None:
    cb = Callback()
    await pair.main.keep_in_task(cb)
    await pair.collect()
    assert pair.client.stats() == HELD and cb.disposed == 0
    callee.gate.set()
    await asyncio.wait_for(asyncio.gather(*callee.tasks), 5)
    assert callee.items == [8] and cb.seen == [7]
    await pair.settle()
    assert pair.client.stats() == CLEAN and cb.disposed == 1


async def test_a_dup_outlives_the_argument(pair: SessionPair, callee: Callee) -> None:
    cb = Callback()
    await pair.main.keep_dup(cb)
    await pair.collect()
    assert pair.client.stats() == HELD and cb.disposed == 0
    assert await pair.main.ping_kept(1) == 2
    callee.items[0].dispose()
    await pair.settle()
    assert pair.client.stats() == CLEAN and cb.disposed == 1


async def test_a_returned_stub_lives_on_as_the_result(pair: SessionPair) -> None:
    cb = Callback()
    result = pair.main.echo(cb)
    # The callee has returned and dropped its argument; the result's reference remains, and a
    # call pipelined on the result reaches the caller's object through it.
    assert await result.ping(9) == 10
    assert cb.seen == [9]
    result.dispose()
    await pair.settle()
    assert pair.client.stats() == CLEAN and cb.disposed == 1


async def test_a_call_made_with_the_stub_still_arrives_after_it_is_released(
    pair: SessionPair,
) -> None:
    cb = Callback()
    assert await pair.main.ping_once(cb) == 2
    await pair.settle()
    assert cb.seen == [1]
    assert pair.client.stats() == CLEAN and cb.disposed == 1


async def test_a_method_that_raises_releases_what_it_did_not_keep(pair: SessionPair) -> None:
    cb = Callback()
    with pytest.raises(ValueError, match="failed without keeping it"):
        await pair.main.fail(cb)
    await pair.settle()
    assert pair.client.stats() == CLEAN and cb.disposed == 1


async def test_a_method_that_raises_after_storing_keeps_it(pair: SessionPair) -> None:
    cb = Callback()
    with pytest.raises(ValueError, match="stored, then failed"):
        await pair.main.store_then_fail(cb)
    await pair.collect()
    assert pair.client.stats() == HELD
    assert await pair.main.ping_kept(5) == 6
    await pair.main.drop()
    await pair.settle()
    assert pair.client.stats() == CLEAN and cb.disposed == 1


@pytest.fixture
def no_automatic_collection() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


async def test_a_stub_in_a_garbage_cycle_goes_at_the_next_collection(
    pair: SessionPair, no_automatic_collection: None
) -> None:
    cb = Callback()
    await pair.main.store_in_cycle(cb)
    await pair.settle()
    assert pair.client.stats() == HELD  # unreachable, but nothing has collected it yet
    assert cb.disposed == 0
    gc.collect()
    await pair.settle()
    assert pair.client.stats() == CLEAN and cb.disposed == 1


def test_no_reference_counts_are_read() -> None:
    package = Path(capnweb.__file__).parent
    readers = [
        str(path.relative_to(package))
        for path in sorted(package.rglob("*.py")) + sorted(package.rglob("*.c"))
        if re.search(r"getrefcount|Py_REFCNT", path.read_text())
    ]
    assert readers == []
