"""The wire form of streams (INTEROP-CONTRACT.md 6.1), and streams in both directions:
async generators, objects with ``__aiter__``, received streams sent on, local pipes; every
kind of chunk, capabilities included.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from helpers import Counter, SessionPair, assert_exact

from capnweb import (
    Blob,
    ReadableStream,
    Request,
    RpcError,
    RpcRangeError,
    RpcStub,
    RpcTarget,
    RpcTypeError,
    WritableStream,
    pipe,
    undefined,
)

from .common import (
    Api,
    AsyncValues,
    Sink,
    agen,
    tidy,
)

pytestmark = pytest.mark.timeout(20)


# -- wire form

TRACE = [  # INTEROP-CONTRACT.md 6.1, verbatim
    ("C", ["push", ["pipeline", 0, ["streamNumbers"], [2]]]),
    ("C", ["pull", 1]),
    ("S", ["pipe"]),
    ("S", ["resolve", 1, ["readable", 1]]),
    ("S", ["stream", ["pipeline", 1, ["write"], [0]]]),
    ("S", ["stream", ["pipeline", 1, ["write"], [1]]]),
    ("S", ["stream", ["pipeline", 1, ["close"], []]]),
    ("C", ["release", 1, 1]),
    ("C", ["resolve", 2, ["undefined"]]),
    ("C", ["resolve", 3, ["undefined"]]),
    ("C", ["resolve", 4, ["undefined"]]),
    ("S", ["release", 1, 1]),
    ("C", ["pipe"]),
    ("C", ["push", ["pipeline", 0, ["sumStream"], [["readable", 2]]]]),
    ("C", ["pull", 3]),
    ("C", ["stream", ["pipeline", 2, ["write"], [5]]]),
    ("C", ["stream", ["pipeline", 2, ["write"], [6]]]),
    ("C", ["stream", ["pipeline", 2, ["close"], []]]),
    ("S", ["resolve", 4, ["undefined"]]),
    ("S", ["resolve", 5, ["undefined"]]),
    ("S", ["resolve", 6, ["undefined"]]),
    ("S", ["resolve", 3, 11]),
    ("C", ["release", 3, 1]),
    ("C", ["release", 2, 1]),
    ("C", ["push", ["pipeline", 0, ["writeNumbers"], [["writable", -1], 2]]]),
    ("C", ["pull", 7]),
    ("S", ["stream", ["pipeline", -1, ["write"], [0]]]),
    ("S", ["stream", ["pipeline", -1, ["write"], [1]]]),
    ("S", ["stream", ["pipeline", -1, ["close"], []]]),
    ("C", ["resolve", 5, ["undefined"]]),
    ("C", ["resolve", 6, ["undefined"]]),
    ("C", ["resolve", 7, ["undefined"]]),
    ("S", ["release", -1, 1]),
    ("S", ["resolve", 7, 2]),
    ("C", ["release", 7, 1]),  # (the trace ends before the client releases the last call)
]


class TraceApi(RpcTarget):
    async def streamNumbers(self, n: int) -> AsyncIterator[int]:
        for i in range(n):
            yield i

    async def sumStream(self, stream: ReadableStream[int]) -> int:
        return sum(await stream.collect())

    async def writeNumbers(self, writable: WritableStream[int], n: int) -> int:
        for i in range(n):
            await writable.write(i)
        await writable.close()
        return n


async def test_the_frames_are_those_of_the_contract_trace() -> None:
    sink = Sink()
    async with SessionPair(TraceApi()) as pair:
        numbers = await pair.main.streamNumbers(2)
        assert isinstance(numbers, ReadableStream)
        assert await numbers.collect() == [0, 1]
        await pair.settle()
        assert await pair.main.sumStream(agen([5, 6])) == 11
        await pair.settle()
        assert await pair.main.writeNumbers(sink, 2) == 2
        await pair.assert_clean()
    assert sink.log == [("write", 0), ("write", 1), ("close",)]
    assert tidy(pair.client_frames()) == tidy([f for side, f in TRACE if side == "C"])
    assert tidy(pair.server_frames()) == tidy([f for side, f in TRACE if side == "S"])


async def test_a_failing_source_sends_an_abort_then_releases_the_pipe() -> None:
    async def failing() -> AsyncIterator[int]:
        yield 1
        raise TypeError("src failed")

    async with SessionPair(Api()) as pair:
        with pytest.raises(RpcTypeError, match=r"^src failed$"):
            await pair.main.collect(failing())
        await pair.assert_clean()
    sent = pair.client_frames()
    assert sent[:3] == [
        ["pipe"],
        ["push", ["pipeline", 0, ["collect"], [["readable", 1]]]],
        ["pull", 2],
    ]
    assert sent[3:5] == [
        ["stream", ["pipeline", 1, ["write"], [1]]],
        ["stream", ["pipeline", 1, ["abort"], [["error", "TypeError", "src failed"]]]],
    ]
    assert sorted(sent[5:]) == [["release", 1, 1], ["release", 2, 1]]  # after the answers


async def test_a_source_error_goes_out_after_the_reader_took_the_chunks() -> None:
    # A reader drops the chunks it holds when the abort arrives (the reference does), so the
    # abort waits for the answers to the writes before it.
    async def failing() -> AsyncIterator[int]:
        yield 1
        yield 2
        raise ValueError("after two")

    async with SessionPair(Api()) as pair:
        with pytest.raises(RpcRangeError, match=r"^after two$"):
            await pair.main.collect(failing())
        await pair.assert_clean()
    abort = pair.log.index(
        ("client", ["stream", ["pipeline", 1, ["abort"], [["error", "RangeError", "after two"]]]])
    )
    acks = [pair.log.index(("server", ["resolve", i, ["undefined"]])) for i in (3, 4)]
    assert max(acks) < abort


async def test_an_aborted_writable_is_released_after_the_abort() -> None:
    sink = Sink()
    async with SessionPair(Api()) as pair:
        await pair.main.abort_writable(sink, "no more")
        await pair.assert_clean()
    ((call, reason),) = sink.log
    assert call == "abort" and isinstance(reason, RpcError) and reason.message == "no more"
    log = [(side, frame[:2]) for side, frame in pair.log]
    abort = ["stream", ["pipeline", -1, ["abort"], [["error", "Error", "no more"]]]]
    assert ("server", abort) in log
    answered = log.index(("client", ["resolve", 1]))  # the answer to the abort
    assert log.index(("server", ["release", -1])) > answered


@pytest.mark.parametrize(
    ("blob", "writes"),
    [
        pytest.param(Blob(b"hello", "text/plain"), [["bytes", "aGVsbG8"]], id="small"),
        pytest.param(Blob(b""), [], id="empty"),
    ],
)
async def test_a_blob_goes_through_a_pipe(blob: Blob, writes: list[Any]) -> None:
    async with SessionPair(Api()) as pair:
        assert await pair.main.blob_info(blob) == [blob.size, blob.type]
        await pair.assert_clean()
    sent = pair.client_frames()
    assert sent[:2] == [
        ["pipe"],
        ["push", ["pipeline", 0, ["blob_info"], [["blob", blob.type, ["readable", 1]]]]],
    ]
    streamed = [f[1][3][0] for f in sent if f[0] == "stream" and f[1][2] == ["write"]]
    assert streamed == writes
    assert ["stream", ["pipeline", 1, ["close"], []]] in sent


async def test_a_request_body_stream_is_sent_half_duplex() -> None:
    request = Request("https://example.com/", "POST", body=agen([b"a"]))
    async with SessionPair(Api()) as pair:
        assert await pair.main.describe(request) == ["POST", "https://example.com/", [], "a"]
        await pair.assert_clean()
    init = {"method": "POST", "body": ["readable", 1], "duplex": "half"}
    assert pair.client_frames()[1] == [
        "push",
        ["pipeline", 0, ["describe"], [["request", "https://example.com/", init]]],
    ]


# -- both directions, every kind of chunk

VALUES: list[Any] = [b"\x00\xffbytes", "text", 0, -7, 2.5, True, {"k": [1, "v"]}, [1, [2]]]
VALUES += [None, undefined, Blob(b"b", "x/y")]
KINDS = ["async generator", "__aiter__ object"]


def source_of(kind: str, values: list[Any]) -> Any:
    return agen(values) if kind == "async generator" else AsyncValues(values)


@pytest.mark.parametrize("kind", KINDS)
async def test_a_returned_stream_carries_every_kind_of_chunk(kind: str) -> None:
    async with SessionPair(Api()) as pair:
        stream = await pair.main.values(kind, VALUES)
        assert_exact(await stream.collect(), VALUES)
        await pair.assert_clean()


@pytest.mark.parametrize("kind", KINDS)
async def test_a_stream_argument_carries_every_kind_of_chunk(kind: str) -> None:
    async with SessionPair(Api()) as pair:
        assert_exact(await pair.main.collect(source_of(kind, VALUES)), VALUES)
        await pair.assert_clean()


async def test_a_received_stream_sent_on_carries_its_chunks() -> None:
    async with SessionPair(Api()) as pair:
        # the server's stream, passed back to it
        stream = await pair.main.values("async generator", VALUES)
        assert_exact(await pair.main.collect(stream), VALUES)
        # the client's stream, returned by the server
        relayed = await pair.main.echo(agen(VALUES))
        assert isinstance(relayed, ReadableStream)
        assert_exact(await relayed.collect(), VALUES)
        await pair.assert_clean()


async def test_a_stream_is_sent_once() -> None:
    async with SessionPair(Api()) as pair:
        source = agen([1])
        assert await pair.main.collect(source) == [1]
        with pytest.raises(TypeError, match="already sent"):
            await pair.main.collect(source)
        stream = await pair.main.numbers(2)
        assert await stream.collect() == [0, 1]
        with pytest.raises(TypeError, match="can be read once"):
            await pair.main.collect(stream)
        await pair.assert_clean()


async def test_capability_chunks_are_working_stubs_released_after() -> None:
    mine = [Counter(1), Counter(10)]
    theirs = [Counter(100)]
    async with SessionPair(Api()) as pair:
        # the client's targets to the server, which drops the stubs it read
        assert await pair.main.bump(agen(mine)) == [6, 15]
        assert [c.n for c in mine] == [6, 15]
        # the server's targets to the client, which disposes them
        stream = await pair.main.values("async generator", theirs)
        (stub,) = await stream.collect()
        assert isinstance(stub, RpcStub)
        assert await stub.increment(1) == 101
        stub.dispose()
        await pair.assert_clean(collect=True)
    assert [c.disposed for c in [*mine, *theirs]] == [1, 1, 1]


async def test_capabilities_unread_are_released_when_the_stream_is_cancelled() -> None:
    counters = [Counter(i) for i in range(3)]
    async with SessionPair(Api()) as pair:
        stream = await pair.main.values("async generator", counters)
        await pair.settle()  # all three chunks are waiting, unread
        stream.cancel()
        await pair.assert_clean()
    assert [c.disposed for c in counters] == [1, 1, 1]


async def test_a_local_pipe_is_read_by_the_peer() -> None:
    readable, writable = pipe()

    async def write() -> None:
        for i in range(100):
            await writable.write(i)
        await writable.close()

    async with SessionPair(Api()) as pair:
        writer = asyncio.create_task(write())
        assert await pair.main.collect(readable) == list(range(100))
        await writer
        with pytest.raises(RpcError, match="closed"):
            await writable.write(100)
        await pair.assert_clean()
