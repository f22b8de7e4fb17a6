"""The WebSocket layer of ``connect("ws://...")`` and ``serve()`` (``capnweb/transports/_ws.py``).

- ``FrameReader``: frame parsing, as bytes arrive in any chunks, and the protocol errors it must
  refuse (close codes 1002 and 1009);
- ``serve()``/``connect()`` over real sockets on 127.0.0.1: calls, large messages, coalesced
  writes, releases in order, both ends closing, abort reasons in the close frame;
- a raw peer against ``serve()``: ping, close handshake, invalid frames (1002, 1007, 1009);
- the client's opening handshake against small hand-written servers;
- the server's opening handshake in ``serve()``, and every other request going to aiohttp;
- ``mount()``: aiohttp's handshake, then the connection taken over, or aiohttp's own WebSocket
  when it cannot be.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from itertools import pairwise
from typing import Any, Self, cast

import aiohttp
import pytest
from aiohttp import web
from codec_impls import framing_impl  # noqa: F401 (the fixture: compiled and pure framing)
from helpers import Counter, eventually, recording_peer, upgrade_request
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

import capnweb
import capnweb.client
import capnweb.server
from capnweb import RpcDisconnectedError, RpcStub, RpcTarget, Session
from capnweb.transports import _front, _ws
from capnweb.transports._ws import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONTINUATION,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    FrameReader,
    WsConnection,
    WsError,
    frame,
)
from capnweb.transports.websocket import AiohttpWebSocketTransport

pytestmark = [pytest.mark.timeout(30), pytest.mark.usefixtures("framing_impl")]

WAIT = 5.0
"""Seconds any single network step may take before the test fails."""

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
KEY = b"\x37\xfa\x21\x3d"
"""A fixed masking key for client frames built by hand."""


# -- frames built by hand (RFC 6455 section 5.2), independent of frame()


def mask(key: bytes, data: bytes) -> bytes:
    """``data`` XORed with the repeated 4-byte ``key``."""
    n = len(data)
    repeated = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(repeated, "big")).to_bytes(n, "big")


def raw_frame(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    key: bytes | None = None,
    rsv: int = 0,
    length: int | None = None,
) -> bytes:
    """One frame: masked with ``key`` if given; ``length`` overrides the declared length."""
    n = len(payload) if length is None else length
    b0 = (0x80 if fin else 0) | rsv | opcode
    m = 0x80 if key is not None else 0
    if n < 126:
        head = bytes((b0, m | n))
    elif n < 1 << 16:
        head = bytes((b0, m | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((b0, m | 127)) + n.to_bytes(8, "big")
    if key is None:
        return head + payload
    return head + key + mask(key, payload)


def client_frame(opcode: int, payload: bytes = b"", *, fin: bool = True) -> bytes:
    """A masked frame, as a client sends it."""
    return raw_frame(opcode, payload, fin=fin, key=KEY)


def close_payload(code: int, reason: str = "") -> bytes:
    return struct.pack("!H", code) + reason.encode("utf-8")


def pattern(n: int) -> bytes:
    """``n`` bytes that are not all alike (a wrong mask or offset shows)."""
    return (bytes(range(251)) * (n // 251 + 1))[:n]


def feed_in_chunks(reader: FrameReader, data: bytes, cuts: list[int]) -> list[tuple[int, bytes]]:
    """Feed ``data`` cut at the offsets ``cuts``; the messages completed, in order."""
    out: list[tuple[int, bytes]] = []
    start = 0
    for cut in [*sorted(cuts), len(data)]:
        out += reader.feed(data[start:cut])
        start = cut
    return out


def refused(reader: FrameReader, *chunks: bytes) -> int:
    """The close code of the WsError raised while feeding ``chunks``."""
    with pytest.raises(WsError) as info:
        for chunk in chunks:
            reader.feed(chunk)
    return info.value.code


def server_reader(max_size: int = 1 << 20) -> FrameReader:
    """A server's reader: the client's frames must be masked."""
    return FrameReader(masked=True, max_size=max_size)


def client_reader(max_size: int = 1 << 20) -> FrameReader:
    """A client's reader: the server's frames must not be masked."""
    return FrameReader(masked=False, max_size=max_size)


# -- FrameReader


@pytest.mark.parametrize("masked", [True, False], ids=["server", "client"])
def test_reader_byte_at_a_time_gives_each_message_as_its_last_byte_arrives(masked: bool) -> None:
    key = KEY if masked else None
    frames_and_messages: list[tuple[bytes, tuple[int, bytes] | None]] = [
        (raw_frame(OP_TEXT, b"hello", key=key), (OP_TEXT, b"hello")),
        (raw_frame(OP_BINARY, pattern(300), key=key), (OP_BINARY, pattern(300))),
        (raw_frame(OP_TEXT, b"", key=key), (OP_TEXT, b"")),
        (raw_frame(OP_PING, b"are you there", key=key), (OP_PING, b"are you there")),
        (raw_frame(OP_TEXT, b"frag", fin=False, key=key), None),
        (raw_frame(OP_PONG, b"", key=key), (OP_PONG, b"")),
        (raw_frame(OP_CONTINUATION, "mént".encode(), key=key), (OP_TEXT, "fragmént".encode())),
        (raw_frame(OP_TEXT, "é€😀".encode() * 50, key=key), (OP_TEXT, "é€😀".encode() * 50)),
        (raw_frame(OP_CLOSE, close_payload(1000, "bye"), key=key), (OP_CLOSE, b"\x03\xe8bye")),
    ]
    stream = b"".join(f for f, _ in frames_and_messages)
    expected: list[tuple[int, bytes]] = [m for _, m in frames_and_messages if m is not None]
    ends: list[int] = []
    offset = 0
    for f, m in frames_and_messages:
        offset += len(f)
        if m is not None:
            ends.append(offset)

    assert (server_reader() if masked else client_reader()).feed(stream) == expected

    reader = server_reader() if masked else client_reader()
    got: list[tuple[int, bytes]] = []
    delivered_at: list[int] = []
    for i in range(len(stream)):
        for message in reader.feed(stream[i : i + 1]):
            got.append(message)
            delivered_at.append(i + 1)
    assert got == expected
    assert delivered_at == ends


@pytest.mark.parametrize("n", [0, 125, 126, 65535, 65536])
@pytest.mark.parametrize("masked", [True, False], ids=["masked", "unmasked"])
def test_length_encodings(n: int, masked: bool) -> None:
    payload = pattern(n)
    data = frame(OP_TEXT, payload, masked)
    # 7-bit length up to 125, then 126 + 16-bit, then 127 + 64-bit (the shortest form)
    length_field, head = (n, 2) if n < 126 else (126, 4) if n < 65536 else (127, 10)
    assert data[0] == 0x80 | OP_TEXT
    assert data[1] == (0x80 if masked else 0) | length_field
    if head == 4:
        assert struct.unpack_from("!H", data, 2)[0] == n
    elif head == 10:
        assert struct.unpack_from("!Q", data, 2)[0] == n
    assert len(data) == head + (4 if masked else 0) + n
    if masked:
        key = data[head : head + 4]
        assert mask(key, data[head + 4 :]) == payload
    else:
        assert data[head:] == payload

    reader = FrameReader(masked=masked, max_size=1 << 20)
    assert reader.feed(data) == [(OP_TEXT, payload)]
    # split anywhere in or just after the header: nothing until the frame is complete
    for cut in range(1, min(head + 6, len(data))):
        reader = FrameReader(masked=masked, max_size=1 << 20)
        assert reader.feed(data[:cut]) == []
        assert reader.feed(data[cut:]) == [(OP_TEXT, payload)]


def test_client_frames_are_masked_with_fresh_keys() -> None:
    payload = b"the same message, three times"
    keys = set()
    for _ in range(3):
        data = frame(OP_TEXT, payload, True)
        assert data[1] & 0x80
        keys.add(data[2:6])
        assert mask(data[2:6], data[6:]) == payload
    assert len(keys) > 1  # a new random key per frame (RFC 6455 section 5.3)
    assert frame(OP_TEXT, payload, False) == bytes((0x81, len(payload))) + payload


@pytest.mark.parametrize("n", [0, 1, 7, 8, 125, 126, 65535, 65536])
@pytest.mark.parametrize("masked", [True, False])
def test_frame_is_the_frame_built_by_hand(
    n: int, masked: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_ws, "getrandbits", lambda bits: int.from_bytes(KEY, "big"))
    data = pattern(n)
    want = raw_frame(OP_BINARY, data, key=KEY if masked else None)
    assert frame(OP_BINARY, data, masked) == want


def test_server_reader_refuses_unmasked_frames() -> None:
    assert refused(server_reader(), raw_frame(OP_TEXT, b"hi")) == 1002
    assert refused(server_reader(), raw_frame(OP_PING, b"")) == 1002
    # a masked one after a good one is still checked frame by frame
    assert refused(server_reader(), client_frame(OP_TEXT, b"ok") + raw_frame(OP_TEXT)) == 1002


def test_client_reader_refuses_masked_frames() -> None:
    assert refused(client_reader(), client_frame(OP_TEXT, b"hi")) == 1002
    assert refused(client_reader(), client_frame(OP_PONG, b"")) == 1002


@pytest.mark.parametrize("rsv", [0x40, 0x20, 0x10], ids=["rsv1", "rsv2", "rsv3"])
def test_reserved_bits_are_refused(rsv: int) -> None:
    assert refused(server_reader(), raw_frame(OP_TEXT, b"x", key=KEY, rsv=rsv)) == 1002


@pytest.mark.parametrize("opcode", [3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF])
def test_unknown_opcodes_are_refused(opcode: int) -> None:
    assert refused(server_reader(), raw_frame(opcode, b"x", key=KEY)) == 1002
    assert refused(client_reader(), raw_frame(opcode, b"")) == 1002


@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY])
def test_fragmented_message_is_reassembled_around_control_frames(opcode: int) -> None:
    word = "Hello, wörld".encode()  # "ö" is cut between two fragments below
    stream = (
        client_frame(opcode, word[:3], fin=False)
        + client_frame(OP_PING, b"?")
        + client_frame(OP_CONTINUATION, word[3:9], fin=False)
        + client_frame(OP_PONG, b"!")
        + client_frame(OP_CONTINUATION, b"", fin=False)
        + client_frame(OP_CONTINUATION, word[9:])
        + client_frame(OP_TEXT, b"next")
    )
    expected = [(OP_PING, b"?"), (OP_PONG, b"!"), (opcode, word), (OP_TEXT, b"next")]
    assert server_reader().feed(stream) == expected
    reader = server_reader()
    assert feed_in_chunks(reader, stream, list(range(1, len(stream)))) == expected


def test_continuation_without_a_message_is_refused() -> None:
    assert refused(server_reader(), client_frame(OP_CONTINUATION, b"x")) == 1002
    # also once a fragmented message has ended
    reader = server_reader()
    done = client_frame(OP_TEXT, b"a", fin=False) + client_frame(OP_CONTINUATION, b"b")
    assert reader.feed(done) == [(OP_TEXT, b"ab")]
    assert refused(reader, client_frame(OP_CONTINUATION, b"c")) == 1002


@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY])
def test_new_message_inside_a_fragmented_one_is_refused(opcode: int) -> None:
    start = client_frame(OP_TEXT, b"first half", fin=False)
    assert refused(server_reader(), start, client_frame(opcode, b"intruder")) == 1002


@pytest.mark.parametrize("opcode", [OP_PING, OP_PONG, OP_CLOSE])
def test_control_frames_must_be_short_and_unfragmented(opcode: int) -> None:
    assert server_reader().feed(client_frame(opcode, pattern(125))) == [(opcode, pattern(125))]
    assert refused(server_reader(), client_frame(opcode, pattern(126))) == 1002
    assert refused(server_reader(), client_frame(opcode, b"x", fin=False)) == 1002
    assert refused(client_reader(), raw_frame(opcode, pattern(126))) == 1002


def test_messages_over_max_size_are_refused_with_1009() -> None:
    assert server_reader(100).feed(client_frame(OP_TEXT, pattern(100))) == [(OP_TEXT, pattern(100))]
    assert refused(server_reader(100), client_frame(OP_TEXT, pattern(101))) == 1009
    # known from the header alone: the payload is never waited for
    assert refused(server_reader(100), client_frame(OP_BINARY, pattern(1000))[:8]) == 1009
    assert refused(client_reader(100), raw_frame(OP_TEXT, length=1 << 40)) == 1009
    # across fragments
    first = client_frame(OP_TEXT, pattern(60), fin=False)
    assert server_reader(100).feed(first + client_frame(OP_CONTINUATION, pattern(40))) == [
        (OP_TEXT, pattern(60) + pattern(40))
    ]
    assert refused(server_reader(100), first, client_frame(OP_CONTINUATION, pattern(41))) == 1009
    middle = client_frame(OP_CONTINUATION, pattern(30), fin=False)
    last = client_frame(OP_CONTINUATION, pattern(11))
    assert refused(server_reader(100), first, middle, last) == 1009


def test_control_frames_inside_a_fragmented_message_do_not_count_towards_max_size() -> None:
    # a ping between the fragments of a message of exactly max_size is not part of the message
    stream = (
        client_frame(OP_TEXT, pattern(95), fin=False)
        + client_frame(OP_PING, b"12345678")
        + client_frame(OP_CONTINUATION, pattern(5))
    )
    assert server_reader(100).feed(stream) == [
        (OP_PING, b"12345678"),
        (OP_TEXT, pattern(95) + pattern(5)),
    ]


def test_length_with_the_top_bit_set_is_refused() -> None:
    data = bytes((0x82, 127)) + struct.pack("!Q", 1 << 63)
    assert refused(FrameReader(masked=False, max_size=1 << 64), data) == 1002


def test_a_large_message_arriving_in_small_reads_is_joined_once() -> None:
    """A 64 MiB message (``serve()`` accepts up to 128 MiB) in 64 KiB reads, as from a socket:
    the reads are kept as they came and joined once the frame is complete. (Joining at every
    read copies everything buffered each time: over 20 s of stalled event loop for this one.)"""
    data = frame(OP_BINARY, bytes(64 << 20), True)
    reader = FrameReader(masked=True, max_size=128 << 20)
    chunk = 1 << 16
    reads = range(0, len(data), chunk)
    out: list[tuple[int, bytes]] = []
    for n, i in enumerate(reads, 1):
        out += reader.feed(data[i : i + chunk])
        if n < len(reads):
            assert not out
            assert len(reader._pending) == n, "an unfinished frame's reads are not re-joined"
    assert [(op, len(payload)) for op, payload in out] == [(OP_BINARY, 64 << 20)]
    assert not reader._pending


payloads = st.one_of(
    st.binary(max_size=200),
    st.sampled_from([125, 126, 127, 65535, 65536, 65537]).map(pattern),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    messages=st.lists(st.tuples(st.sampled_from([OP_TEXT, OP_BINARY]), payloads), max_size=6),
    masked=st.booleans(),
    data=st.data(),
)
def test_any_messages_any_framing_any_chunks_come_back(
    messages: list[tuple[int, bytes]], masked: bool, data: st.DataObject
) -> None:
    keys = st.binary(min_size=4, max_size=4)
    stream = b""
    expected: list[tuple[int, bytes]] = []
    for opcode, payload in messages:
        cuts = sorted(data.draw(st.lists(st.integers(0, len(payload)), max_size=3)))
        bounds = [0, *cuts, len(payload)]
        pieces = [payload[a:b] for a, b in pairwise(bounds)]
        if len(pieces) == 1 and data.draw(st.booleans()):
            stream += frame(opcode, payload, masked)  # the library's own frames
        else:
            for i, piece in enumerate(pieces):
                last = i == len(pieces) - 1
                key = data.draw(keys) if masked else None
                stream += raw_frame(opcode if i == 0 else OP_CONTINUATION, piece, fin=last, key=key)
                if not last and data.draw(st.booleans()):
                    ping = data.draw(st.binary(max_size=125))
                    stream += raw_frame(OP_PING, ping, key=data.draw(keys) if masked else None)
                    expected.append((OP_PING, ping))
        expected.append((opcode, payload))
    chunks = data.draw(st.lists(st.integers(0, len(stream)), max_size=12))
    reader = FrameReader(masked=masked, max_size=1 << 20)
    assert feed_in_chunks(reader, stream, chunks) == expected


# -- serve() and connect() over real sockets


class Flagged(Counter):
    """A counter whose release the test can wait for."""

    def __init__(self, n: int = 0) -> None:
        super().__init__(n)
        self.released = asyncio.Event()

    def on_dispose(self) -> None:
        super().on_dispose()
        self.released.set()


class Api(RpcTarget):
    """The server's main capability (one per session)."""

    def __init__(self) -> None:
        loop = asyncio.get_running_loop()
        self.counters: list[Flagged] = []
        self.started = asyncio.Event()
        self.ended: asyncio.Future[None] = loop.create_future()
        self.held_broken: asyncio.Future[BaseException] = loop.create_future()
        self.held: RpcStub | None = None

    def square(self, x: int) -> int:
        return x * x

    def echo(self, value: Any) -> Any:
        return value

    async def callBack(self, cb: RpcStub, x: int) -> Any:
        return await cb(x)

    def makeCounter(self, n: int) -> Flagged:
        counter = Flagged(n)
        self.counters.append(counter)
        return counter

    def disposedCounts(self) -> list[int]:
        return [c.disposed for c in self.counters]

    async def slow(self) -> str:
        self.started.set()
        await asyncio.Event().wait()  # answered never: the session must end it
        return "never"

    def hold(self, cb: RpcStub) -> None:
        self.held = cb

        def broken(error: BaseException) -> None:
            if not self.held_broken.done():
                self.held_broken.set_result(error)

        cb.on_broken(broken)

    def on_dispose(self) -> None:
        if not self.ended.done():
            self.ended.set_result(None)


