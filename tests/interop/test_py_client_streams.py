"""The Python client against the TypeScript reference server: streams, Blobs, Request/Response,
URL and Headers (INTEROP-CONTRACT.md section 6).

Everything runs over WebSocket (``ws``); what the reference can do inside one HTTP batch (6.5)
runs over ``batch`` as well. Sessions, frame logs and leak checks are those of
``test_py_client.py``. Every WebSocket scenario ends with the leak check of 6.2 "Release": the
server's ``getStats()`` and the client's ``Session.stats()`` go back to the bootstrap entries.

Waiting is always on a condition with a deadline: ``eventually`` retries a check, ``settled``
polls a counter until it stops moving (a producer that stopped), and the server's
``streamStatus()`` tells how far its producer got.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import json
import math
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import capnweb
from capnweb import (
    URL,
    BigInt,
    Blob,
    Headers,
    ReadableStream,
    Request,
    Response,
    RpcError,
    RpcRangeError,
    RpcTypeError,
    undefined,
)

from . import test_py_client
from ._py_cases import assert_strict, eventually
from .test_py_client import (
    BOTH,
    Client,
    Clients,
    assert_error,
    assert_server_clean,
    gather,
    outcomes,
)

pytestmark = pytest.mark.timeout(20)

clients = test_py_client.clients
"""The fixture of ``test_py_client.py``: client sessions against the reference server."""

KiB = 1024
MiB = 1024 * KiB
MAX_AHEAD = 4 * MiB
"""The most chunk data a producer may be ahead of what its consumer has read (6.2)."""
NUMBER_SIZE = 16
"""What a number chunk counts as chunk data: the size both implementations estimate for it."""
MAX_NUMBERS_AHEAD = MAX_AHEAD // NUMBER_SIZE
"""MAX_AHEAD in number chunks."""
MIN_RATE = 4.0
"""MiB/s every large transfer must reach (6.2)."""
LARGE_TIMEOUT_S = 60
LARGE_TRANSFERS = [
    pytest.param(total * MiB, size, id=f"{total}MiB_{name}")
    for total in (16, 64)
    for size, name in ((64 * KiB, "64KiB"), (MiB, "1MiB"))
]
"""(total, chunk size) of the large transfers, both ways (6.2)."""
STALLED_QUIET_S = 0.3
"""A counter that has not moved for this long counts as stopped."""

# --------------------------------------------------------------------------------------------
# Byte patterns and digests

PERIOD = 251
PATTERN = bytes(range(PERIOD)) * (MiB // PERIOD + 2)
PERIOD_SUM = sum(range(PERIOD))


def pattern(offset: int, length: int) -> bytes:
    """Bytes ``offset .. offset + length`` of the stream whose byte ``i`` is ``i % 251``."""
    assert length <= MiB
    start = offset % PERIOD
    return PATTERN[start : start + length]


def pattern_sum(offset: int, length: int) -> int:
    """The sum of ``pattern(offset, length)``, without adding every byte."""
    start = offset % PERIOD
    return length // PERIOD * PERIOD_SUM + sum(PATTERN[start : start + length % PERIOD])


def digest_of(chunks: list[bytes]) -> dict[str, int]:
    """What ``digestStream`` answers for these chunks."""
    adler = zlib.adler32(b"")
    for chunk in chunks:
        adler = zlib.adler32(chunk, adler)
    data = b"".join(chunks)
    return {"bytes": len(data), "sum": sum(data) % 2**32, "adler32": adler}


def check_rate(total: int, elapsed: float, what: str) -> None:
    rate = total / MiB / max(elapsed, 1e-6)
    assert rate >= MIN_RATE, f"{what}: {total / MiB} MiB in {elapsed:.2f} s ({rate:.1f} MiB/s)"


async def read_pattern(stream: Any, total: int, size: int) -> int:
    """Reads a whole ``streamBytes(total, size)`` stream, checking every chunk's bytes."""
    assert isinstance(stream, ReadableStream), repr(stream)
    count = math.ceil(total / size)
    index = 0
    async for chunk in stream:
        assert index < count, f"more than the {count} chunks expected"
        offset = index * size
        length = min(size, total - offset)
        assert type(chunk) is bytes, f"chunk {index}: {type(chunk).__name__}"
        assert len(chunk) == length, f"chunk {index}: {len(chunk)} bytes, expected {length}"
        assert chunk == pattern(offset, length), f"chunk {index}: wrong bytes"
        index += 1
    assert index == count, f"{index} chunks, expected {count}"
    return index


# --------------------------------------------------------------------------------------------
# Client streams


class Source:
    """A client stream made on demand by an async generator: ``chunk_at(i)`` for ``count``
    chunks (``None``: no end), then the end or ``error``. ``produced`` counts the chunks
    made; ``finished`` is set once the generator is done (ended, failed or closed)."""

    def __init__(
        self,
        count: int | None,
        chunk_at: Callable[[int], Any],
        error: BaseException | None = None,
    ) -> None:
        self.count = count
        self.chunk_at = chunk_at
        self.error = error
        self.produced = 0
        self.finished = asyncio.Event()

    async def chunks(self) -> AsyncIterator[Any]:
        try:
            indexes = itertools.count() if self.count is None else range(self.count)
            for i in indexes:
                self.produced += 1
                yield self.chunk_at(i)
            if self.error is not None:
                raise self.error
        finally:
            self.finished.set()


