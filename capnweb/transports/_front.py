"""The front of a ``serve()`` connection: the requests of the RPC path, answered without aiohttp.

Every request head is read by llhttp (through ``httptools``), the parser aiohttp uses too; this
module never decides what is valid HTTP. A WebSocket upgrade of the path is answered at once and
the connection becomes a :class:`WsConnection`; a plain batch POST of the path (a
``Content-Length`` body, UTF-8) is run and answered here, and the connection waits for its next
request. Any other request, one llhttp rejects, or one this module does not take (no ``Host``
or several, HTTP/1.0, ``Expect``, chunked bodies, other paths and methods...) goes with all its
bytes to the protocol ``fallback()`` returns (aiohttp's request handler), which then owns the
connection for good and answers exactly as aiohttp alone would. So an idle WebSocket session
holds no aiohttp objects and a batch costs no aiohttp request.

What a peer can make a connection hold is bounded: a head of at most ``MAX_HEAD`` bytes, a
body of at most ``Limits.max_batch_size`` (a larger one is answered 413 before it is read),
requests sent ahead of their answers (reading pauses past ``MAX_HEAD`` bytes of them) and
answers it does not read (no further request is run while more than
``Limits.send_high_water`` bytes wait to be sent).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import Awaitable, Callable
from email.utils import formatdate

import httptools

from .._codec import Limits
from .._tasks import spawn
from ._ws import WsConnection, accept_key, has_token, limit_writes

__all__ = ["HEAD_TIMEOUT", "MAX_FIELDS", "MAX_HEAD", "Front"]

log = logging.getLogger("capnweb")

MAX_HEAD = 16384
"""A request head longer than this is not read here (the fallback gets it)."""

MAX_FIELDS = 64
"""A request head with more header fields than this is not read here (the fallback gets it)."""

HEAD_TIMEOUT = 75.0
"""Seconds a connection may take to send its next request, head and body (as aiohttp's
keep-alive)."""

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


# What a request is, once its head is read
_OTHER, _UPGRADE, _BATCH, _TOO_LARGE = range(4)


class _Stop(Exception):
    """Raised in a parser callback: the parser has told this module enough."""


class _Head:
    """The parts of one request head that decide whether it is read here (httptools'
    callbacks), and whether the request is complete."""

    __slots__ = (
        "chunked",
        "complete",
        "cors",
        "fields",
        "hosts",
        "kind",
        "length",
        "max_body",
        "other",
        "parser",
        "path",
        "url",
        "values",
    )

    # the fields read here, each at most once; any other field is only counted
    _READ = frozenset(
        (
            b"connection",
            b"content-length",
            b"content-type",
            b"upgrade",
            b"sec-websocket-key",
            b"sec-websocket-version",
            b"transfer-encoding",
            b"expect",
            b"origin",
        )
    )

    def __init__(self, path: bytes, max_body: int, cors: bool) -> None:
        self.parser = httptools.HttpRequestParser(self)
        self.path = path
        self.max_body = max_body
        self.cors = cors  # a request from a web page is the fallback's (CORS)
        self.chunked: bytearray | None = None  # the body so far, of a chunked request
        self.url = b""
        self.fields = 0
        self.hosts = 0
        self.values: dict[bytes, bytes] = {}
        self.other = False  # something this module does not read: the fallback's
        self.kind = -1  # set once the head is complete
        self.length = 0
        self.complete = False

    def on_url(self, url: bytes) -> None:
        if not self.url and self.parser.get_method() not in (b"GET", b"POST"):
            self.other = True  # not read here: no need to wait for the rest of the head
            raise _Stop
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.fields += 1
        name = name.lower()
        if name == b"host":
            self.hosts += 1
        elif name in self._READ:
            if name in self.values:
                self.other = True  # repeated: aiohttp decides what that means
            self.values[name] = value
        if self.fields > MAX_FIELDS:
            self.other = True
            raise _Stop

    def on_headers_complete(self) -> None:
        self.kind = _OTHER if self.other else _classify(self)
        if self.kind in (_OTHER, _TOO_LARGE):
            raise _Stop

    def on_body(self, body: bytes) -> None:
        chunked = self.chunked
        if chunked is not None:  # (a Content-Length body is taken from the buffer whole)
            chunked += body
            if len(chunked) > self.max_body:
                self.kind = _TOO_LARGE
                raise _Stop

    def on_message_complete(self) -> None:
        self.complete = True
        raise _Stop  # not a byte further: pipelined requests wait for their turn


def _classify(head: _Head) -> int:
    """What the request whose head is complete is, for this module."""
    parser = head.parser
    values = head.values
    if (
        head.hosts != 1
        or parser.get_http_version() != "1.1"
        or head.url.partition(b"?")[0] != head.path
        or b"expect" in values
    ):
        return _OTHER
    method = parser.get_method()
    if method == b"GET":
        if (
            b"transfer-encoding" in values
            or values.get(b"upgrade", b"").lower() != b"websocket"
            or not has_token(values.get(b"connection", b""), b"upgrade")
            or values.get(b"sec-websocket-version") != b"13"
            or b"content-length" in values
        ):
            return _OTHER
        try:
            if len(base64.b64decode(values.get(b"sec-websocket-key", b""), validate=True)) != 16:
                return _OTHER
        except ValueError:
            return _OTHER
        return _UPGRADE
    if method != b"POST" or b"upgrade" in values or (head.cors and b"origin" in values):
        return _OTHER
    content_type = values.get(b"content-type", b"").lower()
    charset = content_type.partition(b"charset=")[2].strip(b' "')
    if charset not in (b"", b"utf-8", b"utf8"):
        return _OTHER
    if b"transfer-encoding" in values:  # llhttp checked that chunked comes last
        if values[b"transfer-encoding"].strip().lower() != b"chunked":
            return _OTHER
        head.chunked = bytearray()
        return _BATCH
    if b"content-length" not in values:
        return _OTHER
    head.length = int(values[b"content-length"])  # llhttp checked it: digits only
    return _TOO_LARGE if head.length > head.max_body else _BATCH


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
        limits: Limits,
        live: set[Front],
        cors: bool = False,
    ) -> None:
        self._path = path.encode("utf-8")
        self._cors = cors  # requests from web pages go to the fallback, which answers CORS
        self._accept = accept
        self._batch = batch
        self._fallback = fallback
        self._limits = limits
        self._live = live
        self._buf = bytearray()  # the bytes from the start of the request being read
        self._head: _Head | None = None
        self._head_end = -1  # where the head ends in the buffer, once it is complete
        self._task: asyncio.Task[None] | None = None  # the batch being run
        self._busy = False  # a batch is run, or its answer not yet read: requests wait
        self._paused = False  # not reading the client
        self._out_paused = False  # more than high water of answers not yet sent
        self._eof = False  # the client has sent everything
        self._closing = False  # close once the batch being run is answered
        self.transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        limit_writes(transport, self._limits.send_high_water, self._limits.send_low_water)
        self._live.add(self)
        self._wait_for_request()

    def _wait_for_request(self) -> None:
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

    # -- reading requests

    def data_received(self, data: bytes) -> None:
        self._buf += data
        if self._busy:  # later requests wait for the answer to be run and read
            if len(self._buf) > MAX_HEAD:
                self._pause()
            return
        self._parse(data)

    def _pause(self) -> None:
        if not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()

    def _parse(self, data: bytes | bytearray) -> None:
        """Feed ``data`` (the end of the buffer) to the request's parser; act on the outcome."""
        head = self._head
        if head is None:
            if self._buf and self._buf[0] in b"\r\n":  # blank lines first: aiohttp's
                self._hand_over()
                return
            head = self._head = _Head(self._path, self._limits.max_batch_size, self._cors)
        try:
            head.parser.feed_data(data)
        except (httptools.HttpParserCallbackError, httptools.HttpParserUpgrade):
            pass  # _Stop (see _Head), or the end of an upgrade request's head
        except httptools.HttpParserError:
            self._hand_over()  # not HTTP as llhttp reads it: aiohttp answers it
            return
        if head.other:
            self._hand_over()
            return
        if head.kind < 0:  # the head is not complete yet
            if len(self._buf) > MAX_HEAD:
                self._hand_over()
            return
        if self._head_end < 0:
            self._head_end = self._buf.find(b"\r\n\r\n")  # llhttp read it: CRLF lines only
            if self._head_end > MAX_HEAD:
                head.kind = _OTHER
        if head.kind == _OTHER:
            self._hand_over()
            return
        if head.kind == _TOO_LARGE:
            self._fail(b"413 Request Entity Too Large", b"The batch is too large.")
            return
        if not head.complete:
            if head.chunked is not None:
                del self._buf[self._head_end + 4 :]  # what llhttp took out of the chunks
            return  # the rest of the body is on its way
        start = self._head_end + 4
        self._head = None
        self._head_end = -1
        if head.kind == _UPGRADE:
            key = head.values[b"sec-websocket-key"]
            self._upgrade(key, bytes(self._buf[start:]))
            return
        keep_alive = bool(head.parser.should_keep_alive())
        if head.chunked is not None:
            # Where the chunks end in the buffer is llhttp's to know: no request after this
            # one on the connection (the answer says so).
            body = bytes(head.chunked)
            self._buf.clear()
            keep_alive = False
        else:
            stop = start + head.length
            body = bytes(self._buf[start:stop])
            del self._buf[:stop]
        self._stop_timer()
        self._busy = True
        self._task = spawn(self._answer(body, keep_alive))

    def _upgrade(self, key: bytes, rest: bytes) -> None:
        transport = self._leave()
        transport.write(_SWITCHING % accept_key(key))
        conn = WsConnection(client=False, max_size=self._limits.max_frame_size)
        transport.set_protocol(conn)
        conn.connection_made(transport)
        self._accept(conn)
        if rest:
            conn.data_received(rest)

    # -- answering

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
        self._task = None
        if not self._out_paused:
            self._next_request()
        # else: resume_writing() goes on once the client has read enough

    def _next_request(self) -> None:
        """The last answer is out: read the next request."""
        self._busy = False
        self._wait_for_request()
        if self._paused and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
        if self._buf:
            self._parse(self._buf)
        elif self._eof:
            self._leave().close()

    def pause_writing(self) -> None:
        self._out_paused = True
        self._pause()

    def resume_writing(self) -> None:
        self._out_paused = False
        if self._busy and self._task is None and self in self._live:
            self._next_request()

    def close(self) -> None:
        """Close the connection (the server is closing); a batch being run is answered first."""
        self._closing = True
        if self._task is None and self in self._live:
            self._leave().close()

    def _fail(self, status: bytes, text: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(_ERROR % (status, len(text), _http_date(), text))
            self._leave().close()

    def _hand_over(self) -> bool | None:
        """The fallback takes the connection, with every byte of the request (and the end of
        the stream, if it came); returns what its ``eof_received()`` did."""
        transport = self._leave()
        self._head = None
        if transport.is_closing():
            return None  # the client is gone: nothing for aiohttp to answer
        buf, self._buf = bytes(self._buf), bytearray()
        protocol = self._fallback()
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        if self._paused:
            transport.resume_reading()
        if buf:
            protocol.data_received(buf)
        return protocol.eof_received() if self._eof else None

    def eof_received(self) -> bool | None:
        self._eof = True
        if self._busy:
            # The client went away before its answer (a half-closed client cannot be told
            # apart from a gone one): the batch ends, releasing what it held, as a server
            # behind nginx would see it.
            return None  # the transport closes; connection_lost() cancels the batch
        if not self._buf:
            return None  # between requests: the connection just closes
        return self._hand_over()

    def connection_lost(self, exc: Exception | None) -> None:
        if self in self._live:
            self._leave()
        self.transport = None
        if self._task is not None:
            self._task.cancel()  # nobody to answer: the batch ends, releasing what it held
            self._task = None