class Served:
    """A running ``serve()`` and the Api instances it made, in order."""

    def __init__(self, server: capnweb.Server, apis: list[Api]) -> None:
        self.server = server
        self.apis = apis

    def session(self) -> Session:
        """The server's only live session."""
        (session,) = self.server.endpoint.sessions
        return session


async def mounted(main: Callable[[], Any]) -> capnweb.Server:
    """``mount()`` on an aiohttp app served by aiohttp's own TCPSite, as a Server."""
    app = web.Application()
    endpoint = capnweb.mount(app, "/rpc", main)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    sockets = list(site._server.sockets)  # type: ignore[union-attr]
    port = runner.addresses[0][1]
    return capnweb.Server(
        endpoint, "127.0.0.1", port, "/rpc", sockets, lambda: None, runner.cleanup
    )


@asynccontextmanager
async def served(mount: bool = False) -> AsyncIterator[Served]:
    """``serve()``, or with ``mount``: the endpoint in an aiohttp app (aiohttp's handshake)."""
    apis: list[Api] = []

    def make() -> Api:
        api = Api()
        apis.append(api)
        return api

    server = await (mounted(make) if mount else capnweb.serve(make, "127.0.0.1", 0))
    try:
        yield Served(server, apis)
    finally:
        await asyncio.wait_for(server.close(), WAIT)


