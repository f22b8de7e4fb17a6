"""Hostile HTTP peers against ``serve()`` and ``mount()``, over real sockets on 127.0.0.1.

- a batch that can never finish: released when its client leaves, ended by ``batch_timeout``;
- batch bodies too large (announced, or chunked without end), at the limit, and a large one
  running while another connection makes calls;
- request heads aiohttp refuses, refused the same way by ``serve()`` (a differential test);
- a client resetting a connection the server had stopped reading, with requests still queued;
- the listen backlog, and a server out of file descriptors backing off.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import json
import logging
import os
import socket
import struct
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from helpers import eventually, upgrade_request

import capnweb
from capnweb import Limits, RpcError, RpcTarget

WAIT = 5.0
"""Seconds a single network step may take before the test fails."""

HANG = b'["push",["promise",-1]]\n["pull",1]'
"""A batch that waits for a promise of the client: no batch can ever resolve it."""

BODY49 = b'["push",["pipeline",0,["square"],[7]]]\n["pull",1]'
"""A batch body of 49 bytes (answered ``["resolve",1,49]``)."""

SQUARE = b'["push",["pipeline",0,["square"],[3]]]'


class Gate:
    """Lets a test hold a call on the server: ``started`` is set when it runs, and it returns
    once ``release`` is set."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.release = asyncio.Event()


class Main(RpcTarget):
    def __init__(self, gate: Gate | None = None) -> None:
        self.gate = gate or Gate()

    def square(self, x: int) -> int:
        return x * x

    def echo(self, value: Any) -> Any:
        return value

    async def hang(self) -> None:
        await asyncio.Event().wait()

    async def slow(self) -> str:
        self.gate.started.set()
        await self.gate.release.wait()
        return "done"


def lines(*frames: Any) -> bytes:
    """Client frames as a batch body."""
    return "\n".join(json.dumps(f) for f in frames).encode()


