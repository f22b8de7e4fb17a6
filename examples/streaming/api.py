"""The streaming example's interface: a log that clients follow as lines are appended, and
files uploaded and downloaded as streams of bytes, with upload progress written back.

``server.py`` implements this Protocol; ``python -m capnweb_codegen examples.streaming.api
--out stubs`` turns it into the typed client stubs ``client.py`` uses.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

from capnweb import Blob, WritableStream
from capnweb.interface import camel_case, rpc_interface, rpc_method


@dataclass
class Stored:
    """A file the server stored: its name, its size in bytes and its SHA-256 (hex)."""

    name: str
    size: int
    sha256: str


@rpc_interface(names=camel_case)
class Storage(Protocol):
    """Logs and files: the main capability of the streaming example server."""

    @rpc_method
    async def append(self, log: str, line: str) -> int:
        """Append ``line`` to ``log``; returns how many lines it has now."""

    @rpc_method
    async def close_log(self, log: str) -> None:
        """Close ``log``: its followers' streams end after its last line, and it is forgotten."""

    # `def`, not `async def`: an async generator (`async def` with `yield`) implements it.
    @rpc_method
    def tail(self, log: str) -> AsyncIterator[str]:
        """The lines of ``log``: those it has, then each one as it is appended, until the log
        is closed."""

    @rpc_method
    async def upload(
        self, name: str, data: AsyncIterator[bytes], progress: WritableStream[int] | None = None
    ) -> Stored:
        """Store the chunks of ``data`` as file ``name``; after each chunk, the number of bytes
        received so far is written to ``progress``, which is closed at the end."""

    @rpc_method
    async def download(self, name: str, chunk_size: int = 65536) -> AsyncIterator[bytes]:
        """File ``name`` in chunks of at most ``chunk_size`` bytes (an error at once when there
        is no such file)."""

    @rpc_method
    async def read(self, name: str) -> Blob:
        """File ``name`` whole, as a ``Blob`` with a MIME type guessed from its name."""
