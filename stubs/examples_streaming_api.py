# generated from examples.streaming.api:Storage — do not edit
"""Typed capnweb client stubs for:

- ``examples.streaming.api:Storage``

Get one with ``capnweb.connect(url, <Name>Stub)``; calls return typed promises that can be
awaited or pipelined. Regenerate with ``python -m capnweb_codegen``.
"""

from __future__ import annotations

import collections.abc as _collections_abc

import capnweb as _capnweb
import capnweb.typed as _capnweb_typed
import examples.streaming.api as _examples_streaming_api

__all__ = [
    "StoragePromise",
    "StorageStub",
    "StoredPromise",
]


class StorageStub(_capnweb_typed.TypedStub):
    """Logs and files: the main capability of the streaming example server."""

    __slots__ = ()
    _interface = "examples.streaming.api:Storage"

    def append(
        self, log: str | _capnweb.RpcPromise[str], line: str | _capnweb.RpcPromise[str]
    ) -> _capnweb_typed.TypedPromise[int]:
        """Append ``line`` to ``log``; returns how many lines it has now."""
        return self._rpc_call(_capnweb_typed.TypedPromise, "append", log, line)

    def close_log(self, log: str | _capnweb.RpcPromise[str]) -> _capnweb_typed.TypedPromise[None]:
        """Close ``log``: its followers' streams end after its last line, and it is forgotten."""
        return self._rpc_call(_capnweb_typed.TypedPromise, "closeLog", log)

    def tail(
        self, log: str | _capnweb.RpcPromise[str]
    ) -> _capnweb_typed.TypedPromise[_collections_abc.AsyncIterator[str]]:
        """The lines of ``log``: those it has, then each one as it is appended, until the log
        is closed.
        """
        return self._rpc_call(_capnweb_typed.TypedPromise, "tail", log)

    def upload(
        self,
        name: str | _capnweb.RpcPromise[str],
        data: _collections_abc.AsyncIterable[bytes],
        progress: _capnweb.WritableStream[int] | None = None,
    ) -> StoredPromise:
        """Store the chunks of ``data`` as file ``name``; after each chunk, the number of bytes
        received so far is written to ``progress``, which is closed at the end.
        """
        return self._rpc_call(StoredPromise, "upload", name, data, progress)

    def download(
        self,
        name: str | _capnweb.RpcPromise[str],
        chunk_size: int | _capnweb.RpcPromise[int] = 65536,
    ) -> _capnweb_typed.TypedPromise[_collections_abc.AsyncIterator[bytes]]:
        """File ``name`` in chunks of at most ``chunk_size`` bytes (an error at once when there
        is no such file).
        """
        return self._rpc_call(_capnweb_typed.TypedPromise, "download", name, chunk_size)

    def read(
        self, name: str | _capnweb.RpcPromise[str]
    ) -> _capnweb_typed.TypedPromise[_capnweb.Blob]:
        """File ``name`` whole, as a ``Blob`` with a MIME type guessed from its name."""
        return self._rpc_call(_capnweb_typed.TypedPromise, "read", name)


class StoragePromise(_capnweb_typed.TypedPromise[StorageStub], StorageStub):
    """A pending ``StorageStub``: await it for the stub, or call its methods pipelined.

    Logs and files: the main capability of the streaming example server.
    """

    __slots__ = ()
    _result_type = StorageStub


class StoredPromise(_capnweb_typed.TypedPromise[_examples_streaming_api.Stored]):
    """A pending ``Stored``: await it, or read its fields pipelined.

    A file the server stored: its name, its size in bytes and its SHA-256 (hex).
    """

    __slots__ = ()
    _result_type = _examples_streaming_api.Stored

    @property
    def name(self) -> _capnweb_typed.TypedPromise[str]:
        return self._rpc_get(_capnweb_typed.TypedPromise, "name")

    @property
    def size(self) -> _capnweb_typed.TypedPromise[int]:
        return self._rpc_get(_capnweb_typed.TypedPromise, "size")

    @property
    def sha256(self) -> _capnweb_typed.TypedPromise[str]:
        return self._rpc_get(_capnweb_typed.TypedPromise, "sha256")
