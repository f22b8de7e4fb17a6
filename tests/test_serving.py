"""Every way of serving has one shape (``capnweb.Serving``): the live session count, ``close()``
(awaited or not), ``wait_closed()`` and ``async with``; and the listening ones their address."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import pytest
import uvicorn
from aiohttp import web
from helpers import eventually

import capnweb

pytestmark = pytest.mark.timeout(30)

WAIT = 5.0


class Api(capnweb.RpcTarget):
    def square(self, i: int) -> int:
        return i * i


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@asynccontextmanager
async def by_serve() -> AsyncIterator[tuple[capnweb.Serving, str]]:
    server = await capnweb.serve(Api)
    yield server, server.ws_url


@asynccontextmanager
async def by_serve_websocket() -> AsyncIterator[tuple[capnweb.Serving, str]]:
    server = await capnweb.serve_websocket(Api)
    yield server, server.ws_url


@asynccontextmanager
async def by_mount() -> AsyncIterator[tuple[capnweb.Serving, str]]:
    app = web.Application()
    endpoint = capnweb.mount(app, "/rpc", Api)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield endpoint, f"ws://127.0.0.1:{port}/rpc"
    finally:
        await runner.cleanup()


@asynccontextmanager
async def by_asgi() -> AsyncIterator[tuple[capnweb.Serving, str]]:
    app = capnweb.AsgiApp(Api)
    port = free_port()
    config = uvicorn.Config(app, "127.0.0.1", port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve())
    await eventually(lambda: server.started)
    try:
        yield app, f"ws://127.0.0.1:{port}/rpc"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, WAIT)


WAYS: dict[str, Callable[[], AbstractAsyncContextManager[tuple[capnweb.Serving, str]]]] = {
    "serve": by_serve,
    "serve_websocket": by_serve_websocket,
    "mount": by_mount,
    "asgi": by_asgi,
}


@pytest.mark.parametrize("way", WAYS)
async def test_live_sessions_and_close(way: str) -> None:
    async with WAYS[way]() as (serving, url):
        assert isinstance(serving, capnweb.Serving)
        assert serving.live_sessions == 0
        connection = capnweb.connect(url)
        api = await connection.open()
        assert await api.square(3) == 9
        assert serving.live_sessions == 1
        waiting = asyncio.create_task(serving.wait_closed())
        await asyncio.sleep(0)
        assert not waiting.done()  # nobody closed it yet
        await asyncio.wait_for(serving.close(), WAIT)
        assert serving.live_sessions == 0
        await asyncio.wait_for(waiting, WAIT)
        with pytest.raises(capnweb.RpcDisconnectedError):
            await asyncio.wait_for(api.square(4), WAIT)
        await connection.close()
        await asyncio.wait_for(serving.close(), WAIT)  # a second close: nothing more to do


@pytest.mark.parametrize("way", ["serve", "serve_websocket"])
async def test_close_not_awaited_still_closes(way: str) -> None:
    async with WAYS[way]() as (serving, url), capnweb.connect(url) as api:
        assert await api.square(2) == 4
        serving.close()  # as websockets' own close(): the rest happens meanwhile
        await asyncio.wait_for(serving.wait_closed(), WAIT)
        assert serving.live_sessions == 0
        with pytest.raises(capnweb.RpcDisconnectedError):
            await asyncio.wait_for(api.square(4), WAIT)


async def test_async_with_closes_and_the_address_is_told() -> None:
    async with capnweb.serve(Api, host="127.0.0.1", port=0) as server:
        assert isinstance(server, capnweb.Server)
        assert server.url == f"http://127.0.0.1:{server.port}/rpc"
        assert server.ws_url == f"ws://127.0.0.1:{server.port}/rpc"
        assert server.sockets[0].getsockname()[1] == server.port
        ended = asyncio.create_task(server.wait_closed())
    await asyncio.wait_for(ended, WAIT)


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback on this machine")
async def test_an_ipv6_host_gives_urls_that_work() -> None:
    async with capnweb.serve(Api, host="::1", port=0) as server:
        assert server.url == f"http://[::1]:{server.port}/rpc"
        async with capnweb.connect(server.ws_url) as api:
            assert await api.square(5) == 25
        async with capnweb.connect(server.url) as api:
            assert await api.square(6) == 36
