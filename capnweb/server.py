"""Serving capabilities: WebSocket upgrades and HTTP batch POSTs on one path.

``serve()`` runs a server of its own: it answers WebSocket upgrades and plain batch POSTs of
its path itself and hands every other request to aiohttp (the routes of an ``app`` given to
it, and whatever HTTP it does not read itself); ``mount()`` adds the endpoint to an aiohttp
application served elsewhere; ``serve_websocket()`` runs a WebSocket-only server on
``websockets``; :class:`capnweb.AsgiApp` (``asgi.py``) serves under an ASGI server. All hand
their connections to one server core, :class:`Endpoint`. Each WebSocket connection and each
batch POST is its own session, whose main capability is made by calling ``main()``.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import ssl as ssl_module
from collections.abc import Awaitable, Callable, Coroutine, Generator, Iterable
from typing import Any, Protocol, Self, runtime_checkable
from urllib.parse import urlsplit

from aiohttp import web
from websockets.asyncio.server import ServerConnection
from websockets.asyncio.server import serve as ws_serve

from ._codec import DEFAULT_LIMITS, Limits
from ._tasks import spawn
from .errors import RpcError
from .session import SendErrorHook, Session, Transport
from .transports._front import Front
from .transports._listen import listen
from .transports._queued import QueuedTransport
from .transports.http_batch import BatchServerTransport
from .transports.websocket import (
    AiohttpWebSocketTransport,
    WebSocketTransport,
    adopt_aiohttp,
    release_aiohttp,
)

__all__ = [
    "Cors",
    "Endpoint",
    "Server",
    "Serving",
    "Starting",
    "mount",
    "serve",
    "serve_websocket",
]

log = logging.getLogger("capnweb")

MainFactory = Callable[[], Any]

BACKLOG = 1024
"""Connections the kernel may queue for ``serve()`` before they are accepted."""


@runtime_checkable
class Serving(Protocol):
    """The shape every way of serving shares: :class:`Server` (``serve()``,
    ``serve_websocket()``), :class:`Endpoint` (``mount()``) and :class:`~capnweb.AsgiApp`.

    ``live_sessions`` counts the sessions running now; ``close()`` stops taking new ones, ends
    every session and, awaited, waits until their connections are closed; ``wait_closed()``
    waits for that, whoever closes; ``async with`` closes on the way out.
    """

    @property
    def live_sessions(self) -> int: ...

    def close(self) -> Awaitable[None]: ...

    async def wait_closed(self) -> None: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(self, *exc: object) -> None: ...


class Channel(Transport, Protocol):
    """A connection that hands each message to its session as it arrives, what
    :meth:`Endpoint.accept` takes: a WebSocket (``WsConnection``) or a WebTransport session's
    stream (``WtConnection``)."""

    def limit_output(self, high: int, low: int) -> None:
        """Stop handling the peer's messages while more than ``high`` bytes wait to be sent,
        until they are under ``low``."""
        ...

    def attach(
        self, deliver: Callable[[str], None], on_end: Callable[[BaseException], None]
    ) -> None:
        """Hand every incoming message to ``deliver``; call ``on_end(error)`` once the
        connection is over (unless the session ended it)."""
        ...

    def on_closed(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` once the connection is closed."""
        ...

    async def wait_closed(self) -> None:
        """Wait until the connection is closed."""
        ...


class Closing:
    """``close()``, done once whether awaited or not, ``wait_closed()`` and ``async with``:
    the lifecycle part of :class:`Serving`; subclasses say how to close in ``_close()``."""

    _closing: asyncio.Future[None] | None = None
    _closed_event: asyncio.Event | None = None

    def close(self) -> Awaitable[None]:
        """Stop serving and end every session now; await the result to wait until their
        connections are closed too."""
        if self._closing is None:
            self._closing = asyncio.ensure_future(self._close_once(self._begin_close()))
        return self._closing

    async def _close_once(self, begun: Awaitable[None]) -> None:
        try:
            await begun
        finally:
            if self._closed_event is None:
                self._closed_event = asyncio.Event()
            self._closed_event.set()

    async def wait_closed(self) -> None:
        """Wait until this is closed, by whoever closes it."""
        if self._closed_event is None:
            self._closed_event = asyncio.Event()
        await self._closed_event.wait()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _begin_close(self) -> Awaitable[None]:
        """Stop serving and end the sessions, now; the result finishes closing."""
        raise NotImplementedError


