"""Right uses of stream members through generated stubs (stubs/examples_streaming_api.py):
``mypy --strict`` accepts this module, and every ``assert_type`` holds. An awaited stream result
is a typed async iterator; a stream parameter takes any async iterable of its chunk type
(an ``async def`` generator, a received stream); a ``WritableStream`` parameter takes a
``WritableStream`` subclass."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import assert_type

import capnweb
from capnweb.typed import TypedPromise
from examples.streaming.api import Stored
from stubs.examples_streaming_api import StorageStub, StoredPromise


async def chunks() -> AsyncIterator[bytes]:
    yield b"chunk"


class Progress(capnweb.WritableStream[int]):
    async def write(self, chunk: int) -> None:
        print(chunk + 1)


class AnyNumber(capnweb.WritableStream[float]):
    """Takes any number: fits where a stream of ints is written (a writer is contravariant)."""

    async def write(self, chunk: float) -> None:
        print(chunk / 2)


async def read_streams(api: StorageStub) -> None:
    assert_type(api.tail("build"), TypedPromise[AsyncIterator[str]])
    async for line in await api.tail("build"):
        assert_type(line, str)
    async for chunk in await api.download("report.bin", 1024):
        assert_type(chunk, bytes)
    assert_type(await api.read("report.bin"), capnweb.Blob)
    assert_type((await api.read("report.bin")).size, int)


async def send_streams(api: StorageStub) -> None:
    assert_type(api.upload("a.bin", chunks()), StoredPromise)
    assert_type(await api.upload("a.bin", chunks(), Progress()), Stored)
    assert_type(await api.upload("a.bin", chunks(), AnyNumber()).size, int)
    assert_type(await api.upload("a.bin", chunks(), None), Stored)
    # a received stream is sent on as it is (its chunks forwarded)
    copy = await api.upload("b.bin", await api.download("a.bin"))
    assert_type(copy.sha256, str)
