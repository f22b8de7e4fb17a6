"""The front of a ``serve()`` connection: the requests of the RPC path, answered without aiohttp.

Each request head is read here. A WebSocket upgrade of the path is answered at once and the
connection becomes a :class:`WsConnection`; a plain batch POST of the path (``Content-Length``
body of at most ``MAX_BODY`` bytes, UTF-8) is run and answered here, and the connection waits
for its next request. Any other request, or one this module does not read, goes with its bytes
to the protocol ``fallback()`` returns (aiohttp's request handler), which then owns the
connection for good. So aiohttp keeps every part of HTTP this module leaves out, while an idle
WebSocket session holds no aiohttp objects and a batch costs no aiohttp request.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import re
import time
from collections.abc import Awaitable, Callable
from email.utils import formatdate

from .._tasks import spawn
from ._ws import WsConnection, accept_key, has_token, parse_head

__all__ = ["HEAD_TIMEOUT", "MAX_BODY", "MAX_HEAD", "Front"]

log = logging.getLogger("capnweb")

MAX_HEAD = 16384
"""A request head longer than this is not read here (the fallback gets it)."""

MAX_BODY = 1 << 20
"""A batch body larger than this goes to the fallback (which applies the app's size limit)."""

HEAD_TIMEOUT = 75.0
"""Seconds a connection may wait for its next request head (as aiohttp's keep-alive)."""

_SWITCHING = (
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Accept: %s\r\n\r\n"
)
_OK = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\n"
    b"Date: %s\r\n%s\r\n"
)
_ERROR = (
    b"HTTP/1.1 %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\n"
    b"Date: %s\r\nConnection: close\r\n\r\n%s"
)

_date_second = 0
_date = b""


def _http_date() -> bytes:
    """The ``Date`` header's value, formatted once a second."""
    global _date_second, _date
    now = int(time.time())
    if now != _date_second:
        _date_second = now
        _date = formatdate(now, usegmt=True).encode()
    return _date


_FIELD = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+:[\t\x20-\x7e\x80-\xff]*")


def well_formed(head: bytes) -> bool:
    """Whether every header line of ``head`` is ``name: value`` by the letter of RFC 9112
    (no space before the colon, no folded lines, no control characters). Anything looser
    goes to the fallback, so this module never reads a request differently from aiohttp."""
    fullmatch = _FIELD.fullmatch
    lines = head.split(b"\r\n")
    return all(fullmatch(line) for line in lines[1:])


def _target_path(start: list[str], method: str, path: str) -> bool:
    return (
        len(start) == 3
        and start[0] == method
        and start[2] == "HTTP/1.1"
        and start[1].partition("?")[0] == path
    )


def upgrade_key(start: list[str], headers: dict[str, str], path: str) -> bytes | None:
    """The client's key when the head is a well-formed WebSocket upgrade of ``path``."""
    if (
        not _target_path(start, "GET", path)
        or headers.get("upgrade", "").lower() != "websocket"
        or not has_token(headers.get("connection", ""), "upgrade")
        or headers.get("sec-websocket-version") != "13"
        or "content-length" in headers
        or "transfer-encoding" in headers
    ):
        return None
    key = headers.get("sec-websocket-key", "").encode("latin-1")
    try:
        if len(base64.b64decode(key, validate=True)) != 16:
            return None
    except ValueError:
        return None
    return key


def batch_length(start: list[str], headers: dict[str, str], path: str) -> int | None:
    """The body's length when the head is a plain batch POST of ``path`` read here."""
    if (
        not _target_path(start, "POST", path)
        or "transfer-encoding" in headers
        or "expect" in headers
        or "upgrade" in headers
    ):
        return None
    charset = headers.get("content-type", "").lower().partition("charset=")[2].strip(' "')
    if charset not in ("", "utf-8", "utf8"):
        return None
    length = headers.get("content-length", "")
    if not length.isdigit() or not length.isascii() or int(length) > MAX_BODY:
        return None
    return int(length)


