"""WebTransport (``capnweb/transports/webtransport.py`` and ``_quic.py``), Python to Python over
UDP on 127.0.0.1.

- the session behaviours also tested over WebSocket, on both (``KINDS``): calls, pipelining,
  callbacks both ways, map(), errors, disposal and leak checks, closing from either side;
- what is WebTransport's own: several sessions on one QUIC connection and on several, the
  sessions-per-connection limit, other streams refused, a malformed frame ending its session
  only, a QUIC connection lost (closed, or silent) mid-call, bounded output, keepalive;
- the framing (a message is a line) fed in any chunks, and its limits;
- certificates (``dev_certificate``, ``certificate_hash``, ``capnweb cert``) and trust
  (pinned hashes, a CA file, neither);
- capnweb importing without aioquic.
"""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import json
import socket
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aioquic.buffer import encode_uint_var
from aioquic.quic.events import QuicEvent, StopSendingReceived, StreamReset
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from helpers import CLEAN, Counter, eventually
from hypothesis import given, settings
from hypothesis import strategies as st

import capnweb
from capnweb import RpcDisconnectedError, RpcError, RpcStub, RpcTarget, current_session
from capnweb.cli import main as cli_main
from capnweb.transports import _quic
from capnweb.transports._quic import CLOSE_ABORT, CLOSE_PROTOCOL, ServerProtocol, WtConnection
from capnweb.transports.webtransport import (
    WebTransportClient,
    certificate_hash,
    dev_certificate,
    open_webtransport,
)

pytestmark = pytest.mark.timeout(30)

WAIT = 5.0
"""Seconds any single network step may take before the test fails."""


@dataclass(frozen=True)
class Cert:
    cert: Path
    key: Path
    hash: str


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Cert:
    """A fresh development certificate for 127.0.0.1 (never committed: made per run)."""
    folder = tmp_path_factory.mktemp("wt-cert")
    cert, key = folder / "cert.pem", folder / "key.pem"
    return Cert(cert, key, dev_certificate(cert, key))


class Api(RpcTarget):
    """One instance per session."""

    instances: list[Api] = []  # noqa: RUF012 - shared across sessions on purpose

    def __init__(self) -> None:
        self.counters: list[Counter] = []
        self.started = asyncio.Event()
        self.gate = asyncio.Event()
        self.broken: asyncio.Future[BaseException] = asyncio.get_running_loop().create_future()
        self.kept: RpcStub | None = None
        self.session: capnweb.Session | None = None
        self.made = 0
        Api.instances.append(self)

    def square(self, x: int) -> int:
        return x * x

    def numbers(self, n: int) -> list[int]:
        return list(range(1, n + 1))

    def echo(self, value: Any) -> Any:
        return value

    def big(self, n: int) -> str:
        self.made += 1
        return "b" * n

    def serverStats(self) -> list[int]:
        stats = current_session().stats()
        return [stats.imports, stats.exports]

    def makeCounter(self, n: int) -> Counter:
        self.session = current_session()
        c = Counter(n)
        self.counters.append(c)
        return c

    def fail(self, message: str) -> None:
        raise ValueError(message)

    def chunks(self, n: int, size: int) -> AsyncIterator[bytes]:
        async def gen() -> AsyncIterator[bytes]:
            for i in range(n):
                yield bytes([i % 251]) * size

        return gen()

    async def total(self, stream: AsyncIterator[int]) -> int:
        return sum([x async for x in stream])

    async def fill(self, out: capnweb.WritableStream[int], n: int) -> int:
        for i in range(n):
            await out.write(i)
        await out.close()
        return n

    async def slow(self) -> str:
        self.session = current_session()
        self.started.set()
        await self.gate.wait()
        return "done"

    async def callBack(self, cb: RpcStub, x: int) -> Any:
        return await cb(x)

    async def callClient(self, x: int) -> Any:
        return await current_session().main.double(x)

    def hold(self, cb: RpcStub) -> None:
        self.session = current_session()
        self.kept = cb

        def on_broken(e: BaseException) -> None:
            if not self.broken.done():
                self.broken.set_result(e)

        cb.on_broken(on_broken)


class ClientApi(RpcTarget):
    def double(self, x: int) -> int:
        return 2 * x


@pytest.fixture(autouse=True)
def _fresh_instances() -> None:
    Api.instances = []


Connect = Callable[..., capnweb.Connection[RpcStub]]


@asynccontextmanager
async def served(
    kind: str, certs: Cert, **options: Any
) -> AsyncIterator[tuple[capnweb.Server, Connect]]:
    """A server of ``Api`` over WebSocket (``serve()``) or WebTransport, and how to connect."""
    if kind == "ws":
        async with capnweb.serve(Api, **options) as server:
            yield server, lambda **kw: capnweb.connect(server.ws_url, **kw)
        return
    async with capnweb.serve_webtransport(
        Api, certificate=certs.cert, private_key=certs.key, **options
    ) as server:

        def connect(**kw: Any) -> capnweb.Connection[RpcStub]:
            return capnweb.connect(
                server.url, webtransport=True, certificate_hashes=[certs.hash], **kw
            )

        yield server, connect


