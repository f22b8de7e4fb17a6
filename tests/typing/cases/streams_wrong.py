# ruff: noqa: E501, F841
"""Wrong uses of stream members through generated stubs: the line after each ``# E:`` comment
must fail ``mypy --strict`` with exactly that message, and no other line may."""

from __future__ import annotations

from collections.abc import AsyncIterator

import capnweb
from stubs.examples_streaming_api import StorageStub


async def texts() -> AsyncIterator[str]:
    yield "not bytes"


async def chunks() -> AsyncIterator[bytes]:
    yield b"chunk"


class Lines(capnweb.WritableStream[str]):
    async def write(self, chunk: str) -> None:
        print(chunk.upper())


async def wrong(api: StorageStub) -> None:
    async for line in await api.tail("build"):
        # E: "str" has no attribute "decode"; maybe "encode"?  [attr-defined]
        line.decode()
    async for chunk in await api.download("report.bin"):
        # E: Unsupported operand types for + ("bytes" and "str")  [operator]
        chunk + "text"
    # E: "TypedPromise[AsyncIterator[str]]" has no attribute "__aiter__" (not async iterable)  [attr-defined]
    async for x in api.tail("build"):
        print(x)
    # E: Incompatible types in assignment (expression has type "AsyncIterator[bytes]", variable has type "int")  [assignment]
    n: int = await api.download("report.bin")
    # E: Argument 2 to "upload" of "StorageStub" has incompatible type "list[bytes]"; expected "AsyncIterable[bytes]"  [arg-type]
    await api.upload("a.bin", [b"x"])
    # E: Argument 2 to "upload" of "StorageStub" has incompatible type "AsyncIterator[str]"; expected "AsyncIterable[bytes]"  [arg-type]
    await api.upload("a.bin", texts())
    # E: Argument 2 to "upload" of "StorageStub" has incompatible type "Callable[[], AsyncIterator[bytes]]"; expected "AsyncIterable[bytes]"  [arg-type]
    await api.upload("a.bin", chunks)
    # E: Argument 3 to "upload" of "StorageStub" has incompatible type "object"; expected "WritableStream[int] | None"  [arg-type]
    await api.upload("a.bin", chunks(), object())
    # E: Argument 3 to "upload" of "StorageStub" has incompatible type "Lines"; expected "WritableStream[int] | None"  [arg-type]
    await api.upload("a.bin", chunks(), Lines())