def post(body: bytes) -> bytes:
    """A batch POST of /rpc as a client sends it."""
    head = (
        "POST /rpc HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain;charset=UTF-8\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


Response = tuple[int, dict[str, str], bytes]


def parse_response(data: bytes | bytearray) -> tuple[Response, int] | None:
    """The first complete HTTP response in ``data`` and its length (None if incomplete; a
    response without Content-Length only counts once the connection ended: see Peer)."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return None
    status_line, *fields = bytes(data[:end]).decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (f.partition(":") for f in fields)}
    status = int(status_line.split(" ")[1])
    if status < 200 or status in (204, 304):
        return (status, headers, b""), end + 4
    if "content-length" not in headers:
        return None
    stop = end + 4 + int(headers["content-length"])
    if len(data) < stop:
        return None
    return (status, headers, bytes(data[end + 4 : stop])), stop


class Peer(asyncio.Protocol):
    """A raw client connection that keeps every byte it receives, even those that arrived
    just before a reset (a StreamReader drops them once it has an exception)."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.ended = False  # EOF or connection lost
        self.error: BaseException | None = None
        self.transport: asyncio.Transport | None = None
        self._changed = asyncio.Event()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.data += data
        self._changed.set()

    def eof_received(self) -> bool:
        self.ended = True
        self._changed.set()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.ended = True
        self.error = exc
        self._changed.set()

    def write(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)

    async def until(self, condition: Callable[[], bool], timeout: float) -> bool:
        """Wait until ``condition()`` holds or the connection ended; whether it holds."""

        async def wait() -> None:
            while not condition() and not self.ended:
                self._changed.clear()
                await self._changed.wait()

        with suppress(TimeoutError):
            await asyncio.wait_for(wait(), timeout)
        return condition()

    async def response(self, timeout: float = WAIT) -> Response:
        """The first response on the connection (fails if none comes within ``timeout``)."""
        if not await self.until(lambda: parse_response(self.data) is not None, timeout):
            if self.ended and self.data.find(b"\r\n\r\n") > 0:  # ended by the connection
                end = self.data.find(b"\r\n\r\n")
                status = int(bytes(self.data[:end]).split(b" ")[1])
                return status, {}, bytes(self.data[end + 4 :])
            state = f"ended ({self.error!r})" if self.ended else f"no answer in {timeout} s"
            raise AssertionError(f"{state}; received {bytes(self.data[:300])!r}")
        parsed = parse_response(self.data)
        assert parsed is not None
        return parsed[0]

    async def status(self, timeout: float = WAIT) -> int | str:
        """The status code of the first response, or how the connection ended without one."""
        if await self.until(lambda: b"\r\n" in self.data, timeout):
            return int(bytes(self.data).split(b" ")[1])
        if not self.ended:
            return "no answer"
        return f"closed ({type(self.error).__name__})" if self.error else "closed"

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def reset(self) -> None:
        """Close with an RST (SO_LINGER 0) instead of a FIN."""
        assert self.transport is not None
        sock = self.transport.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.transport.abort()

    @property
    def local_port(self) -> int:
        assert self.transport is not None
        return int(self.transport.get_extra_info("sockname")[1])


@asynccontextmanager
async def peer(port: int) -> AsyncIterator[Peer]:
    _, p = await asyncio.get_running_loop().create_connection(Peer, "127.0.0.1", port)
    try:
        yield p
    finally:
        p.close()


async def exchange(port: int, request: bytes, timeout: float = WAIT) -> Response:
    """Send ``request`` on a new connection and return the first response."""
    async with peer(port) as p:
        p.write(request)
        return await p.response(timeout)


def answers(body: bytes) -> list[Any]:
    return [json.loads(line) for line in body.split(b"\n")] if body else []


@asynccontextmanager
async def aiohttp_site(app: web.Application) -> AsyncIterator[int]:
    """``app`` served by aiohttp alone on 127.0.0.1 (AppRunner and TCPSite); yields the port."""
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def released(endpoint: capnweb.Endpoint, tasks: set[asyncio.Task[Any]], fds: int) -> None:
    """Wait until the endpoint has no session, no asyncio task is left but ``tasks`` (and the
    one polling), and the process is back to ``fds`` descriptors."""

    def new_tasks() -> set[asyncio.Task[Any]]:
        return asyncio.all_tasks() - tasks - {asyncio.current_task()}

    def clean() -> bool:
        return not endpoint.sessions and not new_tasks() and open_fds() <= fds

    with suppress(TimeoutError):
        await eventually(clean)
    assert clean(), (
        f"after {WAIT} s: {len(endpoint.sessions)} sessions live, "
        f"{len(new_tasks())} tasks more than before, {open_fds()} fds (was {fds})"
    )


def errors_logged(caplog: pytest.LogCaptureFixture, *loggers: str) -> list[str]:
    """The records of ERROR or above from ``loggers`` (and their children), as text."""
    gc.collect()  # a task that failed unseen is reported when it is collected
    return [
        f"{r.name}: {r.getMessage()} {r.exc_info[1]!r}" if r.exc_info else r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.ERROR and r.name.partition(".")[0] in loggers
    ]


def leave(p: Peer, ending: str) -> None:
    if ending == "reset":
        p.reset()
    else:
        p.close()


# -- 1. A batch that never finishes


async def leave_hanging_batches(port: int, endpoint: capnweb.Endpoint, n: int, ending: str) -> None:
    """Send ``n`` batches that cannot finish, each on its own connection; once they all run,
    leave (``ending``: "close" sends a FIN, "reset" an RST)."""
    peers: list[Peer] = []
    loop = asyncio.get_running_loop()
    for _ in range(n):
        _, p = await loop.create_connection(Peer, "127.0.0.1", port)
        p.write(post(HANG))
        peers.append(p)
    await eventually(lambda: len(endpoint.sessions) >= n)  # every batch is running
    for p in peers:
        leave(p, ending)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("ending", ["close", "reset"])
async def test_a_batch_whose_client_left_releases_everything(
    ending: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    async with capnweb.serve(Main) as srv:
        tasks, fds = asyncio.all_tasks(), open_fds()
        await leave_hanging_batches(srv.port, srv.endpoint, 1, ending)
        await released(srv.endpoint, tasks, fds)
        # many of them: nothing accumulates
        await leave_hanging_batches(srv.port, srv.endpoint, 200, ending)
        await released(srv.endpoint, tasks, fds)
        # and the server still answers
        status, _, body = await exchange(srv.port, post(BODY49))
        assert (status, body) == (200, b'["resolve",1,49]')
    # a client leaving is no error
    errors = errors_logged(caplog, "asyncio", "capnweb", "aiohttp")
    assert not errors, f"{len(errors)} errors logged, the first: {errors[0]}"


@pytest.mark.timeout(30)
@pytest.mark.parametrize("ending", ["close", "reset"])
async def test_a_mounted_batch_whose_client_left_releases_everything(
    ending: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    app = web.Application()
    endpoint = capnweb.mount(app, "/rpc", Main)
    try:
        async with aiohttp_site(app) as port:
            tasks, fds = asyncio.all_tasks(), open_fds()
            await leave_hanging_batches(port, endpoint, 1, ending)
            await released(endpoint, tasks, fds)
            await leave_hanging_batches(port, endpoint, 200, ending)
            await released(endpoint, tasks, fds)
            status, _, body = await exchange(port, post(BODY49))
            assert (status, body) == (200, b'["resolve",1,49]')
    finally:
        endpoint.shutdown()  # whatever leaked, so that the runner can stop
    errors = errors_logged(caplog, "asyncio", "capnweb", "aiohttp")
    assert not errors, f"{len(errors)} errors logged, the first: {errors[0]}"


@pytest.mark.timeout(20)
async def test_batch_timeout_answers_what_was_resolved_then_aborts() -> None:
    async with capnweb.serve(Main, limits=Limits(batch_timeout=0.5)) as srv:
        body = lines(
            ["push", ["pipeline", 0, ["square"], [3]]],
            ["pull", 1],
            ["push", ["promise", -1]],  # never resolved: the client of a batch cannot answer
            ["pull", 2],
        )
        start = time.monotonic()
        status, _, text = await exchange(srv.port, post(body), timeout=WAIT)
        elapsed = time.monotonic() - start
        assert status == 200
        assert 0.4 < elapsed < 2.0, elapsed
        *resolved, last = answers(text)
        assert resolved == [["resolve", 1, 9]]
        assert last[0] == "abort" and last[1][0] == "error", last
        assert "batch_timeout" in last[1][2], last
        await eventually(lambda: not srv.endpoint.sessions)


@pytest.mark.timeout(20)
async def test_batch_timeout_rejects_the_python_batch_clients_call() -> None:
    async with (
        capnweb.serve(Main, limits=Limits(batch_timeout=0.5)) as srv,
        # an HTTP client of our own only to bound the test if the server never answers
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=WAIT)) as http,
    ):
        start = time.monotonic()
        async with capnweb.connect(srv.url, http=http) as api:
            results: tuple[Any, Any] = await asyncio.gather(
                api.square(3), api.hang(), return_exceptions=True
            )
        square, hung = results
        elapsed = time.monotonic() - start
        assert isinstance(hung, RpcError), hung
        assert "batch_timeout" in str(hung), hung
        assert square == 9
        assert elapsed < 2.0, elapsed
        await eventually(lambda: not srv.endpoint.sessions)


# -- 3. Large batch bodies

LIMIT = 65536


def announced_post(*fields: str) -> bytes:
    head = ["POST /rpc HTTP/1.1", "Host: 127.0.0.1", "Content-Type: text/plain;charset=UTF-8"]
    return ("\r\n".join([*head, *fields]) + "\r\n\r\n").encode()


@pytest.mark.timeout(20)
@pytest.mark.parametrize("limit", [LIMIT, None], ids=["max_batch_size=64KiB", "default"])
async def test_a_batch_announced_too_large_gets_413_without_sending_its_body(
    limit: int | None,
) -> None:
    limits = Limits() if limit is None else Limits(max_batch_size=limit)
    async with capnweb.serve(Main, limits=limits) as srv, peer(srv.port) as p:
        start = time.monotonic()
        p.write(announced_post("Content-Length: 100000000"))
        status, _, _ = await p.response(timeout=2.0)
        assert status == 413
        assert time.monotonic() - start < 1.0
        assert await p.until(lambda: p.ended, 2.0), "the connection stays open"


@pytest.mark.timeout(20)
async def test_a_chunked_batch_is_cut_off_with_413_past_the_limit() -> None:
    srv = await capnweb.serve(Main, limits=Limits(max_batch_size=LIMIT))
    try:
        async with peer(srv.port) as p:
            p.write(announced_post("Transfer-Encoding: chunked"))
            chunk = b"%x\r\n%s\r\n" % (4096, b" " * 4096)
            sent = 0
            while b"\r\n\r\n" not in p.data and not p.ended and sent < 4 << 20:
                p.write(chunk)
                sent += 4096
                await asyncio.sleep(0)  # the server's turn to read (not a synchronisation)
            status, _, _ = await p.response(timeout=2.0)
            assert status == 413
            assert sent < 1 << 20, f"{sent} bytes were taken before the answer"
            # cut off: the server does not go on reading a body it refused
            keep_sending = asyncio.ensure_future(send_until_ended(p, chunk))
            try:
                assert await p.until(lambda: p.ended, 2.0), "the connection stays open"
            finally:
                keep_sending.cancel()
    finally:
        closing = asyncio.ensure_future(srv.close())
        await asyncio.wait({closing}, timeout=3.0)
        if not closing.done():
            closing.cancel()
            await asyncio.gather(closing, return_exceptions=True)
    # nor does the refused request hold the server's closing up
    assert not closing.cancelled(), "Server.close() took over 3 s"


async def send_until_ended(p: Peer, chunk: bytes) -> None:
    while not p.ended:
        p.write(chunk)
        await asyncio.sleep(0.01)  # a client sending at a steady pace (not a synchronisation)


@pytest.mark.timeout(20)
async def test_a_batch_at_the_limit_is_answered_and_one_byte_more_is_not() -> None:
    def echo_body(size: int) -> tuple[bytes, str]:
        empty = lines(["push", ["pipeline", 0, ["echo"], [""]]], ["pull", 1])
        filler = "x" * (size - len(empty))
        return lines(["push", ["pipeline", 0, ["echo"], [filler]]], ["pull", 1]), filler

    async with capnweb.serve(Main, limits=Limits(max_batch_size=LIMIT)) as srv:
        body, filler = echo_body(LIMIT)
        assert len(body) == LIMIT
        status, _, text = await exchange(srv.port, post(body))
        assert status == 200
        assert answers(text) == [["resolve", 1, filler]]
        body, _ = echo_body(LIMIT + 1)
        status, _, _ = await exchange(srv.port, post(body))
        assert status == 413


@pytest.mark.timeout(40)
async def test_a_large_batch_does_not_stall_other_connections() -> None:
    pair = len(SQUARE) + len(b'\n["pull",12345]\n')
    n = (4 << 20) // pair
    body = b"\n".join(b'%s\n["pull",%d]' % (SQUARE, i + 1) for i in range(n))
    async with capnweb.serve(Main) as srv, capnweb.connect(srv.ws_url) as api:
        assert await api.square(2) == 4
        async with peer(srv.port) as p:
            p.write(post(body))
            big = asyncio.ensure_future(p.response(timeout=30.0))
            # The server runs in this thread: the CPU it spends between two of the other
            # client's answers is what a stall costs, whatever else the machine is doing
            # (wall time would count the other processes too).
            worst, calls = 0.0, 0
            while not big.done():
                start = time.thread_time()
                assert await api.square(calls) == calls * calls
                worst = max(worst, time.thread_time() - start)
                calls += 1
            status, _, text = await big
    assert status == 200
    got = answers(text)
    assert len(got) == n
    assert sorted(a[1] for a in got) == list(range(1, n + 1))
    assert all(a[0] == "resolve" and a[2] == 9 for a in got)
    assert calls > 10, "the calls did not overlap the batch"
    assert worst < 0.25, f"a call waited for {worst:.3f} s of CPU (over {calls} calls)"


# -- 6. Request heads: serve() answers exactly as aiohttp alone


def request_head(
    kind: str,
    *,
    target: bytes = b"/rpc",
    hosts: tuple[bytes, ...] = (b"127.0.0.1",),
    length: bytes | None = None,
    fields: tuple[bytes, ...] = (),
) -> bytes:
    """A batch POST ("post") or WebSocket upgrade ("upgrade") of ``target``. ``length``: the
    Content-Length value (the 49-byte body follows; a POST always has one)."""
    if kind == "post":
        start = b"POST " + target + b" HTTP/1.1"
        own = [b"Content-Type: text/plain;charset=UTF-8"]
        length = b"49" if length is None else length
    else:
        start = b"GET " + target + b" HTTP/1.1"
        own = upgrade_request().split(b"\r\n")[2:6]  # Upgrade ... Sec-WebSocket-Version
    head = [start, *(b"Host: " + h for h in hosts), *own, *fields]
    if length is not None:
        head.append(b"Content-Length: " + length)
    return b"\r\n".join(head) + b"\r\n\r\n" + (BODY49 if length is not None else b"")


def bad_heads(kind: str) -> list[tuple[str, bytes]]:
    cases = [
        (f"{name} in the request-target", request_head(kind, target=b"/rpc?a" + c + b"b"))
        for name, c in [
            ("bare LF", b"\n"),
            ("CR", b"\r"),
            ("NUL", b"\x00"),
            ("TAB", b"\t"),
            ("DEL", b"\x7f"),
        ]
    ]
    cases += [
        ("Content-Length: 49\\xa0", request_head(kind, length=b"49\xa0")),
        ("Content-Length: \\x8549", request_head(kind, length=b"\x8549")),
        ("no Host", request_head(kind, hosts=())),
        ("two Host", request_head(kind, hosts=(b"127.0.0.1", b"example.com"))),
        ("head over 16 KiB", request_head(kind, fields=(b"X-Big: " + b"x" * 17000,))),
        (
            "10,000 header fields",
            request_head(kind, fields=tuple(b"X-F%d: v" % i for i in range(10_000))),
        ),
    ]
    return cases


async def first_status(port: int, request: bytes) -> tuple[int | str, float]:
    """The status of the answer to ``request`` (sent in one write) and how long it took."""
    async with peer(port) as p:
        start = time.monotonic()
        p.write(request)
        status = await p.status(timeout=3.0)
        return status, time.monotonic() - start


@pytest.mark.timeout(40)
@pytest.mark.parametrize("kind", ["post", "upgrade"])
async def test_request_heads_aiohttp_refuses_are_refused_alike(kind: str) -> None:
    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    plain = web.Application()
    plain.router.add_route("*", "/rpc", ok)
    cases = bad_heads(kind)
    async with capnweb.serve(Main) as srv, aiohttp_site(plain) as plain_port:
        ours = await asyncio.gather(*(first_status(srv.port, r) for _, r in cases))
        theirs = await asyncio.gather(*(first_status(plain_port, r) for _, r in cases))
    differ = [
        f"{name}: serve() {o[0]!r}, aiohttp {t[0]!r}"
        for (name, _), o, t in zip(cases, ours, theirs, strict=True)
        if o[0] != t[0]
    ]
    assert not differ, "\n".join(differ)
    assert all(t[0] == 400 for t in theirs), theirs  # what aiohttp alone answers
    many_fields = ours[-1][1]
    assert many_fields < 1.0, f"10,000 header fields answered in {many_fields:.2f} s"


# -- 9. A client resetting while the server has stopped reading


def server_unread(server_port: int, client_port: int) -> int:
    """Bytes the server's side of a 127.0.0.1 connection has received and not yet read."""
    local = f"0100007F:{server_port:04X}"
    remote = f"0100007F:{client_port:04X}"
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if fields[1] == local and fields[2] == remote:
                return int(fields[4].split(":")[1], 16)
    raise AssertionError("no such connection")


@pytest.mark.timeout(20)
async def test_a_reset_while_reading_is_paused_leaves_no_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR)
    gate = Gate()
    async with capnweb.serve(lambda: Main(gate)) as srv:
        async with peer(srv.port) as p:
            p.write(post(lines(["push", ["pipeline", 0, ["slow"], []]], ["pull", 1])))
            await asyncio.wait_for(gate.started.wait(), WAIT)
            # requests sent ahead of the answer, more than a head's worth, some for aiohttp
            ahead = b"GET /elsewhere HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" * 800
            assert len(ahead) > 32768
            p.write(ahead)
            port = p.local_port
            # the server has read them, or enough of them to have stopped reading
            await eventually(lambda: server_unread(srv.port, port) < len(ahead) - 20000)
            p.reset()
        gate.release.set()
        # the server keeps answering others
        async with capnweb.connect(srv.url) as api:
            assert await asyncio.wait_for(api.square(5), WAIT) == 25
        status, _, text = await exchange(srv.port, post(BODY49))
        assert (status, text) == (200, b'["resolve",1,49]')
        await eventually(lambda: not srv.endpoint.sessions)
    errors = errors_logged(caplog, "asyncio", "capnweb")
    assert not errors, "\n".join(errors)


