"""Hostile peers against running servers: what one connection may cost everybody else.

- map(): a few hundred bytes of nested ``remap`` instructions must not stall the server's
  loop for seconds and cost it hundreds of megabytes (``Limits.max_map_work`` per message,
  ``Limits.max_session_map_work`` per session). The amplification is measured from outside:
  the server runs in a process of its own, another client times its calls meanwhile, and the
  server's peak RSS is read from ``/proc``.
- A peer that never reads: the server stops reading it once its unsent output passes
  ``Limits.send_high_water`` (``serve()``'s WebSocket and pipelined batch connections,
  ``serve_websocket()``), and nothing is lost once the peer reads again.
- ``release``/``pull`` whose id or count is not a positive integer is a protocol error.

Messages are built from the wire format (see docs and capnweb/_map.py): in a ``remap``'s
instructions ``["pipeline", k]`` is variable ``k``: 0 the element, ``-k`` capture ``k-1``.
"""

from __future__ import annotations

import asyncio
import fcntl
import gc
import json
import os
import socket
import struct
import sys
import termios
import time
import tracemalloc
import weakref
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from helpers import Counter, ScriptedPeer, eventually, upgrade_request

import capnweb
from capnweb import Limits, RpcError, RpcProtocolError, RpcTarget
from capnweb.transports._ws import OP_CLOSE, OP_TEXT, frame

pytestmark = [
    pytest.mark.timeout(30),
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc and FIONREAD"),
]

WAIT = 5.0
"""Seconds any single network step may take before the test fails."""

ROOT = Path(__file__).resolve().parents[2]

MiB = 1 << 20
KiB = 1 << 10


def dumps(msg: Any) -> str:
    return json.dumps(msg, separators=(",", ":"))


def call(export: int, method: str, *args: Any) -> list[str]:
    """A push of ``main.method(*args)`` (the peer's ``export``-th push) and its pull."""
    return [dumps(["push", ["pipeline", 0, [method], list(args)]]), dumps(["pull", export])]


def error_text(msg: Any) -> str:
    """The message of the error a ``reject``/``abort`` frame carries ("" for other frames)."""
    if type(msg) is list and msg and msg[0] in ("reject", "abort"):
        error = msg[-1]
        if type(error) is list and len(error) >= 3 and error[0] == "error":
            return str(error[2])
    return ""


# -- a WebSocket / HTTP client written by hand, over a socket it reads only when told to


class RawPeer:
    """A client over a plain non-blocking socket: it sends any bytes, and reads nothing until
    a ``read_*`` method is awaited (so the kernel's buffers are all the peer ever takes)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.loop = asyncio.get_running_loop()
        self.buf = bytearray()
        self.close_code: int | None = None  # of the server's close frame, once it came

    @classmethod
    @asynccontextmanager
    async def open(cls, port: int, *, rcvbuf: int | None = None) -> AsyncIterator[RawPeer]:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        if rcvbuf is not None:  # before connecting: the window is never scaled up
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        try:
            loop = asyncio.get_running_loop()
            await asyncio.wait_for(loop.sock_connect(sock, ("127.0.0.1", port)), WAIT)
            yield cls(sock)
        finally:
            sock.close()

    async def send(self, data: bytes) -> None:
        await asyncio.wait_for(self.loop.sock_sendall(self.sock, data), WAIT)

    async def send_messages(self, *messages: str) -> None:
        """Text frames, masked as a client's, in one write."""
        await self.send(b"".join(frame(OP_TEXT, m.encode(), True) for m in messages))

    async def _fill(self, n: int) -> None:
        while len(self.buf) < n:
            chunk = await asyncio.wait_for(self.loop.sock_recv(self.sock, 1 << 16), WAIT)
            if not chunk:
                raise EOFError("the server closed the connection")
            self.buf += chunk

    async def read_exactly(self, n: int) -> bytes:
        await self._fill(n)
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    async def read_until(self, separator: bytes) -> bytes:
        while (end := self.buf.find(separator)) < 0:
            await self._fill(len(self.buf) + 1)
        return await self.read_exactly(end + len(separator))

    async def upgrade(self, path: str) -> None:
        await self.send(upgrade_request(path))
        head = await self.read_until(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101 "), head

    async def read_frame(self) -> tuple[int, bytes]:
        """The server's next frame (unmasked): (opcode, payload)."""
        b0, b1 = await self.read_exactly(2)
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", await self.read_exactly(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", await self.read_exactly(8))[0]
        return b0 & 0x0F, await self.read_exactly(n)

    async def read_message(self) -> Any:
        """The next text message, parsed; None once the server's close frame came instead."""
        while True:
            opcode, payload = await self.read_frame()
            if opcode == OP_TEXT:
                return json.loads(payload)
            if opcode == OP_CLOSE:
                self.close_code = struct.unpack_from("!H", payload)[0] if payload else 1005
                return None

    async def read_close(self) -> int | None:
        """Skip to the server's close frame; its code."""
        while await self.read_message() is not None:
            pass
        return self.close_code

    async def read_response(self) -> tuple[bytes, bytes]:
        """The next HTTP response: (status line, body)."""
        head = await self.read_until(b"\r\n\r\n")
        status, *lines = head.split(b"\r\n")
        length = 0
        for line in lines:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return status, await self.read_exactly(length)


