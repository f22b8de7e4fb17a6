"""Hostile peers and streams: what a stream may cost a server, and everybody else on it.

- A peer that writes into a pipe without waiting for acknowledgements (ignoring the window),
  to a reader that does not read: the server holds at most ``Limits.max_stream_buffer`` of its
  chunks, then fails that stream; the session, and other clients, go on.
- A peer that takes a stream and never acknowledges a write: the server's producer stops
  after one window; other clients are served meanwhile.
"""

from __future__ import annotations

import asyncio
import base64
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest

import capnweb
from capnweb import Limits, RpcTarget

from .test_session_limits import (
    WAIT,
    KiB,
    MiB,
    RawPeer,
    call,
    dumps,
    error_text,
    held,
    traced,
    until_still,
)

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc and FIONREAD"),
]

CHUNK = 128 * KiB
"""Bytes per chunk the flooding peer writes."""


class Holder(RpcTarget):
    """``hold(stream)`` keeps a stream unread until ``release`` is set, then reads it."""

    def __init__(self, holding: asyncio.Event, release: asyncio.Event, seen: list[Any]) -> None:
        self.holding = holding
        self.release = release
        self.seen = seen
        self.produced = 0

    async def hold(self, stream: capnweb.ReadableStream[bytes]) -> str:
        self.holding.set()
        await self.release.wait()
        try:
            async for chunk in stream:
                self.seen.append(len(chunk))
        except Exception as e:
            self.seen.append(e)
        return "read"

    def square(self, x: int) -> int:
        return x * x

    def numbers(self, n: int) -> AsyncIterator[int]:
        async def gen() -> AsyncIterator[int]:
            for i in range(n):
                self.produced += 1
                yield i

        return gen()


def write(pipe: int, data: bytes) -> str:
    b64 = base64.b64encode(data).decode().rstrip("=")
    return dumps(["stream", ["pipeline", pipe, ["write"], [["bytes", b64]]]])


async def test_a_peer_flooding_a_pipe_past_max_stream_buffer_loses_that_stream_only() -> None:
    limit = 2 * MiB
    holding, release = asyncio.Event(), asyncio.Event()
    seen: list[Any] = []
    holder = Holder(holding, release, seen)
    writes = 40  # 5 MiB, written at once: well past the limit
    async with (
        capnweb.serve(lambda: holder, limits=Limits(max_stream_buffer=limit)) as srv,
        capnweb.connect(srv.ws_url) as other,
        RawPeer.open(srv.port) as peer,
    ):
        await peer.upgrade(srv.path)
        # ["pipe"] is our id 1; hold(readable 1) is 2; the writes are 3, 4, ...
        await peer.send_messages(
            dumps(["pipe"]),
            dumps(["push", ["pipeline", 0, ["hold"], [["readable", 1]]]]),
            dumps(["pull", 2]),
        )
        await asyncio.wait_for(holding.wait(), WAIT)
        with traced():
            await peer.send_messages(*(write(1, bytes(CHUNK)) for _ in range(writes)))
            answers: dict[int, Any] = {}
            while len(answers) < writes - limit // CHUNK:  # the pending ones answer later
                msg = await peer.read_message()
                answers[msg[1]] = msg
            kept = await held()
            # another client is served meanwhile
            assert await asyncio.wait_for(other.square(3), WAIT) == 9
        rejected = [m for m in answers.values() if m[0] == "reject"]
        assert rejected, "the server took every write"
        assert all("max_stream_buffer" in error_text(m) for m in rejected)
        assert kept <= limit + 2 * MiB, f"{kept} bytes held for a peer limited to {limit}"
        # the reader sees the stream failed with the limit error; the session goes on
        release.set()
        while True:
            msg = await peer.read_message()
            if msg[:2] == ["resolve", 2]:
                break
        assert isinstance(seen[-1], capnweb.RpcLimitError)
        await peer.send_messages(*call(writes + 3, "square", 4))
        while (msg := await peer.read_message())[:2] != ["resolve", writes + 3]:
            pass
        assert msg == ["resolve", writes + 3, 16]


async def test_a_peer_that_never_acknowledges_stops_the_producer_after_a_window() -> None:
    holder = Holder(asyncio.Event(), asyncio.Event(), [])
    async with (
        capnweb.serve(lambda: holder) as srv,
        capnweb.connect(srv.ws_url) as other,
        RawPeer.open(srv.port) as peer,
    ):
        await peer.upgrade(srv.path)
        await peer.send_messages(*call(1, "numbers", 10**9))
        writes = 0
        text = 0

        async def read_writes() -> None:
            nonlocal writes, text
            while True:
                msg = await peer.read_message()
                if msg[0] == "stream":
                    writes += 1
                    text += len(dumps(msg))

        reader = asyncio.create_task(read_writes())
        try:
            await until_still(lambda: (holder.produced, writes))
            assert await asyncio.wait_for(other.square(5), WAIT) == 25  # others are served
            await until_still(lambda: (holder.produced, writes))
        finally:
            reader.cancel()
        assert 0 < writes <= holder.produced <= writes + 1
        # one window of message text (256 KiB to start; no acknowledgement ever grows it)
        assert text <= 256 * KiB + 64, f"{writes} writes, {text} bytes, never acknowledged"


async def test_a_peer_holding_many_streams_unanswered_is_bounded_by_max_unacked_writes() -> None:
    # Each stream alone stops after its window (about a thousand small writes); together a
    # session's unanswered writes stop at max_unacked_writes, and flow again when answered.
    streams, cap = 20, 500
    holder = Holder(asyncio.Event(), asyncio.Event(), [])
    limits = Limits(max_unacked_writes=cap)
    async with (
        capnweb.serve(lambda: holder, limits=limits) as srv,
        capnweb.connect(srv.ws_url) as other,
        RawPeer.open(srv.port) as peer,
    ):
        await peer.upgrade(srv.path)
        for i in range(1, streams + 1):
            await peer.send_messages(*call(i, "numbers", 10**9))
        write_ids: list[int] = []
        next_id = 0  # the server's ids: each pipe and stream message takes the next one

        async def read_writes() -> None:
            nonlocal next_id
            while True:
                msg = await peer.read_message()
                if msg[0] in ("pipe", "stream"):
                    next_id += 1
                    if msg[0] == "stream":
                        write_ids.append(next_id)

        reader = asyncio.create_task(read_writes())
        try:
            await until_still(lambda: (holder.produced, len(write_ids)))
            assert cap <= len(write_ids) <= cap + streams  # not 20 windows of writes
            assert await asyncio.wait_for(other.square(5), WAIT) == 25  # others are served
            answered = 100
            await peer.send_messages(
                *(dumps(["resolve", i, ["undefined"]]) for i in write_ids[:answered])
            )
            await until_still(lambda: (holder.produced, len(write_ids)))
            unanswered = len(write_ids) - answered  # answered: as many more went out
            assert cap <= unanswered <= cap + streams
        finally:
            reader.cancel()