class Cors:
    """Which web pages of other origins may call an HTTP batch endpoint (CORS), and the
    headers that tell their browsers so.

    ``origins`` are full origins (``"https://app.example.com"``), or ``"*"`` for any page.
    A batch POST from an origin not listed (and not the endpoint's own) is refused with 403:
    batch bodies are ``text/plain``, which browsers send without asking first.
    """

    MAX_AGE = 600
    """Seconds a browser may reuse a preflight answer."""

    def __init__(self, origins: Iterable[str]) -> None:
        if isinstance(origins, str):
            raise TypeError("cors takes a list of origins, not one string")
        listed = [o.rstrip("/") for o in origins]
        self.any = "*" in listed
        self.origins = frozenset(o for o in listed if o != "*")

    def allows(self, origin: str, host: str | None) -> bool:
        """Whether a page of ``origin`` may call (its own server's, on ``host``, always)."""
        return self.any or origin in self.origins or urlsplit(origin).netloc == host

    def headers(self, origin: str) -> dict[str, str]:
        """The headers that let a page of an allowed ``origin`` read the answer."""
        return {"Access-Control-Allow-Origin": "*" if self.any else origin, "Vary": "Origin"}

    def preflight(self, origin: str, method: str, headers: str) -> dict[str, str]:
        """The answer's headers to a browser asking whether it may POST (an ``OPTIONS``
        request with ``Access-Control-Request-Method``)."""
        return {
            **self.headers(origin),
            "Access-Control-Allow-Methods": "POST",
            "Access-Control-Allow-Headers": headers or "Content-Type",
            "Access-Control-Max-Age": str(self.MAX_AGE),
        }