def post(path: str, body: str) -> bytes:
    """A batch POST as a client sends it on a keep-alive connection."""
    data = body.encode()
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain;charset=UTF-8\r\n"
        f"Content-Length: {len(data)}\r\n\r\n"
    ).encode() + data


# -- measuring the server's side of a connection (same process)


def server_side(client: socket.socket) -> asyncio.Transport | None:
    """The server's transport for the connection whose client end is ``client``."""
    name = client.getsockname()
    for obj in gc.get_objects():
        if (
            isinstance(obj, asyncio.Transport)
            and not obj.is_closing()
            and obj.get_extra_info("peername") == name
        ):
            return obj
    return None


async def server_end(client: socket.socket) -> asyncio.Transport:
    found: list[asyncio.Transport] = []

    def look() -> bool:
        transport = server_side(client)
        if transport is not None:
            found.append(transport)
        return bool(found)

    await eventually(look)
    return found[0]


def unread(transport: asyncio.Transport) -> int:
    """Bytes received on the server's socket that the server has not read yet (FIONREAD)."""
    fd = transport.get_extra_info("socket").fileno()
    return int(struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0" * 4))[0])


def caught_up(transport: asyncio.Transport) -> bool:
    """The server has read what we sent, or does not read us at all any more."""
    return not transport.is_reading() or unread(transport) == 0


class Peak:
    """Samples ``measure()`` at every turn of the event loop; ``max`` is the largest value."""

    def __init__(self, measure: Callable[[], int]) -> None:
        self.measure = measure
        self.max = 0
        self._loop = asyncio.get_running_loop()
        self._handle = self._loop.call_soon(self._tick)

    def _tick(self) -> None:
        self.max = max(self.max, self.measure())
        self._handle = self._loop.call_soon(self._tick)

    def stop(self) -> None:
        self._handle.cancel()


@contextmanager
def traced() -> Iterator[None]:
    """Trace allocations meanwhile (see :func:`held`)."""
    tracemalloc.start()
    try:
        yield
    finally:
        tracemalloc.stop()


async def held() -> int:
    """Bytes allocated since tracing started that are still reachable (garbage collected,
    and the releases that collecting schedules run)."""
    for _ in range(3):
        gc.collect()
        await asyncio.sleep(0)
    return tracemalloc.get_traced_memory()[0]


async def until_still(state: Callable[[], object], turns: int = 200) -> None:
    """Let the loop turn until ``state()`` has not changed for ``turns`` turns in a row (the
    server, in this process, has done whatever it was going to do)."""

    async def run() -> None:
        last: object = None
        quiet = 0
        while quiet < turns:
            now = state()
            quiet = quiet + 1 if now == last else 0
            last = now
            await asyncio.sleep(0)

    await asyncio.wait_for(run(), WAIT)


# =============================================================================================
# 2. map() amplification
# =============================================================================================

LIST = dumps(["push", [[0] * 60]])
"""Export 1: a list of 60 zeros (escaped as ``[[...]]``)."""

CUBE = dumps(
    [
        "push",
        [
            "remap",
            1,
            [],
            [["import", 1]],  # the list again, as capture 0 (variable -1)
            [["remap", -1, [], [["import", -1]], [["remap", -1, [], [], [["pipeline", 0]]]]]],
        ],
    ]
)
"""Export 2: for each element of the list, for each element of the list, map the list: 60**3 =
216,000 applications of one instruction, from no application method at all."""

AMPLIFY = [LIST, CUBE, dumps(["pull", 2])]

SERVER = """
import asyncio, json, sys
import capnweb

class Api(capnweb.RpcTarget):
    def square(self, x):
        return x * x

async def main():
    limits = capnweb.Limits(**json.loads(sys.argv[1]))
    async with capnweb.serve(Api, limits=limits) as server:
        print(server.port, flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)

asyncio.run(main())
"""

REJECT_WITHIN = 10.0
"""Seconds the amplifying map may take before its rejection arrives."""

LATENCY = 0.25
"""Longest wait of another client's call while the amplifying map runs."""

STALLED = 2.0
"""A call on another connection that takes this long: the server's loop is stuck."""

MEMORY = 100 * MiB
"""Largest growth of the server's RSS while the amplifying map runs (without limits: +300 MB)."""


class ServerProcess:
    """``capnweb.serve(Api, limits=...)`` in a process of its own."""

    def __init__(self, proc: asyncio.subprocess.Process, port: int) -> None:
        self.proc = proc
        self.port = port
        self.url = f"http://127.0.0.1:{port}/rpc"
        self.ws_url = f"ws://127.0.0.1:{port}/rpc"

    def memory(self, field: str) -> int:
        """``VmRSS`` (now) or ``VmHWM`` (the peak so far) of the server, in bytes."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
        raise AssertionError(f"no {field} in /proc/{self.proc.pid}/status")

    def kill(self) -> None:
        """Stop the server now (one whose loop is stuck does not answer closing handshakes)."""
        if self.proc.returncode is None:
            self.proc.kill()


@asynccontextmanager
async def server_process(tmp_path: Path, **limits: int) -> AsyncIterator[ServerProcess]:
    log = (tmp_path / "server.log").open("wb")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        SERVER,
        json.dumps(limits),
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=log,
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 20)
        if not line:
            await proc.wait()
            raise AssertionError(
                f"the server did not start:\n{(tmp_path / 'server.log').read_text()}"
            )
        yield ServerProcess(proc, int(line))
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), 3)
        except TimeoutError:
            proc.kill()  # still busy (the code before the limits): no reason to wait for it
            await proc.wait()
        log.close()


async def latencies(api: Any, until: asyncio.Future[Any]) -> list[float]:
    """Time sequential calls on another connection until ``until`` is done; a call that
    stalls ends the series (recorded as STALLED)."""
    out: list[float] = []
    i = 0
    while not until.done():
        i += 1
        start = time.perf_counter()
        try:
            assert await asyncio.wait_for(api.square(i), STALLED) == i * i
        except TimeoutError:
            out.append(STALLED)
            break
        out.append(time.perf_counter() - start)
    return out


async def websocket_attack(port: int) -> tuple[float, list[Any]]:
    """Send AMPLIFY over a WebSocket; (seconds until a reject naming max_map_work, every
    message received until then). Then check the attacker's session: usable, or ended."""
    async with RawPeer.open(port) as bad:
        await bad.upgrade("/rpc")
        start = time.perf_counter()
        await bad.send_messages(*AMPLIFY)
        seen: list[Any] = []
        while True:
            msg = await asyncio.wait_for(bad.read_message(), REJECT_WITHIN)
            assert msg is not None, f"closed before the map was rejected: {seen[-3:]}"
            seen.append(msg)
            if "max_map_work" in error_text(msg):
                break
        elapsed = time.perf_counter() - start
        # the session stays usable (a call is answered), or it ends (abort, close): promptly
        with suppress(EOFError, ConnectionError):
            await bad.send_messages(*call(3, "square", 5))
            while (msg := await bad.read_message()) is not None and msg[0] != "abort":
                if msg[:2] == ["resolve", 3]:
                    assert msg == ["resolve", 3, 25]
                    break
        return elapsed, seen


async def batch_attack(port: int) -> tuple[float, list[Any]]:
    """POST AMPLIFY as one HTTP batch; (seconds until answered, the answer's messages that
    name a map limit)."""
    start = time.perf_counter()
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"http://127.0.0.1:{port}/rpc", data="\n".join(AMPLIFY)) as response,
    ):
        assert response.status == 200
        text = await asyncio.wait_for(response.text(), REJECT_WITHIN)
    elapsed = time.perf_counter() - start
    return elapsed, [json.loads(line) for line in text.split("\n") if "map_work" in line]


