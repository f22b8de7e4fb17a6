"""Reconnecting clients (capnweb.reconnect): real servers on 127.0.0.1 closed and opened again
on the same port under a running client, resume tokens, backoff, close(); and
examples/reconnect run as a user runs it, its server killed with SIGKILL and restarted."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import ssl
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar, assert_type

import pytest
import trustme
from helpers import eventually

import capnweb
from capnweb import RpcDisconnectedError, RpcStub, RpcTarget
from capnweb.reconnect import Backoff, ReconnectError, Reconnecting, ResumeTokens, reconnecting
from examples.reconnect.client import CounterClient
from examples.reconnect.server import Store
from examples.reconnect.server import serve as serve_example
from stubs.examples_reconnect_api import ApiStub

pytestmark = pytest.mark.timeout(30)

ROOT = Path(__file__).resolve().parent.parent
WAIT_S = 10.0
"""Seconds any one awaited condition may take."""

T = TypeVar("T")

FAST = Backoff(initial=0.02, factor=2.0, max_delay=0.1, jitter=0.0)


class Counter(RpcTarget):
    def __init__(self) -> None:
        self.value = 0

    def increment(self) -> int:
        self.value += 1
        return self.value


class Api(RpcTarget):
    """A main capability: counters that can be resumed with a token, and a call that hangs."""

    def __init__(self, service: Service) -> None:
        self._tokens = service.tokens
        self._entered = service.entered
        self._release = service.release

    def ping(self) -> str:
        return "pong"

    def login(self) -> tuple[Counter, str]:
        counter = Counter()
        return counter, self._tokens.issue(counter)

    def resume(self, token: str) -> Counter:
        return self._tokens.resume(token)

    async def hang(self) -> None:
        self._entered.set()
        await self._release.wait()


class Service:
    """A server for ``Api`` that can be stopped and started again on the same port."""

    def __init__(self) -> None:
        self.tokens: ResumeTokens[Counter] = ResumeTokens()
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self.server: capnweb.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await capnweb.serve(lambda: Api(self), "127.0.0.1", self.port)
        self.port = self.server.port

    async def stop(self) -> None:
        if self.server is not None:
            server, self.server = self.server, None
            await server.close()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/rpc"


@pytest.fixture
async def service() -> AsyncIterator[Service]:
    svc = Service()
    await svc.start()
    try:
        yield svc
    finally:
        svc.release.set()
        await svc.stop()


def refused_port() -> int:
    """A port on 127.0.0.1 nothing listens on (it was free a moment ago)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def within(awaitable: Awaitable[T]) -> T:
    """``awaitable``'s result, failing the test after WAIT_S seconds."""
    return await asyncio.wait_for(awaitable, WAIT_S)


# -- the client


async def test_the_client_reconnects_and_stubs_of_the_old_session_stay_broken(
    service: Service,
) -> None:
    drops: list[BaseException] = []
    dropped = asyncio.Event()

    def on_disconnect(reason: BaseException) -> None:
        drops.append(reason)
        dropped.set()

    async with reconnecting(service.url, backoff=FAST, on_disconnect=on_disconnect) as client:
        old = await within(client.api())
        assert await old.ping() == "pong"
        counter = await old.login()[0]
        hanging = asyncio.ensure_future(old.hang())
        assert (client.generation, client.connected) == (1, True)

        await service.stop()
        with pytest.raises(RpcDisconnectedError):
            await within(hanging)  # in flight when the connection went
        await within(dropped.wait())
        assert client.connected is False
        with pytest.raises(RpcDisconnectedError):
            await old.ping()
        with pytest.raises(RpcDisconnectedError):
            await counter.increment()

        await service.start()  # the same port
        new = await within(client.api())
        assert new is not old
        assert await new.ping() == "pong"
        assert client.generation == 2
        with pytest.raises(RpcDisconnectedError):
            await old.ping()  # still broken: a session is never healed
    assert len(drops) == 1 and isinstance(drops[0], RpcDisconnectedError)
    with pytest.raises(RpcDisconnectedError, match="closed"):
        await new.ping()  # close() ended the live session too
    with pytest.raises(ReconnectError, match="closed"):
        await client.api()