KINDS = ["ws", "wt"]


async def _started() -> Api:
    """The first session's Api instance, once its slow() call has started."""
    await eventually(lambda: bool(Api.instances))
    await asyncio.wait_for(Api.instances[0].started.wait(), WAIT)
    return Api.instances[0]


def _server_protocols(api: Api) -> set[ServerProtocol]:
    """The QUIC connections of the WebTransport server that runs ``api``'s session."""
    assert api.session is not None
    transport = api.session.transport
    assert isinstance(transport, WtConnection)
    proto = transport._proto
    assert isinstance(proto, ServerProtocol)
    return proto.listener.protocols


def _clean(proto: _quic.H3Protocol) -> bool:
    """Whether a connection holds nothing of its sessions any more."""
    return not (proto._sessions or proto._rpc or proto._watched or proto._ignored)


# -- the session behaviours, over WebSocket and WebTransport


@pytest.mark.parametrize("kind", KINDS)
async def test_calls_pipelining_and_callbacks(kind: str, certs: Cert) -> None:
    async with served(kind, certs) as (_server, connect), connect(main=ClientApi()) as api:
        assert await api.square(7) == 49
        assert await api.makeCounter(10).increment(5) == 15  # one pipelined chain
        assert await api.callBack(lambda x: x + 1, 1) == 2  # the server calls a client function
        assert await api.callClient(21) == 42  # ... and the client's main capability
        counter = api.makeCounter(1)
        assert list(await asyncio.gather(counter.increment(1), counter.increment(2))) == [2, 4]
        counter.dispose()
        assert await api.numbers(3).map(lambda x: api.square(x)) == [1, 4, 9]


@pytest.mark.parametrize("kind", KINDS)
async def test_errors_reach_the_caller_and_the_session_goes_on(kind: str, certs: Cert) -> None:
    async with served(kind, certs) as (_server, connect), connect() as api:
        with pytest.raises(RpcError) as info:
            await api.fail("no luck")
        assert (info.value.name, info.value.message) == ("RangeError", "no luck")  # as JS names it
        with pytest.raises(RpcError, match="nope"):
            await api.nope()
        assert await api.square(3) == 9


@pytest.mark.parametrize("kind", KINDS)
async def test_disposal_leaves_both_sides_clean(kind: str, certs: Cert) -> None:
    async with served(kind, certs) as (server, connect):
        conn = connect()
        api = await conn.open()
        with await api.makeCounter(1) as counter:
            assert await counter.increment(1) == 2
        assert await api.square(2) == 4
        assert conn.stats() == CLEAN
        # seen from a call made after them, every release reached the server
        assert await api.serverStats() == [1, 1]
        assert Api.instances[0].counters[0].disposed == 1
        assert server.live_sessions == 1
        await conn.close()
        await eventually(lambda: server.live_sessions == 0)
        if kind == "wt":
            for proto in _server_protocols(Api.instances[0]):
                await eventually(lambda p=proto: _clean(p))  # type: ignore[misc]


class _Sink(capnweb.WritableStream[int]):
    def __init__(self) -> None:
        self.got: list[Any] = []

    async def write(self, chunk: int) -> None:
        self.got.append(chunk)

    async def close(self) -> None:
        self.got.append("closed")


@pytest.mark.parametrize("kind", KINDS)
async def test_streams_blobs_and_writables_both_ways(kind: str, certs: Cert) -> None:
    async def source() -> AsyncIterator[int]:
        for i in range(100):
            yield i

    async with served(kind, certs) as (_server, connect):
        conn = connect()
        api = await conn.open()
        try:
            stream = await api.chunks(64, 4096)
            assert [c async for c in stream] == [bytes([i % 251]) * 4096 for i in range(64)]
            assert await api.total(source()) == 4950
            sink = _Sink()
            assert await api.fill(sink, 3) == 3
            assert sink.got == [0, 1, 2, "closed"]
            blob = capnweb.Blob(b"x" * 200_000, "text/plain")
            assert await api.echo(blob) == blob
            await eventually(lambda: conn.stats() == CLEAN)
        finally:
            await conn.close()


@pytest.mark.parametrize("kind", KINDS)
async def test_large_messages_both_ways(kind: str, certs: Cert) -> None:
    big = "é" * (1 << 19) + "\n" + "x" * 1000  # 1 MiB of UTF-8, with a newline inside
    async with served(kind, certs) as (_server, connect), connect() as api:
        assert await api.echo(big) == big
        assert await api.square(4) == 16


@pytest.mark.parametrize("kind", KINDS)
async def test_the_server_ending_a_session_rejects_pending_calls(kind: str, certs: Cert) -> None:
    async with served(kind, certs) as (server, connect):
        conn = connect()
        api = await conn.open()
        pending = asyncio.ensure_future(api.slow())
        impl = await _started()
        assert impl.session is not None
        await impl.session.close()
        with pytest.raises(RpcDisconnectedError):
            await asyncio.wait_for(pending, WAIT)
        assert isinstance(conn.session.broken if conn.session else None, RpcDisconnectedError)
        await conn.close()
        await eventually(lambda: server.live_sessions == 0)