@asynccontextmanager
async def connected() -> AsyncIterator[tuple[Served, capnweb.Connection[Any], RpcStub]]:
    """``serve()`` and one client connected to it: (served, connection, the server's main)."""
    async with served() as s:
        conn = capnweb.connect(s.server.ws_url)
        api = await asyncio.wait_for(conn.open(), WAIT)
        try:
            yield s, conn, api
        finally:
            await asyncio.wait_for(conn.close(), WAIT)


class CountingSocket(asyncio.Transport):
    """Stands in for a WsConnection's socket transport and counts its writes."""

    def __init__(self, inner: asyncio.Transport) -> None:
        super().__init__()
        self.inner = inner
        self.writes = 0
        self.data: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview[Any]) -> None:
        self.writes += 1
        self.data.append(bytes(data))
        self.inner.write(data)

    def messages(self) -> list[list[str]]:
        """The text messages of each write, in order (the writes of a client: masked)."""
        reader = server_reader()
        return [[p.decode() for _, p in reader.feed(d)] for d in self.data]

    def close(self) -> None:
        self.inner.close()

    def abort(self) -> None:
        self.inner.abort()

    def is_closing(self) -> bool:
        return self.inner.is_closing()


def count_writes(conn: WsConnection) -> CountingSocket:
    """Count the socket writes of ``conn`` from now on."""
    assert conn._socket is not None
    counting = CountingSocket(conn._socket)
    conn._socket = counting
    return counting


