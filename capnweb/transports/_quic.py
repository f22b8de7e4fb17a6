"""WebTransport over HTTP/3 on aioquic: the protocol under ``webtransport.py``.

A QUIC connection carries HTTP/3; each WebTransport session on it (an extended CONNECT request
answered 200) carries one RPC session, on the first bidirectional stream the client opens in
it. A message is its UTF-8 JSON text followed by ``"\\n"``: JSON text never holds a raw newline
(the codec escapes it in strings), so a newline always ends a message.

Received bytes are split into messages as they arrive, in aioquic's datagram callback, and
each goes straight to the session (no reader task, no queue), as ``WsConnection`` does. Writes
go to the stream's send buffer and leave in the datagrams of the next ``transmit()``, once per
loop turn at most.

What aioquic offers no public way to do, this module does with its internals, each use marked
"aioquic internals": how many bytes a stream still holds (its sender's buffer: written, not
yet acknowledged), whether a stream's output is all acknowledged, the peer's certificate (to
check it against pinned SHA-256 hashes) and forgetting the HTTP/3 state of a finished
WebTransport stream (aioquic keeps it until the connection ends otherwise).
"""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.buffer import encode_uint_var
from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.h3.events import (
    DataReceived,
    H3Event,
    HeadersReceived,
    WebTransportStreamDataReceived,
)
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import stream_is_client_initiated, stream_is_unidirectional
from aioquic.quic.events import (
    ConnectionTerminated,
    HandshakeCompleted,
    ProtocolNegotiated,
    QuicEvent,
    StopSendingReceived,
    StreamDataReceived,
    StreamReset,
)

from .._codec import DEFAULT_LIMITS, Limits
from ..errors import RpcDisconnectedError, RpcError
from ._inbox import Inbox

__all__ = [
    "CLOSE_ABORT",
    "CLOSE_NORMAL",
    "CLOSE_PROTOCOL",
    "ClientProtocol",
    "Listener",
    "ServerProtocol",
    "WtConnection",
    "client_configuration",
    "server_configuration",
]

log = logging.getLogger("capnweb")

CLOSE_NORMAL = 0
"""WebTransport session close code: the session ended without an error."""
CLOSE_ABORT = 1
"""Close code: the session was aborted; the reason says why (as WebSocket's 3000 does)."""
CLOSE_PROTOCOL = 2
"""Close code: the peer broke the framing (a message too large, not UTF-8, or too much sent
while its answers were not read)."""

CLOSE_TIMEOUT = 5.0
"""Seconds a closing session waits for the peer to acknowledge its last bytes before its
stream is reset."""

IDLE_TIMEOUT = 60.0
"""Seconds without a packet after which QUIC drops a connection (a peer that vanished)."""

KEEPALIVE = 15.0
"""Seconds between the PINGs each side sends while the connection has sessions (an idle
session must not let the connection reach ``IDLE_TIMEOUT``)."""

MAX_REASON = 1024
"""Bytes of a close reason (the WebTransport limit)."""

MAX_DATAGRAM_FRAME = 65536
"""Advertised so that browsers accept the HTTP/3 datagram setting; datagrams are ignored."""

CLOSE_WEBTRANSPORT_SESSION = 0x2843
"""The capsule type that closes a WebTransport session (code, then reason)."""

_WT_ERROR_FIRST = 0x52E4A40FA8DB
"""WebTransport application error codes start here in the HTTP/3 error space."""

STREAM_REFUSED = _WT_ERROR_FIRST + 1 + 1 // 0x1E
"""The stream error code (WebTransport application code 1) refusing a stream that is not a
session's RPC stream."""


def _varint(data: bytes, pos: int) -> tuple[int, int] | None:
    """The QUIC variable-length integer at ``data[pos:]`` and the position after it (None if
    ``data`` ends first)."""
    if pos >= len(data):
        return None
    size = 1 << (data[pos] >> 6)
    if pos + size > len(data):
        return None
    value = data[pos] & 0x3F
    for i in range(pos + 1, pos + size):
        value = (value << 8) | data[i]
    return value, pos + size


def _close_capsule(code: int, reason: str) -> bytes:
    data = reason.encode("utf-8")[:MAX_REASON].decode("utf-8", "ignore").encode("utf-8")
    payload = code.to_bytes(4, "big") + data
    return encode_uint_var(CLOSE_WEBTRANSPORT_SESSION) + encode_uint_var(len(payload)) + payload


