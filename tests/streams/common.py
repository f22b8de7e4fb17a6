"""The stream tests' shared pieces: sources and sinks that record what happens to them,
the server's main capability, and the sizes the flow-control checks use.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import capnweb
from capnweb import (
    Blob,
    Headers,
    ReadableStream,
    Request,
    Response,
    RpcError,
    RpcStub,
    RpcTarget,
    WritableStream,
)

KiB = 1024
MiB = 1024 * KiB
CHUNK = 64 * KiB
BOUND = 4 * MiB
"""How far a producer may get ahead of its reader (chunk data): INTEROP-CONTRACT.md 6.2."""
WAIT = 5.0
"""Seconds any one awaited event may take."""

ENDED = capnweb.Stats(0, 0)
"""What an ended session's stats() read: its tables are empty."""

DISPOSED = "WritableStream RPC stub was disposed without calling close()"

_STREAM_TASKS = {"pump", "_run_sink", "Session.blob_ref.<locals>.collect"}


def stream_tasks() -> list[asyncio.Task[Any]]:
    """The tasks of the stream runtime still running: pumps, WritableStream runners, Blobs."""
    tasks = asyncio.all_tasks()
    return [t for t in tasks if getattr(t.get_coro(), "__qualname__", "") in _STREAM_TASKS]


async def until(event: asyncio.Event) -> None:
    """Wait for ``event`` (at most WAIT seconds)."""
    await asyncio.wait_for(event.wait(), WAIT)


async def agen(values: list[Any]) -> AsyncIterator[Any]:
    """An async generator of ``values``."""
    for value in values:
        yield value


class AsyncValues:
    """An async iterable that is not a generator (``__aiter__`` and ``__anext__``)."""

    def __init__(self, values: list[Any]) -> None:
        self.values = list(values)

    def __aiter__(self) -> AsyncValues:
        return self

    async def __anext__(self) -> Any:
        if not self.values:
            raise StopAsyncIteration
        return self.values.pop(0)


class Source:
    """A producer: an async generator that counts its chunks and says when it was closed.

    ``pause_after``: after that many chunks it sets ``paused`` and waits for ``resume``.
    """

    def __init__(
        self, chunk: Any = b"x" * CHUNK, count: int | None = None, pause_after: int | None = None
    ) -> None:
        self.chunk = chunk
        self.count = count
        self.pause_after = pause_after
        self.made = 0
        self.paused = asyncio.Event()
        self.resume = asyncio.Event()
        self.closed = asyncio.Event()

    @property
    def produced(self) -> int:
        """Bytes of chunk data made so far."""
        return self.made * len(self.chunk)

    async def gen(self) -> AsyncIterator[Any]:
        try:
            while self.count is None or self.made < self.count:
                if self.made == self.pause_after:
                    self.paused.set()
                    await self.resume.wait()
                self.made += 1
                yield self.chunk
        finally:
            self.closed.set()


class Sink(WritableStream[Any]):
    """A WritableStream that logs its calls; ``fail_on`` fails that chunk's write.

    ``slow``: each write waits for a credit, given by :meth:`allow`.
    """

    def __init__(self, fail_on: Any = None, slow: bool = False) -> None:
        self.log: list[tuple[Any, ...]] = []
        self.fail_on = fail_on
        self.credits = asyncio.Semaphore(0) if slow else None
        self.ended = asyncio.Event()

    def allow(self, writes: int) -> None:
        """Let ``writes`` more writes through."""
        assert self.credits is not None
        for _ in range(writes):
            self.credits.release()

    def writes(self) -> list[Any]:
        """The chunks written so far."""
        return [entry[1] for entry in self.log if entry[0] == "write"]

    async def write(self, chunk: Any) -> None:
        if self.credits is not None:
            await self.credits.acquire()
        self.log.append(("write", chunk))
        if chunk == self.fail_on:
            raise TypeError(f"cannot take {chunk!r}")

    async def close(self) -> None:
        self.log.append(("close",))
        self.ended.set()

    async def abort(self, reason: BaseException | None = None) -> None:
        self.log.append(("abort", reason))
        self.ended.set()


