"""A lean RFC 6455 WebSocket connection carrying one RPC session.

Incoming frames are parsed as they arrive, in the socket's ``data_received`` callback, and each
message goes straight to the session: no reader task, no queue, no loop turn between the bytes
arriving and the call running. Outgoing messages are coalesced: their frames are written
together, in one system call, once the received bytes have been handled, when the application
is about to wait for an answer, or at the end of the event loop's turn. A ``release`` sent
while the session awaits nothing goes out with the received bytes' answers instead of waiting
for the next call: that write wakes the idle peer while the application is still preparing its
next call (at most one such early write per loop turn, so a busy process keeps coalescing).

Used by ``connect("ws://...")`` (with its own opening handshake, see :func:`open_client`), by
``serve()`` (its own server handshake, see ``_front.py``) and by ``mount()`` (aiohttp performs
the opening handshake, then the connection's bytes are handed to this class, see
``server.py``). Neither side negotiates extensions: frames are never compressed.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import ssl as ssl_module
import struct
import weakref
from collections.abc import Awaitable, Callable
from random import getrandbits
from urllib.parse import urlsplit

import httptools
from websockets.exceptions import ProtocolError
from websockets.frames import Close

from .._codec import COMPILED, DEFAULT_LIMITS
from .._tasks import spawn
from ..errors import RpcDisconnectedError
from ._inbox import Inbox
from ._queued import close_reason

__all__ = [
    "FrameReader",
    "WsConnection",
    "WsError",
    "accept_key",
    "has_token",
    "limit_writes",
    "open_client",
]

OP_CONTINUATION, OP_TEXT, OP_BINARY = 0x0, 0x1, 0x2
OP_CLOSE, OP_PING, OP_PONG = 0x8, 0x9, 0xA

BATCH = 64
"""At most this many messages are coalesced into one write (the peer starts on them sooner)."""

BATCH_CHARS = 65536
"""Nor more than about this many characters: a burst of large answers reaches the socket, and
its high water mark, a few at a time."""

CLOSE_TIMEOUT = 5.0
"""Seconds to wait for the peer's answer to our close frame before dropping the connection."""

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class WsError(Exception):
    """A WebSocket protocol violation by the peer: the connection closes with ``code``."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


# -- framing


_LEN2 = struct.Struct("!BBH").pack
_LEN8 = struct.Struct("!BBQ").pack
_MASK_KEY = struct.Struct("!L").pack
_U16 = struct.Struct("!H").unpack_from
_U64 = struct.Struct("!Q").unpack_from


def _mask_python(key: bytes, data: bytearray) -> None:
    n = len(data)
    if n:
        repeated = (key * (n // 4 + 1))[:n]
        masked = int.from_bytes(data, "big") ^ int.from_bytes(repeated, "big")
        data[:] = masked.to_bytes(n, "big")


apply_mask: Callable[[bytes, bytearray], None] = _mask_python
"""XOR ``data`` in place with the 4-byte ``key`` (RFC 6455 section 5.3)."""
try:  # aiohttp's compiled masking (an internal module): much faster on large frames
    from aiohttp._websocket.helpers import websocket_mask as _aiohttp_mask

    apply_mask = _aiohttp_mask
except ImportError:  # pragma: no cover - other aiohttp versions
    pass


# The compiled forms (capnweb/_speedups.c) of frame() and of FrameReader's scan of ordinary
# frames; None without the compiled module (or with CAPNWEB_PURE_PYTHON=1).
_c_frame: Callable[[int, bytes, int], bytes] | None = getattr(COMPILED, "ws_frame", None)
_c_frames: Callable[[bytes, bool, int], tuple[list[tuple[int, bytes]], int]] | None = getattr(
    COMPILED, "ws_frames", None
)


def frame(opcode: int, data: bytes, masked: bool) -> bytes:
    """One complete (FIN) frame; a client's frames are masked with a fresh random key."""
    if _c_frame is not None:
        return _c_frame(opcode, data, getrandbits(32) if masked else -1)
    n = len(data)
    first = 0x80 | opcode
    mask_bit = 0x80 if masked else 0
    if n < 126:
        header = bytes((first, n | mask_bit))
    elif n < 65536:
        header = _LEN2(first, 126 | mask_bit, n)
    else:
        header = _LEN8(first, 127 | mask_bit, n)
    if not masked:
        return header + data
    key = _MASK_KEY(getrandbits(32))
    payload = bytearray(data)
    apply_mask(key, payload)
    return header + key + payload


