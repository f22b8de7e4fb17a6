"""QueuedTransport: writes at once when nothing is pending, queues behind a blocked write."""

from __future__ import annotations

import asyncio

import pytest

from capnweb.errors import RpcDisconnectedError
from capnweb.transports._queued import QueuedTransport


class Recording(QueuedTransport):
    """Records writes; a write of a text in ``block`` waits until ``release`` is set."""

    def __init__(self, block: set[str] | None = None, fail: set[str] | None = None) -> None:
        super().__init__()
        self.written: list[str] = []
        self.closed: list[BaseException | None] = []
        self.block = block or set()
        self.fail = fail or set()
        self.release = asyncio.Event()

    async def _write(self, text: str) -> None:
        if text in self.fail:
            raise ConnectionResetError("peer went away")
        if text in self.block:
            await self.release.wait()
        self.written.append(text)

    async def _close(self, error: BaseException | None) -> None:
        self.closed.append(error)

    async def receive(self) -> str:
        raise NotImplementedError


@pytest.mark.timeout(10)
async def test_unblocked_writes_happen_during_send() -> None:
    t = Recording()
    t.send("a")
    t.send("b")
    assert t.written == ["a", "b"]  # no loop turn needed


@pytest.mark.timeout(10)
async def test_messages_sent_during_a_blocked_write_follow_it_in_order() -> None:
    t = Recording(block={"slow"})
    t.send("first")
    t.send("slow")
    t.send("after-1")
    t.send("after-2")
    await asyncio.sleep(0)
    assert t.written == ["first"]
    t.release.set()
    for _ in range(10):
        await asyncio.sleep(0)
    assert t.written == ["first", "slow", "after-1", "after-2"]
    t.send("later")  # the writer is idle again: written at once
    assert t.written[-1] == "later"
    t.abort(RpcDisconnectedError("done"))
    await asyncio.wait_for(t.wait_closed(), 5)
    assert t.closed == [None]


@pytest.mark.timeout(10)
async def test_abort_flushes_what_is_queued_then_closes_with_the_reason() -> None:
    t = Recording(block={"slow"})
    t.send("slow")
    t.send("queued")
    reason = ValueError("bad peer")
    t.abort(reason)
    with pytest.raises(RpcDisconnectedError):
        t.send("too late")
    t.release.set()
    await asyncio.wait_for(t.wait_closed(), 5)
    assert t.written == ["slow", "queued"]
    assert t.closed == [reason]


@pytest.mark.timeout(10)
async def test_a_failed_write_drops_the_queue_and_closes() -> None:
    t = Recording(fail={"boom"})
    t.send("ok")
    t.send("boom")
    t.send("dropped")
    await asyncio.wait_for(t.wait_closed(), 5)
    assert t.written == ["ok"]
    assert t.closed == [None]