class Api(RpcTarget):
    """The server's main capability."""

    def __init__(self) -> None:
        self.source = Source()
        self.held: list[Any] = []
        self.sink = Sink()
        self.written = 0
        self.ran: list[str] = []
        self.fail_now = asyncio.Event()

    def echo(self, value: Any) -> Any:
        self.ran.append("echo")
        return value

    async def numbers(self, n: int) -> AsyncIterator[int]:
        for i in range(n):
            yield i

    def values(self, kind: str, values: list[Any]) -> Any:
        return agen(values) if kind == "async generator" else AsyncValues(values)

    def endless(self) -> AsyncIterator[Any]:
        return self.source.gen()

    async def failing(self, n: int, message: str) -> AsyncIterator[int]:
        for i in range(n):
            yield i
        await self.fail_now.wait()
        raise TypeError(message)

    async def collect(self, stream: ReadableStream[Any]) -> list[Any]:
        return await stream.collect()

    async def take(self, stream: ReadableStream[Any], n: int) -> list[Any]:
        """The first ``n`` chunks, then the stream is cancelled."""
        got = []
        async for chunk in stream:
            got.append(chunk)
            if len(got) == n:
                break
        stream.cancel()
        return got

    def hold(self, stream: ReadableStream[Any]) -> None:
        self.held.append(stream)

    def ignore(self, value: Any) -> None:
        pass

    async def read_held(self, n: int) -> int:
        """Bytes of the next ``n`` chunks of the held stream."""
        it = aiter(self.held[0])
        return sum([len(await anext(it)) for _ in range(n)])

    def drop_held(self) -> None:
        self.held.clear()

    async def bump(self, stream: ReadableStream[RpcStub]) -> list[int]:
        """Increment every counter of the stream by 5 (the stubs are dropped, not disposed)."""
        return [await counter.increment(5) async for counter in stream]

    async def fill(self, writable: WritableStream[Any], values: list[Any]) -> str:
        for value in values:
            await writable.write(value)
        await writable.close()
        return "closed"

    async def fill_fast(self, writable: WritableStream[bytes], n: int) -> int:
        """Write ``n`` chunks as fast as the window lets, counting the bytes written."""
        for _ in range(n):
            await writable.write(b"w" * CHUNK)
            self.written += CHUNK
        await writable.close()
        return self.written

    async def write_then_drop(self, writable: WritableStream[Any]) -> None:
        await writable.write("only")

    async def write_after_close(self, writable: WritableStream[Any]) -> str:
        await writable.close()
        try:
            await writable.write("late")
        except RpcError as e:
            return e.message
        return "written"

    async def abort_writable(self, writable: WritableStream[Any], reason: str) -> None:
        await writable.abort(RpcError(reason))

    def get_sink(self) -> Sink:
        return self.sink

    def blob_info(self, blob: Blob) -> list[Any]:
        self.ran.append("blob_info")
        return [blob.size, blob.type]

    async def describe(self, message: Request | Response) -> list[Any]:
        body = None if message.body is None else await message.text()
        if isinstance(message, Request):
            return [message.method, message.url, message.headers.items(), body]
        return [message.status, message.headers.items(), body]

    def relay(self, message: Any) -> Any:
        """The same Request/Response with the received body sent on (a stream is forwarded)."""
        if isinstance(message, Request):
            return Request(message.url, message.method, message.headers, message.body)
        return Response(message.body, message.status, message.status_text, message.headers)

    def make_response(self, chunks: list[bytes]) -> Response:
        return Response(agen(chunks), status=201, headers=Headers([("content-type", "a/b")]))

    def make_request(self, chunks: list[bytes]) -> Request:
        return Request("https://example.com/up", "PUT", body=agen(chunks))


def tidy(frames: list[Any]) -> list[Any]:
    """``frames`` with each run of consecutive ``release`` frames sorted (the order of
    releases sent together is the implementation's choice)."""
    out: list[Any] = []
    run: list[Any] = []
    for frame in [*frames, None]:
        if frame is not None and frame[0] == "release":
            run.append(frame)
            continue
        out += sorted(run)
        run = []
        if frame is not None:
            out.append(frame)
    return out


def writes_to(export_id: int, *chunks: Any) -> list[list[Any]]:
    """The ``stream`` frames writing each of ``chunks`` into the writable ``export_id``."""
    return [["stream", ["pipeline", export_id, ["write"], [c]]] for c in chunks]


def answers(frames: list[Any]) -> list[Any]:
    """Each ``resolve``/``reject`` frame as "resolve" or the message of its error."""
    return [f[0] if f[0] == "resolve" else f[2][2] for f in frames]