@pytest.mark.parametrize("kind", KINDS)
async def test_the_client_leaving_releases_what_the_server_held(kind: str, certs: Cert) -> None:
    async with served(kind, certs) as (server, connect):
        conn = connect()
        api = await conn.open()
        await api.hold(lambda x: x)
        counter = api.makeCounter(3)
        assert await counter.increment(1) == 4
        pending = asyncio.ensure_future(api.slow())
        impl = await _started()
        await conn.close()
        with pytest.raises(RpcDisconnectedError):
            await pending
        assert isinstance(await asyncio.wait_for(impl.broken, WAIT), RpcDisconnectedError)
        await eventually(lambda: impl.counters[0].disposed == 1)
        await eventually(lambda: server.live_sessions == 0)
        impl.gate.set()


@pytest.mark.parametrize("kind", KINDS)
async def test_closing_the_server_ends_its_sessions_promptly(kind: str, certs: Cert) -> None:
    async with served(kind, certs) as (server, connect):
        conn = connect()
        api = await conn.open()
        assert await api.square(3) == 9
        assert isinstance(server, capnweb.Serving)
        await asyncio.wait_for(server.close(), 3)
        assert server.live_sessions == 0
        with pytest.raises(RpcDisconnectedError):
            await asyncio.wait_for(api.square(4), WAIT)
        await conn.close()


# -- WebTransport's own


async def test_the_server_tells_its_address(certs: Cert) -> None:
    async with capnweb.serve_webtransport(
        Api, "127.0.0.1", 0, "/api", certificate=certs.cert, private_key=certs.key
    ) as server:
        assert isinstance(server, capnweb.Server)
        assert server.url == f"https://127.0.0.1:{server.port}/api"
        assert server.sockets[0].getsockname()[1] == server.port
        ended = asyncio.create_task(server.wait_closed())
    await asyncio.wait_for(ended, WAIT)


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
            sock.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback on this machine")
async def test_an_ipv6_server_and_its_url(certs: Cert) -> None:
    async with capnweb.serve_webtransport(
        Api, "::1", certificate=certs.cert, private_key=certs.key
    ) as server:
        assert server.url == f"https://[::1]:{server.port}/rpc"
        async with capnweb.connect(
            server.url, webtransport=True, certificate_hashes=[certs.hash]
        ) as api:
            assert await api.square(8) == 64


async def test_sessions_on_one_connection_run_side_by_side(certs: Cert) -> None:
    async with (
        capnweb.serve_webtransport(Api, certificate=certs.cert, private_key=certs.key) as server,
        await open_webtransport(server.url, certificate_hashes=[certs.hash]) as client,
    ):
        conns = [capnweb.connect(server.url, webtransport=client) for _ in range(5)]
        apis = [await c.open() for c in conns]
        assert client.live_sessions == 5
        await eventually(lambda: server.live_sessions == 5)
        # each session has its own main object, and one waiting call blocks no other
        pending = asyncio.ensure_future(apis[0].slow())
        impl = await _started()
        results = await asyncio.gather(*(api.square(i) for i, api in enumerate(apis[1:])))
        assert list(results) == [0, 1, 4, 9]
        assert len(Api.instances) == 5
        assert len(_server_protocols(impl)) == 1
        # ending one session leaves the others (and the connection) as they were
        await conns[1].close()
        with pytest.raises(RpcDisconnectedError):
            await apis[1].square(1)
        assert await apis[2].square(5) == 25
        impl.gate.set()
        assert await asyncio.wait_for(pending, WAIT) == "done"
        await eventually(lambda: server.live_sessions == 4 and client.live_sessions == 4)
        for conn in conns:
            await conn.close()
        await eventually(lambda: server.live_sessions == 0 and client.live_sessions == 0)
        await eventually(lambda: _clean(client._protocol))
        for proto in _server_protocols(impl):
            await eventually(lambda p=proto: _clean(p))  # type: ignore[misc]
        assert await asyncio.wait_for(_one_call(server.url, client), WAIT) == 36


async def _one_call(url: str, client: WebTransportClient) -> Any:
    async with capnweb.connect(url, webtransport=client) as api:
        return await api.square(6)


async def test_sessions_on_several_connections(certs: Cert) -> None:
    async with capnweb.serve_webtransport(
        Api, certificate=certs.cert, private_key=certs.key
    ) as server:
        conns = [
            capnweb.connect(server.url, webtransport=True, certificate_hashes=[certs.hash])
            for _ in range(4)
        ]
        apis = [await c.open() for c in conns]
        counters = [api.makeCounter(10 * i) for i, api in enumerate(apis)]
        results = await asyncio.gather(*(c.increment(1) for c in counters))
        assert list(results) == [1, 11, 21, 31]
        assert len(_server_protocols(Api.instances[0])) == 4
        await conns[0].close()
        assert await apis[1].square(3) == 9
        for conn in conns[1:]:
            await conn.close()
        await eventually(lambda: server.live_sessions == 0)
        await eventually(lambda: not _server_protocols(Api.instances[0]))  # connections closed


