"""The WebTransport example's interface: a small service with a capability and a callback.

``server.py`` implements these Protocols and serves them over WebTransport;
``python -m capnweb_codegen examples.webtransport.api --out stubs`` turns them into the typed
client stubs ``client.py`` uses. ``names=camel_case`` gives the wire names a TypeScript client
expects (``make_counter`` is called ``makeCounter``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from capnweb.interface import camel_case, rpc_interface, rpc_method, rpc_property


@dataclass
class Greeting:
    """What ``greet`` answers: the text, and which session of the server answered."""

    text: str
    session: int


@rpc_interface(names=camel_case)
class Counter(Protocol):
    """A counter held by the server for one session."""

    @rpc_method
    async def increment(self, amount: int = 1) -> int:
        """Add ``amount``; the new value."""

    @property
    @rpc_property
    def value(self) -> int:
        """The current value."""


@rpc_interface(names=camel_case)
class Listener(Protocol):
    """Implemented by the client: the server calls it back."""

    @rpc_method
    async def on_tick(self, n: int) -> None:
        """Tick number ``n``."""


@rpc_interface(names=camel_case)
class Service(Protocol):
    """The main capability of each session."""

    @rpc_method
    async def greet(self, name: str) -> Greeting:
        """A greeting for ``name``."""

    @rpc_method
    async def square(self, x: float) -> float:
        """``x * x``."""

    @rpc_method
    async def make_counter(self, start: int = 0) -> Counter:
        """A new counter starting at ``start``."""

    @rpc_method
    async def countdown(self, n: int, listener: Listener) -> int:
        """Call ``listener.on_tick`` for ``n``, ``n - 1``, ..., 1 (each awaited, in order);
        the number of ticks."""

    @rpc_method
    async def fail(self, message: str) -> None:
        """Raise ValueError(``message``), which arrives as an RpcRangeError."""
