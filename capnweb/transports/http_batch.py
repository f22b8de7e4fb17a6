"""HTTP batch transport: a whole session in one POST.

Client: every message sent until the event loop has gone one full turn without new messages
is joined by ``\\n`` and POSTed once; the response lines are the peer's messages, after which
the session ends ("Batch RPC request ended."). Server: the request lines are fed in order, the
response is sent once every pulled promise has settled, and the session is then shut down.

Unless given an aiohttp ``ClientSession``, the batches of one event loop share one, so a batch
reuses the keep-alive connection of the one before, as ``fetch`` does (see :class:`_Pool`).
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncGenerator
from ssl import SSLContext
from typing import Any

import aiohttp

from .._tasks import spawn
from ..errors import RpcDisconnectedError, RpcError

__all__ = ["KEEPALIVE", "BatchClientTransport", "BatchServerTransport"]

KEEPALIVE = 4.0
"""Seconds an idle connection of the shared HTTP client is kept for the next batch. Below the
5 s that Node's HTTP server keeps one, so a batch is not sent on a connection being closed."""


class _Pool:
    """The aiohttp client shared by the batches of one event loop.

    It is closed once no batch used it for ``KEEPALIVE`` seconds, and when the loop shuts down
    its async generators (``asyncio.run()`` does, on the way out), so nothing is left open.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=KEEPALIVE),
            cookie_jar=aiohttp.DummyCookieJar(),  # batches stay independent of each other
        )
        self.loop = loop
        self.busy = 0
        self.last_used = loop.time()
        self._timer: asyncio.TimerHandle | None = None
        self._keeper: AsyncGenerator[None, None] | None = None

    async def start(self) -> None:
        # An async generator suspended in its ``try``: the loop's shutdown_asyncgens() closes
        # it, which runs the ``finally`` while the loop can still close connections. Kept
        # here: the loop holds it weakly.
        self._keeper = keeper = self._until_closed()
        await anext(keeper)

    async def _until_closed(self) -> AsyncGenerator[None, None]:
        try:
            yield
        finally:
            self._keeper = None
            if _pools.get(self.loop) is self:
                del _pools[self.loop]
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            await self.http.close()

    def release(self) -> None:
        """A batch is done with the client."""
        self.busy -= 1
        self.last_used = self.loop.time()
        if self._timer is None and self._keeper is not None:
            self._timer = self.loop.call_later(KEEPALIVE, self._check_idle)

    def _check_idle(self) -> None:
        self._timer = None
        wait = KEEPALIVE
        if not self.busy:
            wait -= self.loop.time() - self.last_used
            if wait <= 0:
                spawn(self.close())
                return
        self._timer = self.loop.call_later(wait, self._check_idle)

    async def close(self) -> None:
        """Close the client and its connections; the next batch starts a new one."""
        keeper = self._keeper
        if keeper is not None:
            await keeper.aclose()


_pools: dict[asyncio.AbstractEventLoop, _Pool] = {}


async def _shared_http() -> _Pool:
    """The running loop's shared client, started if there is none."""
    loop = asyncio.get_running_loop()
    pool = _pools.get(loop)
    if pool is None:
        pool = _pools[loop] = _Pool(loop)
        await pool.start()
    pool.busy += 1
    return pool


class BatchClientTransport:
    """Client side of one HTTP batch."""

    def __init__(
        self,
        url: str,
        http: aiohttp.ClientSession | None = None,
        headers: dict[str, str] | None = None,
        ssl: SSLContext | None = None,
    ) -> None:
        self.url = url
        self.ssl: SSLContext | bool = True if ssl is None else ssl
        self.headers = {"Content-Type": "text/plain;charset=UTF-8", **(headers or {})}
        self._http = http
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
        pool: _Pool | None = None
        try:
            http = self._http
            if http is None:
                pool = await _shared_http()
                http = pool.http
            self.requests += 1
            data = io.BytesIO(body.encode())
            async with http.post(self.url, data=data, headers=self.headers, ssl=self.ssl) as r:
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
            if pool is not None:
                pool.release()

    async def receive(self) -> str:
        item = await self._inbox.get()
        if isinstance(item, BaseException):
            self._inbox.put_nowait(item)
            raise item
        return item

    def abort(self, reason: BaseException) -> None:
        self._flushed = True

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
