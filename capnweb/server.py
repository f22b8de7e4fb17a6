"""Serving capabilities: WebSocket upgrades and HTTP batch POSTs on one path.

``serve()`` runs a server of its own: it answers WebSocket upgrades and plain batch POSTs of
its path itself and hands every other request to aiohttp (the routes of an ``app`` given to
it, and whatever HTTP it does not read itself); ``mount()`` adds the endpoint to an aiohttp
application served elsewhere; ``serve_websocket()`` runs a WebSocket-only server on
``websockets``. Each WebSocket connection and each batch POST is its own session, whose main
capability is made by calling ``main()``.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Coroutine, Generator
from typing import Any

from aiohttp import web
from websockets.asyncio.server import Server as WsServer
from websockets.asyncio.server import ServerConnection
from websockets.asyncio.server import serve as ws_serve

from ._codec import Limits
from .session import SendErrorHook, Session
from .transports._front import Front
from .transports._ws import WsConnection
from .transports.http_batch import BatchServerTransport
from .transports.websocket import (
    MAX_FRAME,
    AiohttpWebSocketTransport,
    WebSocketTransport,
    adopt_aiohttp,
    release_aiohttp,
)

__all__ = ["Endpoint", "Server", "mount", "serve", "serve_websocket"]

log = logging.getLogger("capnweb")

MainFactory = Callable[[], Any]


class Endpoint:
    """The aiohttp handler for one RPC path; tracks its live sessions."""

    def __init__(
        self,
        main: MainFactory,
        *,
        limits: Limits | None = None,
        on_send_error: SendErrorHook | None = None,
    ) -> None:
        self.main = main
        self.limits = limits
        self.on_send_error = on_send_error
        self.sessions: set[Session] = set()

    def _session(self, transport: Any, start: bool) -> Session:
        return Session(
            transport,
            self.main(),
            limits=self.limits,
            on_send_error=self.on_send_error,
            start=start,
        )

    async def __call__(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._websocket(request)
        if request.method == "POST":
            return await self._batch_request(request)
        return web.Response(
            status=405, text="This endpoint only accepts POST or WebSocket requests."
        )

    def accept(self, conn: WsConnection) -> Session:
        """Start a session on a WebSocket connection whose opening handshake is done; it is
        among :attr:`sessions` until the connection closes."""
        session = self._session(conn, False)
        self.sessions.add(session)
        conn.on_closed(lambda: self.sessions.discard(session))
        conn.attach(session.feed, session.disconnected)
        return session

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(max_msg_size=MAX_FRAME, autoping=True, compress=False)
        await ws.prepare(request)
        # Hand the connection to a WsConnection (messages handled as they arrive); aiohttp's
        # own WebSocket only when that is not possible.
        conn = adopt_aiohttp(ws, request)
        if conn is not None:
            self.accept(conn)
            try:
                await conn.wait_closed()
            finally:
                release_aiohttp(ws)
            return ws
        transport = AiohttpWebSocketTransport(ws)
        session = self._session(transport, True)
        self.sessions.add(session)
        try:
            await session.wait_closed()
            await transport.wait_closed()
        finally:
            self.sessions.discard(session)
        return ws

    async def _batch_request(self, request: web.Request) -> web.StreamResponse:
        text = await self.batch(await request.text())
        return web.Response(text=text, content_type="text/plain")

    async def batch(self, body: str) -> str:
        """Run one HTTP batch: the request body's messages in, the response body out."""
        transport = BatchServerTransport()
        session = self._session(transport, False)
        self.sessions.add(session)
        try:
            for line in body.split("\n") if body else ():
                if line:
                    session.feed(line)
            try:
                await session.drain()
            except Exception:
                pass  # the abort frame is already among the answers
        finally:
            session.shutdown()
            self.sessions.discard(session)
        return "\n".join(transport.out)

    def shutdown(self) -> None:
        """End every live session."""
        for session in list(self.sessions):
            session.shutdown()


def mount(
    app: web.Application,
    path: str,
    main: MainFactory,
    *,
    limits: Limits | None = None,
    on_send_error: SendErrorHook | None = None,
) -> Endpoint:
    """Serve RPC at ``path`` of an existing aiohttp app (WebSocket and batch POST)."""
    endpoint = Endpoint(main, limits=limits, on_send_error=on_send_error)
    app.router.add_route("*", path, endpoint.__call__)  # a coroutine function for aiohttp
    return endpoint