def attacking(attack: Callable[[int], Any], port: int) -> asyncio.Future[tuple[float, list[Any]]]:
    """``attack(port)`` run by a thread on an event loop of its own (what it reads must not
    delay the calls this loop times)."""

    def run() -> tuple[float, list[Any]]:
        return asyncio.run(asyncio.wait_for(attack(port), 2 * REJECT_WITHIN))  # type: ignore[no-any-return]

    return asyncio.ensure_future(asyncio.to_thread(run))


@pytest.mark.parametrize("transport", ["websocket", "batch"])
async def test_map_amplification_is_cut_off_and_other_clients_keep_their_latency(
    transport: str, tmp_path: Path
) -> None:
    async with (
        server_process(tmp_path) as server,
        capnweb.connect(server.ws_url) as api,
    ):
        for i in range(20):  # warm up: imports, first allocations
            assert await api.square(i) == i * i
        base = server.memory("VmRSS")
        attack = websocket_attack if transport == "websocket" else batch_attack
        outcome = attacking(attack, server.port)
        try:
            times = await latencies(api, outcome)
            grown = server.memory("VmHWM") - base
            assert max(times) < LATENCY, (
                f"another client's calls waited up to {max(times):.3f} s "
                f"({len(times)} calls; the server's RSS grew by {grown / MiB:.0f} MiB)"
            )
            elapsed, answer = await outcome
        except BaseException:
            server.kill()
            raise
        finally:
            outcome.cancel()
            with suppress(BaseException):
                await outcome
        grown = server.memory("VmHWM") - base
        rejected = [m for m in answer if "max_map_work" in error_text(m)]
        assert rejected, f"no rejection naming max_map_work: {answer[:3]}"
        assert rejected[0][0] == "reject"
        assert elapsed < REJECT_WITHIN
        assert grown < MEMORY, f"the server's RSS grew by {grown / MiB:.0f} MiB"
        assert await api.square(12) == 144