# -- 10. Backlog, and running out of descriptors

CONNECTIONS = 250


async def connected(sock: socket.socket) -> None:
    loop = asyncio.get_running_loop()
    writable: asyncio.Future[None] = loop.create_future()

    def ready() -> None:
        if not writable.done():
            writable.set_result(None)

    loop.add_writer(sock.fileno(), ready)
    try:
        await writable
    finally:
        loop.remove_writer(sock.fileno())
    assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0


async def batch_on(sock: socket.socket) -> bytes:
    loop = asyncio.get_running_loop()
    await loop.sock_sendall(sock, post(BODY49))
    data = b""
    while parse_response(data) is None:
        chunk = await loop.sock_recv(sock, 65536)
        assert chunk, f"closed after {data!r}"
        data += chunk
    parsed = parse_response(data)
    assert parsed is not None
    return parsed[0][2]


@pytest.mark.timeout(5)
def test_serve_takes_a_backlog_of_1024_by_default() -> None:
    backlog = inspect.signature(capnweb.serve).parameters.get("backlog")
    assert backlog is not None, "serve() has no backlog parameter"
    assert backlog.default == 1024


@pytest.mark.timeout(30)
async def test_many_connections_at_once_are_all_accepted_without_a_syn_retransmit() -> None:
    async with capnweb.serve(Main) as srv:
        socks: list[socket.socket] = []
        try:
            start = time.monotonic()
            # all connects before the server gets a turn to accept any of them
            for _ in range(CONNECTIONS):
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                socks.append(sock)
                sock.setblocking(False)
                sock.connect_ex(("127.0.0.1", srv.port))
            done: list[float] = []

            async def one(sock: socket.socket) -> float:
                await connected(sock)
                done.append(time.monotonic() - start)
                assert await batch_on(sock) == b'["resolve",1,49]'
                return time.monotonic() - start

            answered = await asyncio.wait_for(asyncio.gather(*(one(s) for s in socks)), 10)
        finally:
            for sock in socks:
                sock.close()
    assert len(answered) == CONNECTIONS
    assert max(done) < 0.5, f"the slowest connect took {max(done):.2f} s"
    assert max(answered) < 3.0, f"the slowest answer took {max(answered):.2f} s"


