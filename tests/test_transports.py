"""Transports: in-memory pair, WebSocket (websockets and aiohttp), HTTP batch, mount()."""

from __future__ import annotations

import asyncio
import gc
import json
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from helpers import CLEAN, Counter, SessionPair, eventually, recording_peer
from websockets.asyncio.client import connect as ws_connect
from websockets.asyncio.server import ServerConnection
from websockets.asyncio.server import serve as ws_serve
from websockets.exceptions import ConnectionClosed

import capnweb
from capnweb import (
    RpcDisconnectedError,
    RpcError,
    RpcStub,
    RpcTarget,
    current_session,
    memory_pair,
)
from capnweb.transports import http_batch
from capnweb.transports.http_batch import BatchClientTransport

pytestmark = pytest.mark.timeout(20)

LONG_REASON = "é" * 100  # 200 UTF-8 bytes: the close reason must be cut on a char boundary


class Api(RpcTarget):
    """One instance per session (the servers call the factory per connection)."""

    instances: list[Api] = []  # noqa: RUF012 - shared across sessions on purpose

    def __init__(self) -> None:
        self.counters: list[Counter] = []
        self.started = asyncio.Event()
        self.gate = asyncio.Event()
        self.broken: asyncio.Future[BaseException] = asyncio.get_running_loop().create_future()
        self.kept: RpcStub | None = None
        self.session: capnweb.Session | None = None
        Api.instances.append(self)

    def square(self, x: int) -> int:
        return x * x

    def serverStats(self) -> list[int]:
        stats = current_session().stats()
        return [stats.imports, stats.exports]

    def echo(self, value: Any) -> Any:
        return value

    def makeCounter(self, n: int) -> Counter:
        self.session = current_session()
        c = Counter(n)
        self.counters.append(c)
        return c

    async def slow(self) -> str:
        self.session = current_session()
        self.started.set()
        await self.gate.wait()
        return "done"

    async def callBack(self, cb: RpcStub, x: int) -> Any:
        return await cb(x)

    def hold(self, cb: RpcStub) -> None:
        self.kept = cb

        def on_broken(e: BaseException) -> None:
            if not self.broken.done():
                self.broken.set_result(e)

        cb.on_broken(on_broken)


@pytest.fixture(autouse=True)
def _fresh_instances() -> None:
    Api.instances = []


@asynccontextmanager
async def aiohttp_server() -> AsyncIterator[capnweb.Server]:
    server = await capnweb.serve(Api, "127.0.0.1", 0)
    try:
        yield server
    finally:
        await server.close()


