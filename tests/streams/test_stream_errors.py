"""Errors and the ends of streams: a failing source, a reader that cancels or drops its
stream, WritableStreams released without close, written after close, failing, and the order
of writes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from helpers import ScriptedPeer, SessionPair

from capnweb import (
    RpcRangeError,
    RpcTypeError,
)

from .common import (
    DISPOSED,
    WAIT,
    Api,
    Sink,
    Source,
    answers,
    until,
    writes_to,
)

pytestmark = pytest.mark.timeout(20)


# -- errors and cancellation


async def test_a_source_error_is_raised_by_the_next_read() -> None:
    api = Api()
    async with SessionPair(api) as pair:
        stream = await pair.main.failing(2, "src failed")
        it = aiter(stream)
        assert [await anext(it), await anext(it)] == [0, 1]
        api.fail_now.set()
        with pytest.raises(RpcTypeError, match=r"^src failed$"):
            await anext(it)
        await pair.assert_clean()


async def test_a_source_error_fails_the_call_reading_it() -> None:
    async def failing() -> AsyncIterator[int]:
        yield 1
        raise RpcRangeError("too far")

    async with SessionPair(Api()) as pair:
        with pytest.raises(RpcRangeError, match=r"^too far$"):
            await pair.main.collect(failing())
        await pair.assert_clean()


async def test_a_chunk_that_cannot_be_sent_fails_the_stream_with_its_error() -> None:
    closed = asyncio.Event()

    async def source() -> AsyncIterator[Any]:
        try:
            yield 1
            yield object()  # not a wire value
            yield 2
        finally:
            closed.set()

    async with SessionPair(Api()) as pair:
        with pytest.raises(RpcTypeError, match=r"^Cannot serialize value of type object"):
            await pair.main.collect(source())
        assert closed.is_set()
        await pair.assert_clean()


async def test_a_reader_that_cancels_closes_the_producer() -> None:
    api = Api()
    async with SessionPair(api) as pair:
        stream = await pair.main.endless()
        assert await anext(aiter(stream)) == api.source.chunk
        stream.cancel()
        await until(api.source.closed)
        made = api.source.made
        await pair.assert_clean()
        assert api.source.made == made
        assert await anext(aiter(stream), "end") == "end"  # a cancelled stream has ended


async def test_a_reader_that_breaks_out_and_closes_closes_the_producer() -> None:
    api = Api()
    async with SessionPair(api) as pair:
        stream = await pair.main.endless()
        async with contextlib.aclosing(stream):
            async for _ in stream:
                break
        await until(api.source.closed)
        await pair.assert_clean()


async def test_a_server_reader_that_cancels_closes_the_client_producer() -> None:
    source = Source()
    async with SessionPair(Api()) as pair:
        assert await pair.main.take(source.gen(), 3) == [source.chunk] * 3
        await until(source.closed)
        made = source.made
        await pair.assert_clean()
        assert source.made == made


async def test_a_stream_dropped_unread_is_cancelled() -> None:
    api = Api()
    async with SessionPair(api) as pair:
        stream = await pair.main.endless()
        del stream
        await until(api.source.closed)
        await pair.assert_clean()
        # the other way: the server drops the client's stream
        source = Source()
        await pair.main.ignore(source.gen())
        await until(source.closed)
        await pair.assert_clean()


async def test_a_writable_released_without_close_is_aborted() -> None:
    sink = Sink()
    api = Api()
    async with SessionPair(api) as pair:
        await pair.main.write_then_drop(sink)
        await until(sink.ended)
        assert sink.log[0] == ("write", "only")
        assert sink.log[1][0] == "abort" and str(sink.log[1][1]) == DISPOSED
        # the other way: the client drops the server's WritableStream
        writable = await pair.main.get_sink()
        await writable.write(1)
        del writable
        await until(api.sink.ended)
        assert api.sink.log[0] == ("write", 1)
        assert api.sink.log[1][0] == "abort" and str(api.sink.log[1][1]) == DISPOSED
        await pair.assert_clean(collect=True)


async def test_a_write_after_close_fails() -> None:
    sink = Sink()
    async with SessionPair(Api()) as pair:
        message = await pair.main.write_after_close(sink)
        assert message == "Cannot write to a closed stream."
        assert sink.log == [("close",)]
        await pair.assert_clean()


async def test_a_failing_write_fails_the_later_writes_and_the_close() -> None:
    sink = Sink(fail_on=2)
    async with SessionPair(Api()) as pair:
        with pytest.raises(RpcTypeError, match=r"^cannot take 2$"):
            await pair.main.fill(sink, [1, 2, 3, 4])
        await pair.assert_clean()
    assert sink.log == [("write", 1), ("write", 2)]  # neither 3, 4 nor the close


async def test_after_a_failing_write_a_peer_s_later_calls_fail_too() -> None:
    api = Api()
    api.sink = Sink(fail_on=2)
    async with ScriptedPeer(api) as peer:
        peer.send(["push", ["pipeline", 0, ["get_sink"], []]], ["pull", 1])
        await peer.settle()
        assert peer.received() == [["resolve", 1, ["writable", -1]]]
        peer.send(*writes_to(-1, 1, 2))
        await peer.settle()  # the sink is idle again
        peer.send(*writes_to(-1, 3), ["stream", ["pipeline", -1, ["close"], []]])
        await peer.settle()
        assert answers(peer.received()[1:]) == ["resolve"] + ["cannot take 2"] * 3
        assert api.sink.log == [("write", 1), ("write", 2)]
        assert peer.session.broken is None


async def test_a_peer_s_write_after_close_is_refused() -> None:
    api = Api()
    async with ScriptedPeer(api) as peer:
        peer.send(["push", ["pipeline", 0, ["get_sink"], []]], ["pull", 1])
        peer.send(*writes_to(-1, 1), ["stream", ["pipeline", -1, ["close"], []]])
        await peer.settle()
        peer.send(*writes_to(-1, 2))
        await peer.settle()
        closed = "Cannot write to a closed stream."
        assert answers(peer.received()[1:]) == ["resolve", "resolve", closed]
        assert api.sink.log == [("write", 1), ("close",)]


class Stalling(Sink):
    """Writes wait a different number of loop turns each."""

    async def write(self, chunk: Any) -> None:
        for _ in range(chunk % 4):
            await asyncio.sleep(0)
        await super().write(chunk)


async def test_writes_are_applied_in_order_when_write_awaits() -> None:
    sink = Stalling()
    async with SessionPair(Api()) as pair:
        assert await pair.main.fill(sink, list(range(200))) == "closed"
        await pair.assert_clean()
    assert sink.log == [*(("write", i) for i in range(200)), ("close",)]


async def test_a_stream_has_one_reader_at_a_time() -> None:
    api = Api()
    api.source = Source(pause_after=0)
    async with SessionPair(api) as pair:
        stream = await pair.main.endless()
        first = asyncio.ensure_future(anext(aiter(stream)))
        await until(api.source.paused)
        await pair.settle()  # the first read waits for a chunk
        with pytest.raises(RuntimeError, match="already being read"):
            await asyncio.wait_for(anext(aiter(stream)), WAIT)
        api.source.resume.set()
        assert await asyncio.wait_for(first, WAIT) == api.source.chunk
        stream.cancel()
        await until(api.source.closed)
        await pair.assert_clean()