def ws_of(conn: capnweb.Connection[Any]) -> WsConnection:
    assert isinstance(conn.transport, WsConnection)
    return conn.transport


class RawClient:
    """A WebSocket client written by hand over a TCP stream: any bytes can be sent."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    @asynccontextmanager
    async def open(cls, port: int, path: str, *, first: bytes = b"") -> AsyncIterator[Self]:
        """Connect and upgrade (``first``: bytes sent with the request); fails unless 101."""
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), WAIT)
        try:
            key = base64.b64encode(b"0123456789abcdef")
            writer.write(
                (
                    f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                    f"Connection: Upgrade\r\nSec-WebSocket-Key: {key.decode()}\r\n"
                    "Sec-WebSocket-Version: 13\r\n\r\n"
                ).encode()
                + first
            )
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT)
            assert head.startswith(b"HTTP/1.1 101 "), head
            accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
            assert b"sec-websocket-accept: " + accept.lower() in head.lower(), head
            yield cls(reader, writer)
        finally:
            writer.close()

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def read_frame(self) -> tuple[int, bytes]:
        """The next frame from the server (which must be final and unmasked)."""
        head = await asyncio.wait_for(self.reader.readexactly(2), WAIT)
        assert head[0] & 0xF0 == 0x80, "a final frame without reserved bits"
        assert not head[1] & 0x80, "server frames are not masked"
        n = head[1] & 0x7F
        if n == 126:
            n = struct.unpack("!H", await asyncio.wait_for(self.reader.readexactly(2), WAIT))[0]
        elif n == 127:
            n = struct.unpack("!Q", await asyncio.wait_for(self.reader.readexactly(8), WAIT))[0]
        payload = await asyncio.wait_for(self.reader.readexactly(n), WAIT)
        return head[0] & 0x0F, payload

    async def read_close(self) -> tuple[int, str]:
        """Skip to the server's close frame: its (code, reason)."""
        while True:
            opcode, payload = await self.read_frame()
            if opcode == OP_CLOSE:
                assert len(payload) >= 2, payload
                return struct.unpack_from("!H", payload)[0], payload[2:].decode()

    async def at_eof(self) -> bool:
        """Whether the server closes the TCP connection (with no more bytes) within WAIT."""
        return await asyncio.wait_for(self.reader.read(), WAIT) == b""


def call(export: int, method: str, *args: Any) -> bytes:
    """A push of ``main.method(*args)`` and its pull, as client frames."""
    push = json.dumps(["push", ["pipeline", 0, [method], list(args)]]).encode()
    pull = json.dumps(["pull", export]).encode()
    return client_frame(OP_TEXT, push) + client_frame(OP_TEXT, pull)


async def expect_close(raw: RawClient, code: int) -> None:
    """The server closes with ``code``, then the TCP connection once we answer."""
    got, _ = await raw.read_close()
    assert got == code
    await raw.send(client_frame(OP_CLOSE, close_payload(code)))
    assert await raw.at_eof()


@pytest.mark.parametrize("mount", [False, True], ids=["serve", "mount"])
async def test_calls_over_wsconnection_on_both_sides(mount: bool) -> None:
    async with served(mount) as s:
        conn = capnweb.connect(s.server.ws_url)
        api = await asyncio.wait_for(conn.open(), WAIT)
        assert await api.square(7) == 49
        assert await api.callBack(lambda x: x + 1, 41) == 42
        counter = api.makeCounter(10)  # pipelined: no wait for the counter itself
        assert list(await asyncio.gather(counter.increment(1), counter.increment(2))) == [11, 13]
        counter.dispose()
        assert isinstance(conn.transport, WsConnection)
        assert isinstance(s.session()._transport, WsConnection)
        await asyncio.wait_for(conn.close(), WAIT)


@pytest.mark.parametrize(
    "text", ["x" * (1 << 20), ("é€😀" * (1 << 18))[: 1 << 20]], ids=["ascii", "multibyte"]
)
async def test_one_mebibyte_string_echoes(text: str) -> None:
    async with served() as s, capnweb.connect(s.server.ws_url) as api:
        assert await asyncio.wait_for(api.echo(text), WAIT) == text


async def test_a_thousand_concurrent_calls_share_a_few_writes() -> None:
    async with connected() as (s, conn, api):
        assert await api.square(1) == 1
        client = count_writes(ws_of(conn))
        server_conn = s.session()._transport
        assert isinstance(server_conn, WsConnection)
        server = count_writes(server_conn)
        results = await asyncio.wait_for(asyncio.gather(*(api.square(i) for i in range(1000))), 10)
        assert results == [i * i for i in range(1000)]
        # 1000 pushes and 1000 pulls from the client, 1000 answers from the server
        assert client.writes < 100, client.writes
        assert server.writes < 100, server.writes


async def test_a_release_reaches_the_server_before_the_next_call() -> None:
    async with connected() as (_, conn, api):
        counters = [await api.makeCounter(i) for i in range(5)]
        assert await counters[0].increment(1) == 1
        writes = count_writes(ws_of(conn))
        for counter in counters:
            counter.dispose()
        assert writes.writes == 0  # releases wait for other messages or the end of the turn
        assert await api.disposedCounts() == [1, 1, 1, 1, 1]


async def test_a_release_with_nothing_in_flight_is_written_before_the_caller_resumes() -> None:
    async with connected() as (_, conn, api):
        assert await api.square(1) == 1
        sent = count_writes(ws_of(conn))
        assert await api.square(3) == 9
        # its own write, right after the answer arrived: it wakes the server before the next call
        assert sent.messages() == [
            ['["push",["pipeline",0,["square"],[3]]]', '["pull",2]'],
            ['["release",2,1]'],
        ]