def chunks_of(values: list[Any], error: BaseException | None = None) -> AsyncIterator[Any]:
    """An async generator yielding ``values``, then raising ``error`` if given."""
    return Source(len(values), values.__getitem__, error).chunks()


def byte_source(total: int, size: int) -> tuple[Source, dict[str, int]]:
    """``total`` bytes in ``size`` chunks (byte ``i`` is ``(i + 7) % 251``: not the server's
    pattern, so nothing can be echoed by accident), and the digest the server must find."""
    count = math.ceil(total / size)

    def chunk_at(i: int) -> bytes:
        return pattern(i * size + 7, min(size, total - i * size))

    adler = zlib.adler32(b"")
    total_sum = 0
    for i in range(count):
        length = min(size, total - i * size)
        adler = zlib.adler32(chunk_at(i), adler)
        total_sum += pattern_sum(i * size + 7, length)
    return Source(count, chunk_at), {"bytes": total, "sum": total_sum % 2**32, "adler32": adler}


# --------------------------------------------------------------------------------------------
# Waiting and status


async def settled(
    read: Callable[[], Awaitable[int]], *, timeout: float = 3.0, what: str = "value"
) -> int:
    """Polls ``read()`` until it keeps the same value for STALLED_QUIET_S; returns that value.
    Fails if it still moves at ``timeout`` (a producer that did not stop)."""
    deadline = time.monotonic() + timeout
    last = await read()
    since = time.monotonic()
    while True:
        await asyncio.sleep(0.05)
        value = await read()
        now = time.monotonic()
        if value != last:
            last, since = value, now
        elif now - since >= STALLED_QUIET_S:
            return value
        assert now < deadline, f"{what} still changing after {timeout} s (last {value})"


async def status_of(api: Any, session_id: str | None = None) -> dict[str, Any]:
    status: dict[str, Any] = await (
        api.streamStatus() if session_id is None else api.streamStatus(session_id)
    )
    return status


async def status_becomes(api: Any, expected: dict[str, Any]) -> None:
    async def check() -> None:
        assert await status_of(api) == expected

    await eventually(check)


async def check_cancelled(api: Any, max_produced: int, session_id: str | None = None) -> int:
    """The server's stream was cancelled (with a string reason) and its producer stopped at
    ``max_produced`` chunks or fewer; returns the chunks it made."""

    async def cancelled() -> dict[str, Any]:
        status = await status_of(api, session_id)
        assert status["state"] == "cancelled", status
        return status

    status = await eventually(cancelled)
    assert isinstance(status["reason"], str), status

    async def produced() -> int:
        return int((await status_of(api, session_id))["produced"])

    count = await settled(produced, what="chunks produced after the cancel")
    assert count <= max_produced, f"the server produced {count} chunks (at most {max_produced})"
    return count


async def assert_clean(client: Client) -> None:
    """Nothing of the scenario is left in either side's tables (once the releases arrived)."""
    await eventually(lambda: assert_server_clean(client))


async def read_until_error(stream: Any) -> tuple[list[Any], BaseException]:
    """Every chunk before the stream failed, and its error; fails if it ends normally."""
    assert isinstance(stream, ReadableStream), repr(stream)
    chunks: list[Any] = []
    try:
        async for chunk in stream:
            chunks.append(chunk)
    except Exception as e:
        return chunks, e
    raise AssertionError(f"the stream ended without an error after {chunks!r}")


# --------------------------------------------------------------------------------------------
# Server streams read by the client


@pytest.mark.parametrize("n", [5, 0, 20_000])
async def test_stream_numbers(clients: Clients, n: int) -> None:
    client = await clients.open("ws")
    api = client.api
    stream = await api.streamNumbers(n)
    assert isinstance(stream, ReadableStream)
    assert_strict(await stream.collect(), list(range(n)), f"streamNumbers({n})")
    await status_becomes(api, {"produced": n, "state": "closed", "reason": None})
    await assert_clean(client)


async def test_stream_status_before_any_stream(clients: Clients) -> None:
    client = await clients.open("ws")
    assert await status_of(client.api) == {"produced": 0, "state": "none", "reason": None}
    [unknown] = await outcomes(client.api.streamStatus("no-such-session"))
    assert_error(unknown, RpcError, "unknown session id: no-such-session")
    await assert_clean(client)


async def test_two_streams_read_one_after_the_other(clients: Clients) -> None:
    client = await clients.open("ws")
    first, second = await gather(client.api.streamNumbers(3), client.api.streamNumbers(2))
    assert await second.collect() == [0, 1]
    assert await first.collect() == [0, 1, 2]
    await assert_clean(client)


@pytest.mark.parametrize(
    ("total", "size"), [(1000, 64), (4096, 1024), (600, 1), (0, 16)], ids=lambda v: str(v)
)
async def test_stream_bytes(clients: Clients, total: int, size: int) -> None:
    client = await clients.open("ws")
    count = await read_pattern(await client.api.streamBytes(total, size), total, size)
    assert count == math.ceil(total / size)
    await assert_clean(client)