class Front(asyncio.Protocol):
    """A server connection until it becomes a WebSocket or goes to the fallback (see above).

    ``accept(conn)`` starts a session on an upgraded connection; ``batch(body)`` runs one HTTP
    batch and returns the response body; ``live`` holds the connections this class owns (for
    a server to close them).
    """

    def __init__(
        self,
        path: str,
        accept: Callable[[WsConnection], object],
        batch: Callable[[str], Awaitable[str]],
        fallback: Callable[[], asyncio.Protocol],
        max_size: int,
        live: set[Front],
    ) -> None:
        self._path = path
        self._accept = accept
        self._batch = batch
        self._fallback = fallback
        self._max_size = max_size
        self._live = live
        self._buf = bytearray()
        self._want = 0  # bytes the buffer must hold before the request can be handled
        self._busy = False  # a batch is running: later requests wait in the buffer
        self._paused = False
        self._eof = False  # the client has sent everything
        self._closing = False  # close once the batch being run is answered
        self.transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._live.add(self)
        self._wait_for_head()

    def _wait_for_head(self) -> None:
        assert self.transport is not None
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(HEAD_TIMEOUT, self.transport.close)

    def _leave(self) -> asyncio.Transport:
        """This class is done with the connection."""
        self._live.discard(self)
        self._stop_timer()
        assert self.transport is not None
        return self.transport

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def data_received(self, data: bytes) -> None:
        self._buf += data
        if not self._busy:
            if len(self._buf) >= self._want:
                self._next()
        elif len(self._buf) > MAX_HEAD and not self._paused and self.transport is not None:
            self._paused = True  # a client sending ahead of the answers: wait for them
            self.transport.pause_reading()

    def _next(self) -> None:
        """Handle the request at the start of the buffer, once its head (and body) is in."""
        buf = self._buf
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            head = bytes(buf[:4])
            if (
                len(buf) > MAX_HEAD
                or not (b"GET ".startswith(head) or b"POST".startswith(head))
                or b"\n\n" in buf  # lines ended by a bare LF
            ):
                self._hand_over()
            return
        raw = bytes(buf[:end])
        if not well_formed(raw):
            self._hand_over()
            return
        start, headers = parse_head(raw)
        key = upgrade_key(start, headers, self._path)
        if key is not None:
            self._upgrade(key, bytes(buf[end + 4 :]))
            return
        length = batch_length(start, headers, self._path)
        if length is None:
            self._hand_over()
            return
        stop = end + 4 + length
        if len(buf) < stop:
            self._want = stop  # the rest of the body is on its way: no parsing until it is in
            return
        self._want = 0
        body = bytes(buf[end + 4 : stop])
        del buf[:stop]
        self._stop_timer()
        self._busy = True
        spawn(self._answer(body, not has_token(headers.get("connection", ""), "close")))

    def _upgrade(self, key: bytes, rest: bytes) -> None:
        transport = self._leave()
        transport.write(_SWITCHING % accept_key(key))
        conn = WsConnection(client=False, max_size=self._max_size)
        transport.set_protocol(conn)
        conn.connection_made(transport)
        self._accept(conn)
        if rest:
            conn.data_received(rest)

    async def _answer(self, body: bytes, keep_alive: bool) -> None:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            self._fail(b"400 Bad Request", b"The request body is not UTF-8.")
            return
        try:
            out = (await self._batch(text)).encode("utf-8")
        except Exception:
            log.exception("HTTP batch failed")
            self._fail(b"500 Internal Server Error", b"500 Internal Server Error")
            return
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        keep_alive = keep_alive and not self._closing and not (self._eof and not self._buf)
        close = b"" if keep_alive else b"Connection: close\r\n"
        transport.write(_OK % (len(out), _http_date(), close) + out)
        if not keep_alive:
            self._leave().close()
            return
        self._busy = False
        self._wait_for_head()
        if self._paused:
            self._paused = False
            transport.resume_reading()
        if self._buf:
            self._next()

    def close(self) -> None:
        """Close the connection (the server is closing); a batch being run is answered first."""
        self._closing = True
        if not self._busy and self in self._live:
            self._leave().close()

    def _fail(self, status: bytes, text: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(_ERROR % (status, len(text), _http_date(), text))
            self._leave().close()

    def _hand_over(self) -> asyncio.Protocol:
        transport = self._leave()
        buf, self._buf = bytes(self._buf), bytearray()
        protocol = self._fallback()
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        if self._paused:
            transport.resume_reading()
        if buf:
            protocol.data_received(buf)
        return protocol

    def eof_received(self) -> bool | None:
        if self._busy:
            self._eof = True
            return True  # keep the connection open for the answer
        if not self._buf:
            return None  # between requests: the connection just closes
        return self._hand_over().eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        if self in self._live:
            self._leave()
        self.transport = None