async def test_sessions_per_connection_are_limited(certs: Cert) -> None:
    async with (
        capnweb.serve_webtransport(
            Api, certificate=certs.cert, private_key=certs.key, sessions_per_connection=3
        ) as server,
        await open_webtransport(server.url, certificate_hashes=[certs.hash]) as client,
        await open_webtransport(server.url, certificate_hashes=[certs.hash]) as other,
    ):
        conns = [capnweb.connect(server.url, webtransport=client) for _ in range(3)]
        for conn in conns:
            assert await (await conn.open()).square(2) == 4
        with pytest.raises(RpcDisconnectedError, match="server answered 429"):
            await capnweb.connect(server.url, webtransport=client).open()
        assert await asyncio.wait_for(_one_call(server.url, other), WAIT) == 36  # per connection
        await conns[0].close()
        await eventually(lambda: server.live_sessions == 2)
        assert await asyncio.wait_for(_one_call(server.url, client), WAIT) == 36
        for conn in conns[1:]:
            await conn.close()


async def test_other_paths_and_requests_are_refused(certs: Cert) -> None:
    async with capnweb.serve_webtransport(
        Api, certificate=certs.cert, private_key=certs.key
    ) as server:
        other = server.url.replace("/rpc", "/other")
        with pytest.raises(RpcDisconnectedError, match="server answered 404"):
            await capnweb.connect(other, webtransport=True, certificate_hashes=[certs.hash]).open()
        query = server.url + "?token=abc"  # a query string is the page's to use
        async with capnweb.connect(
            query, webtransport=True, certificate_hashes=[certs.hash]
        ) as api:
            assert await api.square(2) == 4
        assert server.live_sessions == 0 or await _no_sessions(server)


async def _no_sessions(server: capnweb.Server) -> bool:
    await eventually(lambda: server.live_sessions == 0)
    return True


@asynccontextmanager
async def raw_session(
    url: str, client: WebTransportClient
) -> AsyncIterator[tuple[WtConnection, list[str], asyncio.Future[BaseException]]]:
    """A WebTransport session with no RPC session on it: (its connection, the messages it
    received, the reason it ended)."""
    conn = await client.open_session(url)
    received: list[str] = []
    ended: asyncio.Future[BaseException] = asyncio.get_running_loop().create_future()

    def on_end(error: BaseException) -> None:
        if not ended.done():
            ended.set_result(error)

    conn.attach(received.append, on_end)
    try:
        yield conn, received, ended
    finally:
        conn.abort(RpcDisconnectedError("done"))


def write_raw(conn: WtConnection, data: bytes) -> None:
    """Bytes on the session's stream, as they are (no framing added)."""
    conn._quic.send_stream_data(conn.stream_id, data)
    conn._proto.transmit_soon()


def close_capsules(client: WebTransportClient) -> dict[int, tuple[int, str] | None]:
    """What the server's close capsule said, by session (None: no capsule yet)."""
    return {sid: ws.capsules.close for sid, ws in client._protocol._sessions.items()}


@pytest.mark.parametrize(
    ("data", "code", "reason"),
    [
        (b'["push", "\xff"]\n', CLOSE_PROTOCOL, "message is not valid UTF-8"),
        (b"x" * 5000, CLOSE_PROTOCOL, "message larger than 3000 bytes"),
        (b"x" * 2000 + b"\n", CLOSE_ABORT, "exceeds maximum size"),  # the session's limit
        (b'["nonsense"]\n', CLOSE_ABORT, "bad RPC message"),
    ],
    ids=["not-utf8", "line-too-long", "message-too-large", "bad-message"],
)
async def test_a_malformed_frame_ends_its_session_only(
    certs: Cert, data: bytes, code: int, reason: str
) -> None:
    limits = capnweb.Limits(max_message_size=1000)  # lines of at most 3000 bytes
    async with (
        capnweb.serve_webtransport(
            Api, certificate=certs.cert, private_key=certs.key, limits=limits
        ) as server,
        await open_webtransport(server.url, certificate_hashes=[certs.hash]) as client,
        capnweb.connect(server.url, webtransport=client) as api,
    ):
        assert await api.square(2) == 4
        async with raw_session(server.url, client) as (conn, received, ended):
            capsules = client._protocol._sessions[conn.session_id].capsules
            write_raw(conn, data)
            await asyncio.wait_for(ended, WAIT)
            await eventually(lambda: capsules.close is not None)
            assert capsules.close is not None
            assert capsules.close[0] == code
            assert reason in capsules.close[1]
            if code == CLOSE_ABORT:  # the session said why, in an abort message, first
                assert [json.loads(m)[0] for m in received] == ["abort"]
        assert await api.square(3) == 9  # the other session on the connection goes on
        await eventually(lambda: server.live_sessions == 1)