async def test_a_release_waits_for_other_traffic_while_answers_are_awaited() -> None:
    async with connected() as (s, conn, api):
        slow = asyncio.ensure_future(api.slow())
        await asyncio.wait_for(s.apis[0].started.wait(), WAIT)
        sent = count_writes(ws_of(conn))
        assert await api.square(3) == 9
        assert sent.messages() == [['["push",["pipeline",0,["square"],[3]]]', '["pull",2]']]
        await eventually(lambda: sent.writes == 2)  # the end of the turn writes it
        assert sent.messages()[1] == ['["release",2,1]']
        slow.cancel()


async def test_one_early_release_per_loop_turn() -> None:
    """Two connections get an answer in the same loop turn: the first writes its release at
    once, the second leaves it to the end of the turn (a busy process keeps coalescing)."""

    class Socket(asyncio.Transport):
        def __init__(self) -> None:
            super().__init__()
            self.writes = 0

        def write(self, data: bytes | bytearray | memoryview[Any]) -> None:
            self.writes += 1

        def is_closing(self) -> bool:
            return False

    conns, sockets, sessions, calls = [], [], [], []
    for _ in range(2):
        conn, socket_ = WsConnection(client=True, max_size=1 << 20), Socket()
        conn.connection_made(socket_)
        session = Session(conn, start=False)
        conn.attach(session.feed, session.disconnected)
        calls.append(asyncio.ensure_future(session.main.square(3)))
        conns.append(conn)
        sockets.append(socket_)
        sessions.append(session)
    await eventually(lambda: all(c._asked == 1 for c in sessions))  # the pulls are out
    before = [s.writes for s in sockets]
    answer = raw_frame(OP_TEXT, b'["resolve",1,9]')
    conns[0].data_received(answer)
    conns[1].data_received(answer)
    assert [s.writes - n for s, n in zip(sockets, before, strict=True)] == [1, 0]
    assert await asyncio.wait_for(asyncio.gather(*calls), WAIT) == [9, 9]
    await eventually(lambda: sockets[1].writes == before[1] + 1)


async def test_a_release_alone_is_still_sent() -> None:
    async with connected() as (s, _, api):
        counter = await api.makeCounter(1)
        counter.dispose()
        await asyncio.wait_for(s.apis[0].counters[0].released.wait(), WAIT)


@pytest.mark.parametrize("mount", [False, True], ids=["serve", "mount"])
async def test_client_close_ends_the_server_session(mount: bool) -> None:
    async with served(mount) as s:
        conn = capnweb.connect(s.server.ws_url)
        api = await conn.open()
        await api.hold(lambda x: x)
        pending = asyncio.ensure_future(api.slow())
        await asyncio.wait_for(s.apis[0].started.wait(), WAIT)
        session = s.session()
        await asyncio.wait_for(conn.close(), WAIT)
        with pytest.raises(RpcDisconnectedError):
            await asyncio.wait_for(pending, WAIT)
        reason = await asyncio.wait_for(session.wait_closed(), WAIT)
        assert isinstance(reason, RpcDisconnectedError)
        assert isinstance(await asyncio.wait_for(s.apis[0].held_broken, WAIT), RpcDisconnectedError)
        await asyncio.wait_for(s.apis[0].ended, WAIT)  # the main capability was released
        await eventually(lambda: not s.server.endpoint.sessions)


@pytest.mark.parametrize("mount", [False, True], ids=["serve", "mount"])
async def test_server_close_ends_the_client_session(mount: bool) -> None:
    apis: list[Api] = []

    def make() -> Api:
        apis.append(Api())
        return apis[-1]

    server = await (mounted(make) if mount else capnweb.serve(make, "127.0.0.1", 0))
    try:
        conn = capnweb.connect(server.ws_url)
        api = await conn.open()
        broken: asyncio.Future[BaseException] = asyncio.get_running_loop().create_future()
        api.on_broken(broken.set_result)
        pending = asyncio.ensure_future(api.slow())
        await asyncio.wait_for(apis[0].started.wait(), WAIT)
    finally:
        await asyncio.wait_for(server.close(), WAIT)
    with pytest.raises(RpcDisconnectedError):
        await asyncio.wait_for(pending, WAIT)
    error = await asyncio.wait_for(broken, WAIT)
    assert isinstance(error, RpcDisconnectedError)
    assert "1000" in str(error)  # the server's close frame: a plain disconnect
    with pytest.raises(RpcDisconnectedError):
        await asyncio.wait_for(api.square(2), WAIT)
    await asyncio.wait_for(ws_of(conn).wait_closed(), WAIT)
    await asyncio.wait_for(conn.close(), WAIT)


async def test_server_abort_reason_reaches_the_client_as_close_3000() -> None:
    async with served() as s, RawClient.open(s.server.port, s.server.path) as raw:
        await raw.send(client_frame(OP_TEXT, b"this is not json"))
        opcode, payload = await raw.read_frame()
        assert opcode == OP_TEXT
        tag, (kind, name, message) = json.loads(payload)
        assert (tag, kind, name) == ("abort", "error", "Error")
        assert "not valid JSON" in message
        code, reason = await raw.read_close()
        assert code == 3000
        assert reason == message.encode()[:123].decode("utf-8", "ignore")
        await raw.send(client_frame(OP_CLOSE, close_payload(3000)))
        assert await raw.at_eof()
        await eventually(lambda: not s.server.endpoint.sessions)


async def test_client_abort_reason_reaches_the_server_as_close_3000() -> None:
    async with recording_peer("this is not json") as (url, closed):
        conn = capnweb.connect(url)
        await conn.open()
        code, reason, received = await asyncio.wait_for(closed, WAIT)
        assert conn.session is not None and conn.session.broken is not None
        message = str(conn.session.broken)
        assert "not valid JSON" in message
        assert received == [["abort", ["error", "Error", message]]]
        assert (code, reason) == (3000, message)
        await asyncio.wait_for(conn.close(), WAIT)


# -- a raw peer against serve()


async def test_ping_gets_a_pong_between_calls() -> None:
    async with served() as s, ws_connect(s.server.ws_url) as ws:
        pong = await ws.ping(b"capnweb")
        await asyncio.wait_for(pong, WAIT)  # websockets checks the payload matches
        await ws.send(json.dumps(["push", ["pipeline", 0, ["square"], [12]]]))
        pong = await ws.ping(b"again")
        await ws.send(json.dumps(["pull", 1]))
        assert json.loads(await asyncio.wait_for(ws.recv(), WAIT)) == ["resolve", 1, 144]
        await asyncio.wait_for(pong, WAIT)