class Endpoint(Closing):
    """The server core of one RPC path: every way of serving (``serve()``, ``mount()``,
    ``serve_websocket()``) hands its connections here, and it runs their sessions.

    It makes each session's main capability with ``main()``, applies ``limits`` (message sizes,
    map work, batch size and duration, unsent output: see :class:`Limits`), counts the live
    sessions in :attr:`sessions` and ends them all on :meth:`shutdown`. ``cors``: the origins
    of web pages allowed to call the batch endpoint (see :class:`Cors`; None: no CORS headers,
    and no origin refused).
    """

    def __init__(
        self,
        main: MainFactory,
        *,
        limits: Limits | None = None,
        on_send_error: SendErrorHook | None = None,
        cors: Iterable[str] | None = None,
    ) -> None:
        self.main = main
        self.limits = limits or DEFAULT_LIMITS
        self.on_send_error = on_send_error
        self.cors = None if cors is None else Cors(cors)
        self.sessions: set[Session] = set()

    def _session(self, transport: Any, start: bool) -> Session:
        return Session(
            transport,
            self.main(),
            limits=self.limits,
            on_send_error=self.on_send_error,
            start=start,
        )

    # -- the core: sessions over each kind of connection

    def accept(self, conn: Channel) -> Session:
        """Start a session on a connection whose opening handshake is done (a WebSocket, a
        WebTransport session); it is among :attr:`sessions` until the connection closes."""
        conn.limit_output(self.limits.send_high_water, self.limits.send_low_water)
        session = self._session(conn, False)
        self.sessions.add(session)
        conn.on_closed(lambda: self.sessions.discard(session))
        conn.attach(session.feed, session.disconnected)
        return session

    async def run(self, transport: QueuedTransport) -> None:
        """Run a session over a transport that is read by the session (``receive()``) until
        both have ended."""
        transport.limit_output(self.limits.send_high_water, self.limits.send_low_water)
        session = self._session(transport, True)
        self.sessions.add(session)
        try:
            await session.wait_closed()
            await transport.wait_closed()
        finally:
            self.sessions.discard(session)

    async def batch(self, body: str) -> str:
        """Run one HTTP batch: the request body's messages in, the response body out.

        The messages are handled a bounded number per loop turn; a batch that has not ended
        after ``limits.batch_timeout`` seconds is answered with its open calls rejected (an
        ``abort``). Cancelling it (the client went away) ends it; either way everything the
        batch held is released.
        """
        transport = BatchServerTransport()
        session = self._session(transport, False)
        self.sessions.add(session)
        timeout = self.limits.batch_timeout
        try:
            if len(body) <= BATCH_LINES_PER_TURN * 64:  # (a small body holds few lines)
                for line in body.split("\n") if body else ():
                    if line:
                        session.feed(line)
            else:
                await self._feed_slowly(session, body)
            if session.answering:  # results still being computed: wait, for so long
                try:
                    async with asyncio.timeout(timeout):
                        await session.drain()
                except TimeoutError:
                    session.abort(
                        RpcError(
                            f"The HTTP batch did not end within batch_timeout ({timeout:g} s)."
                        )
                    )
                except Exception:
                    pass  # the abort frame is already among the answers
        finally:
            session.shutdown()
            self.sessions.discard(session)
        return "\n".join(transport.out)

    @staticmethod
    async def _feed_slowly(session: Session, body: str) -> None:
        """Feed a large batch, a bounded number of messages per loop turn (the lines are
        found as they are fed: splitting megabytes at once would hold the loop)."""
        find = body.find
        start, end = 0, len(body)
        while start < end:
            for _ in range(BATCH_LINES_PER_TURN):
                stop = find("\n", start)
                if stop < 0:
                    stop = end
                if stop > start:
                    session.feed(body[start:stop])
                start = stop + 1
                if start >= end:
                    return
            await asyncio.sleep(0)  # other connections are served meanwhile

    def shutdown(self) -> None:
        """End every live session."""
        for session in list(self.sessions):
            session.shutdown()

    @property
    def live_sessions(self) -> int:
        """The number of sessions running now."""
        return len(self.sessions)

    def _begin_close(self) -> Awaitable[None]:
        sessions = list(self.sessions)
        self.shutdown()
        # Let each WebSocket finish its closing handshake (the batches end at once).
        waits = [getattr(s.transport, "wait_closed", None) for s in sessions]
        return _all_done(asyncio.gather(*(w() for w in waits if w), return_exceptions=True))

    # -- the aiohttp adapter (``mount()``)

    async def __call__(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._websocket(request)
        origin = request.headers.get("Origin")
        cors = self.cors
        if cors is not None and origin is not None:
            if not cors.allows(origin, request.host):
                return web.Response(status=403, text=FORBIDDEN_ORIGIN)
            method = request.headers.get("Access-Control-Request-Method")
            if request.method == "OPTIONS" and method is not None:
                asked = request.headers.get("Access-Control-Request-Headers", "")
                return web.Response(status=204, headers=cors.preflight(origin, method, asked))
            if request.method == "POST":
                response = await self._batch_request(request)
                response.headers.update(cors.headers(origin))
                return response
        if request.method == "POST":
            return await self._batch_request(request)
        return web.Response(status=405, text=NOT_ALLOWED, headers={"Allow": "POST"})

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(
            max_msg_size=self.limits.max_frame_size, autoping=True, compress=False
        )
        await ws.prepare(request)
        # Hand the connection to a WsConnection (messages handled as they arrive); aiohttp's
        # own WebSocket only when that is not possible.
        conn = adopt_aiohttp(ws, request)
        if conn is None:
            await self.run(AiohttpWebSocketTransport(ws))
            return ws
        self.accept(conn)
        try:
            await conn.wait_closed()
        finally:
            release_aiohttp(ws)
        return ws

    async def _batch_request(self, request: web.Request) -> web.StreamResponse:
        limit = self.limits.max_batch_size
        too_large = web.Response(status=413, text="The batch is too large.")
        too_large.force_close()  # the rest of the body is not read
        if request.content_length is not None and request.content_length > limit:
            return too_large
        body = bytearray()
        async for chunk in request.content.iter_any():
            body += chunk
            if len(body) > limit:
                return too_large
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return web.Response(status=400, text="The request body is not UTF-8.")
        task = spawn(self.batch(text))
        try:
            # aiohttp does not cancel a handler whose client went away: look every second
            while not task.done():
                await asyncio.wait((task,), timeout=DISCONNECT_CHECK)
                if request.transport is None or request.transport.is_closing():
                    break
        finally:
            if not task.done():
                task.cancel()  # the batch ends, releasing what it held
                await asyncio.gather(task, return_exceptions=True)
        if task.cancelled():
            return web.Response(status=503, text="The client went away.")  # read by nobody
        return web.Response(text=task.result(), content_type="text/plain")


async def _all_done(waiting: Awaitable[object]) -> None:
    await waiting


FORBIDDEN_ORIGIN = "Pages of this origin may not call this endpoint (CORS)."
NOT_ALLOWED = "This endpoint only accepts POST or WebSocket requests."

BATCH_LINES_PER_TURN = 256
"""Messages of an HTTP batch handled in one event loop turn (a large batch never holds it)."""

DISCONNECT_CHECK = 1.0
"""Seconds between two checks, under ``mount()``, that a batch's client is still there."""


def mount(
    app: web.Application,
    path: str,
    main: MainFactory,
    *,
    limits: Limits | None = None,
    on_send_error: SendErrorHook | None = None,
    cors: Iterable[str] | None = None,
) -> Endpoint:
    """Serve RPC at ``path`` of an existing aiohttp app (WebSocket and batch POST); ``cors``:
    the origins of web pages that may call the batch endpoint (see :class:`Cors`)."""
    endpoint = Endpoint(main, limits=limits, on_send_error=on_send_error, cors=cors)
    app.router.add_route("*", path, endpoint.__call__)  # a coroutine function for aiohttp
    return endpoint


class Server(Closing):
    """A running server listening on ``host``:``port`` (what ``serve()`` and
    ``serve_websocket()`` give); ``async with`` it, or ``await server.close()``."""

    _fronts: set[Front] = frozenset()  # type: ignore[assignment]

    def __init__(
        self,
        endpoint: Endpoint,
        host: str,
        port: int,
        path: str,
        sockets: list[socket.socket],
        stop_accepting: Callable[[], None],
        cleanup: Callable[[], Awaitable[None]],
        secure: bool = False,
    ):
        self.endpoint = endpoint
        self.host = host
        self.port = port
        self.path = path
        self.sockets = sockets
        self.secure = secure
        self._stop_accepting = stop_accepting
        self._cleanup = cleanup

    @property
    def url(self) -> str:
        """The HTTP URL of the endpoint (``https`` over TLS), for batches."""
        return f"{'https' if self.secure else 'http'}://{self._authority}{self.path}"

    @property
    def ws_url(self) -> str:
        """The WebSocket URL of the endpoint (``wss`` over TLS)."""
        return f"{'wss' if self.secure else 'ws'}://{self._authority}{self.path}"

    @property
    def _authority(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def live_sessions(self) -> int:
        """The number of sessions running now."""
        return len(self.endpoint.sessions)

    def _begin_close(self) -> Awaitable[None]:
        self._stop_accepting()
        return self._finish_close(self.endpoint.close())

    async def _finish_close(self, sessions_closed: Awaitable[None]) -> None:
        try:
            await sessions_closed
        finally:
            await self._cleanup()

    async def serve_forever(self) -> None:
        """Wait until the server is closed (or this is cancelled)."""
        await self.wait_closed()

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


class Starting:
    """What ``serve()`` returns: ``await`` it for the running :class:`Server`, or
    ``async with`` it (the server is closed on the way out)."""

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
    backlog: int = BACKLOG,
    ssl: ssl_module.SSLContext | None = None,
    reuse_port: bool = False,
    cors: Iterable[str] | None = None,
) -> Starting:
    """Serve ``main()`` (called once per session) at ``http://host:port/path``: WebSocket
    upgrades and HTTP batch POSTs. ``await`` the result for the running :class:`Server`, or
    use ``async with serve(...) as server:``. Port 0 picks a free port (``Server.port``).

    ``limits``: what one peer may make the server spend (:class:`Limits`). ``app``: an
    aiohttp application (not started yet) whose other routes are served beside the endpoint,
    on the same port. The requests of ``path`` are answered without aiohttp, unless the app
    has middlewares or ``on_response_prepare`` hooks: then they see them all. ``backlog``:
    connections the kernel may queue before they are accepted (it caps this at
    ``net.core.somaxconn``). ``ssl``: serve ``https``/``wss`` with this server-side context.
    ``reuse_port``: let other processes listen on the same port (``SO_REUSEPORT``: the kernel
    spreads connections among them; how ``capnweb serve --workers`` runs). ``cors``: origins
    of web pages that may call the batch endpoint (see :class:`Cors`).
    """
    endpoint = Endpoint(main, limits=limits, on_send_error=on_send_error, cors=cors)
    return Starting(_serve(endpoint, host, port, path, app, backlog, ssl, reuse_port))


async def _serve(
    endpoint: Endpoint,
    host: str,
    port: int,
    path: str,
    app: web.Application | None,
    backlog: int,
    ssl: ssl_module.SSLContext | None,
    reuse_port: bool,
) -> Server:
    if app is None:
        app = web.Application(client_max_size=endpoint.limits.max_batch_size)
    app.router.add_route("*", path, endpoint.__call__)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    aiohttp_handler = runner.server
    assert aiohttp_handler is not None  # set by setup()
    fronts: set[Front] = set()

    def connection() -> Front:
        # Upgrades and batch POSTs of ``path`` are handled here; aiohttp handles the rest.
        return Front(
            path,
            endpoint.accept,
            endpoint.batch,
            aiohttp_handler,
            endpoint.limits,
            fronts,
            endpoint.cors is not None,
        )

    # The app's middlewares (authentication, say) and response hooks (CORS headers, say) must
    # see every request: then aiohttp takes every connection, and WebSocket upgrades are taken
    # over after its handshake.
    through_aiohttp = bool(app.middlewares) or bool(app.on_response_prepare)
    factory: Callable[[], asyncio.Protocol] = aiohttp_handler if through_aiohttp else connection
    try:
        listener = await listen(factory, host, port, backlog, ssl, reuse_port)
    except BaseException:
        await runner.cleanup()
        raise
    actual = listener.sockets[0].getsockname()[1]

    def stop_accepting() -> None:
        listener.close()
        for front in list(fronts):
            front.close()

    secure = ssl is not None
    server = Server(
        endpoint, host, actual, path, listener.sockets, stop_accepting, runner.cleanup, secure
    )
    server._fronts = fronts  # the connections not handed to aiohttp (for tests and debugging)
    return server


async def serve_websocket(
    main: MainFactory,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    limits: Limits | None = None,
    on_send_error: SendErrorHook | None = None,
) -> Server:
    """A WebSocket-only server on the ``websockets`` library, answering on any path."""
    endpoint = Endpoint(main, limits=limits, on_send_error=on_send_error)

    async def handler(ws: ServerConnection) -> None:
        await endpoint.run(WebSocketTransport(ws))

    server = await ws_serve(
        handler, host, port, max_size=endpoint.limits.max_frame_size, compression=None
    )
    sockets = list(server.sockets)
    actual = sockets[0].getsockname()[1]

    def stop_accepting() -> None:
        server.close(close_connections=False)  # the endpoint closes them, as sessions end

    return Server(endpoint, host, actual, "/", sockets, stop_accepting, server.wait_closed)