async def test_other_streams_of_a_session_are_refused(certs: Cert) -> None:
    async with (
        capnweb.serve_webtransport(Api, certificate=certs.cert, private_key=certs.key) as server,
        await open_webtransport(server.url, certificate_hashes=[certs.hash]) as client,
    ):
        conn = capnweb.connect(server.url, webtransport=client)
        api = await conn.open()
        assert conn.transport is not None
        session_id = getattr(conn.transport, "session_id")  # noqa: B009
        proto = client._protocol
        seen: list[QuicEvent] = []
        handle = proto.quic_event_received

        def record(event: QuicEvent) -> None:
            seen.append(event)
            handle(event)

        proto.quic_event_received = record  # type: ignore[method-assign]
        assert proto._http is not None
        bidi = proto._http.create_webtransport_stream(session_id)
        uni = proto._http.create_webtransport_stream(session_id, is_unidirectional=True)
        proto._quic.send_stream_data(bidi, b'["push", ["pipeline", 0, ["square"], [2]]]\n')
        proto._quic.send_stream_data(uni, b"hello\n")
        proto.transmit_soon()

        def stopped(stream_id: int) -> bool:
            return any(
                isinstance(e, StopSendingReceived) and e.stream_id == stream_id for e in seen
            )

        await eventually(lambda: stopped(bidi) and stopped(uni))
        assert any(isinstance(e, StreamReset) and e.stream_id == bidi for e in seen)
        assert await api.square(5) == 25  # the session's own stream goes on
        await conn.close()


async def test_a_quic_connection_closed_mid_call_ends_its_sessions(certs: Cert) -> None:
    async with capnweb.serve_webtransport(
        Api, certificate=certs.cert, private_key=certs.key
    ) as server:
        client = await open_webtransport(server.url, certificate_hashes=[certs.hash])
        conn = capnweb.connect(server.url, webtransport=client)
        api = await conn.open()
        await api.hold(lambda x: x)
        assert await api.makeCounter(1).increment(1) == 2
        pending = asyncio.ensure_future(api.slow())
        impl = await _started()
        await client.close()  # QUIC's CONNECTION_CLOSE, the session never closed
        with pytest.raises(RpcDisconnectedError, match="client was closed"):
            await asyncio.wait_for(pending, WAIT)
        assert isinstance(await asyncio.wait_for(impl.broken, WAIT), RpcDisconnectedError)
        await eventually(lambda: impl.counters[0].disposed == 1)
        await eventually(lambda: server.live_sessions == 0)
        impl.gate.set()
        await conn.close()


async def test_a_main_factory_that_raises_ends_that_session_only(
    certs: Cert, caplog: pytest.LogCaptureFixture
) -> None:
    made: list[Api] = []

    def main() -> Api:
        if not made:
            made.append(Api())
            raise RuntimeError("not now")
        return Api()

    async with (
        capnweb.serve_webtransport(main, certificate=certs.cert, private_key=certs.key) as server,
        await open_webtransport(server.url, certificate_hashes=[certs.hash]) as client,
    ):
        async with raw_session(server.url, client) as (conn, _, ended):
            capsules = client._protocol._sessions[conn.session_id].capsules
            await asyncio.wait_for(ended, WAIT)
            await eventually(lambda: capsules.close is not None)
            assert capsules.close == (
                CLOSE_ABORT,
                "The server could not start the session: RuntimeError",
            )
        assert "starting a WebTransport session failed" in caplog.text
        assert await asyncio.wait_for(_one_call(server.url, client), WAIT) == 36


class Silenced:
    """Makes a QUIC connection deaf: the datagrams it receives are dropped until ``resume()``."""

    def __init__(self, proto: _quic.H3Protocol) -> None:
        self.proto = proto
        self.held: list[tuple[bytes, Any]] = []
        self.deaf = True
        self._receive = proto.datagram_received
        proto.datagram_received = self._drop  # type: ignore[method-assign]

    def _drop(self, data: bytes | str, addr: Any) -> None:
        if self.deaf:
            return
        self._receive(data, addr)

    def resume(self) -> None:
        self.deaf = False


async def test_a_client_that_vanishes_is_dropped_after_the_idle_timeout(
    certs: Cert, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_quic, "IDLE_TIMEOUT", 0.5)
    monkeypatch.setattr(_quic, "KEEPALIVE", 0.1)
    async with capnweb.serve_webtransport(
        Api, certificate=certs.cert, private_key=certs.key
    ) as server:
        conn = capnweb.connect(server.url, webtransport=True, certificate_hashes=[certs.hash])
        api = await conn.open()
        await api.hold(lambda x: x)
        pending = asyncio.ensure_future(api.slow())
        impl = await _started()
        # the client is gone without a word: no packet reaches the server any more
        for proto in _server_protocols(impl):
            Silenced(proto)
        error = await asyncio.wait_for(impl.broken, WAIT)
        assert isinstance(error, RpcDisconnectedError)
        await eventually(lambda: server.live_sessions == 0)
        with pytest.raises(RpcDisconnectedError):
            await asyncio.wait_for(pending, WAIT)  # and the client, deaf too, gave up as well
        impl.gate.set()
        await conn.close()


