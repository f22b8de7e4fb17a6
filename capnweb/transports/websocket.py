"""WebSocket transports: one text frame per message.

``WebSocketTransport`` adapts a connection of the ``websockets`` library (client or server);
``AiohttpWebSocketTransport`` adapts an aiohttp ``WebSocketResponse``; ``mount()`` uses it only
when it cannot hand the connection to the faster ``WsConnection`` (see :func:`adopt_aiohttp`).
"""

from __future__ import annotations

from typing import Any

import aiohttp
from aiohttp import web
from websockets.asyncio.connection import Connection
from websockets.exceptions import ConnectionClosed

from .._codec import DEFAULT_LIMITS
from ..errors import RpcDisconnectedError
from ._queued import QueuedTransport, close_reason
from ._ws import WsConnection

__all__ = [
    "AiohttpWebSocketTransport",
    "WebSocketTransport",
    "adopt_aiohttp",
    "release_aiohttp",
]


NOT_UTF8 = "binary message is not valid UTF-8"
"""The close reason (code 1007) for a binary message that is not UTF-8 text."""


def _closed_error(code: int | None, reason: str) -> RpcDisconnectedError:
    return RpcDisconnectedError(
        f"Peer closed WebSocket: {code if code is not None else 1006} {reason}"
    )


class WebSocketTransport(QueuedTransport):
    """A session transport over a ``websockets`` connection."""

    def __init__(self, ws: Connection) -> None:
        super().__init__()
        self.ws = ws

    async def receive(self) -> str:
        if self._queued > self._high:
            await self._backpressure()
        try:
            message = await self.ws.recv()
        except ConnectionClosed as e:
            rcvd = e.rcvd
            raise _closed_error(rcvd.code if rcvd else None, rcvd.reason if rcvd else "") from None
        if isinstance(message, str):
            return message
        try:
            return message.decode("utf-8")
        except UnicodeDecodeError:
            await self.ws.close(1007, NOT_UTF8)
            raise RpcDisconnectedError(NOT_UTF8) from None

    async def _write(self, text: str) -> None:
        await self.ws.send(text)

    async def _close(self, error: BaseException | None) -> None:
        if error is None:
            await self.ws.close(1000, "")
        else:
            await self.ws.close(3000, close_reason(error))


class AiohttpWebSocketTransport(QueuedTransport):
    """A session transport over an aiohttp WebSocket (server or client side)."""

    def __init__(self, ws: web.WebSocketResponse | aiohttp.ClientWebSocketResponse) -> None:
        super().__init__()
        self.ws: Any = ws

    async def receive(self) -> str:
        if self._queued > self._high:
            await self._backpressure()
        msg = await self.ws.receive()
        if msg.type == aiohttp.WSMsgType.TEXT:
            return str(msg.data)
        if msg.type == aiohttp.WSMsgType.BINARY:
            try:
                return bytes(msg.data).decode("utf-8")
            except UnicodeDecodeError:
                await self.ws.close(code=1007, message=NOT_UTF8.encode())
                raise RpcDisconnectedError(NOT_UTF8) from None
        if msg.type == aiohttp.WSMsgType.ERROR:
            raise RpcDisconnectedError("WebSocket connection failed.")
        raise _closed_error(self.ws.close_code, str(msg.extra or ""))

    async def _write(self, text: str) -> None:
        await self.ws.send_str(text)

    async def _close(self, error: BaseException | None) -> None:
        if error is None:
            await self.ws.close(code=1000)
        else:
            await self.ws.close(code=3000, message=close_reason(error).encode("utf-8"))


class _ParserShim:
    """Stands in for aiohttp's WebSocket reader: the connection's bytes go to a WsConnection."""

    def __init__(self, conn: WsConnection) -> None:
        self.conn = conn

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        self.conn.data_received(data)
        return False, b""

    def feed_eof(self) -> None:
        self.conn.connection_lost(None)


def adopt_aiohttp(ws: web.WebSocketResponse, request: web.BaseRequest) -> WsConnection | None:
    """Carry on a WebSocket that aiohttp has just accepted (``prepare()`` done) with a
    :class:`WsConnection`, which hands each message to the session as it arrives.

    Returns None (use :class:`AiohttpWebSocketTransport`) when this aiohttp does not look as
    expected, or when a message already arrived. Call :func:`release_aiohttp` when done.
    """
    protocol: Any = request.protocol
    transport = request.transport
    queue = getattr(getattr(ws, "_reader", None), "_buffer", None)
    if (
        transport is None
        or transport.is_closing()
        or getattr(protocol, "_payload_parser", None) is None
        or queue is None
        or len(queue) > 0
        or not hasattr(ws, "_closed")
    ):
        return None
    conn = WsConnection(client=False, max_size=ws._max_msg_size or DEFAULT_LIMITS.max_frame_size)
    conn.connection_made(transport)
    # aiohttp's protocol gets the socket's flow-control callbacks; it tells when it drained
    conn.drain = getattr(protocol, "_drain_helper", None)
    protocol._payload_parser = _ParserShim(conn)
    return conn


def release_aiohttp(ws: web.WebSocketResponse) -> None:
    """After :func:`adopt_aiohttp`: the closing handshake is done, aiohttp has nothing to do."""
    ws._closed = True