async def test_on_connect_runs_once_per_connection_before_the_stub_is_handed_out(
    service: Service,
) -> None:
    runs: list[int] = []
    tokens: list[str] = []
    counters: list[RpcStub] = []

    async def on_connect(api: RpcStub) -> None:
        """Rebuild the counter: log in the first time, resume it with its token afterwards."""
        runs.append(client.generation)
        if tokens:
            counters.append(await api.resume(tokens[0]))
        else:
            counter, token = await api.login()
            counters.append(counter)
            tokens.append(token)

    client = reconnecting(service.url, backoff=FAST, on_connect=on_connect)
    async with client:
        await within(client.api())
        assert runs == [0]
        assert await counters[-1].increment() == 1
        assert await counters[-1].increment() == 2

        for generation in (2, 3):
            await service.stop()
            await service.start()
            await within(client.api())
            assert client.generation == generation
            assert runs == list(range(generation))  # once per connection, done by now
            assert await counters[-1].increment() == generation + 1  # the same counter
        with pytest.raises(RpcDisconnectedError):
            await counters[0].increment()
    assert len(runs) == 3


async def test_a_session_that_ends_during_on_connect_is_a_failed_attempt(
    service: Service,
) -> None:
    runs = 0

    async def on_connect(api: RpcStub) -> None:
        nonlocal runs
        runs += 1
        if runs == 1:
            await api.hang()  # the server goes away meanwhile

    async with reconnecting(service.url, backoff=FAST, on_connect=on_connect) as client:
        await within(service.entered.wait())
        await service.stop()
        await eventually(lambda: client.failures == 1)
        assert isinstance(client.last_error, RpcDisconnectedError)
        await service.start()
        api = await within(client.api())
        assert await api.ping() == "pong"
    assert (runs, client.generation, client.failures) == (2, 1, 0)


async def test_reconnect_ends_the_live_session_and_makes_a_new_one(service: Service) -> None:
    drops: list[BaseException] = []
    async with reconnecting(service.url, backoff=FAST, on_disconnect=drops.append) as client:
        old = await within(client.api())
        client.reconnect()
        with pytest.raises(RpcDisconnectedError, match="reconnect"):
            await old.ping()
        new = await within(client.api())
        assert new is not old and await new.ping() == "pong"
        assert client.generation == 2 and len(drops) == 1
        assert service.server is not None
        sessions = service.server.endpoint.sessions
        await eventually(lambda: len(sessions) == 1)  # the server saw the old one end


async def test_a_resume_token_is_refused_once_unknown(service: Service) -> None:
    async with reconnecting(service.url, backoff=FAST) as client:
        api = await within(client.api())
        with pytest.raises(ValueError, match="unknown or expired resume token"):
            await api.resume("made-up")
        assert await api.ping() == "pong"  # a refused token does not end the session


