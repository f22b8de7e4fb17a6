"""An in-memory transport pair, for tests and for two sessions in one process."""

from __future__ import annotations

import asyncio

from ..errors import RpcDisconnectedError

__all__ = ["MemoryTransport", "memory_pair"]


class MemoryTransport:
    """One end of an in-memory connection; ``sent`` records every message it sent."""

    def __init__(self) -> None:
        self._inbox: asyncio.Queue[str | BaseException] = asyncio.Queue()
        self.peer: MemoryTransport | None = None
        self.sent: list[str] = []
        self.closed = False

    def send(self, text: str) -> None:
        """Deliver ``text`` to the peer's inbox."""
        if self.closed or self.peer is None:
            raise RpcDisconnectedError("the in-memory connection is closed")
        self.sent.append(text)
        self.peer._inbox.put_nowait(text)

    async def receive(self) -> str:
        """The next message from the peer; raises once either end closed."""
        item = await self._inbox.get()
        if isinstance(item, BaseException):
            self._inbox.put_nowait(item)
            raise item
        return item

    def abort(self, reason: BaseException) -> None:
        """Close both ends; the peer's receive() raises a disconnection error."""
        if self.closed:
            return
        self.closed = True
        gone = RpcDisconnectedError(f"peer closed the connection: {reason}")
        self._inbox.put_nowait(RpcDisconnectedError("the in-memory connection is closed"))
        if self.peer is not None and not self.peer.closed:
            self.peer._inbox.put_nowait(gone)


def memory_pair() -> tuple[MemoryTransport, MemoryTransport]:
    """Two connected in-memory transports."""
    a, b = MemoryTransport(), MemoryTransport()
    a.peer, b.peer = b, a
    return a, b
