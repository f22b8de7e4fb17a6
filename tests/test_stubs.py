"""RpcStub and RpcPromise as the application sees them: names, lifetime, breakage."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import pytest
from helpers import Counter, SessionPair

from capnweb import RpcError, RpcPromise, RpcStub, RpcTarget, RpcTypeError

pytestmark = pytest.mark.timeout(10)

USE_AFTER_DISPOSE = "Attempted to use RPC stub after it has been disposed."


class Clashing(RpcTarget):
    """Remote methods whose names a stub uses locally."""

    def dup(self) -> str:
        return "remote dup"

    def dispose(self) -> str:
        return "remote dispose"

    def map(self) -> str:
        return "remote map"

    def on_broken(self) -> str:
        return "remote on_broken"


class Holder(RpcTarget):
    """Keeps a callback it was given and calls it later."""

    def __init__(self) -> None:
        self.callback: RpcStub | None = None
        self.counter = Counter()
        self.clashing = Clashing()

    def setCallback(self, cb: RpcStub) -> None:
        self.callback = cb

    async def fire(self, x: int) -> Any:
        assert self.callback is not None
        return await self.callback.notify(x)

    def dropCallback(self) -> None:
        assert self.callback is not None
        self.callback.dispose()
        self.callback = None

    async def useAndForget(self, cb: RpcStub, x: int) -> Any:
        return await cb.notify(x)

    async def callAndForget(self, fn: RpcStub, x: int) -> Any:
        return await fn(x)

    def getCounter(self) -> Counter:
        return self.counter

    def getClashing(self) -> Clashing:
        return self.clashing

    def makeCounter(self, n: int) -> Counter:
        return Counter(n)

    def fail(self) -> None:
        raise RpcTypeError("bad")

    def square(self, x: int) -> int:
        return x * x

    def data(self) -> dict[str, Any]:
        return {"list": [10, 20, 30], "nested": {"name": "ann"}}


class Listener(RpcTarget):
    def __init__(self) -> None:
        self.disposed = 0
        self.calls: list[int] = []

    def notify(self, x: int) -> int:
        self.calls.append(x)
        return x * 10

    def on_dispose(self) -> None:
        self.disposed += 1


# -- names


async def test_attribute_and_item_access_reach_remote_members() -> None:
    async with SessionPair(Holder()) as pair:
        assert await pair.main.square(4) == 16
        assert await pair.main["square"](5) == 25
        assert await pair.main.data().list[1] == 20
        assert await pair.main.data()["nested"]["name"] == "ann"
        await pair.assert_clean(collect=True)


async def test_local_names_are_not_sent_but_reachable_with_brackets() -> None:
    async with SessionPair(Holder()) as pair:
        clashing = await pair.main.getClashing()
        mark = pair.mark()
        for name in ("dup", "dispose", "map", "on_broken"):
            assert callable(getattr(clashing, name))
        assert pair.since(mark) == ([], [])
        assert await clashing["dup"]() == "remote dup"
        assert await clashing["dispose"]() == "remote dispose"
        assert await clashing["map"]() == "remote map"
        assert await clashing["on_broken"]() == "remote on_broken"
        clashing.dispose()
        await pair.assert_clean(collect=True)


async def test_private_attribute_raises_locally() -> None:
    async with SessionPair(Holder()) as pair:
        promise = pair.main.square(1)
        await pair.settle()
        mark = pair.mark()
        with pytest.raises(AttributeError):
            pair.main._secret  # noqa: B018
        with pytest.raises(AttributeError):
            promise._x  # noqa: B018
        await pair.settle()
        assert pair.since(mark) == ([], [])
        del promise
        await pair.assert_clean(collect=True)


# -- lifetime


async def test_dup_keeps_the_target_until_every_copy_is_disposed() -> None:
    holder = Holder()
    async with SessionPair(holder) as pair:
        first = await pair.main.getCounter()
        second = first.dup()
        third = second.dup()
        first.dispose()
        await pair.settle()
        assert await second.increment(1) == 1
        second.dispose()
        await pair.settle()
        assert holder.counter.disposed == 0
        assert await third.increment(1) == 2
        third.dispose()
        await pair.settle()
        assert holder.counter.disposed == 1
        await pair.assert_clean()


async def test_dispose_is_idempotent() -> None:
    holder = Holder()
    async with SessionPair(holder) as pair:
        counter = await pair.main.getCounter()
        counter.dispose()
        counter.dispose()
        await pair.settle()
        assert holder.counter.disposed == 1
        await pair.assert_clean()


async def test_with_and_async_with_dispose() -> None:
    holder = Holder()
    async with SessionPair(holder) as pair:
        with await pair.main.getCounter() as counter:
            assert await counter.increment(2) == 2
        await pair.settle()
        assert holder.counter.disposed == 1
        async with await pair.main.getCounter() as counter:
            assert await counter.increment(3) == 5
        await pair.settle()
        assert holder.counter.disposed == 2
        await pair.assert_clean()


async def test_use_after_dispose_raises_a_clear_error() -> None:
    async with SessionPair(Holder()) as pair:
        counter = await pair.main.getCounter()
        counter.dispose()
        with pytest.raises(Exception, match=USE_AFTER_DISPOSE):
            await counter.increment(1)
        with pytest.raises(Exception, match=USE_AFTER_DISPOSE):
            await counter.dup().increment(1)
        promise = pair.main.square(3)
        promise.dispose()
        with pytest.raises(Exception, match=USE_AFTER_DISPOSE):
            await promise
        await pair.assert_clean()


async def test_awaiting_one_promise_twice_pulls_once() -> None:
    async with SessionPair(Holder()) as pair:
        promise = pair.main.square(6)
        assert list(await asyncio.gather(promise, promise)) == [36, 36]
        assert await promise == 36
        assert [f for f in pair.client_frames() if f[0] == "pull"] == [["pull", 1]]
        del promise
        await pair.assert_clean(collect=True)


async def test_disposing_a_pending_promise_cancels_it() -> None:
    async with SessionPair(Holder()) as pair:
        promise = pair.main.square(3)
        result = promise.increment(1)  # pipelined on the promise before it is disposed
        promise.dispose()
        await pair.settle()
        assert ["release", 1, 1] in pair.client_frames()
        with pytest.raises(RpcError):
            await result
        del result
        await pair.assert_clean(collect=True)


async def test_garbage_collected_stubs_are_released() -> None:
    holder = Holder()
    async with SessionPair(holder) as pair:
        counter = await pair.main.makeCounter(1)
        assert await counter.increment(1) == 2
        del counter
        await pair.collect()
        assert ["release", -1, 1] in pair.client_frames()
        await pair.assert_clean()


async def test_promise_stub_for_a_resolved_target_pipelines_locally() -> None:
    async with SessionPair(Holder()) as pair:
        promise = pair.main.makeCounter(5)
        counter = await promise
        mark = pair.mark()
        assert await promise.increment(1) == 6  # served from the resolution, same target
        client, _ = pair.since(mark)
        assert client[0] == ["push", ["pipeline", -1, ["increment"], [1]]]
        counter.dispose()
        promise.dispose()
        await pair.assert_clean(collect=True)


# -- breakage


async def test_on_broken_on_disconnect() -> None:
    async with SessionPair(Holder()) as pair:
        counter = await pair.main.makeCounter(1)
        seen: list[str] = []
        counter.on_broken(lambda e: seen.append(f"counter {type(e).__name__}"))
        pair.main.on_broken(lambda e: seen.append(f"main {type(e).__name__}"))
        await pair.server.close()
        await pair.settle()
        assert seen == ["counter RpcDisconnectedError", "main RpcDisconnectedError"]


async def test_on_broken_on_a_promise_resolved_to_a_capability_follows_it() -> None:
    async with SessionPair(Holder()) as pair:
        seen: list[str] = []
        promise = pair.main.makeCounter(1)
        promise.on_broken(lambda e: seen.append("registered before resolution"))
        counter = await promise
        promise.on_broken(lambda e: seen.append("registered after resolution"))
        assert await promise.increment(1) == 2  # the promise now stands for the counter
        assert seen == []
        await pair.server.close()
        await pair.settle()
        assert seen == ["registered before resolution", "registered after resolution"]
        counter.dispose()


async def test_on_broken_on_rejection_and_when_already_broken() -> None:
    async with SessionPair(Holder()) as pair:
        promise = pair.main.fail()
        seen: list[BaseException] = []
        promise.on_broken(seen.append)
        with pytest.raises(RpcTypeError):
            await promise
        assert len(seen) == 1 and isinstance(seen[0], RpcTypeError)
        late: list[BaseException] = []
        promise.on_broken(late.append)  # already broken: fires at once
        assert len(late) == 1 and str(late[0]) == "bad"
        del promise
        await pair.assert_clean(collect=True)


async def test_on_broken_does_not_fire_on_success() -> None:
    async with SessionPair(Holder()) as pair:
        promise = pair.main.square(2)
        seen: list[BaseException] = []
        promise.on_broken(seen.append)
        assert await promise == 4
        await pair.settle()
        assert seen == []
        del promise
        await pair.assert_clean(collect=True)


# -- stubs received as arguments


async def test_kept_argument_stub_stays_valid_after_the_call() -> None:
    holder = Holder()
    callback = Listener()
    async with SessionPair(holder) as pair:
        await pair.main.setCallback(callback)
        await pair.settle()
        assert callback.disposed == 0
        assert await pair.main.fire(1) == 10
        assert await pair.main.fire(2) == 20
        assert callback.calls == [1, 2]
        await pair.main.dropCallback()
        await pair.settle()
        assert callback.disposed == 1
        await pair.assert_clean()


async def test_unkept_argument_stub_is_released_when_the_call_returns() -> None:
    callback = Listener()
    async with SessionPair(Holder()) as pair:
        assert await pair.main.useAndForget(callback, 3) == 30
        await pair.settle()
        assert callback.disposed == 1
        assert ["release", -1, 1] in pair.server_frames()
        await pair.assert_clean()


async def test_kept_stub_released_when_the_implementation_drops_it() -> None:
    holder = Holder()
    callback = Listener()
    async with SessionPair(holder) as pair:
        await pair.main.setCallback(callback)
        holder.callback = None  # dropped without dispose: garbage collection releases it
        await pair.collect()
        assert callback.disposed == 1
        await pair.assert_clean()


async def test_plain_function_argument_released_after_the_call() -> None:
    async with SessionPair(Holder()) as pair:
        assert await pair.main.callAndForget(lambda x: x + 1, 1) == 2
        await pair.settle()
        server = pair.server_frames()
        assert server.index(["release", -1, 1]) < server.index(["resolve", 1, 2])
        await pair.assert_clean()


# -- RpcPromise.from_awaitable


async def test_from_awaitable_resolves_locally() -> None:
    async def compute() -> int:
        await asyncio.sleep(0)
        return 42

    promise = RpcPromise.from_awaitable(compute())
    assert await promise == 42


async def test_from_awaitable_rejects_locally() -> None:
    async def boom() -> int:
        raise ValueError("nope")

    with pytest.raises(ValueError, match="nope"):
        await RpcPromise.from_awaitable(boom())


async def test_from_awaitable_sent_to_a_peer() -> None:
    gate: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    async with SessionPair(Holder()) as pair:
        promise = RpcPromise.from_awaitable(gate)
        result = pair.main.square(promise)
        await pair.settle()
        push = pair.client_frames()[0]
        assert push == ["push", ["pipeline", 0, ["square"], [["promise", -1]]]]
        gate.set_result(7)
        assert await result == 49
        assert ["resolve", -1, 7] in pair.client_frames()
        promise.dispose()
        del result
        await pair.assert_clean(collect=True)


async def test_from_awaitable_pipelines_on_a_local_target() -> None:
    async def make() -> Counter:
        return Counter(3)

    promise = RpcPromise.from_awaitable(make())
    assert await promise.increment(2) == 5
    assert await promise.increment(2) == 7
    promise.dispose()


async def test_from_awaitable_returned_by_a_method() -> None:
    class Api(RpcTarget):
        def later(self) -> RpcPromise[int]:
            async def value() -> int:
                return 11

            return RpcPromise.from_awaitable(value())

    async with SessionPair(Api()) as pair:
        assert await pair.main.later() == 11
        await pair.assert_clean(collect=True)


async def test_stub_repr_and_truthiness() -> None:
    async with SessionPair(Holder()) as pair:
        promise = pair.main.square(1)
        assert bool(promise) is True
        assert "RpcPromise" in repr(promise)
        assert isinstance(promise, RpcStub)
        assert await promise == 1
        del promise
        gc.collect()
        await pair.assert_clean(collect=True)


class Gate(RpcTarget):
    """``wait()`` answers once ``open()`` is called."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.opened = asyncio.Event()

    async def wait(self) -> str:
        self.entered.set()
        await self.opened.wait()
        return "done"

    def open(self) -> None:
        self.opened.set()


async def test_awaiting_a_promise_disposed_meanwhile_raises_the_cancel_error() -> None:
    gate = Gate()
    pair = SessionPair(gate)
    promise = pair.main.wait()
    waiting = asyncio.ensure_future(promise)  # its first step (the pull) runs before the call
    await asyncio.wait_for(gate.entered.wait(), 5)
    assert not waiting.done()
    promise.dispose()
    with pytest.raises(RpcError, match="RPC was canceled because the RpcPromise was disposed"):
        await asyncio.wait_for(waiting, 5)
    gate.open()


async def test_awaiting_the_same_promise_twice_gives_the_same_value() -> None:
    pair = SessionPair(Counter(3))
    promise = pair.main.increment(2)
    first, second = await asyncio.gather(promise, promise)
    assert (first, second, await promise) == (5, 5, 5)