async def test_peer_close_frame_is_echoed_and_the_session_ends() -> None:
    async with served() as s, ws_connect(s.server.ws_url) as ws:
        await ws.send(json.dumps(["push", ["pipeline", 0, ["square"], [3]]]))
        await ws.send(json.dumps(["pull", 1]))
        assert json.loads(await asyncio.wait_for(ws.recv(), WAIT)) == ["resolve", 1, 9]
        session = s.session()
        await asyncio.wait_for(ws.close(4000, "bye"), WAIT)  # returns once TCP is closed
        assert ws.protocol.close_rcvd is not None
        assert ws.protocol.close_rcvd.code == 4000
        reason = await asyncio.wait_for(session.wait_closed(), WAIT)
        assert isinstance(reason, RpcDisconnectedError)
        assert str(reason) == "Peer closed WebSocket: 4000 bye"
        await asyncio.wait_for(s.apis[0].ended, WAIT)


async def test_close_frame_without_a_code_is_echoed_without_one() -> None:
    async with served() as s, RawClient.open(s.server.port, s.server.path) as raw:
        await raw.send(client_frame(OP_CLOSE))
        assert await raw.read_frame() == (OP_CLOSE, b"")
        assert await raw.at_eof()


async def test_fragmented_call_with_a_ping_inside() -> None:
    async with served() as s, RawClient.open(s.server.port, s.server.path) as raw:
        push = json.dumps(["push", ["pipeline", 0, ["echo"], ["añb"]]], ensure_ascii=False)
        data = push.encode()
        cut = data.index("ñ".encode()) + 1  # inside the two bytes of "ñ"
        await raw.send(
            client_frame(OP_TEXT, data[:cut], fin=False)
            + client_frame(OP_PING, b"still there?")
            + client_frame(OP_CONTINUATION, data[cut:])
            + client_frame(OP_TEXT, b'["pull",1]')
        )
        assert await raw.read_frame() == (OP_PONG, b"still there?")
        opcode, answer = await raw.read_frame()
        assert (opcode, json.loads(answer)) == (OP_TEXT, ["resolve", 1, "añb"])


@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY], ids=["text", "binary"])
async def test_invalid_utf8_closes_with_1007(opcode: int) -> None:
    async with served() as s, RawClient.open(s.server.port, s.server.path) as raw:
        await raw.send(call(1, "square", 5))
        assert await raw.read_frame() == (OP_TEXT, b'["resolve",1,25]')
        session = s.session()
        await raw.send(client_frame(opcode, b'["push", "\xff\xfe"]'))
        await expect_close(raw, 1007)
        assert isinstance(await asyncio.wait_for(session.wait_closed(), WAIT), RpcDisconnectedError)


async def test_a_binary_message_of_utf8_text_is_a_message() -> None:
    async with served() as s, RawClient.open(s.server.port, s.server.path) as raw:
        await raw.send(client_frame(OP_BINARY, b'["push",["pipeline",0,["square"],[9]]]'))
        await raw.send(client_frame(OP_BINARY, b'["pull",1]'))
        assert await raw.read_frame() == (OP_TEXT, b'["resolve",1,81]')


async def test_serve_websocket_closes_with_1007_on_a_binary_message_that_is_not_utf8() -> None:
    server = await capnweb.serve_websocket(Api)
    try:
        port = next(iter(server.sockets)).getsockname()[1]
        async with ws_connect(f"ws://127.0.0.1:{port}/") as ws:
            await ws.send(b'["push", "\xff"]')
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), WAIT)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1007
    finally:
        server.close()
        await asyncio.wait_for(server.wait_closed(), WAIT)


async def test_unmasked_client_frame_closes_with_1002() -> None:
    async with served() as s, RawClient.open(s.server.port, s.server.path) as raw:
        await raw.send(raw_frame(OP_TEXT, b'["pull", 1]'))
        await expect_close(raw, 1002)


async def test_oversized_frame_closes_with_1009_from_its_header() -> None:
    async with served() as s, RawClient.open(s.server.port, s.server.path) as raw:
        await raw.send(raw_frame(OP_TEXT, length=1 << 40, key=KEY)[:14])
        await expect_close(raw, 1009)


@pytest.mark.parametrize("mount", [False, True], ids=["serve", "mount"])
async def test_whole_frames_sent_with_the_upgrade_request_are_handled(mount: bool) -> None:
    # a client may not send before the 101; the server copes when whole frames came early
    async with (
        served(mount) as s,
        RawClient.open(s.server.port, s.server.path, first=call(1, "square", 6)) as raw,
    ):
        assert await raw.read_frame() == (OP_TEXT, b'["resolve",1,36]')
        await raw.send(call(2, "square", 7))
        assert await raw.read_frame() == (OP_TEXT, b'["resolve",2,49]')


# -- serve(): the server's opening handshake; every other request goes to aiohttp