async def test_a_server_that_vanishes_fails_the_pending_calls(
    certs: Cert, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_quic, "IDLE_TIMEOUT", 0.5)
    monkeypatch.setattr(_quic, "KEEPALIVE", 0.1)
    async with (
        capnweb.serve_webtransport(Api, certificate=certs.cert, private_key=certs.key) as server,
        await open_webtransport(server.url, certificate_hashes=[certs.hash]) as client,
    ):
        conn = capnweb.connect(server.url, webtransport=client)
        api = await conn.open()
        pending = asyncio.ensure_future(api.slow())
        impl = await _started()
        Silenced(client._protocol)  # nothing of the server reaches the client any more
        with pytest.raises(RpcDisconnectedError, match="QUIC connection closed"):
            await asyncio.wait_for(pending, WAIT)
        impl.gate.set()
        await conn.close()


async def test_an_idle_session_is_kept_alive(certs: Cert, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_quic, "IDLE_TIMEOUT", 0.4)
    monkeypatch.setattr(_quic, "KEEPALIVE", 0.05)
    async with (
        capnweb.serve_webtransport(Api, certificate=certs.cert, private_key=certs.key) as server,
        await open_webtransport(server.url, certificate_hashes=[certs.hash]) as client,
        capnweb.connect(server.url, webtransport=client) as api,
    ):
        await api.hold(lambda x: x)  # (to know the server's side of the session)
        pings: dict[str, int] = {"client": 0, "server": 0}

        def count(proto: _quic.H3Protocol, side: str) -> None:
            send_ping = proto._quic.send_ping

            def counted(uid: int) -> None:
                pings[side] += 1
                send_ping(uid)

            proto._quic.send_ping = counted  # type: ignore[method-assign]

        count(client._protocol, "client")
        for proto in _server_protocols(Api.instances[0]):
            count(proto, "server")
        # a second at least, over twice the idle timeout: both sides ping
        await eventually(lambda: pings["client"] >= 20 and pings["server"] >= 20)
        assert await api.square(3) == 9


async def test_output_for_a_peer_that_does_not_read_is_bounded(certs: Cert) -> None:
    high, low, size = 65536, 16384, 20000
    limits = capnweb.Limits(send_high_water=high, send_low_water=low)
    async with (
        capnweb.serve_webtransport(
            Api, certificate=certs.cert, private_key=certs.key, limits=limits
        ) as server,
        await open_webtransport(server.url, certificate_hashes=[certs.hash]) as client,
        capnweb.connect(server.url, webtransport=client) as api,
    ):
        assert await api.square(1) == 1
        impl = Api.instances[0]
        assert impl.session is None
        await api.hold(lambda x: x)  # (to know the server's side of the session)
        assert impl.session is not None
        server_conn = impl.session.transport
        assert isinstance(server_conn, WtConnection)
        deaf = Silenced(client._protocol)  # acknowledges nothing: the server's output stays
        first = asyncio.ensure_future(api.big(4 * high))
        await eventually(lambda: server_conn._paused)
        calls = [asyncio.ensure_future(api.big(size)) for _ in range(40)]
        await eventually(lambda: bool(server_conn._held))  # they arrived, and wait unread
        assert impl.made == 1
        assert server_conn._unacked() <= 4 * high + 1000
        deaf.resume()
        assert len(await asyncio.wait_for(first, 20)) == 4 * high
        results = await asyncio.wait_for(asyncio.gather(*calls), 20)
        assert [len(r) for r in results] == [size] * 40
        assert impl.made == 41
        await eventually(lambda: not server_conn._paused)


async def test_the_client_refuses_a_certificate_not_pinned(certs: Cert, tmp_path: Path) -> None:
    other = dev_certificate(tmp_path / "c.pem", tmp_path / "k.pem")
    async with capnweb.serve_webtransport(
        Api, certificate=certs.cert, private_key=certs.key
    ) as server:
        with pytest.raises(RpcDisconnectedError, match="not among the hashes"):
            await open_webtransport(server.url, certificate_hashes=[other])
        with pytest.raises(RpcDisconnectedError, match="connection failed"):
            await open_webtransport(server.url)  # the system's CAs do not know it
        with pytest.raises(RpcDisconnectedError, match="connection failed"):
            await open_webtransport(server.url, ca_file=tmp_path / "c.pem")
        async with (
            await open_webtransport(server.url, ca_file=certs.cert) as client,
            capnweb.connect(server.url, webtransport=client) as api,
        ):
            assert await api.square(3) == 9
        colons = ":".join(certs.hash[i : i + 2] for i in range(0, 64, 2)).upper()
        async with capnweb.connect(
            server.url, webtransport=True, certificate_hashes=[other, colons]
        ) as api:
            assert await api.square(4) == 16
        assert await _no_sessions(server)


async def test_nothing_answering_times_out() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))  # a UDP port that never answers
        port = sock.getsockname()[1]
        with pytest.raises(TimeoutError):
            await open_webtransport(f"https://127.0.0.1:{port}/rpc", timeout=0.3)


def test_connect_checks_its_options() -> None:
    with pytest.raises(ValueError, match="options of webtransport"):
        capnweb.connect("https://127.0.0.1:1/rpc", certificate_hashes=["00" * 32])
    with pytest.raises(ValueError, match="not options of webtransport"):
        capnweb.connect(
            "https://127.0.0.1:1/rpc", webtransport=True, ssl=ssl.create_default_context()
        )


