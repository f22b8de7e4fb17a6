"""The server core's bounds hold under ASGI servers too: a peer that never reads its answers is
not read any further (its unsent output stays bounded) while other clients are served; a batch
larger than ``max_batch_size`` is refused; a batch past ``batch_timeout`` is answered with its
calls rejected. The ASGI servers run in this process so that the tests can look at the
server's end of the connection (as tests/hostile/test_session_limits.py does for ``serve()``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
import uvicorn
from hostile.test_session_limits import (
    CALLS,
    HELD_SLACK,
    OVERSHOOT,
    WAIT,
    BigApi,
    Peak,
    RawPeer,
    flood,
    held,
    read_answers,
    server_end,
    traced,
    water,
)
from hypercorn.asyncio import serve as hypercorn_serve
from hypercorn.config import Config as HypercornConfig
from interop.conftest import free_port

import capnweb
from capnweb import Limits

pytestmark = pytest.mark.timeout(60)

SERVERS = ("uvicorn-auto", "uvicorn-websockets-sansio", "uvicorn-wsproto", "hypercorn")


@asynccontextmanager
async def asgi_server(server: str, app: Any) -> AsyncIterator[int]:
    """Serve ``app`` in this process on a free port of 127.0.0.1."""
    port = free_port()
    stop = asyncio.Event()
    if server.startswith("uvicorn"):
        config = uvicorn.Config(
            app, "127.0.0.1", port, ws=server.split("-", 1)[1], log_level="warning", lifespan="off"
        )
        uv = uvicorn.Server(config)
        uv.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        task = asyncio.create_task(uv.serve())
        while not uv.started:
            await asyncio.sleep(0.01)  # uvicorn has no event for it: bounded by the timeout
    else:
        config_h = HypercornConfig()
        config_h.bind = [f"127.0.0.1:{port}"]
        task = asyncio.create_task(hypercorn_serve(app, config_h, shutdown_trigger=stop.wait))
        await until_open(port)
    try:
        yield port
    finally:
        if server.startswith("uvicorn"):
            uv.should_exit = True
        stop.set()
        await asyncio.wait_for(task, WAIT)


async def until_open(port: int) -> None:
    async with asyncio.timeout(WAIT):
        while True:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.01)
                continue
            writer.close()
            return


@pytest.mark.parametrize("server", SERVERS)
async def test_a_peer_that_never_reads_is_not_read_and_others_are_served(server: str) -> None:
    limits, high = water("small")
    calls: list[int] = []
    app = capnweb.AsgiApp(lambda: BigApi(calls), limits=limits)
    async with (
        asgi_server(server, app) as port,
        capnweb.connect(f"ws://127.0.0.1:{port}/rpc") as api,
        RawPeer.open(port, rcvbuf=4096) as peer,
    ):
        await peer.upgrade("/rpc")
        conn = await server_end(peer.sock)
        with traced():
            unsent = Peak(conn.get_write_buffer_size)
            try:
                await flood(peer, conn, calls)
                stalled = len(calls)
                assert await asyncio.wait_for(api.square(3), WAIT) == 9  # others are served
                kept = await held()
                await read_answers(peer)
            finally:
                unsent.stop()
    assert stalled < CALLS, "the server kept reading a peer that reads nothing"
    assert unsent.max <= high + OVERSHOOT, f"{unsent.max} bytes unsent ({stalled} calls ran)"
    assert kept <= high + HELD_SLACK, f"{kept} bytes held for the peer ({stalled} calls ran)"
    assert sorted(calls) == list(range(1, CALLS + 1))


class Slow(capnweb.RpcTarget):
    async def nap(self) -> str:
        await asyncio.Event().wait()  # never answers
        return "never"

    def square(self, x: int) -> int:
        return x * x


@pytest.mark.parametrize("server", SERVERS)
async def test_batch_size_and_duration_are_bounded(server: str) -> None:
    app = capnweb.AsgiApp(Slow, limits=Limits(max_batch_size=1000, batch_timeout=0.5))
    async with asgi_server(server, app) as port, aiohttp.ClientSession() as http:
        url = f"http://127.0.0.1:{port}/rpc"
        big = '["push",["pipeline",0,["square"],[7]]]\n' * 40  # 1,600 bytes
        async with http.post(url, data=big) as r:
            assert r.status == 413
        async with capnweb.connect(url) as api:
            with pytest.raises(capnweb.RpcError, match="batch_timeout"):
                await api.nap()
        assert app.live_sessions == 0