async def test_the_client_gives_up_after_max_attempts_with_a_clear_error() -> None:
    attempts = 0

    async def slam(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal attempts  # read the WebSocket handshake, then hang up
        attempts += 1
        await reader.readuntil(b"\r\n\r\n")
        writer.close()

    listener = await asyncio.start_server(slam, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    backoff = Backoff(initial=0.05, factor=2.0, max_delay=0.1, jitter=0.0, max_attempts=4)
    try:
        async with reconnecting(f"ws://127.0.0.1:{port}/rpc", backoff=backoff) as client:
            start = time.monotonic()
            with pytest.raises(ReconnectError) as caught:
                await within(client.api())
            elapsed = time.monotonic() - start
            with pytest.raises(ReconnectError):
                await client.api()  # it stays given up
    finally:
        listener.close()
        await listener.wait_closed()
    error = caught.value
    assert attempts == 4 and error.attempts == 4 and client.failures == 4
    assert "gave up" in str(error) and "4 failed attempts" in str(error)
    assert isinstance(error.__cause__, RpcDisconnectedError)
    assert not isinstance(error, RpcDisconnectedError)  # a retry-on-disconnect loop stops
    assert elapsed >= 0.05 + 0.1 + 0.1  # three waits between four attempts: no hot loop


async def test_a_refused_connection_is_retried_with_backoff_then_given_up() -> None:
    backoff = Backoff(initial=0.05, max_delay=0.05, jitter=0.0, max_attempts=3)
    client = reconnecting(f"ws://127.0.0.1:{refused_port()}/rpc", backoff=backoff)
    start = time.monotonic()
    with pytest.raises(ReconnectError) as caught:
        await within(client.api())
    assert time.monotonic() - start >= 0.1
    assert isinstance(caught.value.__cause__, OSError)
    await client.close()


async def test_close_during_a_backoff_wait_returns_promptly_and_leaves_no_task() -> None:
    before = asyncio.all_tasks()
    client = reconnecting(
        f"ws://127.0.0.1:{refused_port()}/rpc", backoff=Backoff(initial=60, max_delay=60)
    )
    client.start()
    await eventually(lambda: client.failures == 1)  # now waiting about a minute
    waiting = asyncio.ensure_future(client.api())
    start = time.monotonic()
    await within(client.close())
    assert time.monotonic() - start < 1.0
    with pytest.raises(ReconnectError, match="closed"):
        await within(waiting)  # a caller waiting in api() is told too
    assert asyncio.all_tasks() == before


async def test_close_of_a_connected_client_ends_its_session_and_leaves_no_task(
    service: Service,
) -> None:
    assert service.server is not None
    endpoint = service.server.endpoint
    before = asyncio.all_tasks()
    async with reconnecting(service.url, backoff=FAST) as client:
        await within(client.api())
        assert client.session is not None and len(endpoint.sessions) == 1
    assert client.session is None
    assert asyncio.all_tasks() == before
    await eventually(lambda: not endpoint.sessions)  # the server saw the session end


async def test_an_error_of_on_connect_stops_the_client(service: Service) -> None:
    runs = 0

    async def on_connect(api: RpcStub) -> None:
        nonlocal runs
        runs += 1
        raise LookupError("no such account")

    async with reconnecting(service.url, backoff=FAST, on_connect=on_connect) as client:
        with pytest.raises(LookupError, match="no such account"):
            await within(client.api())
    assert runs == 1 and client.generation == 0


async def test_api_inside_on_connect_is_an_error_not_a_deadlock(service: Service) -> None:
    async def on_connect(api: RpcStub) -> None:
        await client.api()

    client = reconnecting(service.url, backoff=FAST, on_connect=on_connect)
    async with client:
        with pytest.raises(RuntimeError, match="on_connect"):
            await within(client.api())


async def test_wss_reconnects_with_the_given_ssl_and_a_bad_certificate_stops_at_once() -> None:
    ca = trustme.CA()
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_tls)
    client_tls = ssl.create_default_context()
    ca.configure_trust(client_tls)
    service = Service()
    server = await capnweb.serve(lambda: Api(service), ssl=server_tls)
    url = f"wss://127.0.0.1:{server.port}/rpc"
    try:
        async with reconnecting(url, backoff=FAST, ssl=client_tls) as client:
            assert await (await within(client.api())).ping() == "pong"
            await server.close()
            server = await capnweb.serve(lambda: Api(service), port=server.port, ssl=server_tls)
            assert await (await within(client.api())).ping() == "pong"
            assert client.generation == 2

        async with reconnecting(url, backoff=FAST) as untrusting:  # the system's CAs only
            with pytest.raises(ssl.SSLCertVerificationError):
                await within(untrusting.api())
        assert untrusting.failures == 0  # not retried: waiting would not make it verify
    finally:
        await server.close()


def test_an_http_url_is_refused() -> None:
    with pytest.raises(ValueError, match=r"ws:// or wss://.*HTTP batch"):
        reconnecting("http://127.0.0.1:8080/rpc")
    with pytest.raises(ValueError, match="scheme"):
        reconnecting("ftp://127.0.0.1/rpc")


async def test_generated_typed_stubs_and_the_example_store(tmp_path: Path) -> None:
    """The example's client logic in-process: the typed stub type flows through, the counter
    is resumed after a restart, and a server that lost the token makes it log in again."""
    store = Store(str(tmp_path / "first.sqlite"))
    server = await serve_example(0, store)
    port = server.port
    app = CounterClient("ann")
    client = reconnecting(server.ws_url, ApiStub, on_connect=app.on_connect, backoff=FAST)
    assert_type(client, Reconnecting[ApiStub])
    try:
        async with client:
            api = await within(client.api())
            assert_type(api, ApiStub)
            assert isinstance(api, ApiStub) and app.counter is not None
            assert await app.counter.increment(5) == 5

            await server.close()  # the same store: the token resumes the counter
            server = await serve_example(port, store)
            await within(client.api())
            assert await app.counter.increment() == 6
            assert await app.counter.owner == "ann"

            await server.close()  # a new store: the token is unknown, log in again
            store.close()
            store = Store(str(tmp_path / "second.sqlite"))
            server = await serve_example(port, store)
            await within(client.api())
            assert await app.counter.increment() == 1
            assert app.connections == 3
    finally:
        await server.close()
        store.close()


# -- Backoff and ResumeTokens


def test_backoff_grows_by_factor_up_to_max_delay() -> None:
    backoff = Backoff(initial=0.5, factor=2.0, max_delay=10.0, jitter=0.0)
    assert [backoff.delay(n) for n in range(7)] == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert backoff.delay(100_000) == 10.0  # no overflow


def test_backoff_jitter_only_shortens_a_wait_and_never_to_zero() -> None:
    backoff = Backoff(initial=1.0, factor=1.0, max_delay=1.0, jitter=0.5)
    assert backoff.delay(0, rand=lambda: 0.0) == 1.0
    assert backoff.delay(0, rand=lambda: 0.999) == pytest.approx(0.5005)
    assert all(0.5 < backoff.delay(n) <= 1.0 for n in range(200))


def test_backoff_defaults_are_the_documented_ones() -> None:
    assert Backoff() == Backoff(
        initial=0.5, factor=2.0, max_delay=10.0, jitter=0.5, max_attempts=None
    )


@pytest.mark.parametrize(
    "options",
    [
        {"initial": 0},
        {"initial": -1},
        {"initial": float("nan")},
        {"factor": 0.5},
        {"max_delay": 0.1},
        {"max_delay": float("inf")},
        {"jitter": 1.0},
        {"jitter": -0.1},
        {"max_attempts": 0},
    ],
)
def test_backoff_refuses_settings_that_could_spin_or_never_wait(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="Backoff"):
        Backoff(**options)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_resume_tokens_give_back_the_same_object_until_they_expire() -> None:
    clock = Clock()
    tokens: ResumeTokens[object] = ResumeTokens(ttl=60, clock=clock)
    obj = object()
    token = tokens.issue(obj)
    assert len(token) >= 40 and token != tokens.issue(obj)  # unguessable, fresh each time
    clock.now += 59
    assert tokens.resume(token) is obj  # and its lifetime starts again
    clock.now += 59
    assert tokens.resume(token) is obj
    clock.now += 61
    with pytest.raises(ValueError, match="unknown or expired"):
        tokens.resume(token)
    assert len(tokens) == 0


def test_resume_tokens_are_bounded_and_revocable() -> None:
    tokens: ResumeTokens[int] = ResumeTokens(max_tokens=2)
    first, second = tokens.issue(1), tokens.issue(2)
    tokens.resume(first)  # used: the least recently used is now ``second``
    third = tokens.issue(3)
    assert len(tokens) == 2
    with pytest.raises(ValueError):
        tokens.resume(second)
    assert (tokens.resume(first), tokens.resume(third)) == (1, 3)
    tokens.revoke(first)
    tokens.revoke("never-issued")
    with pytest.raises(ValueError):
        tokens.resume(first)


# -- the example, as a user runs it


class Proc:
    """A subprocess whose output lines are read with deadlines; killed by PID at the end."""

    def __init__(self, proc: asyncio.subprocess.Process, name: str) -> None:
        self.proc = proc
        self.name = name
        self.lines: list[str] = []

    @classmethod
    async def start(cls, name: str, *args: str) -> Proc:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            *args,
            cwd=ROOT,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
        return cls(proc, name)

    async def expect(self, match: Callable[[str], bool]) -> str:
        """The next output line that ``match``es (the ones before it are kept in lines)."""
        assert self.proc.stdout is not None

        async def read() -> str:
            assert self.proc.stdout is not None
            while True:
                raw = await self.proc.stdout.readline()
                if not raw:
                    raise AssertionError(f"{self.name} exited:\n" + "\n".join(self.lines))
                line = raw.decode().rstrip("\n")
                self.lines.append(line)
                if match(line):
                    return line

        try:
            return await asyncio.wait_for(read(), WAIT_S)
        except TimeoutError:
            raise AssertionError(f"{self.name} said:\n" + "\n".join(self.lines)) from None

    async def kill(self) -> None:
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGKILL)
        await asyncio.wait_for(self.proc.wait(), WAIT_S)