class FrameReader:
    """Incremental frame parser: bytes in, complete messages and control frames out.

    ``masked``: whether the peer must mask its frames (a server's reader) or must not (a
    client's). Fragmented messages are reassembled into one buffer as their fragments arrive
    (what a fragmented message holds costs its size, however many fragments it came in; empty
    ones cost nothing); ``max_size`` bounds a message's size, a frame's header announcing more
    is refused at once.
    """

    __slots__ = (
        "_fragments",
        "_fragments_op",
        "_have",
        "_need",
        "_pending",
        "masked",
        "max_size",
    )

    def __init__(self, masked: bool, max_size: int) -> None:
        self.masked = masked
        self.max_size = max_size
        # bytes of an unfinished frame: kept as received, joined once the frame is complete
        # (joining at every read would cost quadratic time on a large frame)
        self._pending: list[bytes] = []
        self._have = 0
        self._need = 0  # the unfinished frame's whole size, once its header is known
        # the fragmented message being received, joined so far (None: not inside one)
        self._fragments: bytearray | None = None
        self._fragments_op = 0

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        """The messages (opcode, payload) completed by ``data``; raises :class:`WsError`."""
        if self._pending:
            self._pending.append(data)
            self._have += len(data)
            if self._have < self._need:
                return []
            buf = b"".join(self._pending)
            self._pending = []
        else:
            buf = data
        out: list[tuple[int, bytes]]
        pos = 0
        if _c_frames is not None and self._fragments is None:
            out, pos = _c_frames(buf, self.masked, self.max_size)  # the ordinary frames
        else:
            out = []
        end = len(buf)
        need = 0  # size of the frame left unfinished (0: its header is incomplete)
        masked = self.masked
        while end - pos >= 2:
            b0 = buf[pos]
            b1 = buf[pos + 1]
            if b0 & 0x70:
                raise WsError(1002, "reserved bits set: no extension was negotiated")
            if bool(b1 & 0x80) != masked:
                raise WsError(1002, "client frames must be masked, server frames must not be")
            opcode = b0 & 0x0F
            length = b1 & 0x7F
            head = 2
            if length == 126:
                if end - pos < 4:
                    break
                length = _U16(buf, pos + 2)[0]
                head = 4
            elif length == 127:
                if end - pos < 10:
                    break
                length = _U64(buf, pos + 2)[0]
                head = 10
                if length >> 63:
                    raise WsError(1002, "frame length out of range")
            if opcode >= 8 and (length > 125 or not b0 & 0x80):
                raise WsError(1002, "control frames must be short and unfragmented")
            fragments = self._fragments
            if length > self.max_size or (
                opcode == OP_CONTINUATION
                and fragments is not None
                and len(fragments) + length > self.max_size
            ):
                raise WsError(1009, f"message larger than {self.max_size} bytes")
            start = pos + head + (4 if masked else 0)
            stop = start + length
            if stop > end:
                need = stop - pos
                break
            pos = stop
            if opcode == OP_CONTINUATION:
                if fragments is None:
                    raise WsError(1002, "continuation frame without a message to continue")
                if length:  # an empty fragment adds nothing
                    if masked:
                        chunk = bytearray(buf[start:stop])
                        apply_mask(buf[start - 4 : start], chunk)
                        fragments += chunk
                    else:
                        fragments += buf[start:stop]
                if b0 & 0x80:
                    out.append((self._fragments_op, bytes(fragments)))
                    self._fragments = None
                continue
            if masked:
                payload = bytearray(buf[start:stop])
                apply_mask(buf[start - 4 : start], payload)
                data_ = bytes(payload)
            else:
                data_ = buf[start:stop]
            if opcode >= 8:
                if opcode not in (OP_CLOSE, OP_PING, OP_PONG):
                    raise WsError(1002, f"unknown opcode {opcode}")
                out.append((opcode, data_))
            elif opcode in (OP_TEXT, OP_BINARY):
                if fragments is not None:
                    raise WsError(1002, "new message before the fragmented one ended")
                if b0 & 0x80:
                    out.append((opcode, data_))
                else:
                    self._fragments = bytearray(data_)
                    self._fragments_op = opcode
            else:
                raise WsError(1002, f"unknown opcode {opcode}")
        if pos < end:
            rest = buf[pos:]
            self._pending = [rest]
            self._have = len(rest)
            self._need = need
        return out