async def test_maps_under_the_message_budget_running_at_once_hit_the_session_budget() -> None:
    # Each map: 200 elements x 30 instructions = 6,000 applications, under max_map_work; the
    # eight of them at once pass max_session_map_work.
    limits = Limits(max_map_work=9_000, max_session_map_work=15_000)
    one_map = dumps(["remap", 1, [], [], [*[["pipeline", 0]] * 29, 0]])
    async with (
        capnweb.serve(lambda: MapApi(), limits=limits) as srv,
        RawPeer.open(srv.port) as peer,
    ):
        await peer.upgrade(srv.path)
        await peer.send_messages(dumps(["push", [[0] * 200]]), f'["push",{one_map}]', '["pull",2]')
        assert await asyncio.wait_for(peer.read_message(), WAIT) == ["resolve", 2, [[0] * 200]]

        await peer.send_messages(*(f'["push",{one_map}]' for _ in range(8)))
        await peer.send_messages(*(dumps(["pull", k]) for k in range(3, 11)))
        answers: dict[int, Any] = {}
        while len(answers) < 8:
            msg = await asyncio.wait_for(peer.read_message(), WAIT)
            assert msg is not None and msg[0] in ("resolve", "reject"), msg
            answers[msg[1]] = msg
        messages = [error_text(m) for m in answers.values()]
        assert any("max_session_map_work" in m for m in messages), messages
        assert not any("max_map_work" in m for m in messages), messages
        # the session is still up, and the work of the maps that ended was given back
        await peer.send_messages(*call(11, "square", 9))
        assert await asyncio.wait_for(peer.read_message(), WAIT) == ["resolve", 11, 81]
        await peer.send_messages(f'["push",{one_map}]', '["pull",12]')
        assert await asyncio.wait_for(peer.read_message(), WAIT) == ["resolve", 12, [[0] * 200]]


