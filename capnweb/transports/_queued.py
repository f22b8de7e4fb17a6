"""A transport base whose ``send`` writes at once when it can, else queues text for one writer
task, keeping message order; while the queue is over its high water mark, ``receive`` waits
(the peer is not read until its answers drain)."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Coroutine
from typing import Any

from .._codec import DEFAULT_LIMITS
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
        self._queued = 0  # characters in the queue
        self._high = DEFAULT_LIMITS.send_high_water
        self._low = DEFAULT_LIMITS.send_low_water
        self._drained: asyncio.Event | None = None  # set when the queue is under low water
        self._writer: asyncio.Task[None] | None = None  # busy writing, or closing
        self._closing = False
        self._close_error: BaseException | None = None

    def limit_output(self, high: int, low: int) -> None:
        """Make ``receive`` wait while more than ``high`` characters wait to be written, until
        they are under ``low``."""
        self._high, self._low = high, low

    async def _backpressure(self) -> None:
        """For ``receive``: wait while the output is over high water."""
        while self._queued > self._high and not self._closing:
            if self._drained is None:
                self._drained = asyncio.Event()
            await self._drained.wait()

    def send(self, text: str) -> None:
        """Write ``text`` after everything sent before it: at once if nothing is pending (the
        usual case: a write only waits when the socket's buffer is full), else queued."""
        if self._closing:
            raise RpcDisconnectedError("the connection is closed")
        if self._writer is not None:
            self._queue.append(text)
            self._queued += len(text)
            return
        # Run the write coroutine eagerly, here: it seldom suspends, and a task per message
        # would cost a loop turn each. If it suspends, a writer task finishes it.
        coro = self._write(text)
        try:
            blocked = coro.send(None)
        except StopIteration:
            return
        except Exception as e:
            self._writer = spawn(self._write_loop(error=e))
            return
        self._writer = spawn(self._write_loop(pending=(coro, blocked)))

    def abort(self, reason: BaseException) -> None:
        """Flush what is queued, then close (code 3000 with the reason, 1000 if clean)."""
        if self._closing:
            return
        self._closing = True
        self._close_error = None if isinstance(reason, RpcDisconnectedError) else reason
        if self._writer is None:
            self._writer = spawn(self._write_loop())

    async def _write_loop(
        self,
        pending: tuple[Coroutine[Any, Any, None], Any] | None = None,
        error: Exception | None = None,
    ) -> None:
        try:
            if error is not None:
                raise error
            if pending is not None:
                await _resume(*pending)
            while self._queue:
                text = self._queue.popleft()
                self._queued -= len(text)
                if self._drained is not None and self._queued <= self._low:
                    self._drained.set()
                    self._drained = None
                await self._write(text)
            if not self._closing:
                self._writer = None  # idle: the next send() writes at once again
                return
        except Exception as e:  # the peer went away: receive() reports it
            log.debug("write failed: %s", e)
            self._queue.clear()
            self._queued = 0
        if self._drained is not None:
            self._drained.set()  # receive() goes on, and learns that the connection is gone
            self._drained = None
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


async def _resume(coro: Coroutine[Any, Any, None], blocked: Any) -> None:
    """Finish a coroutine that was started by hand and suspended on ``blocked`` (what it
    yielded: an asyncio future, or None for a bare yield), the way a task would."""
    try:
        while True:
            if blocked is None:
                await asyncio.sleep(0)
            else:
                blocked._asyncio_future_blocking = False
                await asyncio.wait((blocked,))
            try:
                blocked = coro.send(None)
            except StopIteration:
                return
    except BaseException:
        coro.close()
        raise
