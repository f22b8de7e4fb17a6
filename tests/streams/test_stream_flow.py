"""Flow control: a producer stops a bounded amount ahead of a reader that does not read
(the read-ahead and one window: INTEROP-CONTRACT.md 6.2) and goes on as it reads; the same
for a WritableStream written into slowly.
"""

from __future__ import annotations

import asyncio

import pytest
from helpers import SessionPair

from capnweb import (
    WritableStream,
)
from capnweb.streams import READ_AHEAD

from .common import (
    BOUND,
    CHUNK,
    WAIT,
    Api,
    MiB,
    Sink,
    Source,
    until,
)

pytestmark = pytest.mark.timeout(20)


# -- flow control


async def test_a_reader_that_does_not_read_stops_the_producer_then_it_resumes() -> None:
    api = Api()
    async with SessionPair(api) as pair:
        stream = await pair.main.endless()
        await pair.settle()  # nothing moves: the producer waits
        assert READ_AHEAD <= api.source.produced < BOUND
        it = aiter(stream)
        read = 0
        for _ in range(6):  # the reader reads a MiB at a time, then pauses
            for _ in range(MiB // CHUNK):
                read += len(await anext(it))
                assert api.source.produced - read < BOUND
            await pair.settle()
            # the producer went on while the reader read, and filled the read-ahead again
            assert READ_AHEAD <= api.source.produced - read < BOUND
        stream.cancel()
        await until(api.source.closed)
        await pair.assert_clean()


async def test_a_server_that_does_not_read_stops_the_client_producer() -> None:
    api = Api()
    source = Source()
    async with SessionPair(api) as pair:
        await pair.main.hold(source.gen())
        await pair.settle()
        assert READ_AHEAD <= source.produced < BOUND
        read = 0
        for _ in range(6):
            read += await pair.main.read_held(MiB // CHUNK)
            await pair.settle()
            assert READ_AHEAD <= source.produced - read < BOUND
        await pair.main.drop_held()
        await until(source.closed)
        await pair.assert_clean()


async def test_a_slow_writable_stops_the_writer_then_it_resumes() -> None:
    api = Api()
    sink = Sink(slow=True)
    async with SessionPair(api) as pair:
        call = asyncio.ensure_future(pair.main.fill_fast(sink, 100))
        await pair.settle()  # the sink is stuck in its first write, the writer waits
        assert 0 < api.written < BOUND and sink.writes() == []
        for _ in range(4):  # the sink takes a MiB at a time
            sink.allow(MiB // CHUNK)
            await pair.settle()
            taken = len(sink.writes()) * CHUNK
            assert 0 < api.written - taken < BOUND
        sink.allow(100)
        assert await asyncio.wait_for(call, WAIT) == 100 * CHUNK
        assert len(sink.writes()) == 100 and sink.log[-1] == ("close",)
        await pair.assert_clean()


async def test_a_slow_writable_of_the_server_stops_the_client_writer() -> None:
    api = Api()
    api.sink = Sink(slow=True)
    written = 0

    async def fill(writable: WritableStream[bytes]) -> None:
        nonlocal written
        for _ in range(100):
            await writable.write(b"c" * CHUNK)
            written += CHUNK
        await writable.close()

    async with SessionPair(api) as pair:
        writer = asyncio.create_task(fill(await pair.main.get_sink()))
        await pair.settle()
        assert 0 < written < BOUND and api.sink.writes() == []
        for _ in range(4):
            api.sink.allow(MiB // CHUNK)
            await pair.settle()
            assert 0 < written - len(api.sink.writes()) * CHUNK < BOUND
        api.sink.allow(100)
        await asyncio.wait_for(writer, WAIT)
        assert len(api.sink.writes()) == 100 and api.sink.log[-1] == ("close",)
        await pair.assert_clean(collect=True)