class MapApi(RpcTarget):
    def numbers(self, n: int) -> list[int]:
        return list(range(n))

    def square(self, x: int) -> int:
        return x * x


@pytest.mark.timeout(15)
async def test_a_map_within_the_default_budget_still_works() -> None:
    async with capnweb.serve(MapApi) as srv, capnweb.connect(srv.ws_url) as api:
        assert await api.numbers(10_000).map(lambda x: x) == list(range(10_000))
        records = api.numbers(3).map(lambda x: api.numbers(x).map(lambda y: y))
        assert await records == [[], [0], [0, 1]]


async def test_max_map_work_is_configurable_and_the_session_survives_a_rejection() -> None:
    limits = Limits(max_map_work=1_000)
    async with (
        capnweb.serve(MapApi, limits=limits) as srv,
        capnweb.connect(srv.ws_url) as api,
    ):
        assert await api.numbers(200).map(lambda x: x) == list(range(200))
        with pytest.raises(RpcError, match="max_map_work"):
            await api.numbers(2_000).map(lambda x: x)
        # 40 maps of 40 elements, each small: the nested maps of one message count together
        with pytest.raises(RpcError, match="max_map_work"):
            await api.numbers(40).map(lambda x: api.numbers(40).map(lambda y: y))
        assert await api.square(7) == 49
        assert (
            await api.numbers(3).map(lambda x: api.numbers(3).map(lambda y: y)) == [[0, 1, 2]] * 3
        )


# =============================================================================================
# 4. A peer that never reads
# =============================================================================================

BIG = "x" * 50_000
"""The body of each large result (each answer is about 50 KB)."""

CALLS = 200
"""Calls the peer that never reads makes (10 MB of answers)."""

OVERSHOOT = 4 * 50_000 + 64 * KiB
"""Unsent output allowed above high water: the answers of the calls already running."""

HELD_SLACK = MiB
"""Memory allowed above high water for a stalled peer (its session, buffers, this test's)."""


class BigApi(RpcTarget):
    def __init__(self, calls: list[int]) -> None:
        self.calls = calls

    def big(self, i: int) -> str:
        self.calls.append(i)
        return f"{i}:{BIG}"

    def square(self, x: int) -> int:
        return x * x


def water(name: str) -> tuple[Limits | None, int]:
    """(limits to serve with, their high water): "small" ones, or the defaults."""
    if name == "small":
        limits = Limits(send_high_water=64 * KiB, send_low_water=16 * KiB)
        return limits, 64 * KiB
    return None, getattr(Limits(), "send_high_water", MiB)


