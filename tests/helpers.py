"""Two sessions wired back to back in memory, for runtime tests.

``SessionPair(server_main, client_main)`` connects a "server" session (serving
``server_main``) and a "client" session (serving ``client_main``, if any) over
:func:`capnweb.memory_pair`. ``pair.main`` is the client's stub for the server's main
capability; ``pair.client_sent`` / ``pair.server_sent`` are the frames each side sent, parsed.
"""

from __future__ import annotations

import asyncio
import gc
import json
from types import TracebackType
from typing import Any

from capnweb import Session, Stats, memory_pair
from capnweb.transports.memory import MemoryTransport

__all__ = ["CLEAN", "SessionPair", "frames", "settle_transports"]

CLEAN = Stats(1, 1)
"""What a session's stats() read when only the two main-capability entries are left."""

QUIET_TURNS = 8
"""Loop turns without a new frame after which the pair counts as settled."""

MAX_TURNS = 5000
"""Upper bound on loop turns spent in one settle()."""


def frames(sent: list[str]) -> list[Any]:
    """The frames of a transport's ``sent`` list, parsed from JSON."""
    return [json.loads(text) for text in sent]


async def settle_transports(*transports: MemoryTransport) -> None:
    """Let the loop turn until no frame has moved for a few turns (bounded, no timers)."""
    quiet = 0
    last = -1
    for _ in range(MAX_TURNS):
        moved = sum(len(t.sent) for t in transports)
        pending = sum(t._inbox.qsize() for t in transports)
        if moved == last and pending == 0:
            quiet += 1
            if quiet >= QUIET_TURNS:
                return
        else:
            quiet = 0
            last = moved
        await asyncio.sleep(0)
    raise AssertionError(f"frames still moving after {MAX_TURNS} loop turns")


class SessionPair:
    """A client and a server session connected over an in-memory transport pair."""

    def __init__(
        self,
        server_main: Any,
        client_main: Any = None,
        *,
        server_options: dict[str, Any] | None = None,
        client_options: dict[str, Any] | None = None,
    ) -> None:
        self.client_transport, self.server_transport = memory_pair()
        self.server = Session(self.server_transport, server_main, **(server_options or {}))
        self.client = Session(self.client_transport, client_main, **(client_options or {}))
        self.main = self.client.main
        """The client's stub for the server's main capability."""

    @property
    def client_sent(self) -> list[str]:
        """Every frame the client sent, as text."""
        return self.client_transport.sent

    @property
    def server_sent(self) -> list[str]:
        """Every frame the server sent, as text."""
        return self.server_transport.sent

    def client_frames(self) -> list[Any]:
        """Every frame the client sent, parsed."""
        return frames(self.client_transport.sent)

    def server_frames(self) -> list[Any]:
        """Every frame the server sent, parsed."""
        return frames(self.server_transport.sent)

    def mark(self) -> tuple[int, int]:
        """How many frames each side has sent so far (for :meth:`since`)."""
        return len(self.client_sent), len(self.server_sent)

    def since(self, mark: tuple[int, int]) -> tuple[list[Any], list[Any]]:
        """The frames (client, server) sent after ``mark``, parsed."""
        return frames(self.client_sent[mark[0] :]), frames(self.server_sent[mark[1] :])

    async def settle(self) -> None:
        """Let the loop turn until no new frames move (bounded; raises if they never stop)."""
        await settle_transports(self.client_transport, self.server_transport)

    async def collect(self) -> None:
        """Run the garbage collector, then settle (for releases driven by collection)."""
        for _ in range(3):
            gc.collect()
            await self.settle()

    def stats(self) -> tuple[Stats, Stats]:
        """(client, server) stats."""
        return self.client.stats(), self.server.stats()

    async def assert_clean(self, *, collect: bool = False) -> None:
        """Settle, then assert both sessions are back to their main entries only."""
        if collect:
            await self.collect()
        else:
            await self.settle()
        assert self.client.broken is None, f"client broke: {self.client.broken!r}"
        assert self.server.broken is None, f"server broke: {self.server.broken!r}"
        assert self.client.stats() == CLEAN, "client"
        assert self.server.stats() == CLEAN, "server"

    async def close(self) -> None:
        """Shut both sessions down."""
        await self.client.close()
        await self.server.close()

    async def __aenter__(self) -> SessionPair:
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
