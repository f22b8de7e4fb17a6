"""The front of a ``serve()`` connection (``capnweb/transports/_front.py``), driven by hand:
WebSocket upgrades and batch POSTs of the path read in any chunks, everything else handed with
its bytes to the fallback (aiohttp's request handler in ``serve()``)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from typing import Any

import pytest
from helpers import upgrade_request

from capnweb import Limits
from capnweb.transports import _front
from capnweb.transports._ws import OP_TEXT, WsConnection, frame

pytestmark = pytest.mark.timeout(30)

LIMITS = Limits(max_batch_size=1 << 20)

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def post(body: bytes, *extra: str) -> bytes:
    """A batch POST of /rpc as a client sends it."""
    head = [
        "POST /rpc HTTP/1.1",
        "Host: 127.0.0.1",
        "Content-Type: text/plain;charset=UTF-8",
        f"Content-Length: {len(body)}",
        *extra,
    ]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def call(export: int, method: str, *args: Any) -> bytes:
    """A push of ``main.method(*args)`` and its pull, as client frames."""
    push = json.dumps(["push", ["pipeline", 0, [method], list(args)]]).encode()
    pull = json.dumps(["pull", export]).encode()
    return frame(OP_TEXT, push, True) + frame(OP_TEXT, pull, True)


def response(written: bytes) -> tuple[bytes, dict[str, str], bytes]:
    """Status line, headers and body of the first HTTP response in ``written``."""
    head, _, rest = written.partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    n = int(headers["content-length"])
    return status.encode(), headers, rest[:n]


class FakeSocket(asyncio.Transport):
    """A server connection's transport, driven by hand."""

    def __init__(self) -> None:
        super().__init__()
        self.written = b""
        self.protocol: asyncio.BaseProtocol | None = None
        self.closed = False
        self.paused = False

    def write(self, data: bytes | bytearray | memoryview[Any]) -> None:
        self.written += bytes(data)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.protocol = protocol

    def get_protocol(self) -> asyncio.BaseProtocol:
        assert self.protocol is not None
        return self.protocol

    def close(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False

    def is_closing(self) -> bool:
        return self.closed


class Fallback(asyncio.Protocol):
    """Stands in for aiohttp's request handler: records what it is given."""

    def __init__(self) -> None:
        self.transport: asyncio.BaseTransport | None = None
        self.data = b""
        self.eof = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.data += data

    def eof_received(self) -> bool:
        self.eof = True
        return False


class Handshaking:
    """A Front on a FakeSocket, with what it accepted, ran or handed over."""

    def __init__(self) -> None:
        self.accepted: list[WsConnection] = []
        self.fallbacks: list[Fallback] = []
        self.batches: list[str] = []
        self.pending: set[_front.Front] = set()
        self.socket = FakeSocket()
        self.handshake = _front.Front(
            "/rpc", self.accepted.append, self.batch, self.fallback, LIMITS, self.pending
        )
        self.socket.set_protocol(self.handshake)
        self.handshake.connection_made(self.socket)

    async def batch(self, body: str) -> str:
        self.batches.append(body)
        return body.upper()

    def fallback(self) -> Fallback:
        self.fallbacks.append(Fallback())
        return self.fallbacks[-1]

    def feed(self, data: bytes) -> None:
        protocol = self.socket.get_protocol()
        assert isinstance(protocol, asyncio.Protocol)
        protocol.data_received(data)


async def test_an_upgrade_arriving_a_byte_at_a_time_is_answered_at_its_last_byte() -> None:
    h = Handshaking()
    request = upgrade_request()
    for i in range(len(request) - 1):
        h.feed(request[i : i + 1])
        assert not h.accepted and not h.fallbacks and h.socket.written == b""
    assert h.pending
    h.feed(request[-1:] + call(1, "square", 4))
    (conn,) = h.accepted
    assert not h.pending and not h.fallbacks
    assert h.socket.written.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    accept = base64.b64encode(hashlib.sha1(b"MDEyMzQ1Njc4OWFiY2RlZg==" + GUID).digest())
    assert b"\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n" in h.socket.written
    assert h.socket.get_protocol() is conn
    delivered: list[str] = []
    conn.attach(delivered.append, lambda e: None)
    # the frames that came right behind the request
    assert [json.loads(m) for m in delivered] == [
        ["push", ["pipeline", 0, ["square"], [4]]],
        ["pull", 1],
    ]


@pytest.mark.parametrize(
    "chunks",
    [
        [b"PUT /rpc HTTP/1.1\r\n"],  # neither GET nor POST: handed over at once
        [b"G", b"X"],
        [b"GET /rpc HTTP/1.0\r\nUpgrade: websocket\r\n\r\n"],
        [upgrade_request("/rpc2")],
        [upgrade_request().replace(b"Upgrade: websocket", b"Upgrade: h2c")],
        [upgrade_request().replace(b"keep-alive, Upgrade", b"keep-alive")],
        [upgrade_request().replace(b"\r\n\r\n", b"\r\nContent-Length: 0\r\n\r\n")],
        [b"GET /rpc HTTP/1.1\r\n", b"X: " + b"x" * _front.MAX_HEAD],
        [post(b"[]").replace(b"POST /rpc", b"POST /rpc2")],
        [post(b"[]").replace(b"HTTP/1.1", b"HTTP/1.0")],
        [b"POST /rpc HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n[]\r\n0\r\n\r\n"],
        [post(b"[]").replace(b"\r\n\r\n", b"\r\nExpect: 100-continue\r\n\r\n")],
        [post(b"[]").replace(b"charset=UTF-8", b"charset=latin-1")],
        [post(b"[]").replace(b"Content-Length: 2", b"Content-Length: -2")],
        [post(b"[]").replace(b"Content-Length: 2", b"Content-Length: 2, 2")],
        [post(b"[]").replace(b"Content-Length:", b"Content-Length :")],
        [post(b"[]").replace(b"\r\nContent-Length", b"\r\n Content-Length")],
        [post(b"[]").replace(b"Host: 127.0.0.1", b"Host: a\x00b")],
        [post(b"[]").replace(b"Host: 127.0.0.1\r\n", b"Host: a\nContent-Length: 0\r\n")],
        [b"POST /rpc HTTP/1.1\nContent-Length: 2\n\n[]"],
        [upgrade_request().replace(b"Upgrade: websocket", b"Upgrade : websocket")],
    ],
    ids=[
        "put",
        "not-get",
        "http-1.0",
        "other-path",
        "h2c",
        "no-upgrade",
        "body",
        "too-long",
        "post-other-path",
        "post-http-1.0",
        "chunked",
        "expect",
        "charset",
        "bad-length",
        "two-lengths",
        "space-before-colon",
        "folded-line",
        "nul-in-value",
        "lf-inside-a-line",
        "bare-lf",
        "upgrade-space-before-colon",
    ],
)
async def test_anything_else_goes_to_the_fallback_with_every_byte(chunks: list[bytes]) -> None:
    h = Handshaking()
    for chunk in chunks:
        h.feed(chunk)
    (fallback,) = h.fallbacks
    assert fallback.data == b"".join(chunks)
    assert fallback.transport is h.socket and h.socket.get_protocol() is fallback
    assert not h.accepted and not h.pending and h.socket.written == b""
    h.feed(b"more")
    assert fallback.data.endswith(b"more")


async def test_an_end_of_stream_inside_the_head_goes_to_the_fallback() -> None:
    h = Handshaking()
    h.feed(b"GET /rpc HTTP/1.1\r\nHost")
    h.handshake.eof_received()
    (fallback,) = h.fallbacks
    assert fallback.data == b"GET /rpc HTTP/1.1\r\nHost" and fallback.eof


async def answered(h: Handshaking, count: int) -> None:
    """Let the loop run until ``count`` batches were answered."""

    async def poll() -> None:
        while h.socket.written.count(b"HTTP/1.1 ") < count:
            await asyncio.sleep(0)

    await asyncio.wait_for(poll(), 5)


async def test_a_batch_post_arriving_a_byte_at_a_time_is_run_and_answered() -> None:
    h = Handshaking()
    request = post(b'["push",1]\n["pull",1]')
    for i in range(len(request)):
        h.feed(request[i : i + 1])
    await answered(h, 1)
    assert h.batches == ['["push",1]\n["pull",1]']
    status, headers, body = response(h.socket.written)
    assert status == b"HTTP/1.1 200 OK"
    assert headers["content-type"] == "text/plain; charset=utf-8"
    assert "date" in headers and "connection" not in headers
    assert body == b'["PUSH",1]\n["PULL",1]'
    assert h.pending and not h.socket.closed  # kept alive for the next request


async def test_keep_alive_requests_in_one_read_are_answered_in_order() -> None:
    h = Handshaking()
    h.feed(post(b"one") + post("twö".encode()) + post(b"three", "Connection: close"))
    await answered(h, 3)
    assert h.batches == ["one", "twö", "three"]
    bodies = [part.rpartition(b"\r\n\r\n")[2] for part in h.socket.written.split(b"HTTP/1.1 ")]
    assert bodies[1:] == [b"ONE", "TWÖ".encode(), b"THREE"]
    assert h.socket.written.count(b"Connection: close") == 1
    assert h.socket.closed and not h.pending


async def test_after_a_batch_another_request_goes_to_the_fallback() -> None:
    h = Handshaking()
    after = b"GET /stats HTTP/1.1\r\nHost: x\r\n\r\n"
    h.feed(post(b"x") + after)
    await answered(h, 1)
    (fallback,) = h.fallbacks
    assert fallback.data == after and h.batches == ["x"]


async def test_a_body_that_is_not_utf8_gets_400_and_the_connection_closes() -> None:
    h = Handshaking()
    h.feed(post(b"\xff\xfe"))
    await answered(h, 1)
    status, headers, _ = response(h.socket.written)
    assert status == b"HTTP/1.1 400 Bad Request" and headers["connection"] == "close"
    assert h.socket.closed and not h.batches


async def test_a_client_that_ends_its_side_before_its_answer_ends_its_batch() -> None:
    h = Handshaking()
    h.feed(post(b"last"))
    assert not h.handshake.eof_received()  # the transport closes: nobody reads an answer
    h.handshake.connection_lost(None)
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert h.batches == [] and h.socket.written == b"" and not h.pending  # cancelled unrun


async def test_an_end_of_stream_between_requests_closes_without_the_fallback() -> None:
    h = Handshaking()
    assert not h.handshake.eof_received()
    assert not h.fallbacks


async def test_a_client_far_ahead_of_the_answers_is_paused_until_they_catch_up() -> None:
    h = Handshaking()
    h.feed(post(b"first"))  # running
    ahead = b"".join(post(b"%d" % i) for i in range(2000))
    assert len(ahead) > _front.MAX_HEAD
    h.feed(ahead)
    assert h.socket.paused  # no more reading while answers are owed
    await answered(h, 2001)
    assert not h.socket.paused
    assert h.batches == ["first", *(str(i) for i in range(2000))]


async def test_closing_answers_the_batch_being_run_then_closes() -> None:
    h = Handshaking()
    h.feed(post(b"running"))
    h.handshake.close()  # the server is closing
    assert not h.socket.closed
    await answered(h, 1)
    status, headers, body = response(h.socket.written)
    assert status == b"HTTP/1.1 200 OK" and body == b"RUNNING" and headers["connection"] == "close"
    assert h.socket.closed and not h.pending


async def test_closing_an_idle_connection_closes_it_at_once() -> None:
    h = Handshaking()
    h.feed(post(b"done"))
    await answered(h, 1)
    assert not h.socket.closed
    h.handshake.close()
    assert h.socket.closed and not h.pending


async def test_a_chunked_batch_is_run_and_answered_then_the_connection_closes() -> None:
    h = Handshaking()
    head = b"POST /rpc HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    chunks = b'3\r\n["a\r\n2\r\n"]\r\n0\r\n\r\n'
    for i in range(len(head + chunks)):  # in any pieces
        h.feed((head + chunks)[i : i + 1])
    await answered(h, 1)
    assert h.batches == ['["a"]']
    status, headers, body = response(h.socket.written)
    assert status == b"HTTP/1.1 200 OK" and body == b'["A"]'
    assert headers["connection"] == "close" and h.socket.closed


async def test_a_chunked_batch_over_the_limit_gets_413_before_its_end() -> None:
    h = Handshaking()
    h.feed(b"POST /rpc HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b"%x\r\n%s\r\n" % (65536, b" " * 65536)
    for _ in range(LIMITS.max_batch_size // 65536 + 1):
        h.feed(chunk)
        if h.socket.closed:
            break
    status, _, _ = response(h.socket.written)
    assert status == b"HTTP/1.1 413 Request Entity Too Large" and h.socket.closed
    assert not h.batches