async def flood(peer: RawPeer, conn: asyncio.Transport, calls: list[int]) -> None:
    """As a peer that never reads: CALLS calls of ``big``, each sent once the server has read
    the one before (it ran it, or it stopped reading us), then let the server do whatever it
    does until it is still. Each call's result is released at once (the server keeps none:
    what it holds is what it has not sent)."""
    for i in range(1, CALLS + 1):
        await peer.send_messages(*call(i, "big", i), dumps(["release", i, 1]))
        await eventually(lambda i=i: len(calls) >= i or caught_up(conn))  # type: ignore[misc]
    await until_still(lambda: (len(calls), conn.get_write_buffer_size()))


async def read_answers(peer: RawPeer) -> None:
    """Every answer, in order, once the peer reads at last."""
    for i in range(1, CALLS + 1):
        assert await peer.read_message() == ["resolve", i, f"{i}:{BIG}"]


@pytest.mark.parametrize("limits_name", ["small", "default"])
async def test_serve_stops_reading_a_websocket_peer_that_never_reads(limits_name: str) -> None:
    limits, high = water(limits_name)
    calls: list[int] = []
    async with (
        capnweb.serve(lambda: BigApi(calls), limits=limits) as srv,
        capnweb.connect(srv.ws_url) as api,
        RawPeer.open(srv.port, rcvbuf=4096) as peer,
    ):
        await peer.upgrade(srv.path)
        conn = await server_end(peer.sock)
        with traced():
            unsent = Peak(conn.get_write_buffer_size)
            try:
                await flood(peer, conn, calls)
                stalled, flooded = len(calls), unsent.max
                assert await asyncio.wait_for(api.square(3), WAIT) == 9  # others are served
                kept = await held()
                await read_answers(peer)
            finally:
                unsent.stop()
        assert stalled < CALLS, "the server kept reading a peer that reads nothing"
        assert unsent.max <= high + OVERSHOOT, (
            f"up to {unsent.max} bytes unsent ({flooded} before the peer read; high water "
            f"{high}; {stalled} calls ran before it read)"
        )
        assert kept <= high + HELD_SLACK, f"{kept} bytes held for the peer"
        assert sorted(calls) == list(range(1, CALLS + 1))


@pytest.mark.parametrize("limits_name", ["small", "default"])
async def test_serve_stops_running_pipelined_batches_for_a_peer_that_never_reads(
    limits_name: str,
) -> None:
    limits, high = water(limits_name)
    calls: list[int] = []
    async with (
        capnweb.serve(lambda: BigApi(calls), limits=limits) as srv,
        RawPeer.open(srv.port, rcvbuf=4096) as peer,
    ):
        bodies = ["\n".join(call(1, "big", i)) for i in range(1, CALLS + 1)]
        conn = await server_end(peer.sock)
        with traced():
            unsent = Peak(conn.get_write_buffer_size)
            try:
                await peer.send(b"".join(post(srv.path, body) for body in bodies))  # pipelined
                await until_still(lambda: (len(calls), conn.get_write_buffer_size()))
                stalled = len(calls)
                async with capnweb.connect(srv.url) as api:  # another client: a batch of its own
                    assert await asyncio.wait_for(api.square(3), WAIT) == 9
                kept = await held()
                for i in range(1, CALLS + 1):
                    status, body = await peer.read_response()
                    assert status == b"HTTP/1.1 200 OK"
                    assert json.loads(body) == ["resolve", 1, f"{i}:{BIG}"]
            finally:
                unsent.stop()
        assert stalled < CALLS, "the server kept answering a peer that reads nothing"
        assert unsent.max <= high + OVERSHOOT, (
            f"{unsent.max} bytes unsent (high water {high}; {stalled} batches ran)"
        )
        assert kept <= high + HELD_SLACK, f"{kept} bytes held for the peer"
        assert calls == list(range(1, CALLS + 1))