@pytest.mark.timeout(LARGE_TIMEOUT_S)
@pytest.mark.parametrize(("total", "size"), LARGE_TRANSFERS)
async def test_stream_bytes_download(clients: Clients, total: int, size: int) -> None:
    client = await clients.open("ws")
    api = client.api
    start = time.monotonic()
    count = await read_pattern(await api.streamBytes(total, size), total, size)
    check_rate(total, time.monotonic() - start, f"streamBytes({total}, {size})")
    await status_becomes(api, {"produced": count, "state": "closed", "reason": None})
    await assert_clean(client)


@pytest.mark.parametrize(("n", "message"), [(3, "stream broke"), (0, "nothing ü 😀")])
async def test_failing_stream(clients: Clients, n: int, message: str) -> None:
    client = await clients.open("ws")
    chunks, error = await read_until_error(await client.api.failingStream(n, message))
    assert chunks == list(range(n))
    assert_error(error, RpcError, message)
    assert isinstance(error, RpcError) and error.name == "Error"
    await assert_clean(client)


# --------------------------------------------------------------------------------------------
# Cancelling server streams


@pytest.mark.parametrize("how", ["cancel", "aclose"])
async def test_cancel_numbers_after_k_chunks(clients: Clients, how: str) -> None:
    client = await clients.open("ws")
    api = client.api
    k = 5
    stream = await api.streamNumbers(10**9)
    if how == "cancel":
        got = [await anext(stream) for _ in range(k)]
        stream.cancel("enough")
        expected_reason = "enough"
    else:
        got = []
        async with aclosing(stream):
            async for chunk in stream:
                got.append(chunk)
                if len(got) == k:
                    break
        expected_reason = "The stream was cancelled."
    assert got == list(range(k))
    await check_cancelled(api, k + MAX_NUMBERS_AHEAD)
    assert (await status_of(api))["reason"] == expected_reason
    await assert_clean(client)