def counted(line: str) -> int | None:
    """The value of a client line "ann: N"."""
    found = re.fullmatch(r"ann: (\d+)", line)
    return int(found.group(1)) if found else None


async def start_server(port: int, db: Path) -> tuple[Proc, int]:
    server = await Proc.start(
        "server", "examples.reconnect.server", "--port", str(port), "--db", str(db)
    )
    line = await server.expect(lambda line: line.startswith("listening on "))
    found = re.search(r":(\d+)/rpc$", line)
    assert found, line
    return server, int(found.group(1))


@pytest.mark.timeout(60)
async def test_the_example_client_carries_on_when_its_server_is_killed_and_restarted(
    tmp_path: Path,
) -> None:
    db = tmp_path / "counters.sqlite"
    procs: list[Proc] = []
    try:
        server, port = await start_server(0, db)
        procs.append(server)
        client = await Proc.start(
            "client",
            "examples.reconnect.client",
            f"ws://127.0.0.1:{port}/rpc",
            *("--name", "ann", "--count", "40", "--interval", "0.05"),
        )
        procs.append(client)
        await client.expect(lambda line: line == "connection 1: logged in as ann")
        await client.expect(lambda line: counted(line) == 3)

        await server.kill()  # SIGKILL: no closing handshake, nothing flushed
        await client.expect(lambda line: line.startswith("connection lost"))
        before = [n for n in map(counted, client.lines) if n is not None]

        server, _ = await start_server(port, db)  # the same port, the same file
        procs.append(server)
        resumed = await client.expect(lambda line: line.startswith("connection 2: "))
        found = re.fullmatch(r"connection 2: resumed the counter at (\d+)", resumed)
        assert found, resumed
        # An increment in flight when the server died may have been stored, or not.
        assert int(found.group(1)) in (before[-1], before[-1] + 1)
        await client.expect(lambda line: line == "done")
        assert await asyncio.wait_for(client.proc.wait(), WAIT_S) == 0

        values = [n for n in map(counted, client.lines) if n is not None]
        assert len(values) == 40 and values == sorted(set(values))
        after = values[len(before) :]
        assert after[0] in (before[-1] + 1, before[-1] + 2)  # carried on, not from 1
        assert "connection 3" not in "\n".join(client.lines)
    finally:
        for proc in procs:
            await proc.kill()
