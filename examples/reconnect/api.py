"""The reconnect example's interface: a counter that outlives its session, and the server.

``login(name)`` starts a counter for ``name`` and returns it with a resume token;
``resume(token)`` gives that same counter to a later session, after the connection dropped or
the server restarted (``server.py`` keeps counters and tokens in an SQLite file). The typed
client stubs are generated from these Protocols:
``python -m capnweb_codegen examples.reconnect.api --out stubs``.
"""

from __future__ import annotations

from typing import Protocol

from capnweb.interface import camel_case, rpc_interface, rpc_method, rpc_property


@rpc_interface(names=camel_case)
class Counter(Protocol):
    """A counter owned by one user, kept in the server's store."""

    @property
    @rpc_property
    def owner(self) -> str:
        """The name the counter was started for."""

    @property
    @rpc_property
    def value(self) -> int:
        """The current value."""

    @rpc_method
    async def increment(self, amount: int = 1) -> int:
        """Add ``amount`` and return the new value (stored before the answer is sent)."""


@rpc_interface(names=camel_case)
class Api(Protocol):
    """The main capability of the reconnect example server."""

    @rpc_method
    async def login(self, name: str) -> tuple[Counter, str]:
        """Start a new counter for ``name``, at 0: the counter and the token that resumes it."""

    @rpc_method
    async def resume(self, token: str) -> Counter:
        """The counter ``token`` was issued for (a RangeError if unknown or expired)."""