async def test_open_checks_its_arguments() -> None:
    with pytest.raises(ValueError, match="https://"):
        await open_webtransport("http://127.0.0.1:1/rpc")
    with pytest.raises(ValueError, match="SHA-256"):
        await open_webtransport("https://127.0.0.1:1/rpc", certificate_hashes=["abcd"])
    with pytest.raises(TypeError, match="list"):
        await open_webtransport("https://127.0.0.1:1/rpc", certificate_hashes="00" * 32)


# -- the framing, fed by hand


class FakeSender:
    def __init__(self) -> None:
        self._buffer_start = 0
        self._buffer_stop = 0
        self.is_finished = False


class FakeStream:
    def __init__(self) -> None:
        self.sender = FakeSender()


class FakeQuic:
    """What WtConnection uses of aioquic's QuicConnection."""

    def __init__(self) -> None:
        self.written = bytearray()
        self.ended = False
        self.stopped: list[int] = []
        self._streams = {0: FakeStream()}

    def send_stream_data(self, stream_id: int, data: bytes, end_stream: bool = False) -> None:
        self.written += data
        self._streams[0].sender._buffer_stop += len(data)
        self.ended = self.ended or end_stream

    def reset_stream(self, stream_id: int, code: int) -> None:
        pass


class FakeProto:
    """What WtConnection uses of its protocol."""

    _gone = None

    def __init__(self) -> None:
        self._quic = FakeQuic()
        self.closes: list[tuple[int, str]] = []
        self.watched: set[WtConnection] = set()

    def transmit_soon(self) -> None:
        pass

    def watch(self, conn: WtConnection) -> None:
        self.watched.add(conn)

    def unwatch(self, conn: WtConnection) -> None:
        self.watched.discard(conn)

    def stop(self, stream_id: int) -> None:
        self._quic.stopped.append(stream_id)

    def close_session(self, session_id: int, code: int, reason: str) -> None:
        self.closes.append((code, reason))

    def forget(self, conn: WtConnection) -> None:
        pass


def fed(max_line: int = 1000) -> tuple[WtConnection, FakeProto, list[str], list[BaseException]]:
    proto = FakeProto()
    conn = WtConnection(proto, 4, 0, max_line)  # type: ignore[arg-type]
    got: list[str] = []
    ended: list[BaseException] = []
    conn.attach(got.append, ended.append)
    return conn, proto, got, ended


# (the codec escapes lone surrogates: a message is always valid UTF-8)
characters = st.characters(exclude_characters="\n", exclude_categories=["Cs"])
messages = st.lists(st.text(characters, min_size=1), max_size=8)


@settings(max_examples=60, deadline=None)
@given(texts=messages, cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=12))
def test_messages_come_back_whatever_the_chunks(texts: list[str], cuts: list[int]) -> None:
    async def run() -> None:
        conn, _proto, got, ended = fed(max_line=100_000)
        data = b"".join(t.encode() + b"\n" for t in texts)
        start = 0
        for cut in [*sorted(c for c in cuts if c <= len(data)), len(data)]:
            conn.data_received(data[start:cut], False)
            start = cut
        assert got == texts
        assert ended == []

    asyncio.run(run())


async def test_what_is_sent_is_a_line_per_message() -> None:
    conn, proto, _got, _ended = fed()
    conn.send('["pull",1]')
    conn.send_lazy('["release",1,1]')
    conn.send_lazy('["release",2,1]')
    conn.send('["pull",2]')  # the lazy ones go first, in order
    assert bytes(proto._quic.written) == (
        b'["pull",1]\n["release",1,1]\n["release",2,1]\n["pull",2]\n'
    )
    conn.send_lazy('["release",3,1]')
    await eventually(lambda: proto._quic.written.endswith(b'["release",3,1]\n'))


async def test_empty_lines_are_skipped_and_a_message_before_attach_is_kept() -> None:
    proto = FakeProto()
    conn = WtConnection(proto, 4, 0, 100)  # type: ignore[arg-type]
    conn.data_received(b'\n["a"]\n\n["b', False)
    got: list[str] = []
    conn.attach(got.append, lambda e: None)
    conn.data_received(b'"]\n', False)
    assert got == ['["a"]', '["b"]']


@pytest.mark.parametrize(
    ("chunks", "reason"),
    [
        ([b"x" * 101], "larger than 100 bytes"),
        ([b"x" * 60, b"x" * 41], "larger than 100 bytes"),
        ([b"x" * 60, b"x" * 41 + b"\n"], "larger than 100 bytes"),
        ([b"ok\n\xc3", b"\x28\n"], "not valid UTF-8"),
    ],
)
async def test_framing_violations_close_with_code_2(chunks: list[bytes], reason: str) -> None:
    conn, proto, got, ended = fed(max_line=100)
    for chunk in chunks:
        conn.data_received(chunk, False)
    assert len(ended) == 1 and reason in str(ended[0])
    assert proto.closes[0][0] == CLOSE_PROTOCOL and reason in proto.closes[0][1]
    assert proto._quic.ended and proto._quic.stopped == [0]  # FIN sent, the peer stopped
    conn.data_received(b'["more"]\n', False)
    assert got == (["ok"] if got else [])


