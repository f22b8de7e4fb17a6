"""HTTP batch transport: a whole session in one POST.

Client: every message sent until the event loop has gone one full turn without new messages
is joined by ``\\n`` and POSTed once; the response lines are the peer's messages, after which
the session ends ("Batch RPC request ended."). Server: the request lines are fed in order, the
response is sent once every pulled promise has settled, and the session is then shut down.
"""

from __future__ import annotations

import asyncio
import io
from typing import Any

import aiohttp

from .._tasks import spawn
from ..errors import RpcDisconnectedError, RpcError

__all__ = ["BatchClientTransport", "BatchServerTransport"]


class BatchClientTransport:
    """Client side of one HTTP batch."""

    def __init__(
        self,
        url: str,
        http: aiohttp.ClientSession | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.url = url
        self.headers = {"Content-Type": "text/plain;charset=UTF-8", **(headers or {})}
        self._http = http
        self._own_http = http is None
        self._out: list[str] = []
        self._inbox: asyncio.Queue[str | BaseException] = asyncio.Queue()
        self._scheduled = False
        self._flushed = False
        self._task: asyncio.Task[None] | None = None
        self.requests = 0

    def send(self, text: str) -> None:
        if self._flushed:
            return  # after the batch went out (late releases): nowhere to send
        self._out.append(text)
        if not self._scheduled:
            self._scheduled = True
            loop = asyncio.get_running_loop()
            # seen=-1: the first tick only starts counting, so tasks created in this turn
            # (gather(), wait_for()) get a whole turn to send their pulls.
            loop.call_soon(self._tick, -1, 0)

    def _tick(self, seen: int, turns: int) -> None:
        # Flush once a whole loop turn passed with no new message (tasks started by
        # gather() and friends get to send their pulls first).
        if len(self._out) != seen and turns < 64:
            asyncio.get_running_loop().call_soon(self._tick, len(self._out), turns + 1)
            return
        self._flushed = True
        self._task = spawn(self._post())

    async def _post(self) -> None:
        body = "\n".join(self._out)
        self._out = []
        try:
            if self._http is None:
                self._http = aiohttp.ClientSession()
            self.requests += 1
            data = io.BytesIO(body.encode())
            async with self._http.post(self.url, data=data, headers=self.headers) as r:
                if not 200 <= r.status < 300:
                    raise RpcError(f"RPC request failed: {r.status} {r.reason}")
                text = await r.text()
            for line in text.split("\n") if text else ():
                self._inbox.put_nowait(line)
            self._inbox.put_nowait(RpcDisconnectedError("Batch RPC request ended."))
        except Exception as e:
            if not isinstance(e, RpcError):
                e = RpcDisconnectedError(f"RPC request failed: {e}")
            self._inbox.put_nowait(e)
        finally:
            await self._close_http()

    async def _close_http(self) -> None:
        if self._own_http and self._http is not None:
            http, self._http = self._http, None
            await http.close()

    async def receive(self) -> str:
        item = await self._inbox.get()
        if isinstance(item, BaseException):
            self._inbox.put_nowait(item)
            raise item
        return item

    def abort(self, reason: BaseException) -> None:
        self._flushed = True
        if self._task is None and self._own_http and self._http is not None:
            spawn(self._close_http())

    async def wait_closed(self) -> None:
        """Wait for the POST (if any) to finish."""
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)


class BatchServerTransport:
    """Server side of one HTTP batch: collects what the session sends."""

    can_call_peer = False
    """Calls to the client's capabilities fail at once: the client cannot answer them."""

    def __init__(self) -> None:
        self.out: list[str] = []
        self._done = asyncio.Event()

    def send(self, text: str) -> None:
        self.out.append(text)

    async def receive(self) -> Any:
        await self._done.wait()
        raise RpcDisconnectedError("Batch RPC request ended.")

    def abort(self, reason: BaseException) -> None:
        self._done.set()
