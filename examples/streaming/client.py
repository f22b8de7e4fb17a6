"""The streaming example's client: follows a log while lines are appended, uploads a file as
an async generator of chunks with progress written back into a ``WritableStream`` of its own,
downloads it as a stream, reads it whole as a ``Blob``, and shows a bad chunk being refused.
Everything goes through the generated stubs.

Usage (from the repository root, with the server running):
``python -m examples.streaming.client ws://127.0.0.1:8080/rpc``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
from collections.abc import AsyncIterator
from typing import Any

import capnweb
from stubs.examples_streaming_api import StorageStub

__all__ = ["Progress", "chunks", "main"]

CONTENT = bytes(range(256)) * 1024
"""What the client uploads: 256 KiB."""


class Progress(capnweb.WritableStream[int]):
    """Where the server writes how many bytes it has received: passed by reference, so each
    ``write`` the server makes runs here, in order."""

    async def write(self, chunk: int) -> None:
        print(f"progress: {chunk} bytes")

    async def close(self) -> None:
        print("progress: done")


async def chunks(content: bytes, size: int) -> AsyncIterator[bytes]:
    """``content`` in chunks of ``size`` bytes: sent as a stream, pumped with flow control."""
    for start in range(0, len(content), size):
        yield content[start : start + size]


async def main(url: str) -> None:
    """Run the four uses of streams against the server at ``url``."""
    async with capnweb.connect(url, StorageStub) as api:
        # A log tail: the stream is open before any line is written; lines arrive as they
        # are appended, and the stream ends when the log is closed.
        lines = await api.tail("build")

        async def write_log() -> None:
            for line in ("compiling", "linking", "done"):
                await api.append("build", line)
            await api.close_log("build")

        writer = asyncio.create_task(write_log())
        async for line in lines:  # line: str
            print(f"tail: {line}")
        await writer

        # An upload: an async generator as the argument, progress written back.
        stored = await api.upload("report.bin", chunks(CONTENT, 65536), Progress())
        same = stored.sha256 == hashlib.sha256(CONTENT).hexdigest()
        print(f"uploaded {stored.name}: {stored.size} bytes, sha256 matches: {same}")

        # A download: the file as a stream of bytes chunks.
        received = bytearray()
        count = 0
        async for chunk in await api.download("report.bin", 100_000):  # chunk: bytes
            received += chunk
            count += 1
        print(f"downloaded report.bin in {count} chunks, same bytes: {received == CONTENT}")
        blob = await api.read("report.bin")
        print(f"read report.bin: a Blob of {blob.size} bytes, type {blob.type}")

        try:
            await api.download("missing.bin")
        except capnweb.RpcError as error:
            print(f"download of missing.bin raised {type(error).__name__}: {error}")

        # The server checks each chunk against the declared `AsyncIterator[bytes]`: a str
        # chunk fails its `async for` and cancels this stream.
        async def mixed() -> AsyncIterator[Any]:
            yield b"fine"
            yield "not bytes"

        try:
            await api.upload("bad.bin", mixed())
        except capnweb.RpcTypeError as error:
            print(f"upload of a str chunk raised RpcTypeError: {error}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url", nargs="?", default="ws://127.0.0.1:8080/rpc")
    asyncio.run(main(parser.parse_args().url))