# -- the connection


def _close_payload(code: int, reason: str) -> bytes:
    return struct.pack("!H", code) + reason.encode("utf-8")


def _parse_close(payload: bytes) -> tuple[int, str]:
    """The code and reason of a received close frame (1005 and "" when it has no payload).

    RFC 6455 sections 5.5.1 and 7.4, as websockets applies them: a 1-byte payload, or a code
    that may not be sent (only 1000-1003, 1007-1014 and 3000-4999 may), raises
    :class:`WsError` 1002; a reason that is not UTF-8 raises WsError 1007.
    """
    try:
        close = Close.parse(payload)
    except ProtocolError as e:
        raise WsError(1002, f"invalid close frame: {e}") from None
    except UnicodeDecodeError:
        raise WsError(1007, "close frame reason is not valid UTF-8") from None
    return int(close.code), close.reason


def limit_writes(transport: asyncio.BaseTransport, high: int, low: int) -> None:
    """Have ``transport`` call its protocol's ``pause_writing()`` past ``high`` unsent bytes
    and ``resume_writing()`` under ``low`` (unless it has no flow control)."""
    try:
        transport.set_write_buffer_limits(high, low)  # type: ignore[attr-defined]
    except NotImplementedError:
        pass


class _Turn:
    """Whether a connection of this event loop already wrote a release early in this turn."""

    __slots__ = ("taken",)

    def __init__(self) -> None:
        self.taken = False

    def reset(self) -> None:
        self.taken = False


_turns: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Turn] = weakref.WeakKeyDictionary()


def _turn_of(loop: asyncio.AbstractEventLoop) -> _Turn:
    turn = _turns.get(loop)
    if turn is None:
        turn = _turns[loop] = _Turn()
    return turn


