"""The typed example's interface: a small user directory with counters and callbacks.

These Protocols are the single description of the service. ``server.py`` implements them,
``python -m capnweb_codegen examples.typed.api --out stubs`` turns them into the typed client
stubs of ``stubs/examples_typed_api.py`` (and, with ``--lang ts``, TypeScript declarations),
and ``client.py`` uses those stubs. Python names are snake_case; ``names=camel_case`` gives
the wire names a TypeScript client expects (``make_counter`` is called ``makeCounter``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol, TypedDict

from capnweb.interface import camel_case, rpc_interface, rpc_method, rpc_property


@dataclass
class Profile:
    """What anyone may know about a user."""

    name: str
    bio: str = ""
    tags: list[str] = field(default_factory=list)


class Stats(TypedDict):
    """Numbers about the directory."""

    users: int
    counters: int


@rpc_interface(names=camel_case)
class Counter(Protocol):
    """A counter living on the server; whoever holds a stub may increment it."""

    @rpc_method
    async def increment(self, amount: int = 1) -> int:
        """Add ``amount`` and return the new value."""

    @property
    @rpc_property
    def value(self) -> int:
        """The current value."""


@rpc_interface(names=camel_case)
class User(Protocol):
    """One user of the directory."""

    @property
    @rpc_property
    def profile(self) -> Profile:
        """The user's public profile."""

    @rpc_method
    async def set_bio(self, bio: str) -> Profile:
        """Replace the user's bio; returns the updated profile."""

    @rpc_method
    async def visits(self) -> Counter:
        """The counter of this user's profile visits (the same counter on every call)."""


@rpc_interface(names=camel_case)
class Api(Protocol):
    """The directory service: the main capability of the typed example server."""

    @rpc_method
    async def user(self, name: str) -> User:
        """The user called ``name`` (created on first use)."""

    @rpc_method
    async def user_names(self, order: Literal["asc", "desc"] = "asc") -> list[str]:
        """The names of every user, sorted in ``order``."""

    @rpc_method
    async def find(self, name: str) -> Profile | None:
        """The profile of user ``name``, or None when there is no such user."""

    @rpc_method
    async def square(self, x: int) -> int:
        """``x * x``."""

    @rpc_method
    async def fibonacci(self, n: int) -> list[int]:
        """The first ``n`` Fibonacci numbers."""

    @rpc_method
    async def make_counter(self, start: int = 0) -> Counter:
        """A new counter starting at ``start``."""

    @rpc_method
    async def call_back(self, callback: Callable[[int], Awaitable[int]], x: int) -> int:
        """Call ``callback(x)`` on the caller's side and return what it returned, plus one."""

    @rpc_method
    async def stats(self) -> Stats:
        """How many users and counters the directory holds."""
