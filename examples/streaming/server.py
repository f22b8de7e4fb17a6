"""The streaming example's server: the ``Storage`` Protocol of ``api.py``, with logs and files
kept in memory (shared by every session of the server).

Usage (from the repository root): ``python -m examples.streaming.server --port N``
(``--port 0``: any free port). It prints ``listening N`` once it accepts connections, and a
line for each file it stores.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import mimetypes
from collections.abc import AsyncIterator

import capnweb
from capnweb import Blob, RpcTarget, WritableStream
from examples.streaming.api import Storage, Stored

__all__ = ["Log", "StorageImpl", "Store", "main"]


class Log:
    """Lines appended one by one; followers wait on ``changed`` for more (or for the end)."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.closed = False
        self.changed = asyncio.Condition()

    async def follow(self) -> AsyncIterator[str]:
        """Every line, those there now and those appended later, until the log is closed."""
        read = 0
        while True:
            async with self.changed:
                while read == len(self.lines) and not self.closed:
                    await self.changed.wait()
                new = self.lines[read:]
            for line in new:
                yield line
            read += len(new)
            if not new and self.closed:
                return


class Store:
    """What every session of one server shares: logs and files by name."""

    def __init__(self) -> None:
        self.logs: dict[str, Log] = {}
        self.files: dict[str, bytes] = {}

    def log(self, name: str) -> Log:
        """The log called ``name`` (a new, empty one if there is none)."""
        return self.logs.setdefault(name, Log())

    def file(self, name: str) -> bytes:
        """The bytes of file ``name``; FileNotFoundError if there is none."""
        try:
            return self.files[name]
        except KeyError:
            raise FileNotFoundError(f"no file named {name!r}") from None


class StorageImpl(RpcTarget, Storage):
    """The main capability of each session. Arguments are checked before a method runs, and
    the chunks of a stream argument as they are read: a ``str`` chunk of ``data`` raises
    ``TypeError`` in the ``async for`` of ``upload`` and cancels the client's stream."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def append(self, log: str, line: str) -> int:
        target = self._store.log(log)
        async with target.changed:
            target.lines.append(line)
            target.changed.notify_all()
        return len(target.lines)

    async def close_log(self, log: str) -> None:
        target = self._store.logs.pop(log, None)
        if target is None:
            return
        async with target.changed:
            target.closed = True
            target.changed.notify_all()

    async def tail(self, log: str) -> AsyncIterator[str]:
        # An async generator: returned to the client as a stream, which it reads with
        # `async for`; lines are sent as they come, with flow control.
        async for line in self._store.log(log).follow():
            yield line

    async def upload(
        self, name: str, data: AsyncIterator[bytes], progress: WritableStream[int] | None = None
    ) -> Stored:
        digest = hashlib.sha256()
        parts: list[bytes] = []
        size = 0
        try:
            async for chunk in data:  # each chunk checked: bytes
                digest.update(chunk)
                parts.append(chunk)
                size += len(chunk)
                if progress is not None:
                    await progress.write(size)
        except Exception as error:
            if progress is not None:
                await progress.abort(error)
            raise
        if progress is not None:
            await progress.close()  # returns once the client has taken every write
        content = b"".join(parts)
        self._store.files[name] = content
        print(f"stored {name}: {len(content)} bytes", flush=True)
        return Stored(name, len(content), digest.hexdigest())

    async def download(self, name: str, chunk_size: int = 65536) -> AsyncIterator[bytes]:
        content = self._store.file(name)  # raises here, before any stream exists
        if chunk_size < 1:
            raise ValueError("chunk_size must be at least 1")
        return _chunks(content, chunk_size)

    async def read(self, name: str) -> Blob:
        kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
        return Blob(self._store.file(name), kind)


async def _chunks(content: bytes, size: int) -> AsyncIterator[bytes]:
    view = memoryview(content)
    for start in range(0, len(content), size):
        yield bytes(view[start : start + size])


async def main(port: int) -> None:
    """Serve on 127.0.0.1:``port`` (``/rpc``) until SIGTERM or SIGINT."""
    store = Store()
    server = await capnweb.serve(lambda: StorageImpl(store), host="127.0.0.1", port=port)
    print(f"listening {server.port}", flush=True)
    await server.serve_until_signal()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8080, help="0: any free port")
    asyncio.run(main(parser.parse_args().port))
