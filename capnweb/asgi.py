"""The ASGI adapter: the RPC endpoint as an ASGI application, for uvicorn, hypercorn,
Starlette and FastAPI.

An :class:`AsgiApp` answers, on every path it is given (or only on ``path``), WebSocket
connections (one session each) and HTTP batch POSTs (one session each), through the same
server core as ``serve()`` (:class:`~capnweb.Endpoint`): the same limits, batch timeouts,
backpressure, CORS and session count. The ASGI server reads HTTP and WebSocket frames; this
module only translates its events.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from ._codec import Limits
from ._tasks import spawn
from .errors import RpcDisconnectedError
from .server import FORBIDDEN_ORIGIN, NOT_ALLOWED, Closing, Endpoint
from .session import SendErrorHook
from .transports._queued import QueuedTransport, close_reason

__all__ = ["AsgiApp"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class AsgiWebSocketTransport(QueuedTransport):
    """A session transport over an accepted ASGI WebSocket connection."""

    def __init__(self, receive: Receive, send: Send) -> None:
        super().__init__()
        self._receive = receive
        self._send = send

    async def receive(self) -> str:
        if self._queued > self._high:
            await self._backpressure()
        while True:
            event = await self._receive()
            kind = event["type"]
            if kind == "websocket.receive":
                text = event.get("text")
                if text is not None:
                    return str(text)
                try:
                    return bytes(event.get("bytes") or b"").decode("utf-8")
                except UnicodeDecodeError:
                    self._close_code = 1007
                    raise RpcDisconnectedError("a binary message is not UTF-8") from None
            elif kind == "websocket.disconnect":
                self._closing = True  # nothing can be sent any more
                code = event.get("code", 1005)
                reason = event.get("reason") or ""
                raise RpcDisconnectedError(f"Peer closed WebSocket: {code} {reason}")

    _close_code = 0

    async def _write(self, text: str) -> None:
        await self._send({"type": "websocket.send", "text": text})

    async def _close(self, error: BaseException | None) -> None:
        if self._close_code:
            code, reason = self._close_code, str(error or "")
        elif error is None:
            code, reason = 1000, ""
        else:
            code, reason = 3000, close_reason(error)
        await self._send({"type": "websocket.close", "code": code, "reason": reason})


class AsgiApp(Closing):
    """The RPC endpoint as an ASGI 3 application: WebSocket and batch POST.

    ``main()`` is called once per session for its main capability; ``path``: answer only this
    path (None: every path, as when mounted under a prefix by Starlette or FastAPI);
    ``limits``, ``on_send_error`` and ``cors`` as for ``serve()``. The ASGI server's own
    WebSocket message limit (uvicorn ``--ws-max-size``, hypercorn
    ``websocket_max_message_size``, both 16 MiB by default) applies before ``limits``.

    As the top-level application it answers ASGI lifespan events (shutdown ends every
    session); mounted in another application, ``await app.close()`` from its lifespan. It has
    the shape of every way of serving (:class:`~capnweb.Serving`).
    """

    def __init__(
        self,
        main: Callable[[], Any],
        *,
        path: str | None = None,
        limits: Limits | None = None,
        on_send_error: SendErrorHook | None = None,
        cors: Iterable[str] | None = None,
    ) -> None:
        self.endpoint = Endpoint(main, limits=limits, on_send_error=on_send_error, cors=cors)
        self.path = path

    @property
    def live_sessions(self) -> int:
        """The number of sessions running now."""
        return len(self.endpoint.sessions)

    def routes(self, path: str = "/rpc") -> list[Any]:
        """Starlette routes serving this endpoint at exactly ``path`` (WebSocket, POST and the
        CORS preflight), for ``Starlette(routes=...)`` or FastAPI's
        ``app.router.routes.extend(...)``. (A ``Mount`` would match only ``path + "/..."``.)"""
        from starlette.routing import Route, WebSocketRoute  # optional: only for Starlette

        return [Route(path, self, methods=["POST", "OPTIONS"]), WebSocketRoute(path, self)]

    def _begin_close(self) -> Awaitable[None]:
        return self.endpoint.close()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self._lifespan(receive, send)
        elif self.path is not None and scope["path"] != self.path:
            if kind == "websocket":
                await send({"type": "websocket.close", "code": 1008, "reason": ""})
            else:
                await _answer(send, 404, "Not Found")
        elif kind == "websocket":
            await self._websocket(receive, send)
        elif kind == "http":
            await self._http(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            event = await receive()
            if event["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif event["type"] == "lifespan.shutdown":
                await self.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _websocket(self, receive: Receive, send: Send) -> None:
        event = await receive()
        if event["type"] != "websocket.connect":
            return  # the client left before the handshake ended
        await send({"type": "websocket.accept"})
        await self.endpoint.run(AsgiWebSocketTransport(receive, send))

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = _headers(scope)
        method = scope["method"]
        extra: dict[str, str] = {}
        origin = headers.get("origin")
        cors = self.endpoint.cors
        if cors is not None and origin is not None:
            if not cors.allows(origin, headers.get("host")):
                return await _answer(send, 403, FORBIDDEN_ORIGIN)
            asked = headers.get("access-control-request-method")
            if method == "OPTIONS" and asked is not None:
                wanted = headers.get("access-control-request-headers", "")
                return await _answer(send, 204, "", cors.preflight(origin, asked, wanted))
            extra = cors.headers(origin)
        if method != "POST":
            return await _answer(send, 405, NOT_ALLOWED, {"Allow": "POST"})
        limit = self.endpoint.limits.max_batch_size
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            return await _answer(send, 413, "The batch is too large.", extra)
        body = bytearray()
        while True:
            event = await receive()
            if event["type"] == "http.disconnect":
                return  # nobody to answer
            body += event.get("body", b"")
            if len(body) > limit:
                return await _answer(send, 413, "The batch is too large.", extra)
            if not event.get("more_body", False):
                break
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return await _answer(send, 400, "The request body is not UTF-8.", extra)
        del body
        batch = spawn(self.endpoint.batch(text))
        gone = spawn(_disconnected(receive))  # the client may leave while the batch runs
        try:
            await asyncio.wait((batch, gone), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (batch, gone):
                task.cancel()
            await asyncio.gather(batch, gone, return_exceptions=True)
        if batch.cancelled():
            return  # the batch ended, releasing what it held; nobody reads an answer
        await _answer(send, 200, batch.result(), extra)


async def _disconnected(receive: Receive) -> None:
    """Return once the client of an HTTP request has gone away."""
    while (await receive())["type"] != "http.disconnect":
        pass


def _headers(scope: Scope) -> dict[str, str]:
    """The request's header fields by lower-case name (the first of each)."""
    found: dict[str, str] = {}
    for name, value in scope.get("headers", ()):
        found.setdefault(name.decode("latin-1").lower(), value.decode("latin-1"))
    return found


async def _answer(
    send: Send, status: int, text: str, headers: dict[str, str] | None = None
) -> None:
    body = text.encode("utf-8")
    fields = [(b"content-type", b"text/plain; charset=utf-8")] if body else []
    fields.append((b"content-length", str(len(body)).encode()))
    for name, value in (headers or {}).items():
        fields.append((name.lower().encode("latin-1"), value.encode("latin-1")))
    await send({"type": "http.response.start", "status": status, "headers": fields})
    await send({"type": "http.response.body", "body": body})