@pytest.mark.parametrize("limits_name", ["small", "default"])
async def test_serve_websocket_stops_reading_a_peer_that_never_reads(limits_name: str) -> None:
    limits, high = water(limits_name)
    calls: list[int] = []
    server = await capnweb.serve_websocket(lambda: BigApi(calls), limits=limits)
    try:
        port = next(iter(server.sockets)).getsockname()[1]
        async with (
            capnweb.connect(f"ws://127.0.0.1:{port}/") as api,
            RawPeer.open(port, rcvbuf=4096) as peer,
        ):
            await peer.upgrade("/")
            conn = await server_end(peer.sock)
            with traced():
                unsent = Peak(conn.get_write_buffer_size)
                try:
                    await flood(peer, conn, calls)
                    stalled = len(calls)
                    assert await asyncio.wait_for(api.square(3), WAIT) == 9
                    kept = await held()  # the messages queued above the socket count here
                    await read_answers(peer)
                finally:
                    unsent.stop()
        assert stalled < CALLS, "the server kept reading a peer that reads nothing"
        assert unsent.max <= high + OVERSHOOT, f"{unsent.max} bytes unsent ({stalled} calls ran)"
        assert kept <= high + HELD_SLACK, f"{kept} bytes held for the peer ({stalled} calls ran)"
        assert calls == list(range(1, CALLS + 1))
    finally:
        server.close()
        await asyncio.wait_for(server.wait_closed(), WAIT)


# =============================================================================================
# 8. release / pull with ids or counts that are not positive integers
# =============================================================================================

MALFORMED = {
    "negative-count": ["release", 1, -5],
    "zero-count": ["release", 1, 0],
    "bool-count": ["release", 1, True],
    "bool-id": ["release", True, 1],
    "bool-pull": ["pull", True],
}


class CounterApi(RpcTarget):
    def __init__(self) -> None:
        self.counter = Counter()

    def makeCounter(self) -> Counter:
        return self.counter

    def square(self, x: int) -> int:
        return x * x


@pytest.mark.parametrize("bad", MALFORMED.values(), ids=MALFORMED.keys())
async def test_malformed_release_or_pull_aborts_the_session(bad: list[Any]) -> None:
    api = CounterApi()
    async with ScriptedPeer(api) as peer:
        peer.send(["push", ["pipeline", 0, ["makeCounter"], []]], bad)
        peer.send(*(json.loads(m) for m in call(2, "square", 4)))  # not run: after the abort
        await peer.settle()
        received = peer.received()
        assert [m[0] for m in received] == ["abort"], received
        assert isinstance(peer.session.broken, RpcProtocolError)
        assert error_text(received[0]) == str(peer.session.broken)
        assert api.counter.disposed == 1  # the abort released it (no count kept it alive)


@pytest.mark.parametrize("bad", MALFORMED.values(), ids=MALFORMED.keys())
async def test_malformed_release_or_pull_closes_the_websocket_with_3000(bad: list[Any]) -> None:
    apis: list[CounterApi] = []

    def make() -> CounterApi:
        apis.append(CounterApi())
        return apis[-1]

    async with capnweb.serve(make) as srv, RawPeer.open(srv.port) as peer:
        await peer.upgrade(srv.path)
        await peer.send_messages(dumps(["push", ["pipeline", 0, ["makeCounter"], []]]), dumps(bad))
        await peer.send_messages(*call(2, "square", 4))  # not run: after the abort
        msg = await peer.read_message()
        assert msg is not None and msg[0] == "abort", msg
        assert await peer.read_close() == 3000
        await peer.send(frame(OP_CLOSE, struct.pack("!H", 3000), True))
        await eventually(lambda: not srv.endpoint.sessions)
        assert apis[0].counter.disposed == 1


# -- references a peer keeps