async def test_cancel_bytes_after_k_chunks(clients: Clients) -> None:
    client = await clients.open("ws")
    api = client.api
    size = 64 * KiB
    total = 2**31
    stream = await api.streamBytes(total, size)
    for i in range(3):
        assert await anext(stream) == pattern(i * size, size)
    stream.cancel(RuntimeError("enough bytes"))
    await check_cancelled(api, 3 + (MAX_AHEAD + size) // size)
    assert (await status_of(api))["reason"] == "enough bytes"
    await assert_clean(client)


async def test_drop_stream_unread(clients: Clients) -> None:
    client = await clients.open("ws")
    api = client.api
    stream = await api.streamNumbers(10**9)
    del stream
    gc.collect()
    await check_cancelled(api, MAX_NUMBERS_AHEAD)
    assert (await status_of(api))["reason"] == (
        "ReadableStream RPC stub was disposed without being consumed"
    )
    await assert_clean(client)


async def test_session_end_cancels_its_streams(clients: Clients) -> None:
    first = await clients.open("ws")
    session_id = await first.api.getSessionId()
    stream = await first.api.streamNumbers(10**9)
    assert await anext(stream) == 0
    await first.close()
    observer = (await clients.open("ws")).api
    await check_cancelled(observer, 1 + MAX_NUMBERS_AHEAD, session_id)
    del stream  # held until here: the end of the session cancelled it, not its disposal


async def test_slow_reader_bounds_the_producer(clients: Clients) -> None:
    """The server never runs more than MAX_AHEAD of chunk data ahead of what was read, and
    stops while the client does not read."""
    client = await clients.open("ws")
    api = client.api
    size = 64 * KiB
    total = 64 * MiB
    limit = (MAX_AHEAD + size) // size
    stream = await api.streamBytes(total, size)
    read = 0
    for _ in range(20):
        assert await anext(stream) == pattern(read * size, size)
        read += 1
        status = await status_of(api)  # a round trip before the next read: a slow reader
        assert status["produced"] - read <= limit, f"{read} chunks read, {status}"

    async def produced() -> int:
        return int((await status_of(api))["produced"])

    stalled = await settled(produced, what="chunks produced while the client does not read")
    assert stalled - read <= limit, f"{stalled} chunks produced, {read} read"
    assert (await status_of(api))["state"] == "open"
    assert await anext(stream) == pattern(read * size, size)  # it resumes
    stream.cancel("slow reader done")
    await check_cancelled(api, stalled + limit)
    await assert_clean(client)


# --------------------------------------------------------------------------------------------
# Client streams (Python async generators) read by the server


@pytest.mark.parametrize("transport", BOTH)
async def test_sum_stream(clients: Clients, transport: str) -> None:
    client = await clients.open(transport)
    api = client.api
    results = await gather(
        api.sumStream(chunks_of(list(range(1, 11)))),
        api.sumStream(chunks_of([])),
        api.sumStream(chunks_of([0.5, -2, 2**40])),
    )
    assert results == [55, 0, 2**40 - 1.5]
    if transport == "batch":
        assert client.requests == 1
    else:
        await assert_clean(client)


async def test_sum_stream_many(clients: Clients) -> None:
    client = await clients.open("ws")
    assert await client.api.sumStream(chunks_of(list(range(20_000)))) == 199_990_000
    await assert_clean(client)


DIGEST_CHUNKS = [b"hello", b"", bytes(range(256)), b"\xff" * 100_000, b"\x00\x01\x02"]


@pytest.mark.parametrize("transport", BOTH)
async def test_digest_stream(clients: Clients, transport: str) -> None:
    client = await clients.open(transport)
    api = client.api
    results = await gather(
        api.digestStream(chunks_of(DIGEST_CHUNKS)),
        api.digestStream(chunks_of([])),
        api.digestStream(chunks_of([b"Wiki", b"pedia"])),
    )
    assert results == [
        digest_of(DIGEST_CHUNKS),
        {"bytes": 0, "sum": 0, "adler32": 1},
        {"bytes": 9, "sum": 919, "adler32": 0x11E60398},
    ]
    if transport == "batch":
        assert client.requests == 1
    else:
        await assert_clean(client)


@pytest.mark.timeout(LARGE_TIMEOUT_S)
@pytest.mark.parametrize(("total", "size"), LARGE_TRANSFERS)
async def test_digest_stream_upload(clients: Clients, total: int, size: int) -> None:
    client = await clients.open("ws")
    source, expected = byte_source(total, size)
    start = time.monotonic()
    assert await client.api.digestStream(source.chunks()) == expected
    check_rate(total, time.monotonic() - start, f"digestStream of {total} bytes")
    assert source.produced == math.ceil(total / size)
    await assert_clean(client)


async def test_upload_held_back_while_the_server_does_not_read(clients: Clients) -> None:
    """digestStream waits before reading: the Python generator is asked for chunks only as
    the server acknowledges them, so it stays at most MAX_AHEAD ahead."""
    client = await clients.open("ws")
    size = 64 * KiB
    delay_ms = 2000
    source, expected = byte_source(16 * MiB, size)
    start = time.monotonic()
    result = asyncio.ensure_future(client.api.digestStream(source.chunks(), delay_ms))

    async def produced() -> int:
        return source.produced

    try:
        waiting = await settled(
            produced, timeout=delay_ms / 1000 - 0.5, what="chunks made while the server waits"
        )
        assert not result.done()
        assert 0 < waiting * size <= MAX_AHEAD + size, f"{waiting} chunks of {size} bytes"
        assert await result == expected
    finally:
        result.cancel()  # a no-op once done; else the call ends with the test
    assert time.monotonic() - start >= delay_ms / 1000 - 0.05
    await assert_clean(client)


FAILURES = [
    pytest.param(TypeError("bad chunk"), RpcTypeError, id="TypeError"),
    pytest.param(ValueError("out of range ü"), RpcRangeError, id="ValueError_is_RangeError"),
    pytest.param(RpcError("plain failure"), RpcError, id="Error"),
    pytest.param(RpcRangeError("a range"), RpcRangeError, id="RangeError"),
]


@pytest.mark.parametrize(("error", "expected"), FAILURES)
@pytest.mark.parametrize("chunks", [[1, 2, 3], []], ids=["after_chunks", "at_once"])
async def test_failing_generator_rejects_sum_stream(
    clients: Clients, error: Exception, expected: type[Exception], chunks: list[int]
) -> None:
    client = await clients.open("ws")
    [got] = await outcomes(client.api.sumStream(chunks_of(chunks, error)))
    assert_error(got, expected, str(error))
    await assert_clean(client)


@pytest.mark.parametrize(("error", "expected"), FAILURES[:2])
async def test_failing_generator_rejects_digest_stream(
    clients: Clients, error: Exception, expected: type[Exception]
) -> None:
    client = await clients.open("ws")
    [got] = await outcomes(client.api.digestStream(chunks_of([bytes(1000)] * 3, error)))
    assert_error(got, expected, str(error))
    await assert_clean(client)


# --------------------------------------------------------------------------------------------
# Streams that stay on the server (also in a batch)


@pytest.mark.parametrize("transport", BOTH)
async def test_streams_staying_on_the_server(clients: Clients, transport: str) -> None:
    client = await clients.open(transport)
    api = client.api
    numbers = api.streamNumbers(100)
    echoed = api.echoStream(chunks_of(list(range(1, 11))))
    assert await gather(api.sumStream(numbers), api.sumStream(echoed)) == [4950, 55]
    numbers.dispose()  # pipelined pushes, never pulled
    echoed.dispose()
    if transport == "batch":
        assert client.requests == 1
    else:
        await assert_clean(client)


async def test_received_stream_passed_back(clients: Clients) -> None:
    """A ReadableStream the server returned, passed back as an argument: the client forwards
    its chunks as it reads them."""
    client = await clients.open("ws")
    api = client.api
    assert await api.sumStream(await api.streamNumbers(100)) == 4950
    size = 64 * KiB
    total = 4 * MiB
    expected = digest_of([pattern(i * size, size) for i in range(total // size)])
    assert await api.digestStream(await api.streamBytes(total, size)) == expected
    await assert_clean(client)


async def test_received_request_and_response_passed_back(clients: Clients) -> None:
    """A Request and a Response with streamed bodies, received and sent back unread."""
    client = await clients.open("ws")
    api = client.api
    pairs = [["content-type", "text/plain"], ["x-k", "v"]]
    request = await api.makeRequest("PUT", URL_2, pairs, BODY_TEXT)
    response = await api.makeResponse(202, BODY_TEXT, pairs)
    described = await gather(api.echoRequest(request), api.describeResponse(response))
    assert described == [
        {"method": "PUT", "url": URL_2, "headers": pairs, "body": BODY_TEXT},
        {"status": 202, "statusText": "", "headers": pairs, "body": BODY_TEXT},
    ]
    await assert_clean(client)


@pytest.mark.timeout(LARGE_TIMEOUT_S)
async def test_upload_and_download_at_once(clients: Clients) -> None:
    """A 16 MiB upload and a 16 MiB download on one session at the same time."""
    client = await clients.open("ws")
    api = client.api
    size = 64 * KiB
    total = 16 * MiB
    source, expected = byte_source(total, size)

    async def download() -> int:
        return await read_pattern(await api.streamBytes(total, size), total, size)

    start = time.monotonic()
    digest, chunks = await gather(api.digestStream(source.chunks()), download())
    check_rate(2 * total, time.monotonic() - start, "16 MiB up and 16 MiB down")
    assert digest == expected
    assert chunks == total // size
    await assert_clean(client)


# --------------------------------------------------------------------------------------------
# echoStream: a Python stream back through the server


def _utc_ms(ms: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)


ANY_VALUES: list[Any] = [
    1,
    -0.5,
    "two",
    "",
    None,
    undefined,
    True,
    BigInt(5),
    BigInt(-(2**70)),
    _utc_ms(-3),
    math.inf,
    math.nan,
    bytes([0, 1, 255]),
    b"",
    [],
    [1, [2, []]],
    {},
    {"a": {"b": [undefined]}},
    ["import", 0],
    RpcRangeError("a value, not a failure"),
    URL("https://example.com/x"),
    Headers([("a", "b")]),
]


@pytest.mark.parametrize(
    "values",
    [
        pytest.param(list(range(100)), id="numbers"),
        pytest.param([b"", b"\x00", bytes(range(256)), b"\xff" * 70_000], id="bytes"),
        pytest.param(ANY_VALUES, id="mixed_values"),
        pytest.param([], id="empty"),
    ],
)
async def test_echo_stream(clients: Clients, values: list[Any]) -> None:
    client = await clients.open("ws")
    echoed = await client.api.echoStream(chunks_of(values))
    assert isinstance(echoed, ReadableStream)
    assert_strict(await echoed.collect(), values, "echoStream chunks")
    await assert_clean(client)


@pytest.mark.timeout(LARGE_TIMEOUT_S)
async def test_echo_stream_8mib(clients: Clients) -> None:
    client = await clients.open("ws")
    size = 256 * KiB
    total = 8 * MiB
    source = Source(total // size, lambda i: pattern(i * size, size))
    start = time.monotonic()
    echoed = await client.api.echoStream(source.chunks())
    assert await read_pattern(echoed, total, size) == total // size
    check_rate(total, time.monotonic() - start, "echoStream of 8 MiB")
    await assert_clean(client)


async def test_echo_stream_failing_input(clients: Clients) -> None:
    client = await clients.open("ws")
    echoed = await client.api.echoStream(chunks_of([1, 2, 3], ValueError("input failed")))
    chunks, error = await read_until_error(echoed)
    assert chunks == [1, 2, 3][: len(chunks)]  # a reader may drop chunks it had not read
    assert_error(error, RpcRangeError, "input failed")
    await assert_clean(client)


async def test_echo_stream_cancel_reaches_the_python_generator(clients: Clients) -> None:
    client = await clients.open("ws")
    source = Source(None, lambda i: i)
    echoed = await client.api.echoStream(source.chunks())
    assert [await anext(echoed) for _ in range(3)] == [0, 1, 2]
    echoed.cancel("echo no more")
    async with asyncio.timeout(5):
        await source.finished.wait()  # the generator was closed: its `finally` ran

    async def produced() -> int:
        return source.produced

    made = await settled(produced, what="chunks the generator made")
    # Two hops (client -> server -> client), each at most MAX_AHEAD ahead.
    assert made <= 3 + 2 * MAX_NUMBERS_AHEAD, made
    await assert_clean(client)


# --------------------------------------------------------------------------------------------
# WritableStreams the client passes to the server


class RecordingSink(capnweb.WritableStream[Any]):
    """Records ``("write", chunk)``, ``("close",)`` and ``("abort", reason)`` in ``events``;
    a write of ``hold_at`` sets ``holding`` and waits for ``gate``."""

    def __init__(self, hold_at: Any = None) -> None:
        self.events: list[tuple[Any, ...]] = []
        self.hold_at = hold_at
        self.holding = asyncio.Event()
        self.gate = asyncio.Event()
        self.ended = asyncio.Event()

    async def write(self, chunk: Any) -> None:
        self.events.append(("write", chunk))
        if chunk == self.hold_at:
            self.holding.set()
            await self.gate.wait()

    async def close(self) -> None:
        self.events.append(("close",))
        self.ended.set()

    async def abort(self, reason: BaseException | None = None) -> None:
        self.events.append(("abort", reason))
        self.ended.set()


@pytest.mark.parametrize("n", [5, 0])
async def test_write_numbers(clients: Clients, n: int) -> None:
    client = await clients.open("ws")
    sink = RecordingSink()
    assert await client.api.writeNumbers(sink, n) == n
    assert sink.events == [*(("write", i) for i in range(n)), ("close",)]
    await assert_clean(client)


async def test_write_numbers_into_a_slow_sink(clients: Clients) -> None:
    """The sink holds its first write: the TypeScript writer stops at its window and goes on
    once the sink does."""
    client = await clients.open("ws")
    n = 20_000
    sink = RecordingSink(hold_at=0)

    async def writes_received() -> int:
        return sum(1 for d, t in client.frames.events if d == "in" and t.startswith('["stream",'))

    result = asyncio.ensure_future(client.api.writeNumbers(sink, n))
    try:
        async with asyncio.timeout(5):
            await sink.holding.wait()
        stalled = await settled(writes_received, what="writes received while the sink waits")
        assert 0 < stalled < n, stalled
        assert sink.events == [("write", 0)]
        assert not result.done()
        sink.gate.set()
        async with asyncio.timeout(15):
            assert await result == n
    finally:
        result.cancel()  # a no-op once done; else the call ends with the test
    assert sink.events == [*(("write", i) for i in range(n)), ("close",)]
    await assert_clean(client)


async def test_abort_writable(clients: Clients) -> None:
    client = await clients.open("ws")
    sink = RecordingSink()
    assert await client.api.abortWritable(sink, "giving up ü") is None
    async with asyncio.timeout(5):
        await sink.ended.wait()
    [(event, reason)] = sink.events
    assert event == "abort"
    assert_error(reason, RpcError, "giving up ü")
    await assert_clean(client)


# --------------------------------------------------------------------------------------------
# Blobs


SMALL_BLOB_CASES = [
    pytest.param(b"", "", id="empty"),
    pytest.param(b"", "application/x-empty", id="empty_typed"),
    pytest.param(bytes(range(256)), "", id="small"),
    pytest.param("<p>héllo</p>".encode(), "text/html;charset=utf-8", id="small_typed"),
    pytest.param(pattern(0, 16 * KiB), "application/octet-stream", id="16KiB_typed"),
]
LARGE_BLOB_CASES = [
    pytest.param(b"".join(pattern(i * MiB + 3, MiB) for i in range(5)) + b"!", "", id="5MiB"),
    pytest.param(b"".join(pattern(i * MiB, MiB) for i in range(3)), "image/png", id="3MiB_typed"),
]


@pytest.mark.parametrize("transport", BOTH)
@pytest.mark.parametrize(("data", "mime"), SMALL_BLOB_CASES)
async def test_blob_info(clients: Clients, transport: str, data: bytes, mime: str) -> None:
    client = await clients.open(transport)
    [info] = await gather(client.api.blobInfo(Blob(data, mime)))
    assert info == {"size": len(data), "type": mime}
    if transport == "ws":
        await assert_clean(client)


@pytest.mark.parametrize(("data", "mime"), LARGE_BLOB_CASES)
async def test_blob_info_large(clients: Clients, data: bytes, mime: str) -> None:
    client = await clients.open("ws")
    assert await client.api.blobInfo(Blob(data, mime)) == {"size": len(data), "type": mime}
    await assert_clean(client)


@pytest.mark.parametrize(("data", "mime"), SMALL_BLOB_CASES + LARGE_BLOB_CASES)
async def test_echo_blob(clients: Clients, data: bytes, mime: str) -> None:
    client = await clients.open("ws")
    got = await client.api.echoBlob(Blob(data, mime))
    assert type(got) is Blob
    assert got.type == mime
    assert got.size == len(data)
    assert got.data == data
    await assert_clean(client)


# --------------------------------------------------------------------------------------------
# Request / Response


URL_1 = "https://example.com/a/b?q=1&r=%C3%A9"
URL_2 = "http://127.0.0.1:8080/upload"
BODY_TEXT = "héllo, wörld 😀"


def body_of(kind: str) -> Any:
    """``BODY_TEXT`` as a body of the given kind (an async generator splits a character)."""
    data = BODY_TEXT.encode()
    if kind == "str":
        return BODY_TEXT
    if kind == "bytes":
        return data
    return chunks_of([data[:2], data[2:3], b"", data[3:]])


BODY_KINDS = ["str", "bytes", "async_generator"]


@pytest.mark.parametrize("transport", BOTH)
@pytest.mark.parametrize("kind", BODY_KINDS)
async def test_echo_request_with_body(clients: Clients, transport: str, kind: str) -> None:
    client = await clients.open(transport)
    headers = Headers([("x-b", "2"), ("Content-Type", "text/plain;charset=utf-8"), ("x-a", "1")])
    request = Request(URL_1, method="POST", headers=headers, body=body_of(kind))
    [got] = await gather(client.api.echoRequest(request))
    assert got == {
        "method": "POST",
        "url": URL_1,
        "headers": [["content-type", "text/plain;charset=utf-8"], ["x-a", "1"], ["x-b", "2"]],
        "body": BODY_TEXT,
    }
    if transport == "ws":
        await assert_clean(client)


@pytest.mark.parametrize("transport", BOTH)
async def test_echo_request_without_body(clients: Clients, transport: str) -> None:
    client = await clients.open(transport)
    api = client.api
    results = await gather(
        api.echoRequest(Request(URL_2, headers=Headers({"x-token": "abc", "accept": "*/*"}))),
        api.echoRequest(Request(URL_1, method="DELETE")),
    )
    assert results == [
        {"method": "GET", "url": URL_2, "headers": [["accept", "*/*"], ["x-token", "abc"]]}
        | {"body": None},
        {"method": "DELETE", "url": URL_1, "headers": [], "body": None},
    ]
    if transport == "ws":
        await assert_clean(client)


async def test_make_request_with_body(clients: Clients) -> None:
    client = await clients.open("ws")
    pairs = [["content-type", "application/json"], ["x-k", "v"]]
    request = await client.api.makeRequest("PUT", URL_2, pairs, '{"a": "ü"}')
    assert type(request) is Request
    assert (request.method, request.url) == ("PUT", URL_2)
    assert request.headers == Headers([("content-type", "application/json"), ("x-k", "v")])
    assert isinstance(request.body, ReadableStream)
    assert await request.text() == '{"a": "ü"}'
    await assert_clean(client)


@pytest.mark.parametrize("transport", BOTH)
async def test_make_request_without_body(clients: Clients, transport: str) -> None:
    client = await clients.open(transport)
    [request] = await gather(
        client.api.makeRequest("GET", URL_1, [["x-a", "1"], ["x-b", "2"]], None)
    )
    assert type(request) is Request
    assert (request.method, request.url, request.body) == ("GET", URL_1, None)
    assert request.headers == Headers([("x-a", "1"), ("x-b", "2")])
    assert await request.text() == ""
    if transport == "ws":
        await assert_clean(client)


@pytest.mark.parametrize("transport", BOTH)
@pytest.mark.parametrize("kind", BODY_KINDS)
async def test_describe_response_with_body(clients: Clients, transport: str, kind: str) -> None:
    client = await clients.open(transport)
    headers = Headers({"content-type": "text/plain", "etag": "x"})
    response = Response(body_of(kind), status=201, status_text="Created", headers=headers)
    [got] = await gather(client.api.describeResponse(response))
    assert got == {
        "status": 201,
        "statusText": "Created",
        "headers": [["content-type", "text/plain"], ["etag", "x"]],
        "body": BODY_TEXT,
    }
    if transport == "ws":
        await assert_clean(client)


@pytest.mark.parametrize("transport", BOTH)
async def test_describe_response_without_body(clients: Clients, transport: str) -> None:
    client = await clients.open(transport)
    [got] = await gather(client.api.describeResponse(Response(None, status=204)))
    assert got == {"status": 204, "statusText": "", "headers": [], "body": None}
    if transport == "ws":
        await assert_clean(client)


async def test_make_response_with_body(clients: Clients) -> None:
    client = await clients.open("ws")
    pairs = [["content-type", "text/plain;charset=utf-8"], ["x-b", "2"]]
    response = await client.api.makeResponse(202, "accepté", pairs)
    assert type(response) is Response
    assert (response.status, response.status_text) == (202, "")
    assert response.headers == Headers([("content-type", "text/plain;charset=utf-8"), ("x-b", "2")])
    assert isinstance(response.body, ReadableStream)
    assert await response.text() == "accepté"
    await assert_clean(client)


@pytest.mark.parametrize("transport", BOTH)
async def test_make_response_without_body(clients: Clients, transport: str) -> None:
    client = await clients.open(transport)
    [response] = await gather(client.api.makeResponse(404, None, [["x-reason", "missing"]]))
    assert type(response) is Response
    assert (response.status, response.status_text, response.body) == (404, "", None)
    assert response.headers == Headers([("x-reason", "missing")])
    if transport == "ws":
        await assert_clean(client)


# --------------------------------------------------------------------------------------------
# URL and Headers through echo


URL_HEADERS_CASES = [
    pytest.param(
        URL("https://user:pw@example.com:8443/p/a%20th?q=1&r=%C3%A9#frag"), None, id="url"
    ),
    pytest.param(URL("http://127.0.0.1/"), None, id="url_simple"),
    # Fetch Headers lower-case names, sort them and join repeated ones (except set-cookie).
    pytest.param(
        Headers([("X-B", "2"), ("content-type", "text/plain"), ("x-a", "1"), ("x-a", "0")]),
        Headers([("content-type", "text/plain"), ("x-a", "1, 0"), ("x-b", "2")]),
        id="headers",
    ),
    pytest.param(Headers(), None, id="headers_empty"),
    pytest.param(
        Headers([("set-cookie", "a=1"), ("set-cookie", "b=2"), ("x-v", "ü")]),
        None,
        id="headers_repeated_set_cookie",
    ),
    pytest.param(
        {
            "list": [URL("https://example.com/x"), Headers({"a": "b"})],
            "nested": {"url": URL("wss://example.com/rpc"), "headers": [Headers([("k", "v")])]},
        },
        None,
        id="nested",
    ),
]


@pytest.mark.parametrize("transport", BOTH)
@pytest.mark.parametrize(("value", "expected"), URL_HEADERS_CASES)
async def test_echo_url_and_headers(
    clients: Clients, transport: str, value: Any, expected: Any
) -> None:
    client = await clients.open(transport)
    [got] = await gather(client.api.echo(value))
    assert_strict(got, value if expected is None else expected, "echo")
    if transport == "ws":
        await assert_clean(client)


# --------------------------------------------------------------------------------------------
# Wire frames: the section 6.1 trace, as the Python client sends it


def _numbered_incoming(events: list[tuple[str, str]]) -> dict[int, int]:
    """For each message the server sent that takes an ID of its sequence (push, pipe,
    stream), that ID -> the message's index in ``events``."""
    ids: dict[int, int] = {}
    next_id = 1
    for index, (direction, text) in enumerate(events):
        if direction == "in" and json.loads(text)[0] in ("push", "pipe", "stream"):
            ids[next_id] = index
            next_id += 1
    return ids


def _index(events: list[tuple[str, str]], direction: str, frame: list[Any]) -> int:
    """The index of the first event that is ``frame`` sent in ``direction``."""
    text = json.dumps(frame, separators=(",", ":"))
    return next(i for i, event in enumerate(events) if event == (direction, text))


async def test_wire_frames_of_streams(clients: Clients) -> None:
    """A returned stream, a stream argument and a WritableStream argument on a fresh session,
    as in the trace of 6.1: what the client sends, and in which order."""
    client = await clients.open("ws")
    api = client.api
    frames = client.frames

    # 1. A stream the server returns: acknowledge each stream message, no pull, no release.
    stream = await api.streamNumbers(2)
    assert await stream.collect() == [0, 1]

    async def server_released_its_pipe() -> None:
        assert ("in", '["release",1,1]') in frames.events

    await eventually(server_released_its_pipe)
    events = frames.since()
    sent = frames.sent_since()
    assert sent[:2] == ['["push",["pipeline",0,["streamNumbers"],[2]]]', '["pull",1]']
    acks = [
        '["resolve",2,["undefined"]]',
        '["resolve",3,["undefined"]]',
        '["resolve",4,["undefined"]]',
    ]
    assert sorted(sent[2:]) == sorted(['["release",1,1]', *acks])
    assert [t for t in sent if t in acks] == acks  # in order
    incoming = _numbered_incoming(events)
    assert json.loads(events[incoming[1]][1]) == ["pipe"]
    for k in (2, 3, 4):  # each answered after it arrived
        assert json.loads(events[incoming[k]][1])[0] == "stream"
        assert _index(events, "out", ["resolve", k, ["undefined"]]) > incoming[k]
    mark = frames.mark()

    # 2. A stream argument: the pipe before the push; push, pipe and stream messages share
    # the client's ID sequence (pipe 2, push 3, writes 4 and 5, close 6); the pipe is released
    # once the close is acknowledged.
    async def five_and_six() -> AsyncIterator[int]:
        yield 5
        yield 6

    assert await api.sumStream(five_and_six()) == 11

    async def pipe_released() -> None:
        assert '["release",2,1]' in frames.sent_since(mark)

    await eventually(pipe_released)
    sent = frames.sent_since(mark)
    assert sent[:6] == [
        '["pipe"]',
        '["push",["pipeline",0,["sumStream"],[["readable",2]]]]',
        '["pull",3]',
        '["stream",["pipeline",2,["write"],[5]]]',
        '["stream",["pipeline",2,["write"],[6]]]',
        '["stream",["pipeline",2,["close"],[]]]',
    ]
    assert sorted(sent[6:]) == ['["release",2,1]', '["release",3,1]']
    events = frames.since(mark)
    for k in (4, 5, 6):  # the server acknowledged the stream messages by their IDs
        assert ("in", f'["resolve",{k},["undefined"]]') in events
    assert _index(events, "out", ["release", 2, 1]) > _index(
        events, "in", ["resolve", 6, ["undefined"]]
    )
    mark = frames.mark()

    # 3. A WritableStream argument: an export; every stream message of the server answered.
    sink = RecordingSink()
    assert await api.writeNumbers(sink, 2) == 2
    assert frames.sent_since(mark) == [
        '["push",["pipeline",0,["writeNumbers"],[["writable",-1],2]]]',
        '["pull",7]',
        '["resolve",5,["undefined"]]',
        '["resolve",6,["undefined"]]',
        '["resolve",7,["undefined"]]',
        '["release",7,1]',
    ]
    assert ("in", '["release",-1,1]') in frames.since(mark)
    assert sink.events == [("write", 0), ("write", 1), ("close",)]
    await assert_clean(client)
