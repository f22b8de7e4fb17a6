"""Streams and the connection: the end of a session, a real WebSocket (16 MiB each way, a
slow reader), and HTTP batches (what one batch can and cannot carry).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from helpers import CLEAN, SessionPair, eventually

import capnweb
from capnweb import (
    Blob,
    Limits,
    ReadableStream,
    Request,
    Response,
    RpcDisconnectedError,
    RpcError,
    RpcStub,
)
from capnweb.streams import READ_AHEAD

from .common import (
    BOUND,
    CHUNK,
    ENDED,
    WAIT,
    Api,
    KiB,
    MiB,
    Sink,
    Source,
    agen,
    until,
)

pytestmark = pytest.mark.timeout(20)


# -- the end of a session


@pytest.mark.parametrize("paused", [False, True], ids=["producing", "waiting for data"])
async def test_a_stream_being_sent_when_the_connection_drops_stops_its_producer(
    paused: bool,
) -> None:
    api = Api()
    api.source = Source(pause_after=1 if paused else None)
    pair = SessionPair(api)
    stream = await pair.main.endless()
    assert await anext(aiter(stream)) == api.source.chunk
    if paused:
        await until(api.source.paused)
    else:
        await pair.settle()  # the producer waits for the window
    pair.client_transport.abort(RpcDisconnectedError("the connection dropped"))
    await until(api.source.closed)
    with pytest.raises(RpcError):  # the reader learns that the stream ended badly
        await anext(aiter(stream))
    await asyncio.wait_for(
        asyncio.gather(pair.client.wait_closed(), pair.server.wait_closed()), WAIT
    )
    assert pair.stats() == (ENDED, ENDED)


@pytest.mark.parametrize("paused", [False, True], ids=["producing", "waiting for data"])
async def test_a_stream_argument_being_sent_when_the_connection_drops_stops(paused: bool) -> None:
    api = Api()
    source = Source(pause_after=1 if paused else None)
    pair = SessionPair(api)
    await pair.main.hold(source.gen())
    if paused:
        await until(source.paused)
    else:
        await pair.settle()
    pair.server_transport.abort(RpcDisconnectedError("the connection dropped"))
    await until(source.closed)
    with pytest.raises(RpcDisconnectedError, match="connection is closed"):  # why it ended
        await api.held[0].collect()
    await asyncio.wait_for(
        asyncio.gather(pair.client.wait_closed(), pair.server.wait_closed()), WAIT
    )


async def test_a_writable_of_an_ended_session_fails() -> None:
    api = Api()
    api.sink = Sink(slow=True)
    pair = SessionPair(api)
    writable = await pair.main.get_sink()
    await pair.client.close()
    with pytest.raises(RpcError):
        await writable.write(1)
    with pytest.raises(RpcError):
        await writable.close()
    await until(api.sink.ended)  # the server's WritableStream is aborted
    call, reason = api.sink.log[0]  # with the reason the session ended
    assert call == "abort" and isinstance(reason, RpcDisconnectedError)
    assert str(reason).endswith("RPC session was shut down by disposing the main stub")
    await asyncio.wait_for(pair.server.wait_closed(), WAIT)


# -- over a real WebSocket

TOTAL = 16 * MiB
PATTERN = bytes(range(251)) * (MiB // 251 + 1)


def pattern_chunks(total: int, size: int) -> list[bytes]:
    """``total`` bytes in chunks of ``size``: byte ``i`` is ``i % 251``."""
    out = []
    for start in range(0, total, size):
        n = min(size, total - start)
        offset = start % 251
        out.append(PATTERN[offset : offset + n])
    return out


def digest(chunks: list[bytes]) -> str:
    h = hashlib.sha256()
    for chunk in chunks:
        h.update(chunk)
    return h.hexdigest()


class WsApi(Api):
    async def download(self, total: int, size: int) -> AsyncIterator[bytes]:
        for chunk in pattern_chunks(total, size):
            self.written += len(chunk)
            yield chunk

    async def digest(self, stream: ReadableStream[bytes]) -> list[Any]:
        h = hashlib.sha256()
        n = 0
        async for chunk in stream:
            h.update(chunk)
            n += len(chunk)
        return [n, h.hexdigest()]

    def ping(self) -> None:
        pass


@contextlib.asynccontextmanager
async def websocket() -> AsyncIterator[tuple[list[WsApi], capnweb.Connection[Any], RpcStub]]:
    """``serve()`` on 127.0.0.1 (a free port) and one client connected over a WebSocket."""
    apis: list[WsApi] = []

    def make() -> WsApi:
        apis.append(WsApi())
        return apis[-1]

    server = await capnweb.serve(make, "127.0.0.1", 0)
    try:
        conn = capnweb.connect(server.ws_url)
        api = await asyncio.wait_for(conn.open(), WAIT)
        try:
            yield apis, conn, api
            await eventually(lambda: conn.stats() == CLEAN)
            (session,) = server.endpoint.sessions
            await eventually(lambda: session.stats() == CLEAN)
        finally:
            await asyncio.wait_for(conn.close(), WAIT)
    finally:
        await asyncio.wait_for(server.close(), WAIT)


@pytest.mark.timeout(60)
async def test_sixteen_mib_each_way_over_a_websocket() -> None:
    want = [TOTAL, digest(pattern_chunks(TOTAL, 256 * KiB))]
    async with websocket() as (_, _, api):
        stream = await api.download(TOTAL, 256 * KiB)
        got = []
        async for chunk in stream:
            got.append(chunk)
        assert [sum(map(len, got)), digest(got)] == want
        assert await api.digest(agen(pattern_chunks(TOTAL, 256 * KiB))) == want


async def round_trips(api: RpcStub, n: int) -> None:
    """``n`` calls one after the other: everything sent before each answer was handled."""
    for _ in range(n):
        await api.ping()


@pytest.mark.timeout(60)
async def test_a_slow_reader_bounds_the_producer_over_a_websocket() -> None:
    async with websocket() as (apis, _, api):
        stream = await api.download(TOTAL, CHUNK)
        (server,) = apis
        read = 0
        async for chunk in stream:
            read += len(chunk)
            if read % MiB == 0:  # the reader pauses: the producer fills the read-ahead...
                await eventually(
                    lambda n=read: server.written - n >= READ_AHEAD or server.written == TOTAL  # type: ignore[misc]
                )
                await round_trips(api, 20)  # ...and goes no further than the bound
                assert server.written - read < BOUND
        assert read == TOTAL
        # and a server that does not read the client's stream
        source = Source()
        await api.hold(source.gen())
        await eventually(lambda: source.produced >= READ_AHEAD)
        await round_trips(api, 50)
        assert source.produced < BOUND
        read = await api.read_held(32)
        await eventually(lambda: source.produced - read >= READ_AHEAD)
        await round_trips(api, 50)
        assert source.produced - read < BOUND
        await api.drop_held()
        await until(source.closed)


# -- HTTP batch


@contextlib.asynccontextmanager
async def batch(limits: Limits | None = None) -> AsyncIterator[capnweb.Server]:
    """``serve()`` on 127.0.0.1 (a free port), for HTTP batches to ``server.url``."""
    server = await capnweb.serve(Api, "127.0.0.1", 0, limits=limits)
    try:
        yield server
    finally:
        await asyncio.wait_for(server.close(), WAIT)


@pytest.mark.timeout(30)
async def test_streams_in_http_batch_results_travel_whole_in_the_response() -> None:
    async with batch() as server:
        async with capnweb.connect(server.url) as api:
            numbers, response, relayed, blob = await asyncio.gather(
                api.numbers(3),
                api.make_response([b"a", b"", b"bc"]),
                api.relay(Response(agen([b"up", b"load"]))),  # a client stream, sent on
                api.echo(Blob(b"\x00\x01", "x/y")),
            )
        # read once the batch is over: every write and the close came in the response
        assert await numbers.collect() == [0, 1, 2]
        assert response.status == 201 and await response.read() == b"abc"
        assert await relayed.read() == b"upload"
        assert blob == Blob(b"\x00\x01", "x/y")
        sink = Sink()
        async with capnweb.connect(server.url) as api:  # the server cannot write to the client
            with pytest.raises(RpcError, match="Cannot call back into the client"):
                await api.fill(sink, [1])
        assert sink.writes() == []


@pytest.mark.timeout(30)
async def test_a_stream_past_max_batch_stream_fails_with_the_limit() -> None:
    async with batch(Limits(max_batch_stream=10_000)) as server:
        async with capnweb.connect(server.url) as api:
            endless = await api.numbers(10**9)  # its source stops at the limit: the batch ends
        with pytest.raises(RpcError, match=r"limited to 10000 bytes \(Limits.max_batch_stream\)"):
            await endless.collect()
        async with capnweb.connect(server.url) as api:  # each batch has its own budget
            assert await (await api.numbers(100)).collect() == list(range(100))


@pytest.mark.timeout(30)
async def test_client_streams_complete_within_an_http_batch() -> None:
    async with batch() as server:
        async with capnweb.connect(server.url) as api:
            assert await api.collect(agen(list(range(10)))) == list(range(10))
        async with capnweb.connect(server.url) as api:
            assert await api.blob_info(Blob(b"b" * 16 * KiB, "x/y")) == [16 * KiB, "x/y"]
        async with capnweb.connect(server.url) as api:
            request = Request("https://example.com/", "POST", body=agen([b"small"]))
            assert await api.describe(request) == ["POST", "https://example.com/", [], "small"]


@pytest.mark.timeout(30)
async def test_a_client_stream_longer_than_a_batch_ends_with_the_batch_timeout() -> None:
    source = Source(count=40)  # 2.5 MiB: more than one window, so the close is not in the batch
    async with batch(Limits(batch_timeout=0.5)) as server:
        async with capnweb.connect(server.url) as api:
            with pytest.raises(RpcError, match="batch_timeout"):
                await api.collect(source.gen())
        await until(source.closed)
        assert source.made < 40