@pytest.mark.timeout(10)
async def test_a_peer_holding_more_than_max_refs_references_loses_its_session() -> None:
    async with ScriptedPeer(Counter(), limits=Limits(max_refs=10)) as p:
        for i in range(1, 50):  # pushed and released: nothing is kept
            p.send(["push", ["pipeline", 0, ["increment"], []]], ["release", i, 1])
        await p.settle()
        assert p.session.broken is None
        p.send(*(["push", i] for i in range(9)))  # with the main object: 10 entries
        await p.settle()
        assert p.session.broken is None
        p.send(["push", "one too many"])
        await p.settle()
        assert p.received()[-1][0] == "abort"
        assert "max_refs" in str(p.session.broken)


class Caller(RpcTarget):
    """Calls the peer's callback and waits for its answer."""

    async def call_function(self, fn: Any, x: int) -> dict[str, Any]:
        return {"result": await fn(x)}


@pytest.mark.timeout(10)
async def test_calls_a_peer_left_waiting_forever_are_cancelled_after_orphan_timeout() -> None:
    async with ScriptedPeer(Caller(), limits=Limits(orphan_timeout=0.2)) as p:
        p.send(["push", ["pipeline", 0, ["call_function"], [["export", -1], 5]]], ["pull", 1])
        await p.settle()  # the call waits for callback -1, called as the session's import 1
        # the peer answers the callback with the result of the call itself: a cycle
        p.send(["resolve", 1, ["pipeline", 1, ["result"]]])
        await p.settle()
        stuck = set(p.session.tasks or ())
        assert stuck, "the call should be waiting on itself"
        await p.close()
        await eventually(lambda: all(t.done() for t in stuck))  # within orphan_timeout
        assert not p.session.tasks


@pytest.mark.timeout(10)
async def test_a_peer_introducing_more_than_max_refs_capabilities_loses_its_session() -> None:
    async with ScriptedPeer(Counter(), limits=Limits(max_refs=10)) as p:
        p.send(["push", [[["export", -i] for i in range(1, 11)]]])  # 10 with the main: too many
        await p.settle()
        assert p.received()[-1][0] == "abort"
        assert "max_refs" in str(p.session.broken)


class Slow(RpcTarget):
    def __init__(self, release: asyncio.Event) -> None:
        self.release = release

    async def wait(self) -> int:
        await self.release.wait()
        return 1


@pytest.mark.timeout(10)
async def test_an_ended_session_is_not_kept_once_its_calls_are_done() -> None:
    release = asyncio.Event()
    peer = ScriptedPeer(Slow(release))  # orphan_timeout: the default minute
    peer.send(["push", ["pipeline", 0, ["wait"], []]], ["pull", 1])
    await peer.settle()
    assert peer.session.tasks  # the call runs
    await peer.close()
    release.set()  # the call ends after its session
    session = peer.session
    del peer
    ref = weakref.ref(session)
    del session
    await eventually(lambda: ref() is None or not ref().tasks)  # type: ignore[union-attr]
    for _ in range(3):
        gc.collect()
        await asyncio.sleep(0)
    assert ref() is None, "the ended session is kept until orphan_timeout"


class AsyncSquare(RpcTarget):
    async def square(self, x: int) -> int:
        await asyncio.sleep(0)
        return x * x


@pytest.mark.timeout(20)
async def test_ended_batches_leave_no_timer_behind() -> None:
    loop = asyncio.get_running_loop()

    def long_timers() -> list[asyncio.TimerHandle]:  # an orphan_timeout's worth ahead
        return [
            h
            for h in loop._scheduled  # type: ignore[attr-defined]
            if not h.cancelled() and h.when() - loop.time() > 500
        ]

    async with capnweb.serve(AsyncSquare, limits=Limits(orphan_timeout=1000)) as srv:
        before = len(long_timers())
        for i in range(50):
            async with capnweb.connect(srv.url) as api:
                assert await api.square(i) == i * i
        await eventually(lambda: not srv.endpoint.sessions)
        assert len(long_timers()) == before
