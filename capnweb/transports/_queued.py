"""A transport base whose ``send`` queues text for one writer task, keeping message order."""

from __future__ import annotations

import asyncio
import logging
from collections import deque

from .._tasks import spawn
from ..errors import RpcDisconnectedError

log = logging.getLogger("capnweb")


def close_reason(reason: BaseException | None) -> str:
    """A WebSocket close reason: the error message cut to 123 UTF-8 bytes on a char boundary."""
    if reason is None:
        return ""
    data = str(reason).encode("utf-8")[:123]
    return data.decode("utf-8", "ignore")


class QueuedTransport:
    """Base for connection transports: subclasses provide ``_write``, ``_close``, ``receive``."""

    def __init__(self) -> None:
        self._queue: deque[str] = deque()
        self._wakeup = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._closing = False
        self._close_error: BaseException | None = None

    def send(self, text: str) -> None:
        """Queue ``text``; it is written after everything queued before it."""
        if self._closing:
            raise RpcDisconnectedError("the connection is closed")
        self._queue.append(text)
        self._wakeup.set()
        if self._writer is None:
            self._writer = spawn(self._write_loop())

    def abort(self, reason: BaseException) -> None:
        """Flush what is queued, then close (code 3000 with the reason, 1000 if clean)."""
        if self._closing:
            return
        self._closing = True
        self._close_error = None if isinstance(reason, RpcDisconnectedError) else reason
        self._wakeup.set()
        if self._writer is None:
            self._writer = spawn(self._write_loop())

    async def _write_loop(self) -> None:
        try:
            while True:
                while self._queue:
                    await self._write(self._queue.popleft())
                if self._closing:
                    break
                self._wakeup.clear()
                await self._wakeup.wait()
        except Exception as e:  # the peer went away: receive() reports it
            log.debug("write failed: %s", e)
            self._queue.clear()
        try:
            await self._close(self._close_error)
        except Exception as e:
            log.debug("close failed: %s", e)

    async def wait_closed(self) -> None:
        """Wait until the queue is flushed and the connection closed."""
        if self._writer is not None:
            await asyncio.gather(self._writer, return_exceptions=True)

    async def _write(self, text: str) -> None:
        raise NotImplementedError

    async def _close(self, error: BaseException | None) -> None:
        raise NotImplementedError