class _Capsules:
    """Reads the capsules a peer sends on a session's CONNECT stream, keeping only what a
    CLOSE_WEBTRANSPORT_SESSION says (other capsules are skipped as they arrive)."""

    __slots__ = ("_buffer", "_skip", "close")

    def __init__(self) -> None:
        self._buffer = b""  # an unfinished capsule header, or close capsule
        self._skip = 0  # bytes of a skipped capsule still to come
        self.close: tuple[int, str] | None = None

    def feed(self, data: bytes) -> bool:
        """Read ``data``; False if the capsules are malformed."""
        if self._skip:
            n = min(self._skip, len(data))
            self._skip -= n
            data = data[n:]
        buffer = self._buffer + data
        while buffer:
            head = _varint(buffer, 0)
            size = head and _varint(buffer, head[1])
            if not head or not size:
                break
            kind, (length, start) = head[0], size
            if kind != CLOSE_WEBTRANSPORT_SESSION:
                rest = len(buffer) - start
                if length > rest:
                    self._skip = length - rest
                    buffer = b""
                else:
                    buffer = buffer[start + length :]
                continue
            if length < 4 or length > 4 + MAX_REASON:
                return False
            if len(buffer) - start < length:
                break
            payload = buffer[start : start + length]
            reason = payload[4:].decode("utf-8", "replace")
            self.close = (int.from_bytes(payload[:4], "big"), reason)
            buffer = buffer[start + length :]
        if len(buffer) > 16 + MAX_REASON:
            return False
        self._buffer = buffer
        return True


class _WtSession:
    """One WebTransport session of a connection: its CONNECT stream and its RPC stream."""

    __slots__ = ("capsules", "close_sent", "conn", "id")

    def __init__(self, session_id: int) -> None:
        self.id = session_id
        self.conn: WtConnection | None = None
        self.close_sent = False
        self.capsules = _Capsules()