async def status_of(port: int, request: bytes) -> str:
    """The status code the server answers ``request`` with, on a new connection."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), WAIT)
    try:
        writer.write(request)
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT)
        return head.split(b" ", 2)[1].decode()
    finally:
        writer.close()


async def test_serve_routes_requests_other_than_an_upgrade_of_its_path_to_aiohttp() -> None:
    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="hello")

    app = web.Application()
    app.router.add_get("/hello", hello)
    async with capnweb.serve(Api, app=app) as server:
        port = server.port
        assert await status_of(port, upgrade_request()) == "101"
        assert await status_of(port, upgrade_request("/rpc?token=1")) == "101"
        assert await status_of(port, b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n") == "200"
        assert await status_of(port, b"GET /rpc HTTP/1.1\r\nHost: x\r\n\r\n") == "405"
        assert await status_of(port, upgrade_request("/elsewhere")) == "404"
        # not an upgrade this server takes: aiohttp's WebSocket answers it (and refuses)
        assert await status_of(port, upgrade_request(version="99")) == "400"
        assert await status_of(port, upgrade_request(key="short")) == "400"
        too_long = b"GET /rpc HTTP/1.1\r\nX-Big: " + b"b" * _front.MAX_HEAD + b"\r\n\r\n"
        assert await status_of(port, too_long) == "400"  # aiohttp's header size limit
        async with capnweb.connect(server.url) as api:  # HTTP batch on the same path
            assert await asyncio.wait_for(api.square(5), WAIT) == 25
        async with capnweb.connect(server.ws_url) as api:
            assert await asyncio.wait_for(api.square(6), WAIT) == 36


async def test_an_apps_middleware_sees_websocket_upgrades_too() -> None:
    seen: list[str] = []

    @web.middleware
    async def guard(request: web.Request, handler: Any) -> web.StreamResponse:
        seen.append(request.method)
        if request.headers.get("Authorization") != "Bearer ok":
            raise web.HTTPUnauthorized()
        response: web.StreamResponse = await handler(request)
        return response

    async with capnweb.serve(Api, app=web.Application(middlewares=[guard])) as server:
        with pytest.raises(RpcDisconnectedError, match="401"):
            await asyncio.wait_for(capnweb.connect(server.ws_url).open(), WAIT)
        conn = capnweb.connect(server.ws_url, headers={"Authorization": "Bearer ok"})
        api = await asyncio.wait_for(conn.open(), WAIT)
        assert await asyncio.wait_for(api.square(4), WAIT) == 16
        (session,) = server.endpoint.sessions
        assert isinstance(session._transport, WsConnection)  # taken over after the handshake
        await asyncio.wait_for(conn.close(), WAIT)
        assert seen == ["GET", "GET"]


async def test_batch_posts_keep_their_connection_and_an_apps_response_hook_sees_them() -> None:
    push = '["push",["pipeline",0,["square"],[3]]]\n["pull",1]'
    async with capnweb.serve(Api) as server, aiohttp.ClientSession() as http:
        for _ in range(3):
            async with http.post(server.url, data=push) as r:
                assert r.status == 200 and await r.text() == '["resolve",1,9]'
        assert len(server._fronts) == 1  # one connection, kept for the next request

    async def cors(request: web.Request, response: web.StreamResponse) -> None:
        response.headers["Access-Control-Allow-Origin"] = "*"

    app = web.Application()
    app.on_response_prepare.append(cors)
    async with (
        capnweb.serve(Api, app=app) as server,
        aiohttp.ClientSession() as http,
        http.post(server.url, data=push) as r,
    ):
        assert await r.text() == '["resolve",1,9]'
        assert r.headers["Access-Control-Allow-Origin"] == "*"


async def test_serve_keeps_no_task_per_websocket_and_forgets_a_dropped_one() -> None:
    async with served() as s:
        tasks = len(asyncio.all_tasks())
        async with (
            RawClient.open(s.server.port, s.server.path) as a,
            RawClient.open(s.server.port, s.server.path) as b,
        ):
            await a.send(call(1, "square", 2))
            await b.send(call(1, "square", 3))
            assert await a.read_frame() == (OP_TEXT, b'["resolve",1,4]')
            assert await b.read_frame() == (OP_TEXT, b'["resolve",1,9]')
            assert len(s.server.endpoint.sessions) == 2
            assert len(asyncio.all_tasks()) == tasks  # aiohttp keeps two per connection
            a.writer.transport.abort()  # no close frame: the connection just drops
            await eventually(lambda: len(s.server.endpoint.sessions) == 1)
            await asyncio.wait_for(s.apis[0].ended, WAIT)


async def test_a_connection_that_sends_no_request_is_closed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_front, "HEAD_TIMEOUT", 0.05)
    async with served() as s:
        reader, writer = await asyncio.open_connection("127.0.0.1", s.server.port)
        try:
            writer.write(b"GET /rpc HTTP/1.1\r\n")  # and never the rest
            assert await asyncio.wait_for(reader.read(), WAIT) == b""
        finally:
            writer.close()


async def test_server_close_closes_connections_still_in_their_handshake() -> None:
    async with served() as s:
        reader, writer = await asyncio.open_connection("127.0.0.1", s.server.port)
        try:
            writer.write(b"GET /rpc HTTP/1.1\r\n")
            await eventually(lambda: bool(s.server._fronts))
            await asyncio.wait_for(s.server.close(), WAIT)
            assert await asyncio.wait_for(reader.read(), WAIT) == b""
        finally:
            writer.close()


# -- the client's opening handshake


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@asynccontextmanager
async def tcp_server(handler: Handler) -> AsyncIterator[str]:
    """A plain TCP server on 127.0.0.1 running ``handler`` per connection: its ws:// URL."""

    async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await handler(reader, writer)
        finally:
            writer.close()

    server = await asyncio.start_server(run, "127.0.0.1", 0)
    try:
        yield f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/rpc"
    finally:
        server.close()
        await asyncio.wait_for(server.wait_closed(), WAIT)


async def read_request(reader: asyncio.StreamReader) -> tuple[str, dict[str, str]]:
    """The request line and the headers (lower-case names) of an HTTP request."""
    head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT)).decode("latin-1")
    line, *rest = head[:-4].split("\r\n")
    headers = {}
    for header in rest:
        name, _, value = header.partition(":")
        headers[name.strip().lower()] = value.strip()
    return line, headers


def accept_for(headers: dict[str, str]) -> str:
    return base64.b64encode(
        hashlib.sha1(headers["sec-websocket-key"].encode() + GUID).digest()
    ).decode()


def upgrade_response(accept: str, *extra: str) -> bytes:
    lines = [
        "HTTP/1.1 101 Switching Protocols",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Accept: {accept}",
        *extra,
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def answering(response: Callable[[dict[str, str]], bytes]) -> Handler:
    """A handler that reads the request, writes ``response(headers)``, then waits for EOF."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        _, headers = await read_request(reader)
        writer.write(response(headers))
        await asyncio.wait_for(reader.read(), WAIT)

    return handler


class ClientFrames:
    """As a server: the frames a client sent on one connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.frames = FrameReader(masked=True, max_size=1 << 20)
        self.got: list[tuple[int, bytes]] = []

    async def until(self, opcode: int) -> list[tuple[int, bytes]]:
        """Every frame received so far, once one has ``opcode`` (or the client hung up)."""
        while all(op != opcode for op, _ in self.got):
            data = await asyncio.wait_for(self.reader.read(65536), WAIT)
            if not data:
                break
            self.got += self.frames.feed(data)
        return self.got

    async def until_close(self) -> list[tuple[int, bytes]]:
        """Every frame up to the client's close frame, which is answered."""
        got = await self.until(OP_CLOSE)
        if got and got[-1][0] == OP_CLOSE:
            self.writer.write(raw_frame(OP_CLOSE, got[-1][1][:2]))
        return got


@pytest.mark.parametrize("status", ["404 Not Found", "200 OK"])
async def test_server_that_does_not_upgrade(status: str) -> None:
    body = b"no WebSocket here"
    reply = f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body
    async with tcp_server(answering(lambda _: reply)) as url:
        with pytest.raises(RpcDisconnectedError, match=status):
            await asyncio.wait_for(capnweb.connect(url).open(), WAIT)


async def test_wrong_accept_header_is_refused() -> None:
    wrong = base64.b64encode(hashlib.sha1(b"some other key" + GUID).digest()).decode()
    async with tcp_server(answering(lambda _: upgrade_response(wrong))) as url:
        with pytest.raises(RpcDisconnectedError, match="handshake failed"):
            await asyncio.wait_for(capnweb.connect(url).open(), WAIT)


async def test_an_extension_chosen_by_the_server_is_refused() -> None:
    def reply(headers: dict[str, str]) -> bytes:
        return upgrade_response(accept_for(headers), "Sec-WebSocket-Extensions: permessage-deflate")

    async with tcp_server(answering(reply)) as url:
        with pytest.raises(RpcDisconnectedError, match="extension"):
            await asyncio.wait_for(capnweb.connect(url).open(), WAIT)


async def test_server_that_hangs_up_during_the_handshake() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)

    async with tcp_server(handler) as url:
        with pytest.raises(RpcDisconnectedError, match="handshake failed"):
            await asyncio.wait_for(capnweb.connect(url).open(), WAIT)