class Server:
    """A running server; ``async with`` it, or ``await close()``."""

    def __init__(
        self,
        runner: web.AppRunner,
        endpoint: Endpoint,
        host: str,
        port: int,
        path: str,
        listener: asyncio.AbstractServer | None = None,
        fronts: set[Front] | None = None,
    ):
        self._runner = runner
        self._listener = listener
        self._fronts = fronts if fronts is not None else set()
        self.endpoint = endpoint
        self.host = host
        self.port = port
        self.path = path

    @property
    def url(self) -> str:
        """The HTTP URL of the endpoint (use ``ws://`` for WebSocket)."""
        return f"http://{self.host}:{self.port}{self.path}"

    @property
    def ws_url(self) -> str:
        """The WebSocket URL of the endpoint."""
        return f"ws://{self.host}:{self.port}{self.path}"

    async def close(self) -> None:
        """Stop listening and end every session."""
        if self._listener is not None:
            self._listener.close()
        for front in list(self._fronts):
            front.close()
        sessions = list(self.endpoint.sessions)
        self.endpoint.shutdown()
        # Let each WebSocket finish its closing handshake before the server stops reading.
        waits = [getattr(s._transport, "wait_closed", None) for s in sessions]
        await asyncio.gather(*(w() for w in waits if w is not None), return_exceptions=True)
        await self._runner.cleanup()

    async def serve_forever(self) -> None:
        """Wait until cancelled."""
        await asyncio.Event().wait()

    async def serve_until_signal(self) -> None:
        """Serve until SIGTERM or SIGINT arrives, then close (for server scripts)."""
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        try:
            await stop.wait()
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
            await self.close()

    async def __aenter__(self) -> Server:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class Starting:
    """What ``serve()`` returns: ``await`` it for the :class:`Server`, or ``async with`` it."""

    def __init__(self, start: Coroutine[Any, Any, Server]) -> None:
        self._start = start
        self._server: Server | None = None

    def __await__(self) -> Generator[Any, Any, Server]:
        return self._start.__await__()

    async def __aenter__(self) -> Server:
        self._server = await self._start
        return self._server

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            await self._server.close()


def serve(
    main: MainFactory,
    host: str = "127.0.0.1",
    port: int = 0,
    path: str = "/rpc",
    *,
    limits: Limits | None = None,
    on_send_error: SendErrorHook | None = None,
    app: web.Application | None = None,
) -> Starting:
    """Serve ``main()`` (called once per session) at ``http://host:port/path``: WebSocket
    upgrades and HTTP batch POSTs. ``await`` the result for the running :class:`Server`, or
    use ``async with serve(...) as server:``. Port 0 picks a free port (``Server.port``).

    ``app``: an aiohttp application (not started yet) whose other routes are served beside
    the endpoint, on the same port. The requests of ``path`` are answered without aiohttp,
    unless the app has middlewares or ``on_response_prepare`` hooks: then they see them all.
    """
    return Starting(_serve(main, host, port, path, limits, on_send_error, app))


async def _serve(
    main: MainFactory,
    host: str,
    port: int,
    path: str,
    limits: Limits | None,
    on_send_error: SendErrorHook | None,
    app: web.Application | None,
) -> Server:
    if app is None:
        app = web.Application(client_max_size=MAX_FRAME)
    endpoint = mount(app, path, main, limits=limits, on_send_error=on_send_error)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    aiohttp_handler = runner.server
    assert aiohttp_handler is not None  # set by setup()
    fronts: set[Front] = set()

    def connection() -> Front:
        # Upgrades and batch POSTs of ``path`` are handled here; aiohttp handles the rest.
        return Front(path, endpoint.accept, endpoint.batch, aiohttp_handler, MAX_FRAME, fronts)

    # The app's middlewares (authentication, say) and response hooks (CORS headers, say) must
    # see every request: then aiohttp takes every connection, and WebSocket upgrades are taken
    # over after its handshake.
    through_aiohttp = bool(app.middlewares) or bool(app.on_response_prepare)
    factory: Callable[[], asyncio.Protocol] = aiohttp_handler if through_aiohttp else connection
    try:
        listener = await asyncio.get_running_loop().create_server(factory, host, port)
    except BaseException:
        await runner.cleanup()
        raise
    actual = listener.sockets[0].getsockname()[1] if listener.sockets else port
    return Server(runner, endpoint, host, actual, path, listener, fronts)


async def serve_websocket(
    main: MainFactory,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    limits: Limits | None = None,
    on_send_error: SendErrorHook | None = None,
) -> WsServer:
    """A WebSocket-only server on the ``websockets`` library (any path)."""

    async def handler(ws: ServerConnection) -> None:
        transport = WebSocketTransport(ws)
        session = Session(transport, main(), limits=limits, on_send_error=on_send_error)
        await session.wait_closed()
        await transport.wait_closed()

    return await ws_serve(handler, host, port, max_size=MAX_FRAME, compression=None)