FD_SERVER = """
import asyncio, resource
resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
import capnweb

class Main(capnweb.RpcTarget):
    def square(self, x):
        return x * x

async def main():
    async with capnweb.serve(Main) as srv:
        print(srv.port, flush=True)
        await asyncio.Event().wait()

asyncio.run(main())
"""


WINDOW = 3.0
"""Seconds the CPU of a server out of descriptors is measured, from one second after it ran
out. A loop retrying accept() once for each of its backlog's failures spends little at first,
then more at each retry: about 1 s of CPU in this window with a backlog of 1024."""


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.timeout(30)
async def test_out_of_descriptors_the_server_backs_off_then_recovers(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    with open(tmp_path / "stderr", "wb") as stderr:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", FD_SERVER, cwd=root, stdout=asyncio.subprocess.PIPE, stderr=stderr
        )
    socks: list[socket.socket] = []
    try:
        assert proc.stdout is not None
        port = int(await asyncio.wait_for(proc.stdout.readline(), 20))
        for _ in range(100):  # more than its 64 descriptors, fewer than a backlog of 100
            socks.append(socket.create_connection(("127.0.0.1", port), timeout=2))
        fd_dir = f"/proc/{proc.pid}/fd"
        with suppress(TimeoutError):
            await eventually(lambda: len(os.listdir(fd_dir)) >= 64)
        assert len(os.listdir(fd_dir)) >= 64, "the server did not run out of descriptors"
        await asyncio.sleep(1.0)  # its first retry (not a synchronisation: see WINDOW)
        before = cpu_seconds(proc.pid)
        await asyncio.sleep(WINDOW)  # a window of measurement, not a synchronisation
        spent = cpu_seconds(proc.pid) - before
        for sock in socks:
            sock.close()
        socks.clear()
        status, _, body = await exchange(port, post(BODY49), timeout=WAIT)
        assert (status, body) == (200, b'["resolve",1,49]')
        logged = (tmp_path / "stderr").stat().st_size
        assert spent < 0.5, f"{spent:.2f} s of CPU in {WINDOW} s out of fds ({logged} B logged)"
    finally:
        for sock in socks:
            sock.close()
        if proc.returncode is None:
            proc.kill()
        await proc.wait()