@asynccontextmanager
async def websockets_server() -> AsyncIterator[str]:
    server = await capnweb.serve_websocket(Api, "127.0.0.1", 0)
    try:
        port = next(iter(server.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}/"
    finally:
        server.close()
        await server.wait_closed()


@asynccontextmanager
async def ws_url(kind: str) -> AsyncIterator[str]:
    """A WebSocket URL served by aiohttp (``serve``) or by websockets (``serve_websocket``)."""
    if kind == "aiohttp":
        async with aiohttp_server() as server:
            yield server.ws_url
    else:
        async with websockets_server() as url:
            yield url


WS_KINDS = ["aiohttp", "websockets"]


# -- memory pair


async def test_memory_pair_delivers_in_order_and_records() -> None:
    a, b = memory_pair()
    a.send("one")
    a.send("two")
    b.send("three")
    assert [await b.receive(), await b.receive(), await a.receive()] == ["one", "two", "three"]
    assert a.sent == ["one", "two"] and b.sent == ["three"]


async def test_memory_pair_abort_disconnects_both_ends() -> None:
    a, b = memory_pair()
    a.send("last")
    a.abort(RpcError("bye"))
    assert await b.receive() == "last"
    with pytest.raises(RpcDisconnectedError, match="bye"):
        await b.receive()
    with pytest.raises(RpcDisconnectedError):
        await a.receive()
    with pytest.raises(RpcDisconnectedError):
        a.send("after")


async def test_sessions_over_memory_pair() -> None:
    async with SessionPair(Api()) as pair:
        assert await pair.main.square(5) == 25
        assert await pair.main.callBack(lambda x: x * 2, 21) == 42
        await pair.assert_clean()


# -- WebSocket


@pytest.mark.parametrize("kind", WS_KINDS)
async def test_websocket_calls_and_callbacks(kind: str) -> None:
    async with ws_url(kind) as url, capnweb.connect(url) as api:
        assert await api.square(7) == 49
        assert await api.callBack(lambda x: x + 1, 1) == 2
        counter = api.makeCounter(10)
        assert list(await asyncio.gather(counter.increment(1), counter.increment(2))) == [11, 13]
        counter.dispose()


@pytest.mark.parametrize("kind", WS_KINDS)
async def test_websocket_session_is_clean_after_use(kind: str) -> None:
    async with ws_url(kind) as url:
        conn = capnweb.connect(url)
        api = await conn.open()
        with await api.makeCounter(1) as counter:
            assert await counter.increment(1) == 2
        assert await api.square(2) == 4
        assert conn.stats() == CLEAN
        # seen from a call made after them, every release reached the server: only the main
        # capabilities are left (the call's own result is added once it returns)
        assert await api.serverStats() == [1, 1]
        assert Api.instances[0].counters[0].disposed == 1
        await conn.close()


@pytest.mark.parametrize("kind", WS_KINDS)
async def test_large_string_over_websocket(kind: str) -> None:
    big = "x" * (1 << 20)
    async with ws_url(kind) as url, capnweb.connect(url) as api:
        assert await api.echo(big) == big


@pytest.mark.parametrize("kind", WS_KINDS)
async def test_server_close_rejects_pending_calls(kind: str) -> None:
    async with ws_url(kind) as url:
        conn = capnweb.connect(url)
        api = await conn.open()
        pending = asyncio.ensure_future(api.slow())
        api_impl = await asyncio.wait_for(_started(), 5)
        assert api_impl.session is not None
        await api_impl.session.close()
        with pytest.raises(RpcDisconnectedError):
            await asyncio.wait_for(pending, 5)
        assert isinstance(conn.session.broken if conn.session else None, RpcDisconnectedError)
        await conn.close()


async def test_server_close_with_connected_clients_is_prompt() -> None:
    server = await capnweb.serve(Api, "127.0.0.1", 0)
    conn = capnweb.connect(server.ws_url)
    api = await conn.open()
    assert await api.square(3) == 9  # its release is still on the way when we close
    await asyncio.wait_for(server.close(), 3)  # no waiting out a close-handshake timeout
    with pytest.raises(RpcDisconnectedError):
        await asyncio.wait_for(api.square(4), 3)
    await conn.close()


@pytest.mark.parametrize("kind", WS_KINDS)
async def test_client_close_breaks_the_server_side(kind: str) -> None:
    async with ws_url(kind) as url:
        conn = capnweb.connect(url)
        api = await conn.open()
        await api.hold(lambda x: x)
        pending = asyncio.ensure_future(api.slow())
        await asyncio.wait_for(_started(), 5)
        await conn.close()
        with pytest.raises(RpcDisconnectedError):
            await pending
        error = await asyncio.wait_for(Api.instances[0].broken, 5)
        assert isinstance(error, RpcDisconnectedError)
        Api.instances[0].gate.set()


async def _started() -> Api:
    """The server's Api instance, once its slow() call has started."""
    while not Api.instances:
        await asyncio.sleep(0)
    await Api.instances[0].started.wait()
    return Api.instances[0]


@pytest.mark.parametrize("kind", WS_KINDS)
async def test_abort_frame_then_close_3000_with_truncated_reason(kind: str) -> None:
    async with ws_url(kind) as url, ws_connect(url) as ws:
        await ws.send(json.dumps([LONG_REASON]))
        frame = json.loads(await asyncio.wait_for(ws.recv(), 5))
        message = f"bad RPC message: {json.dumps([LONG_REASON], ensure_ascii=False)}"
        assert frame == ["abort", ["error", "Error", message]]
        with pytest.raises(ConnectionClosed) as info:
            await asyncio.wait_for(ws.recv(), 5)
        rcvd = info.value.rcvd
        assert rcvd is not None and rcvd.code == 3000
        expected = message.encode()[:123].decode("utf-8", "ignore")
        assert rcvd.reason == expected
        assert len(rcvd.reason.encode()) <= 123
        assert message.startswith(rcvd.reason)


async def test_client_abort_closes_with_3000_and_truncated_reason() -> None:
    async with recording_peer() as (url, closed):
        conn = capnweb.connect(url)
        await conn.open()
        assert conn.session is not None
        conn.session.abort(RpcError(LONG_REASON))
        code, reason, messages = await asyncio.wait_for(closed, 5)
        assert messages == [["abort", ["error", "Error", LONG_REASON]]]
        assert code == 3000
        assert reason == LONG_REASON.encode()[:123].decode("utf-8", "ignore")
        assert reason is not None and len(reason) == 61  # 61 two-byte characters fit in 123
        await conn.close()


async def test_clean_close_uses_code_1000() -> None:
    closed: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()

    async def handler(ws: ServerConnection) -> None:
        async for _ in ws:
            pass
        closed.set_result(ws.close_code)

    async with ws_serve(handler, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        async with capnweb.connect(f"ws://127.0.0.1:{port}/"):
            pass
        assert await asyncio.wait_for(closed, 5) == 1000


# -- HTTP batch


async def _post(url: str, body: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, http.post(url, data=body.encode()) as r:
        return r.status, await r.text()


def _lines(*frames: Any) -> str:
    return "\n".join(json.dumps(f) for f in frames)


async def test_batch_sends_one_post_per_batch() -> None:
    async with aiohttp_server() as server:
        conn = capnweb.connect(server.url)
        api = await conn.open()
        counter = api.makeCounter(2)
        results = await asyncio.gather(
            api.square(3), counter.increment(3), api.echo(counter.increment(4)), api.square(5)
        )
        assert list(results) == [9, 5, 9, 25]
        assert isinstance(conn.transport, BatchClientTransport)
        assert conn.transport.requests == 1
        await conn.close()


async def test_batch_session_ends_after_the_response() -> None:
    async with aiohttp_server() as server:
        conn = capnweb.connect(server.url)
        api = await conn.open()
        assert await api.square(2) == 4
        with pytest.raises(RpcError, match="Batch RPC request ended"):
            await api.square(3)
        assert isinstance(conn.transport, BatchClientTransport)
        assert conn.transport.requests == 1
        await conn.close()


@asynccontextmanager
async def batch_server_seeing_peers() -> AsyncIterator[tuple[str, list[Any]]]:
    """An aiohttp app serving Api at /rpc: (URL, the client address and the X-Client header
    of every request, in order)."""
    seen: list[Any] = []

    @web.middleware
    async def record(request: web.Request, handler: Any) -> web.StreamResponse:
        assert request.transport is not None
        seen.append((request.transport.get_extra_info("peername"), request.headers.get("X-Client")))
        response: web.StreamResponse = await handler(request)
        return response

    app = web.Application(middlewares=[record])
    capnweb.mount(app, "/rpc", Api)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/rpc", seen
    finally:
        await runner.cleanup()


async def test_batches_reuse_one_keep_alive_connection() -> None:
    async with batch_server_seeing_peers() as (url, seen):
        for i in range(3):
            async with capnweb.connect(url) as api:
                assert await api.square(i) == i * i
        assert len(seen) == 3
        assert len({peer for peer, _ in seen}) == 1


async def test_the_shared_http_client_closes_when_idle(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http_batch, "KEEPALIVE", 0.05)
    loop = asyncio.get_running_loop()
    async with batch_server_seeing_peers() as (url, seen):
        async with capnweb.connect(url) as api:
            assert await api.square(2) == 4
        pool = http_batch._pools[loop]
        await eventually(lambda: pool.http.closed)
        assert loop not in http_batch._pools
        async with capnweb.connect(url) as api:  # a new client for the next batch
            assert await api.square(3) == 9
        assert http_batch._pools[loop] is not pool
        assert len({peer for peer, _ in seen}) == 2


async def test_asyncio_run_closes_the_shared_http_client() -> None:
    async with batch_server_seeing_peers() as (url, _):

        async def client() -> Any:
            async with capnweb.connect(url) as api:
                assert await api.square(4) == 16
            return http_batch._pools[asyncio.get_running_loop()]

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            pool = await asyncio.wait_for(asyncio.to_thread(asyncio.run, client()), 10)
            gc.collect()
        assert pool.http.closed
        assert pool.loop not in http_batch._pools
        assert [str(w.message) for w in caught] == []


async def test_batch_uses_the_given_http_client() -> None:
    async with (
        batch_server_seeing_peers() as (url, seen),
        aiohttp.ClientSession(headers={"X-Client": "mine"}) as http,
    ):
        async with capnweb.connect(url, http=http) as api:
            assert await api.square(5) == 25
        assert not http.closed  # it belongs to the caller
        assert [client for _, client in seen] == ["mine"]
        assert asyncio.get_running_loop() not in http_batch._pools


async def test_batch_get_is_405() -> None:
    async with (
        aiohttp_server() as server,
        aiohttp.ClientSession() as http,
        http.get(server.url) as r,
    ):
        assert r.status == 405
        assert "only accepts POST" in await r.text()


async def test_batch_empty_body_gives_empty_200() -> None:
    async with aiohttp_server() as server:
        assert await _post(server.url, "") == (200, "")


async def test_batch_unpulled_push_gets_no_answer() -> None:
    async with aiohttp_server() as server:
        body = _lines(
            ["push", ["pipeline", 0, ["square"], [3]]],
            ["pull", 1],
            ["push", ["pipeline", 0, ["square"], [4]]],
        )
        assert await _post(server.url, body) == (200, '["resolve",1,9]')


async def test_batch_answers_after_slow_pulled_calls_settle() -> None:
    async with aiohttp_server() as server:
        body = _lines(["push", ["pipeline", 0, ["slow"], []]], ["pull", 1])
        response = asyncio.ensure_future(_post(server.url, body))
        await asyncio.wait_for(_started(), 5)
        Api.instances[0].gate.set()  # the answer can only hold "done" if it waited for this
        assert await asyncio.wait_for(response, 5) == (200, '["resolve",1,"done"]')


async def test_batch_exports_are_released_after_the_response() -> None:
    async with aiohttp_server() as server:
        body = _lines(["push", ["pipeline", 0, ["makeCounter"], [1]]], ["pull", 1])
        assert await _post(server.url, body) == (200, '["resolve",1,["export",-1]]')
        api_impl = Api.instances[0]
        assert [c.disposed for c in api_impl.counters] == [1]
        assert api_impl.session is not None and api_impl.session.broken is not None


async def test_batch_with_a_thousand_messages() -> None:
    async with aiohttp_server() as server:
        frames: list[Any] = []
        for i in range(500):
            frames.append(["push", ["pipeline", 0, ["square"], [i]]])
            frames.append(["pull", i + 1])
        status, text = await _post(server.url, _lines(*frames))
        assert status == 200
        answers = [json.loads(line) for line in text.split("\n")]
        assert answers == [["resolve", i + 1, i * i] for i in range(500)]


async def test_batch_client_with_many_calls_and_a_large_string() -> None:
    big = "y" * (1 << 20)
    async with aiohttp_server() as server:
        conn = capnweb.connect(server.url)
        api = await conn.open()
        results = await asyncio.gather(api.echo(big), *(api.square(i) for i in range(499)))
        assert results[0] == big
        assert results[1:] == [i * i for i in range(499)]
        assert isinstance(conn.transport, BatchClientTransport)
        assert conn.transport.requests == 1
        await conn.close()


async def test_batch_bad_message_answers_with_abort() -> None:
    async with aiohttp_server() as server:
        status, text = await _post(server.url, '["foo"]')
        assert status == 200
        assert json.loads(text) == ["abort", ["error", "Error", 'bad RPC message: ["foo"]']]


# -- mount()


def test_mount_registers_a_coroutine_handler() -> None:
    app = web.Application()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # aiohttp deprecates handlers that are not coroutines
        capnweb.mount(app, "/rpc", Api)


async def test_mount_on_an_existing_app() -> None:
    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="hello")

    app = web.Application()
    app.router.add_get("/hello", hello)
    capnweb.mount(app, "/api/rpc", Api)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        base = f"127.0.0.1:{port}"
        async with aiohttp.ClientSession() as http, http.get(f"http://{base}/hello") as r:
            assert await r.text() == "hello"
        async with capnweb.connect(f"ws://{base}/api/rpc") as api:
            assert await api.square(9) == 81
        conn = capnweb.connect(f"http://{base}/api/rpc")
        api = await conn.open()
        assert list(await asyncio.gather(api.square(2), api.square(3))) == [4, 9]
        await conn.close()
    finally:
        await runner.cleanup()


async def test_batch_server_cannot_call_back_and_says_so() -> None:
    # Inside one HTTP batch the client can never answer the server: a call to a client
    # capability must fail at once with a clear error, not hang the response.
    async with aiohttp_server() as server:
        conn = capnweb.connect(server.url)
        api = await conn.open()
        with pytest.raises(capnweb.RpcError, match="during an HTTP batch"):
            await api.callBack(lambda x: x + 1, 1)
        assert conn.transport is not None
        await conn.close()