class WsConnection(asyncio.Protocol, Inbox):
    """One WebSocket connection as a session transport (see the module docstring).

    Messages that arrive before :meth:`attach` are kept and delivered then. Once more than
    ``high_water`` bytes wait to be sent, the peer is not read (nor its messages already
    received handled) until they are under ``low_water``: a peer that does not read its
    answers cannot make this side buffer without bound.
    """

    # Slots keep an idle connection small; "__dict__" (made only when used) lets a test or a
    # tool wrap a method on the instance.
    __slots__ = (
        "__dict__",
        "_batch",
        "_batched",
        "_close_sent",
        "_close_timer",
        "_closed",
        "_failed",
        "_flush_soon",
        "_handling",
        "_held",
        "_high",
        "_loop",
        "_low",
        "_out_paused",
        "_reader",
        "_socket",
        "_turn",
        "_urgent",
        "_waited_this_turn",
        "client",
        "drain",
    )

    def __init__(self, client: bool, max_size: int) -> None:
        self.client = client
        self._reader = FrameReader(masked=not client, max_size=max_size)
        self._socket: asyncio.Transport | None = None
        Inbox.__init__(self)
        self._batch: list[str] = []
        self._urgent = False  # the batch holds more than lazy messages
        self._batched = 0  # characters of the batch's messages sent with send()
        self._handling = False
        self._flush_soon = False
        self._waited_this_turn = False
        self._close_sent = False
        self._loop = loop = asyncio.get_running_loop()
        self._turn = _turn_of(loop)
        self._closed: asyncio.Future[None] = loop.create_future()
        self._close_timer: asyncio.TimerHandle | None = None
        self._high = DEFAULT_LIMITS.send_high_water
        self._low = DEFAULT_LIMITS.send_low_water
        self._out_paused = False  # over high water: the peer is not read meanwhile
        self._failed = False  # the peer broke the protocol
        self._held: list[tuple[int, bytes]] | None = None  # received, handled once resumed
        # How to learn that the output went under low water when another protocol gets the
        # socket's callbacks (a connection adopted from aiohttp): an awaitable of it.
        self.drain: Callable[[], Awaitable[None]] | None = None

    def limit_output(self, high: int, low: int) -> None:
        """Pause reading the peer while more than ``high`` bytes wait to be sent, until they
        are under ``low``."""
        self._high, self._low = high, low
        if self._socket is not None:
            self._limit_socket(self._socket)

    def _limit_socket(self, socket: asyncio.BaseTransport) -> None:
        limit_writes(socket, self._high, self._low)

    # -- wiring

    def attach(
        self, deliver: Callable[[str], None], on_end: Callable[[BaseException], None]
    ) -> None:
        Inbox.attach(self, deliver, on_end)
        self.flush()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._socket = transport  # type: ignore[assignment]
        self._limit_socket(transport)

    def pause_writing(self) -> None:
        """The socket's output is over high water: stop reading the peer."""
        if self._out_paused:
            return
        self._out_paused = True
        if self._socket is not None:
            self._socket.pause_reading()
        if self.drain is not None:
            spawn(self._await_drain(self.drain))

    async def _await_drain(self, drain: Callable[[], Awaitable[None]]) -> None:
        try:
            await drain()
        except Exception:  # the connection is gone: connection_lost() ends it
            return
        self.resume_writing()

    def resume_writing(self) -> None:
        """The output is under low water: handle what was held, read the peer again."""
        if not self._out_paused:
            return
        self._out_paused = False
        while self._held and not self._out_paused:
            messages, self._held = self._held, None
            self._handle(messages)  # what it cannot handle yet goes back to ``_held``
        if not self._out_paused and self._socket is not None and not self._close_sent:
            self._socket.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._close_timer is not None:
            self._close_timer.cancel()
        self._socket = None
        self._batch.clear()
        self._report_end(RpcDisconnectedError("Peer closed WebSocket: 1006 "))
        if not self._closed.done():
            self._closed.set_result(None)

    # -- incoming

    def data_received(self, data: bytes) -> None:
        if self._failed:
            self._after_failure(data)
            return
        try:
            messages = self._reader.feed(data)
        except WsError as e:
            self._fail(e.code, e.reason)
            return
        if self._out_paused or self._held:
            self._hold(messages)  # handled in order once the output drains
            return
        self._handle(messages)

    def _hold(self, messages: list[tuple[int, bytes]]) -> None:
        if self._held is None:
            self._held = messages
        else:
            self._held.extend(messages)

    def _handle(self, messages: list[tuple[int, bytes]]) -> None:
        self._handling = True
        try:
            for i, (opcode, payload) in enumerate(messages):
                if self._out_paused:  # the answers so far filled the output: wait
                    self._hold(messages[i:])
                    break
                if opcode in (OP_TEXT, OP_BINARY):  # a binary message: the same text, as bytes
                    try:
                        text = payload.decode("utf-8")
                    except UnicodeDecodeError:
                        self._fail(1007, "message is not valid UTF-8")
                        return
                    self._message(text)
                elif opcode == OP_PING:
                    self._write_control(OP_PONG, payload)
                elif opcode == OP_CLOSE:
                    self._close_received(payload)
                    return
        finally:
            self._handling = False
        if self._urgent:
            self.flush()  # what the messages caused goes out now, together

    def _close_received(self, payload: bytes) -> None:
        try:
            code, reason = _parse_close(payload)
        except WsError as e:
            if not self._close_sent:
                self._fail(e.code, e.reason)
                return
            code, reason = 1005, ""  # a bad answer to our close frame still ends the handshake
        self.flush()
        if not self._close_sent:
            self._close_sent = True
            echo = _close_payload(code, "") if len(payload) >= 2 else b""
            self._write_control(OP_CLOSE, echo)
        self._report_end(RpcDisconnectedError(f"Peer closed WebSocket: {code} {reason}"))
        if self._socket is not None:
            self._socket.close()  # both close frames are out: the TCP connection is done

    def _after_failure(self, data: bytes) -> None:
        """The peer broke the protocol: of what it sends, only its close frame matters."""
        try:
            messages = self._reader.feed(data)
        except WsError:
            messages = [(OP_CLOSE, b"")]
        if any(opcode == OP_CLOSE for opcode, _ in messages) and self._socket is not None:
            self._socket.close()

    def _fail(self, code: int, reason: str) -> None:
        self._failed = True
        self._held = None
        self._send_close(code, reason)  # first: ending the session would close with 1000
        self._report_end(RpcDisconnectedError(f"WebSocket connection failed: {reason}"))

    # -- outgoing (the session's transport interface)

    def send(self, text: str) -> None:
        """Queue one message; it is written with the others of this turn (see above)."""
        if self._close_sent or self._socket is None:
            raise RpcDisconnectedError("the connection is closed")
        batch = self._batch
        batch.append(text)
        self._urgent = True
        self._batched += len(text)
        if len(batch) >= BATCH or self._batched > BATCH_CHARS:
            self.flush()  # and the socket's flow control sees it
        elif not self._handling and not self._flush_soon:
            self._flush_soon = True
            self._loop.call_soon(self._end_of_turn)

    def send_lazy(self, text: str) -> None:
        """Queue a message nobody waits for (a ``release``): it keeps its place among the
        messages sent, but does not cause a write by itself before the end of the turn."""
        self._append_lazy(text)

    def _append_lazy(self, text: str) -> None:
        if self._close_sent or self._socket is None:
            raise RpcDisconnectedError("the connection is closed")
        self._batch.append(text)
        if not self._flush_soon:
            self._flush_soon = True
            self._loop.call_soon(self._end_of_turn)

    def send_soon(self, text: str) -> None:
        """Queue a message nobody waits for, sent while the session awaits nothing: while
        received bytes are being handled, it goes out with their answers, right after them,
        unless another connection of this loop did so in this turn (then as ``send_lazy``)."""
        turn = self._turn
        if not self._handling or turn.taken:
            self._append_lazy(text)
            return
        if self._close_sent or self._socket is None:
            raise RpcDisconnectedError("the connection is closed")
        turn.taken = True
        self._loop.call_soon(turn.reset)
        self._batch.append(text)
        self._urgent = True

    def flush_before_wait(self) -> None:
        """The application is about to wait for an answer: write now, unless that was done
        already in this turn (then the end of the turn writes the rest together, e.g. the
        pulls of thousands of calls awaited at once)."""
        if self._waited_this_turn:
            return
        self._waited_this_turn = True
        self.flush()
        if not self._flush_soon:
            self._flush_soon = True
            self._loop.call_soon(self._end_of_turn)

    def _end_of_turn(self) -> None:
        self._flush_soon = False
        self._waited_this_turn = False
        self.flush()

    def flush(self) -> None:
        """Write every queued message now, in one system call."""
        batch = self._batch
        if not batch:
            return
        self._batch = []
        self._urgent = False
        self._batched = 0
        socket = self._socket
        if socket is None:
            return
        masked = self.client
        if len(batch) == 1:
            socket.write(frame(OP_TEXT, batch[0].encode("utf-8"), masked))
        else:
            socket.write(b"".join([frame(OP_TEXT, t.encode("utf-8"), masked) for t in batch]))
        if self.drain is not None and socket.get_write_buffer_size() > self._high:
            self.pause_writing()  # nobody else tells this class (see ``drain``)

    def _write_control(self, opcode: int, payload: bytes) -> None:
        self.flush()
        if self._socket is not None:
            self._socket.write(frame(opcode, payload, self.client))

    async def receive(self) -> str:
        """Not used: messages are delivered to the session as they arrive."""
        raise RuntimeError("WsConnection delivers messages itself; see attach()")

    def abort(self, reason: BaseException) -> None:
        """The session is over: send what is queued, then close (code 3000 with the reason,
        1000 for a plain disconnect)."""
        if isinstance(reason, RpcDisconnectedError):
            self._send_close(1000, "")
        else:
            self._send_close(3000, close_reason(reason))

    def _send_close(self, code: int, reason: str) -> None:
        if self._close_sent:
            return
        self.flush()
        self._close_sent = True
        socket = self._socket
        if socket is None:
            return
        socket.write(frame(OP_CLOSE, _close_payload(code, reason), self.client))
        # the peer answers with its close frame, then the connection ends; if not, drop it
        self._close_timer = self._loop.call_later(CLOSE_TIMEOUT, socket.abort)

    async def wait_closed(self) -> None:
        """Wait until the connection is closed."""
        await asyncio.shield(self._closed)

    def on_closed(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` once the connection is closed (soon, if it already is)."""
        self._closed.add_done_callback(lambda _: callback())


# -- opening handshakes


def accept_key(key: bytes) -> bytes:
    """The ``Sec-WebSocket-Accept`` answer to a ``Sec-WebSocket-Key`` (RFC 6455 section 4.2.2)."""
    return base64.b64encode(hashlib.sha1(key + _GUID).digest())


def has_token(value: bytes, token: bytes) -> bool:
    """Whether a comma-separated header value holds ``token`` (lower-case)."""
    return token in (t.strip().lower() for t in value.split(b","))


class _Handshake(asyncio.Protocol):
    """Reads the server's answer to the upgrade request (with llhttp, through httptools),
    then hands over to WsConnection."""

    MAX_HEAD = 65536

    def __init__(self, conn: WsConnection, key: bytes, done: asyncio.Future[None]) -> None:
        self.conn = conn
        self.expected = accept_key(key)
        self.done = done
        self.parser = httptools.HttpResponseParser(self)
        self.received = 0
        self.status = b""
        self.headers: dict[bytes, bytes] = {}
        self.complete = False  # the head is read
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    # httptools' callbacks
    def on_status(self, status: bytes) -> None:
        self.status += status

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        old = self.headers.get(name)
        self.headers[name] = value if old is None else old + b", " + value

    def on_headers_complete(self) -> None:
        self.complete = True

    def data_received(self, data: bytes) -> None:
        if self.done.done():
            return
        self.received += len(data)
        rest = b""
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as e:
            rest = data[e.args[0] :]
        except httptools.HttpParserError as e:
            self._refuse(f"WebSocket handshake failed: invalid HTTP response ({e})")
            return
        if not self.complete:
            if self.received > self.MAX_HEAD:
                self._refuse("WebSocket handshake failed: response headers too long")
            return
        code = self.parser.get_status_code()
        if code != 101:
            reason = self.status.decode("latin-1")
            self._refuse(f"WebSocket handshake failed: server answered {code} {reason}")
            return
        headers = self.headers
        if (
            headers.get(b"upgrade", b"").lower() != b"websocket"
            or not has_token(headers.get(b"connection", b""), b"upgrade")
            or headers.get(b"sec-websocket-accept", b"") != self.expected
        ):
            self._refuse("WebSocket handshake failed: invalid upgrade response")
            return
        if headers.get(b"sec-websocket-extensions"):
            self._refuse("WebSocket handshake failed: the server chose an extension")
            return
        assert self.transport is not None
        self.transport.set_protocol(self.conn)
        self.conn.connection_made(self.transport)
        self.done.set_result(None)
        if rest:
            self.conn.data_received(rest)

    def _refuse(self, message: str) -> None:
        if not self.done.done():
            self.done.set_exception(RpcDisconnectedError(message))
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_exception(
                exc or RpcDisconnectedError("WebSocket handshake failed: connection closed")
            )


async def open_client(
    url: str,
    headers: dict[str, str] | None,
    max_size: int,
    timeout: float,
    ssl: ssl_module.SSLContext | None = None,
) -> WsConnection:
    """Connect to a ``ws://``/``wss://`` URL and complete the opening handshake (``wss``: TLS
    with ``ssl``, by default the system's trusted certificates).

    Raises OSError when the connection fails, RpcDisconnectedError when the server does not
    upgrade, TimeoutError after ``timeout`` seconds.
    """
    parts = urlsplit(url)
    secure = parts.scheme.lower() == "wss"
    host = parts.hostname or "localhost"
    port = parts.port or (443 if secure else 80)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    key = base64.b64encode(os.urandom(16))
    host_header = host if ":" not in host else f"[{host}]"
    if parts.port is not None:
        host_header += f":{parts.port}"
    lines = [
        f"GET {target} HTTP/1.1",
        f"Host: {host_header}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key.decode()}",
        "Sec-WebSocket-Version: 13",
    ]
    for name, value in (headers or {}).items():
        if "\r" in name or "\n" in name or "\r" in value or "\n" in value:
            raise ValueError(f"invalid header {name!r}")
        lines.append(f"{name}: {value}")
    request = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")
    loop = asyncio.get_running_loop()
    conn = WsConnection(client=True, max_size=max_size)
    done: asyncio.Future[None] = loop.create_future()
    context: ssl_module.SSLContext | None = None
    if secure:
        context = ssl if ssl is not None else ssl_module.create_default_context()
    async with asyncio.timeout(timeout):
        transport, _ = await loop.create_connection(
            lambda: _Handshake(conn, key, done), host, port, ssl=context
        )
        try:
            transport.write(request)
            await done
        except BaseException:
            transport.abort()
            raise
    return conn
