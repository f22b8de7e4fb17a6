"""The interop contract server: ``TestTarget`` over WebSocket and HTTP batch on ``/rpc``.

Usage: ``python examples/interop/server.py --port N`` (or ``PORT=N``); listens on
127.0.0.1 only and exits promptly on SIGTERM. The classes implement the Protocols of
``examples/interop/contract.py``: methods are snake_case here and reached by the contract's
camelCase wire names, with arguments checked against the Protocols' annotations.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import uuid
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

if not __package__:  # run as a script: make the checkout importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import capnweb
from capnweb import RpcStub, RpcTarget, UndefinedType, current_session, undefined
from capnweb.errors import make_error
from examples.interop import contract
from examples.interop.contract import (
    BlobInfo,
    CounterBatch,
    Digest,
    RequestInfo,
    ResponseInfo,
    SessionStats,
    StreamStatus,
)

MAX_DELAY_MS = 10_000

# session id -> number of live Counters made in that session (kept for the process lifetime)
LIVE: dict[str, int] = {}

# session id -> the status of the latest stream it made (kept for the process lifetime)
STREAMS: dict[str, StreamStatus] = {}

_PATTERN = bytes(range(251))


async def _produce(status: StreamStatus, chunks: AsyncIterator[Any]) -> AsyncIterator[Any]:
    """Pass ``chunks`` on, counting them into ``status``; a consumer that stops reading
    closes this generator, which marks the stream cancelled."""
    try:
        async for chunk in chunks:
            status["produced"] += 1
            yield chunk
        status["state"] = "closed"
    finally:
        if status["state"] == "open":
            status["state"] = "cancelled"
            status["reason"] = "the consumer cancelled the stream"


async def _numbers(n: int) -> AsyncIterator[float]:
    for i in range(n):
        yield i


async def _bytes(total: int, size: int) -> AsyncIterator[bytes]:
    base = _PATTERN * (size // len(_PATTERN) + 2)
    offset = 0
    while offset < total:
        n = min(size, total - offset)
        start = offset % len(_PATTERN)
        yield base[start : start + n]
        offset += n


def _sorted_pairs(headers: capnweb.Headers) -> list[list[str]]:
    return [list(pair) for pair in sorted(headers.items())]


def _headers(pairs: list[list[str]]) -> capnweb.Headers:
    return capnweb.Headers((name, value) for name, value in pairs)


class CounterImpl(RpcTarget, contract.Counter):
    """A counter capability; counts itself live until its last reference is released."""

    def __init__(self, value: float, session_id: str) -> None:
        self._value = value
        self._session_id = session_id
        self._released = False
        LIVE[session_id] += 1

    def increment(self, amount: float = 1) -> float:
        self._value += amount
        return self._value

    @property
    def value(self) -> float:
        return self._value

    def on_dispose(self) -> None:
        if not self._released:
            self._released = True
            LIVE[self._session_id] -= 1


class CallbackHolderImpl(RpcTarget, contract.CallbackHolder):
    """Keeps a client function and calls it on ``invoke``; releases it when released."""

    def __init__(self, func: Callable[[Any], Awaitable[Any]]) -> None:
        self._func: Any = func  # a function stub: kept, so it stays valid after the call

    async def invoke(self, x: Any) -> Any:
        return await self._func(x)

    def on_dispose(self) -> None:
        self._func.dispose()


class TestTargetImpl(RpcTarget, contract.TestTarget):
    """The contract's main capability (INTEROP-CONTRACT.md, section 5)."""

    def __init__(self) -> None:
        self._id = uuid.uuid4().hex
        LIVE[self._id] = 0

    def square(self, i: float) -> float:
        return i * i

    def call_square(self, target: contract.TestTarget, i: float) -> dict[str, Any]:
        return {"result": target.square(i)}  # a stub: the result holds a promise

    async def call_function(self, func: Callable[[Any], Awaitable[Any]], i: Any) -> dict[str, Any]:
        return {"result": await func(i)}

    def throw_error(self) -> None:
        raise ValueError("test error")  # ValueError is sent as a RangeError

    def throw_typed_error(self, name: str, message: str) -> None:
        raise make_error(name, message)

    def make_counter(self, i: float = 0) -> contract.Counter:
        return CounterImpl(i, self._id)

    def make_counters(self, values: list[float]) -> CounterBatch:
        return {"counters": [CounterImpl(v, self._id) for v in values], "count": len(values)}

    async def increment_counter(
        self, counter: contract.Counter | Mapping[str, Any], i: float = 1
    ) -> float:
        # a Counter stub, or a plain object carrying an `increment` function
        cap: Any = counter
        increment = cap["increment"] if isinstance(cap, Mapping) else cap.increment
        result: float = await increment(i)
        return result

    def generate_fibonacci(self, n: int) -> list[int]:
        out: list[int] = []
        a, b = 0, 1
        for _ in range(max(0, n)):
            out.append(a)
            a, b = b, a + b
        return out

    def return_null(self) -> None:
        return None

    def return_undefined(self) -> UndefinedType:
        return undefined

    def return_number(self, i: float) -> float:
        return i

    def echo(self, x: Any) -> Any:
        return x

    async def delayed_echo(self, ms: float, x: Any) -> Any:
        await asyncio.sleep(max(0.0, min(float(ms), MAX_DELAY_MS)) / 1000)
        return x

    def make_callback_holder(
        self, func: Callable[[Any], Awaitable[Any]]
    ) -> contract.CallbackHolder:
        return CallbackHolderImpl(func)

    def get_session_id(self) -> str:
        return self._id

    def get_live_counters(self, session_id: str | None = None) -> int:
        key = self._id if session_id is None else session_id
        if key not in LIVE:
            raise ValueError(f"unknown session id: {key}")
        return LIVE[key]

    # -- streams, blobs, Request/Response (section 6)

    def _stream(self, chunks: AsyncIterator[Any]) -> AsyncIterator[Any]:
        status: StreamStatus = {"produced": 0, "state": "open", "reason": None}
        STREAMS[self._id] = status
        return _produce(status, chunks)

    def stream_numbers(self, n: int) -> AsyncIterator[float]:
        return self._stream(_numbers(n))

    def stream_bytes(self, total: int, chunk: int) -> AsyncIterator[bytes]:
        if not 1 <= chunk <= 1_048_576:
            raise ValueError(f"chunk must be between 1 and 1048576, not {chunk}")
        return self._stream(_bytes(total, chunk))

    def stream_status(self, session_id: str | None = None) -> StreamStatus:
        key = self._id if session_id is None else session_id
        if key not in LIVE:
            raise ValueError(f"unknown session id: {key}")
        return dict(STREAMS.get(key, {"produced": 0, "state": "none", "reason": None}))  # type: ignore[return-value]

    def failing_stream(self, n: int, message: str) -> AsyncIterator[float]:
        async def numbers_then_fail() -> AsyncIterator[float]:
            async for i in _numbers(n):
                yield i
            # No delay needed: the error goes out once the reader has taken the n numbers.
            raise make_error("Error", message)

        return numbers_then_fail()

    async def sum_stream(self, readable: capnweb.ReadableStream[float]) -> float:
        total: float = 0
        async for x in readable:
            total += x
        return total

    async def digest_stream(
        self, readable: capnweb.ReadableStream[bytes], delay_ms: float = 0
    ) -> Digest:
        await asyncio.sleep(max(0.0, min(float(delay_ms), MAX_DELAY_MS)) / 1000)
        size = total = 0
        adler = zlib.adler32(b"")
        async for chunk in readable:
            size += len(chunk)
            total += sum(chunk)
            adler = zlib.adler32(chunk, adler)
        return {"bytes": size, "sum": total % 2**32, "adler32": adler}

    def echo_stream(self, readable: capnweb.ReadableStream[Any]) -> AsyncIterator[Any]:
        return readable  # sent on as it is read; cancelling it cancels the input

    async def write_numbers(self, writable: capnweb.WritableStream[float], n: int) -> int:
        for i in range(n):
            await writable.write(i)
        await writable.close()
        return n

    async def abort_writable(self, writable: capnweb.WritableStream[Any], reason: str) -> None:
        await writable.abort(make_error("Error", reason))

    def echo_blob(self, blob: capnweb.Blob) -> capnweb.Blob:
        return blob

    def blob_info(self, blob: capnweb.Blob) -> BlobInfo:
        return {"size": blob.size, "type": blob.type}

    async def echo_request(self, request: capnweb.Request) -> RequestInfo:
        body = None if request.body is None else await request.text()
        headers = _sorted_pairs(request.headers)
        return {"method": request.method, "url": request.url, "headers": headers, "body": body}

    def make_request(
        self, method: str, url: str, headers: list[list[str]], body: str | None
    ) -> capnweb.Request:
        return capnweb.Request(url, method=method, headers=_headers(headers), body=body)

    async def describe_response(self, response: capnweb.Response) -> ResponseInfo:
        body = None if response.body is None else await response.text()
        return {
            "status": response.status,
            "statusText": response.status_text,
            "headers": _sorted_pairs(response.headers),
            "body": body,
        }

    def make_response(
        self, status: int, body: str | None, headers: list[list[str]]
    ) -> capnweb.Response:
        return capnweb.Response(body, status=status, headers=_headers(headers))

    # -- test-only extras (not in the contract), mirrored by the TypeScript test server

    def get_stats(self) -> SessionStats:
        stats = current_session().stats()
        return {"imports": stats.imports, "exports": stats.exports}

    async def call_twice(self, func: Callable[[Any], Awaitable[Any]], x: Any) -> list[Any]:
        return [await func(x), await func(x + 1)]

    async def call_method(self, cap: RpcStub, name: str, args: Any = None) -> Any:
        return await cap[name](*(args if isinstance(args, list) else []))

    async def get_property(self, cap: RpcStub, name: str) -> Any:
        return await cap[name]

    def throw_value(self, v: Any) -> None:
        if isinstance(v, BaseException):
            raise v
        raise capnweb.RpcError(str(v), props={"value": v})

    def return_nested_promise(self, ms: float, x: Any) -> dict[str, Any]:
        return {"value": capnweb.RpcPromise.from_awaitable(self.delayed_echo(ms, x))}


async def main(port: int) -> None:
    server = await capnweb.serve(TestTargetImpl, host="127.0.0.1", port=port)
    print(f"listening {server.port}", flush=True)
    await server.serve_until_signal()


def parse_port(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=None)
    args = parser.parse_args(argv)
    port = args.port if args.port is not None else os.environ.get("PORT")
    if port is None:
        parser.error("give --port N or set PORT")
    return int(port)


if __name__ == "__main__":
    asyncio.run(main(parse_port(sys.argv[1:])))