class WtConnection(Inbox):
    """One WebTransport session's RPC stream as a session transport.

    Messages are handed to the session as they arrive (``attach``); those that arrive before
    are kept and delivered then. Once the stream holds more than ``high`` bytes not yet
    acknowledged by the peer, the peer's messages are not handled (what it sends meanwhile is
    kept, up to ``high`` bytes plus one message) until they are under ``low``.
    """

    __slots__ = (
        "_after_close",
        "_closed",
        "_closing",
        "_failed",
        "_held",
        "_held_size",
        "_high",
        "_input_ended",
        "_lazy",
        "_low",
        "_partial",
        "_partial_size",
        "_paused",
        "_proto",
        "_quic",
        "_session_end",
        "_stopped",
        "_timer",
        "max_line",
        "session_id",
        "stream_id",
    )

    def __init__(self, proto: H3Protocol, session_id: int, stream_id: int, max_line: int) -> None:
        self._proto = proto
        self._quic = proto._quic
        self.session_id = session_id
        self.stream_id = stream_id
        self.max_line = max_line
        self._partial: list[bytes] = []  # the bytes of an unfinished message
        self._partial_size = 0
        self._held: deque[bytes] = deque()  # received while paused, handled once resumed
        self._held_size = 0
        self._paused = False
        self._input_ended = False  # the peer ended its side of the stream
        self._stopped: int | None = None  # the peer asked us to stop sending (its code)
        self._session_end: RpcDisconnectedError | None = None  # the peer closed the session
        self._high = DEFAULT_LIMITS.send_high_water
        self._low = DEFAULT_LIMITS.send_low_water
        Inbox.__init__(self)
        self._lazy: list[str] = []  # messages nobody waits for, written with the next one
        self._failed = False  # the peer broke the framing
        self._closing = False  # our side is closed (FIN and close capsule sent)
        self._closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._timer: asyncio.TimerHandle | None = None
        self._after_close: Callable[[], Awaitable[None]] | None = None

    # -- the session's side

    def limit_output(self, high: int, low: int) -> None:
        """Stop handling the peer's messages while the stream holds more than ``high`` bytes
        not yet acknowledged, until it holds under ``low``."""
        self._high, self._low = high, low

    def send(self, text: str) -> None:
        """Write one message; it leaves with the datagrams sent at the end of the loop turn."""
        if self._closing or self._end is not None or self._stopped is not None:
            raise RpcDisconnectedError("the WebTransport session is closed")
        data = text.encode("utf-8") + b"\n"
        if self._lazy:
            data = self._take_lazy() + data
        self._quic.send_stream_data(self.stream_id, data)
        self._proto.transmit_soon()
        if not self._paused and self._unacked() > self._high:
            self._paused = True
            self._proto.watch(self)

    def send_lazy(self, text: str) -> None:
        """Queue a message nobody waits for (a ``release``): it keeps its place among the
        messages sent, and leaves with the next one, or at the end of the loop turn."""
        if self._closing or self._end is not None:
            raise RpcDisconnectedError("the WebTransport session is closed")
        if not self._lazy:
            asyncio.get_running_loop().call_soon(self._flush_lazy)
        self._lazy.append(text)

    def _take_lazy(self) -> bytes:
        data = "\n".join(self._lazy).encode("utf-8") + b"\n"
        self._lazy = []
        return data

    def _flush_lazy(self) -> None:
        if not self._closing and self._end is None:
            self._flush_lazy_now()

    def _flush_lazy_now(self) -> None:
        if self._lazy:
            data = self._take_lazy()
            try:
                self._quic.send_stream_data(self.stream_id, data)
            except (ValueError, RuntimeError):  # the peer stopped reading: nobody waits for it
                return
            self._proto.transmit_soon()

    async def receive(self) -> str:
        """Not used: messages are delivered to the session as they arrive."""
        raise RuntimeError("WtConnection delivers messages itself; see attach()")

    def abort(self, reason: BaseException) -> None:
        """The session is over: end the stream after what is written, then close the
        WebTransport session (code 0, or 1 with the reason)."""
        if isinstance(reason, RpcDisconnectedError):
            self._send_close(CLOSE_NORMAL, "")
        else:
            self._send_close(CLOSE_ABORT, str(reason))

    async def wait_closed(self) -> None:
        """Wait until the session is closed (its last bytes acknowledged, or the connection
        gone)."""
        await asyncio.shield(self._closed)
        if self._after_close is not None:
            await self._after_close()

    def on_closed(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` once the session is closed (soon, if it already is)."""
        self._closed.add_done_callback(lambda _: callback())

    @property
    def closed(self) -> bool:
        """Whether the session is closed."""
        return self._closed.done()

    # -- aioquic internals: how much the stream holds, whether its output is all acknowledged

    def _unacked(self) -> int:
        stream = self._quic._streams.get(self.stream_id)
        if stream is None:
            return 0
        sender = stream.sender
        return sender._buffer_stop - sender._buffer_start

    def _flushed(self) -> bool:
        stream = self._quic._streams.get(self.stream_id)
        return stream is None or stream.sender.is_finished

    # -- the protocol's side

    def data_received(self, data: bytes, ended: bool) -> None:
        """Bytes of the RPC stream arrived (``ended``: the peer ended its side)."""
        if ended:
            self._input_ended = True
        if self._end is not None or self._closing:
            return
        if data:
            if self._paused or self._held:
                self._hold(data)
            else:
                self._take(data)
        if ended and not self._held:
            self._peer_done()

    def _hold(self, data: bytes) -> None:
        self._held.append(data)
        self._held_size += len(data)
        if self._held_size > self._high + self.max_line:
            self._fail(
                f"more than {self._high + self.max_line} bytes sent while the answers were not read"
            )

    def _take(self, data: bytes) -> None:
        """Split ``data`` into messages and deliver them, until the output is over high
        water (the rest is held)."""
        start = 0
        while True:
            end = data.find(b"\n", start)
            if end < 0:
                break
            if self._partial:
                self._partial.append(data[start:end])
                line = b"".join(self._partial)
                self._partial = []
                self._partial_size = 0
            else:
                line = data[start:end]
            start = end + 1
            if len(line) > self.max_line:
                self._fail(f"message larger than {self.max_line} bytes")
                return
            if line:
                try:
                    text = line.decode("utf-8")
                except UnicodeDecodeError:
                    self._fail("message is not valid UTF-8")
                    return
                self._message(text)
                if self._end is not None or self._closing:
                    return
            if self._paused and start < len(data):
                self._hold(data[start:])
                return
        if start < len(data):
            rest = data[start:] if start else data
            self._partial.append(rest)
            self._partial_size += len(rest)
            if self._partial_size > self.max_line:
                self._fail(f"message larger than {self.max_line} bytes")

    def check(self) -> None:
        """Acknowledgements arrived: resume a paused peer, finish a closing session."""
        if self._paused and self._unacked() <= self._low:
            self._paused = False
            while self._held and not self._paused and self._end is None and not self._closing:
                data = self._held.popleft()
                self._held_size -= len(data)
                self._take(data)
            if not self._held and self._input_ended:
                self._peer_done()
        if self._closing and not self._closed.done() and self._flushed():
            self._finish()
        if not self._paused and not self._closing:
            self._proto.unwatch(self)

    def _peer_done(self) -> None:
        if self._session_end is not None:  # the close capsule came first: it says why
            self._ended(self._session_end)
        elif self._stopped is not None:
            self.stream_reset(self._stopped)
        self._ended(RpcDisconnectedError("Peer closed the WebTransport stream"))

    def stream_reset(self, code: int) -> None:
        """The peer reset its side of the stream: what it sent last may be lost."""
        self._input_ended = True
        self._ended(RpcDisconnectedError(f"Peer reset the WebTransport stream: {code}"))

    def stopped(self, code: int) -> None:
        """The peer reads nothing more (aioquic has reset our side): what it sent until now is
        still read, up to the end of its side."""
        self._stopped = code
        if self._input_ended and not self._held:
            self.stream_reset(code)

    def session_closed(self, error: RpcDisconnectedError) -> None:
        """The peer closed the WebTransport session (or reset it, or broke its capsules).

        What it sent last on the stream may still be on its way (streams are not ordered
        with each other): the session ends once the stream ends too, or after
        ``CLOSE_TIMEOUT`` seconds."""
        if self._end is not None or self._session_end is not None:
            return
        self._session_end = error
        if self._closing:  # we closed first: this is the answer
            return
        if self._input_ended and not self._held:
            self._peer_done()
        else:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(CLOSE_TIMEOUT, self._ended, error)

    def connection_lost(self, error: BaseException) -> None:
        """The QUIC connection is gone."""
        self._ended(error)
        self._finish()

    def _ended(self, error: BaseException) -> None:
        if self._end is not None:
            return
        if self._timer is not None and not self._closing:  # session_closed()'s
            self._timer.cancel()
            self._timer = None
        self._held.clear()
        self._held_size = 0
        self._partial = []
        self._report_end(error)

    def _fail(self, reason: str) -> None:
        """The peer broke the framing: close with CLOSE_PROTOCOL, stop reading it."""
        self._failed = True
        self._send_close(CLOSE_PROTOCOL, reason)  # first: ending the session would close with 0
        self._ended(RpcDisconnectedError(f"WebTransport session failed: {reason}"))

    def _send_close(self, code: int, reason: str) -> None:
        if self._closing:
            return
        self._closing = True
        self._held.clear()
        self._held_size = 0
        if self._closed.done() or self._proto._gone is not None:
            return
        self._flush_lazy_now()
        quic = self._quic
        try:
            quic.send_stream_data(self.stream_id, b"", end_stream=True)
        except (ValueError, RuntimeError):  # the stream is reset or finished
            pass
        if self._failed or not self._input_ended:
            self._proto.stop(self.stream_id)  # what the peer still sends is not read
        self._proto.close_session(self.session_id, code, reason)
        self._proto.transmit_soon()
        if self._timer is not None:
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_later(CLOSE_TIMEOUT, self._give_up)
        self._proto.watch(self)

    def _give_up(self) -> None:
        """The peer did not acknowledge the end of the stream in time: reset it."""
        self._timer = None
        try:
            self._quic.reset_stream(self.stream_id, STREAM_REFUSED)
        except (ValueError, AssertionError):
            pass
        self._proto.transmit_soon()
        self._finish()

    def _finish(self) -> None:
        if self._closed.done():
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._paused = False
        self._proto.unwatch(self)
        self._proto.forget(self)
        self._closed.set_result(None)


class H3Protocol(QuicConnectionProtocol):
    """The HTTP/3 side of a QUIC connection with WebTransport sessions (server or client):
    routes the RPC streams' bytes around HTTP/3, the rest through it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._http: H3Connection | None = None
        self._sessions: dict[int, _WtSession] = {}  # by CONNECT stream id
        self._rpc: dict[int, WtConnection] = {}  # by RPC stream id
        self._ignored: set[int] = set()  # refused or finished streams the peer may still send on
        self._watched: set[WtConnection] = set()  # paused or closing: checked as acks arrive
        self._transmit_pending = False
        self._keepalive: asyncio.TimerHandle | None = None
        self._gone: BaseException | None = None  # the connection ended, why
        # aioquic internals: acknowledge in the next packet sent, which leaves at the end of
        # the loop turn with the answers (see datagram_received), instead of in a packet of
        # its own a millisecond later
        self._quic._ack_delay = 0.0

    # -- for the connections

    def transmit_soon(self) -> None:
        """Send what is pending at the end of this loop turn."""
        if not self._transmit_pending:
            self._transmit_pending = True
            self._loop.call_soon(self._transmit_now)

    def _transmit_now(self) -> None:
        self._transmit_pending = False
        self.transmit()

    def watch(self, conn: WtConnection) -> None:
        self._watched.add(conn)

    def unwatch(self, conn: WtConnection) -> None:
        self._watched.discard(conn)

    def stop(self, stream_id: int) -> None:
        """Ask the peer to stop sending on ``stream_id``."""
        try:
            self._quic.stop_stream(stream_id, STREAM_REFUSED)
        except ValueError:  # unknown or finished stream
            pass

    def close_session(self, session_id: int, code: int, reason: str) -> None:
        """Send the close capsule and end the session's CONNECT stream."""
        ws = self._sessions.get(session_id)
        if ws is not None:
            self._close(ws, code, reason)

    def _close(self, ws: _WtSession, code: int, reason: str) -> None:
        if ws.close_sent or self._http is None or self._gone is not None:
            return
        ws.close_sent = True
        try:
            self._http.send_data(ws.id, _close_capsule(code, reason), end_stream=True)
        except Exception:  # the stream is gone (reset by the peer, say)
            pass
        self.transmit_soon()

    def forget(self, conn: WtConnection) -> None:
        """The session of ``conn`` is closed: drop it from the connection's tables."""
        self._rpc.pop(conn.stream_id, None)
        ws = self._sessions.get(conn.session_id)
        if ws is not None and ws.conn is conn:
            del self._sessions[conn.session_id]
            self._close(ws, CLOSE_NORMAL, "")
        if self._http is not None and self._gone is None:
            # aioquic internals: it keeps a WebTransport stream's state until the connection
            # ends; the stream's later bytes are dropped here, before HTTP/3 sees them
            self._http._stream.pop(conn.stream_id, None)
            if not conn._input_ended:
                self._ignored.add(conn.stream_id)
        self.session_forgotten()

    def session_forgotten(self) -> None:
        """A session of this connection is closed."""
        if not self._sessions and self._keepalive is not None:
            self._keepalive.cancel()
            self._keepalive = None

    def arm_keepalive(self) -> None:
        """While the connection has sessions, PING the peer every ``KEEPALIVE`` seconds: an
        idle session must not let it reach the idle timeout (a peer that vanished still does,
        its pings unanswered)."""
        if self._keepalive is None and self._sessions and self._gone is None:
            self._keepalive = self._loop.call_later(KEEPALIVE, self._ping)

    def _ping(self) -> None:
        self._keepalive = None
        if self._gone is None and self._sessions:
            self._quic.send_ping(0)
            self.transmit()
            self.arm_keepalive()

    def transmit(self) -> None:
        """Send what is pending (nothing once the socket is closing)."""
        if self._transport is not None and not self._transport.is_closing():
            super().transmit()

    @property
    def live_sessions(self) -> int:
        """The WebTransport sessions of this connection not closed yet."""
        return len(self._sessions)

    # -- events

    def datagram_received(self, data: bytes | str, addr: Any) -> None:
        # As aioquic's, but what to send leaves at the end of the loop turn: the answers
        # computed meanwhile go with the acknowledgement, in one packet.
        self._quic.receive_datagram(data, addr, now=self._loop.time())  # type: ignore[arg-type]
        self._process_events()
        if self._watched:
            for conn in list(self._watched):
                conn.check()
        self.transmit_soon()

    def quic_event_received(self, event: QuicEvent) -> None:
        if isinstance(event, StreamDataReceived):
            conn = self._rpc.get(event.stream_id)
            if conn is not None:
                conn.data_received(event.data, event.end_stream)
                return
            if event.stream_id in self._ignored:
                if event.end_stream:
                    self._ignored.discard(event.stream_id)
                return
        elif isinstance(event, StreamReset | StopSendingReceived):
            conn = self._rpc.get(event.stream_id)
            if conn is not None:
                if isinstance(event, StreamReset):
                    conn.stream_reset(event.error_code)
                else:
                    conn.stopped(event.error_code)
                return
            if event.stream_id in self._ignored:
                if isinstance(event, StreamReset):
                    self._ignored.discard(event.stream_id)
                return
            ws = self._sessions.get(event.stream_id)
            if ws is not None:
                self._session_gone(ws, RpcDisconnectedError("Peer reset the WebTransport session"))
        elif isinstance(event, ProtocolNegotiated):
            if event.alpn_protocol in H3_ALPN and self._http is None:
                self._http = H3Connection(self._quic, enable_webtransport=True)
        elif isinstance(event, HandshakeCompleted):
            self.handshake_completed(event)
        elif isinstance(event, ConnectionTerminated):
            reason = f" {event.reason_phrase}" if event.reason_phrase else ""
            self._terminated(
                RpcDisconnectedError(f"QUIC connection closed: {event.error_code}{reason}")
            )
            return
        if self._http is not None:
            for h3_event in self._http.handle_event(event):
                self.h3_event(h3_event)

    def handshake_completed(self, event: HandshakeCompleted) -> None:
        """The TLS handshake is done (for subclasses)."""

    def h3_event(self, event: H3Event) -> None:
        if isinstance(event, WebTransportStreamDataReceived):
            self.stream_opened(event)
        elif isinstance(event, DataReceived):
            ws = self._sessions.get(event.stream_id)
            if ws is None:
                return
            if not ws.capsules.feed(event.data):
                self._session_gone(ws, RpcDisconnectedError("malformed WebTransport capsule"))
            elif ws.capsules.close is not None or event.stream_ended:
                code, reason = ws.capsules.close or (CLOSE_NORMAL, "")
                self._session_gone(
                    ws, RpcDisconnectedError(f"Peer closed WebTransport session: {code} {reason}")
                )

    def stream_opened(self, event: WebTransportStreamDataReceived) -> None:
        """Bytes of a WebTransport stream not yet routed (a new stream): refused here."""
        self.refuse(event.stream_id)

    def refuse(self, stream_id: int) -> None:
        """Refuse a stream the peer opened: stop it, and reset our side if it has one."""
        self.stop(stream_id)
        self._ignored.add(stream_id)  # what it still sends is dropped
        if not stream_is_unidirectional(stream_id):
            try:
                self._quic.reset_stream(stream_id, STREAM_REFUSED)
            except (ValueError, AssertionError):
                pass
        if self._http is not None:
            self._http._stream.pop(stream_id, None)  # aioquic internals, as in forget()
        self.transmit_soon()

    def _session_gone(self, ws: _WtSession, error: RpcDisconnectedError) -> None:
        """The peer closed (or reset, or broke) the session's CONNECT stream."""
        conn = ws.conn
        if conn is not None:
            conn.session_closed(error)
            return
        self._sessions.pop(ws.id, None)
        self._close(ws, CLOSE_NORMAL, "")
        self.session_forgotten()

    def _terminated(self, error: BaseException) -> None:
        self._gone = error
        if self._keepalive is not None:
            self._keepalive.cancel()
            self._keepalive = None
        for conn in list(self._rpc.values()):
            conn.connection_lost(error)
        self._sessions.clear()
        self._ignored.clear()
        self._watched.clear()


def headers_of(pairs: Iterable[tuple[bytes, bytes]]) -> dict[bytes, bytes]:
    """HTTP/3 header pairs as a dict (the last of a repeated name wins)."""
    return dict(pairs)


class ServerProtocol(H3Protocol):
    """A QUIC connection to a WebTransport server: CONNECT requests of ``listener.path``
    become sessions, at most ``listener.sessions_per_connection`` at once."""

    def __init__(self, *args: Any, listener: Listener, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.listener = listener
        listener.protocols.add(self)

    def h3_event(self, event: H3Event) -> None:
        if isinstance(event, HeadersReceived):
            if event.stream_id not in self._sessions:
                self._request(event)
            return
        super().h3_event(event)

    def _respond(self, stream_id: int, status: int, end: bool = True) -> None:
        assert self._http is not None
        headers = [(b":status", str(status).encode())]
        if status == 200:
            headers.append((b"sec-webtransport-http3-draft", b"draft02"))
        self._http.send_headers(stream_id, headers, end_stream=end)
        self.transmit_soon()

    def _request(self, event: HeadersReceived) -> None:
        listener = self.listener
        headers = headers_of(event.headers)
        stream_id = event.stream_id
        if headers.get(b":method") != b"CONNECT" or headers.get(b":protocol") != b"webtransport":
            self._respond(stream_id, 405)  # this endpoint only opens WebTransport sessions
            return
        path = headers.get(b":path", b"").split(b"?", 1)[0]
        if path != listener.path:
            self._respond(stream_id, 404)
        elif not listener.accepting:
            self._respond(stream_id, 503)
        elif len(self._sessions) >= listener.sessions_per_connection:
            self._respond(stream_id, 429)
        elif event.stream_ended:
            self._respond(stream_id, 400)
        else:
            self._sessions[stream_id] = _WtSession(stream_id)
            self._respond(stream_id, 200, end=False)
            self.arm_keepalive()

    def stream_opened(self, event: WebTransportStreamDataReceived) -> None:
        ws = self._sessions.get(event.session_id)
        stream_id = event.stream_id
        if (
            ws is None
            or ws.conn is not None
            or ws.close_sent
            or stream_is_unidirectional(stream_id)
            or not stream_is_client_initiated(stream_id)
        ):
            self.refuse(stream_id)
            return
        listener = self.listener
        conn = WtConnection(self, ws.id, stream_id, listener.limits.max_frame_size)
        ws.conn = conn
        self._rpc[stream_id] = conn
        try:
            listener.accept(conn)
        except Exception as e:  # main() raised, say: this session ends, the connection goes on
            log.exception("starting a WebTransport session failed")
            conn.abort(RpcError(f"The server could not start the session: {type(e).__name__}"))
            return
        conn.data_received(event.data, event.stream_ended)

    def _terminated(self, error: BaseException) -> None:
        super()._terminated(error)
        self.listener.protocols.discard(self)


class Listener:
    """What the connections of one WebTransport server share: the path, the limits, where
    sessions go (``accept``), whether new ones are taken, the live connections."""

    def __init__(
        self,
        path: str,
        accept: Callable[[WtConnection], object],
        limits: Limits,
        sessions_per_connection: int,
    ) -> None:
        self.path = path.encode("utf-8")
        self.accept = accept
        self.limits = limits
        self.sessions_per_connection = sessions_per_connection
        self.accepting = True
        self.protocols: set[ServerProtocol] = set()

    def protocol(self, *args: Any, **kwargs: Any) -> ServerProtocol:
        """Make the protocol of a new QUIC connection (aioquic's ``create_protocol``)."""
        return ServerProtocol(*args, listener=self, **kwargs)

    async def close_connections(self, timeout: float) -> None:
        """Close every QUIC connection and wait (at most ``timeout`` seconds) until they are
        closed."""
        protocols = list(self.protocols)
        for proto in protocols:
            proto.close()
        if protocols:
            waits = [asyncio.ensure_future(p.wait_closed()) for p in protocols]
            _, pending = await asyncio.wait(waits, timeout=timeout)
            for w in pending:
                w.cancel()


class ClientProtocol(H3Protocol):
    """A client's QUIC connection: opens WebTransport sessions (``open_session``), checks
    the server's certificate against pinned hashes."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.certificate_hashes: frozenset[bytes] = frozenset()
        self.certificate_error: str | None = None
        self._answers: dict[int, asyncio.Future[int]] = {}
        self.on_idle: Callable[[], None] | None = None

    def handshake_completed(self, event: HandshakeCompleted) -> None:
        if self.certificate_hashes:
            error = self._check_certificate()
            if error is not None:
                self.certificate_error = error
                self.close(error_code=0x12A, reason_phrase="bad certificate")  # TLS alert 42

    def _check_certificate(self) -> str | None:
        # aioquic internals: the certificate the server presented (its signature of the
        # handshake was checked by aioquic; whether it is the one we expect, here)
        certificate = self._quic.tls._peer_certificate
        if certificate is None:
            return "the server presented no certificate"
        from cryptography.hazmat.primitives.serialization import Encoding

        digest = hashlib.sha256(certificate.public_bytes(Encoding.DER)).digest()
        if digest not in self.certificate_hashes:
            return f"the server's certificate (SHA-256 {digest.hex()}) is not among the hashes"
        now = datetime.datetime.now(datetime.UTC)
        if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
            return "the server's certificate is expired or not valid yet"
        return None

    async def open_session(
        self, authority: str, path: str, headers: dict[str, str], max_line: int
    ) -> WtConnection:
        """Open a WebTransport session at ``path`` and its RPC stream."""
        http = self._http
        if http is None or self._gone is not None:
            raise RpcDisconnectedError("the QUIC connection is closed")
        session_id = self._quic.get_next_available_stream_id()
        request = [
            (b":method", b"CONNECT"),
            (b":protocol", b"webtransport"),
            (b":scheme", b"https"),
            (b":authority", authority.encode()),
            (b":path", path.encode()),
            (b"sec-webtransport-http3-draft02", b"1"),
        ]
        for name, value in headers.items():
            if any(c in name + value for c in "\r\n\0"):
                raise ValueError(f"invalid header {name!r}")
            request.append((name.lower().encode(), value.encode()))
        answer: asyncio.Future[int] = self._loop.create_future()
        self._answers[session_id] = answer
        try:
            http.send_headers(session_id, request, end_stream=False)
            self.transmit()
            status = await answer
        finally:
            self._answers.pop(session_id, None)
        if status != 200:
            raise RpcDisconnectedError(f"WebTransport session refused: server answered {status}")
        ws = _WtSession(session_id)
        self._sessions[session_id] = ws
        stream_id = http.create_webtransport_stream(session_id)
        conn = WtConnection(self, session_id, stream_id, max_line)
        ws.conn = conn
        self._rpc[stream_id] = conn  # its bytes bypass HTTP/3 (which would take them for frames)
        # an empty line (skipped by the reader): the server learns of the stream now, not with
        # the first message
        self._quic.send_stream_data(stream_id, b"\n")
        self.transmit()
        self.arm_keepalive()
        return conn

    def h3_event(self, event: H3Event) -> None:
        if isinstance(event, HeadersReceived):
            answer = self._answers.get(event.stream_id)
            if answer is not None and not answer.done():
                status = headers_of(event.headers).get(b":status", b"0")
                answer.set_result(int(status) if status.isdigit() else 0)
            return
        super().h3_event(event)

    def session_forgotten(self) -> None:
        super().session_forgotten()
        if not self._sessions and self.on_idle is not None:
            self.on_idle()

    def _terminated(self, error: BaseException) -> None:
        super()._terminated(error)
        for answer in self._answers.values():
            if not answer.done():
                answer.set_exception(error)


def server_configuration(certificate: str, private_key: str) -> QuicConfiguration:
    """A server's QUIC configuration for HTTP/3 with the certificate chain and key (PEM)."""
    configuration = QuicConfiguration(
        is_client=False,
        alpn_protocols=H3_ALPN,
        max_datagram_frame_size=MAX_DATAGRAM_FRAME,
        idle_timeout=IDLE_TIMEOUT,
    )
    configuration.load_cert_chain(certificate, private_key)
    return configuration


def client_configuration(
    server_name: str, certificate_hashes: bool, ca_file: str | None
) -> QuicConfiguration:
    """A client's QUIC configuration: trust ``ca_file``'s CAs, or (``certificate_hashes``)
    check the certificate after the handshake instead, or the system's CAs (certifi)."""
    configuration = QuicConfiguration(
        is_client=True,
        alpn_protocols=H3_ALPN,
        max_datagram_frame_size=MAX_DATAGRAM_FRAME,
        idle_timeout=IDLE_TIMEOUT,
        server_name=server_name,
    )
    if certificate_hashes:
        import ssl

        configuration.verify_mode = ssl.CERT_NONE  # checked against the hashes instead
    elif ca_file is not None:
        configuration.load_verify_locations(cafile=ca_file)
    return configuration
