"""WebSocket transports: one text frame per message.

``WebSocketTransport`` adapts a connection of the ``websockets`` library (client or server);
``AiohttpWebSocketTransport`` adapts an aiohttp ``WebSocketResponse`` (used by ``serve()``).
"""

from __future__ import annotations

from typing import Any

import aiohttp
from aiohttp import web
from websockets.asyncio.connection import Connection
from websockets.exceptions import ConnectionClosed

from ..errors import RpcDisconnectedError
from ._queued import QueuedTransport, close_reason

__all__ = ["MAX_FRAME", "AiohttpWebSocketTransport", "WebSocketTransport"]

MAX_FRAME = 128 * 1024 * 1024
"""Largest frame accepted; the session's message-size limit is the finer check."""


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
        try:
            message = await self.ws.recv()
        except ConnectionClosed as e:
            rcvd = e.rcvd
            raise _closed_error(rcvd.code if rcvd else None, rcvd.reason if rcvd else "") from None
        return message if isinstance(message, str) else message.decode("utf-8", "replace")

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
        msg = await self.ws.receive()
        if msg.type == aiohttp.WSMsgType.TEXT:
            return str(msg.data)
        if msg.type == aiohttp.WSMsgType.BINARY:
            return bytes(msg.data).decode("utf-8", "replace")
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