async def test_refused_port_raises_oserror() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nobody listens on it once closed
    with pytest.raises(OSError):
        await asyncio.wait_for(capnweb.connect(f"ws://127.0.0.1:{port}/").open(), WAIT)


async def test_server_that_never_answers_times_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(capnweb.client, "OPEN_TIMEOUT", 0.2)
    request_seen = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        request_seen.set()
        assert await asyncio.wait_for(reader.read(), WAIT) == b""  # the client gives up

    async with tcp_server(handler) as url:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(capnweb.connect(url).open(), WAIT)
        assert request_seen.is_set()


async def test_header_values_cannot_inject_lines() -> None:
    conn = capnweb.connect("ws://127.0.0.1:9/", headers={"X-Token": "a\r\nEvil: 1"})
    with pytest.raises(ValueError, match="invalid header"):
        await asyncio.wait_for(conn.open(), WAIT)


async def test_handshake_request_and_messages_right_behind_the_101() -> None:
    requests: list[tuple[str, dict[str, str]]] = []
    answers: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        line, headers = await read_request(reader)
        requests.append((line, headers))
        # a call to the client's main capability, in the same packet as the 101
        push = json.dumps(["push", ["pipeline", 0, [], ["ping"]]]).encode()
        writer.write(
            upgrade_response(accept_for(headers))
            + raw_frame(OP_TEXT, push)
            + raw_frame(OP_TEXT, b'["pull",1]')
        )
        client = ClientFrames(reader, writer)
        got = await client.until(OP_TEXT)
        answers.set_result([json.loads(p) for op, p in got if op == OP_TEXT])
        await client.until_close()

    async with tcp_server(handler) as url:
        conn = capnweb.connect(
            url + "?room=a%20b", main=lambda s: s + "-pong", headers={"Authorization": "Bearer t"}
        )
        await asyncio.wait_for(conn.open(), WAIT)
        assert await asyncio.wait_for(answers, WAIT) == [["resolve", 1, "ping-pong"]]
        await asyncio.wait_for(conn.close(), WAIT)
    ((line, headers),) = requests
    port = url.split(":")[2].split("/")[0]
    assert line == "GET /rpc?room=a%20b HTTP/1.1"
    assert headers["host"] == f"127.0.0.1:{port}"
    assert headers["upgrade"].lower() == "websocket"
    assert "upgrade" in headers["connection"].lower()
    assert headers["sec-websocket-version"] == "13"
    assert len(base64.b64decode(headers["sec-websocket-key"])) == 16
    assert headers["authorization"] == "Bearer t"
    assert "sec-websocket-extensions" not in headers


@pytest.mark.parametrize("when", ["with the 101", "after a call"])
async def test_client_refuses_masked_server_frames_with_1002(when: str) -> None:
    closed: asyncio.Future[list[tuple[int, bytes]]] = asyncio.get_running_loop().create_future()
    masked = client_frame(OP_TEXT, b'["pull",1]')

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        _, headers = await read_request(reader)
        client = ClientFrames(reader, writer)
        if when == "with the 101":
            writer.write(upgrade_response(accept_for(headers)) + masked)
        else:
            push = json.dumps(["push", ["pipeline", 0, [], [1]]]).encode()
            writer.write(
                upgrade_response(accept_for(headers))
                + raw_frame(OP_TEXT, push)
                + raw_frame(OP_TEXT, b'["pull",1]')
            )
            assert await client.until(OP_TEXT) == [(OP_TEXT, b'["resolve",1,2]')]
            writer.write(masked)
        closed.set_result(await client.until_close())

    async with tcp_server(handler) as url:
        conn = capnweb.connect(url, main=lambda x: x + 1)
        await asyncio.wait_for(conn.open(), WAIT)
        got = await asyncio.wait_for(closed, WAIT)
        assert got and got[-1][0] == OP_CLOSE
        assert struct.unpack_from("!H", got[-1][1])[0] == 1002
        assert conn.session is not None
        assert isinstance(conn.session.broken, RpcDisconnectedError)
        await asyncio.wait_for(conn.close(), WAIT)


# -- mount(): when the connection cannot be taken over, aiohttp's own WebSocket


async def test_fallback_to_aiohttp_websocket(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_adoption(ws: Any, request: Any) -> None:
        return None

    monkeypatch.setattr(capnweb.server, "adopt_aiohttp", no_adoption)
    async with served(mount=True) as s:
        conn = capnweb.connect(s.server.ws_url)
        api = await conn.open()
        assert await api.square(9) == 81
        assert await api.callBack(lambda x: x * 2, 21) == 42
        big = "z" * (1 << 20)
        assert await asyncio.wait_for(api.echo(big), WAIT) == big
        session = s.session()
        assert isinstance(session._transport, AiohttpWebSocketTransport)
        await asyncio.wait_for(conn.close(), WAIT)
        assert isinstance(await asyncio.wait_for(session.wait_closed(), WAIT), RpcDisconnectedError)
        await asyncio.wait_for(s.apis[0].ended, WAIT)
        await eventually(lambda: not s.server.endpoint.sessions)

        # and the server closing ends the client's session
        conn = capnweb.connect(s.server.ws_url)
        api = await conn.open()
        pending = asyncio.ensure_future(api.slow())
        await asyncio.wait_for(s.apis[1].started.wait(), WAIT)
        await asyncio.wait_for(s.server.close(), WAIT)
        with pytest.raises(RpcDisconnectedError):
            await asyncio.wait_for(pending, WAIT)
        assert isinstance(cast(Session, conn.session).broken, RpcDisconnectedError)
        await asyncio.wait_for(conn.close(), WAIT)
