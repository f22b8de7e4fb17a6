"""One remote method declared three ways, and implementations of each.

``async def m() -> T``, ``def m() -> Awaitable[T]`` and ``def m() -> T`` describe the same
remote method (``describe()`` unwraps the awaitable) and give the same generated stub. What
differs is what mypy accepts as an implementation, and whether a stub conforms to the Protocol.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Protocol

from capnweb import RpcTarget
from capnweb.interface import rpc_method


class AsyncForm(Protocol):
    """Declared with ``async def``: implementations are ``async def``."""

    @rpc_method
    async def add(self, a: int, b: int) -> int: ...


class AwaitableForm(Protocol):
    """Declared as returning ``Awaitable``: async implementations and generated stubs conform."""

    @rpc_method
    def add(self, a: int, b: int) -> Awaitable[int]: ...


class SyncForm(Protocol):
    """Declared with ``def``: implementations are plain functions."""

    @rpc_method
    def add(self, a: int, b: int) -> int: ...


class AsyncImpl(RpcTarget, AsyncForm):
    async def add(self, a: int, b: int) -> int:
        return a + b


class AwaitableImpl(RpcTarget, AwaitableForm):
    async def add(self, a: int, b: int) -> int:
        return a + b


class SyncImpl(RpcTarget, SyncForm):
    def add(self, a: int, b: int) -> int:
        return a + b