async def test_a_paused_peer_may_send_one_high_water_and_a_message_more() -> None:
    conn, proto, got, ended = fed(max_line=100)
    conn.limit_output(1000, 200)
    conn.send("y" * 1500)  # unacknowledged: over high water
    assert conn._paused
    conn.data_received(b'["a"]\n' + b"z" * 1000, False)
    assert got == []  # held
    conn.data_received(b"z" * 94, False)
    assert ended == []  # 1100 held: high water plus a message
    conn.data_received(b"z", False)
    assert len(ended) == 1 and "not read" in str(ended[0])
    assert proto.closes[0][0] == CLOSE_PROTOCOL


async def test_held_messages_are_handled_once_the_output_drains() -> None:
    conn, proto, got, ended = fed()
    conn.limit_output(1000, 200)
    conn.send("y" * 1500)
    conn.data_received(b'["a"]\n["b"]\n', True)  # then the peer ends its side
    assert got == [] and ended == []
    sender = proto._quic._streams[0].sender
    sender._buffer_start = sender._buffer_stop - 300  # acknowledged, but not enough
    conn.check()
    assert got == []
    sender._buffer_start = sender._buffer_stop - 200
    conn.check()
    assert got == ['["a"]', '["b"]']
    assert len(ended) == 1 and "closed the WebTransport stream" in str(ended[0])


async def test_a_closing_session_waits_for_its_last_bytes_to_be_acknowledged() -> None:
    conn, proto, _got, _ended = fed()
    closed: list[bool] = []
    conn.on_closed(lambda: closed.append(True))
    conn.send('["x"]')
    conn.abort(RpcError("boom"))
    assert proto.closes == [(CLOSE_ABORT, "boom")] and proto._quic.ended
    with pytest.raises(RpcDisconnectedError):
        conn.send('["y"]')
    conn.check()
    assert not conn.closed
    proto._quic._streams[0].sender.is_finished = True
    conn.check()
    assert conn.closed
    await eventually(lambda: closed == [True])


def test_close_capsules_are_read_in_any_chunks() -> None:
    reason = "bye ✓"
    close = _quic._close_capsule(7, reason)
    other = bytes([0x40, 0x00, 0x03]) + b"abc"  # an unknown capsule (type 0 on two bytes)
    data = other + close
    for cut in range(len(data) + 1):
        capsules = _quic._Capsules()
        assert capsules.feed(data[:cut]) and capsules.feed(data[cut:])
        assert capsules.close == (7, reason)
    huge = _quic._Capsules()
    assert not huge.feed(encode_uint_var(0x2843) + encode_uint_var(5000))


def test_a_long_close_reason_is_cut_on_a_character() -> None:
    capsule = _quic._close_capsule(1, "é" * 600)  # 1200 bytes, over the 1024 allowed
    capsules = _quic._Capsules()
    assert capsules.feed(capsule)
    assert capsules.close == (1, "é" * 512)


# -- certificates


def test_a_development_certificate_is_what_browsers_accept(tmp_path: Path) -> None:
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    digest = dev_certificate(cert_path, key_path, days=13)
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    from cryptography.hazmat.primitives.serialization import Encoding

    assert digest == hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest()
    assert digest == certificate_hash(cert_path)
    public_key = cert.public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    assert public_key.curve.name == "secp256r1"
    assert cert.not_valid_after_utc - cert.not_valid_before_utc <= datetime.timedelta(days=14)
    now = datetime.datetime.now(datetime.UTC)
    assert cert.not_valid_before_utc <= now <= cert.not_valid_after_utc
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert [str(a) for a in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1", "::1"]
    assert key_path.stat().st_mode & 0o077 == 0  # the key is the owner's alone
    with pytest.raises(ValueError, match="14 days"):
        dev_certificate(cert_path, key_path, days=14)


def test_capnweb_cert_writes_the_files_and_prints_the_hash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli_main(["cert", "--out", str(tmp_path), "--days", "3"]) == 0
    out = capsys.readouterr().out
    digest = certificate_hash(tmp_path / "cert.pem")
    assert digest in out
    assert (tmp_path / "key.pem").exists()
    cert = x509.load_pem_x509_certificate((tmp_path / "cert.pem").read_bytes())
    validity = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert datetime.timedelta(days=3) <= validity <= datetime.timedelta(days=3, minutes=6)
    assert cli_main(["cert", "--out", str(tmp_path), "--days", "15"]) == 2


def test_capnweb_imports_without_aioquic() -> None:
    code = (
        "import sys\n"
        "sys.modules['aioquic'] = None\n"
        "import capnweb\n"
        "assert callable(capnweb.serve_webtransport)\n"
        "assert not any(m.startswith('aioquic') and sys.modules[m] for m in sys.modules)\n"
        "print('ok')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.stdout.strip() == "ok", done.stderr
