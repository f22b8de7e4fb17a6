"""Two sessions wired back to back in memory, for runtime tests.

``SessionPair(server_main, client_main)`` connects a "server" session (serving
``server_main``) and a "client" session (serving ``client_main``, if any) over
:func:`capnweb.memory_pair`. ``pair.main`` is the client's stub for the server's main
capability; ``pair.client_sent`` / ``pair.server_sent`` are the frames each side sent (text),
``pair.client_frames()`` / ``pair.server_frames()`` the same parsed, and ``pair.log`` every
frame in sending order. ``await pair.settle()`` lets the loop turn until nothing moves, and
``await pair.assert_clean()`` checks that both sessions are back to their main entries.

``ScriptedPeer(main)`` is one session whose peer is driven by hand, frame by frame.
"""

from __future__ import annotations

import asyncio
import base64
import gc
import json
import math
import subprocess
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from capnweb import RpcError, RpcTarget, Session, Stats, memory_pair
from capnweb.transports.memory import MemoryTransport

__all__ = ["CLEAN", "ScriptedPeer", "SessionPair", "eventually", "frames", "settle_transports"]

CLEAN = Stats(1, 1)
"""What a session's stats() read when only the two main-capability entries are left."""

QUIET_TURNS = 20
"""Loop turns without a new frame after which the pair counts as settled."""

MAX_TURNS = 5000
"""Upper bound on loop turns spent in one settle()."""

EVENTUALLY_S = 5.0
"""Seconds eventually() waits for its condition."""


async def eventually(condition: Callable[[], bool]) -> None:
    """Let the loop run until ``condition()`` holds (at most EVENTUALLY_S seconds)."""

    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0)

    await asyncio.wait_for(poll(), EVENTUALLY_S)


def frames(sent: list[str]) -> list[Any]:
    """The frames of a transport's ``sent`` list, parsed from JSON."""
    return [json.loads(text) for text in sent]


async def settle_transports(
    transports: list[MemoryTransport], read: list[MemoryTransport] | None = None
) -> None:
    """Let the loop turn until no frame has moved for a few turns and the inboxes of the
    transports a session reads (``read``, by default all) are empty (bounded, no timers)."""
    read = transports if read is None else read
    quiet = 0
    last = -1
    for _ in range(MAX_TURNS):
        moved = sum(len(t.sent) for t in transports)
        pending = sum(t._inbox.qsize() for t in read if not t.closed)
        if moved == last and pending == 0:
            quiet += 1
            if quiet >= QUIET_TURNS:
                return
        else:
            quiet = 0
            last = moved
        await asyncio.sleep(0)
    raise AssertionError(f"frames still moving after {MAX_TURNS} loop turns")


def _record_sends(transport: MemoryTransport, side: str, log: list[tuple[str, Any]]) -> None:
    send = transport.send

    def logged(text: str) -> None:
        send(text)
        log.append((side, json.loads(text)))

    setattr(transport, "send", logged)  # noqa: B010 - instance-level instrumentation


class SessionPair:
    """A client and a server session connected over an in-memory transport pair."""

    def __init__(
        self,
        server_main: Any,
        client_main: Any = None,
        *,
        server_options: dict[str, Any] | None = None,
        client_options: dict[str, Any] | None = None,
    ) -> None:
        self.client_transport, self.server_transport = memory_pair()
        self.log: list[tuple[str, Any]] = []
        """Every frame in the order it was sent, as ("client" | "server", parsed frame)."""
        _record_sends(self.client_transport, "client", self.log)
        _record_sends(self.server_transport, "server", self.log)
        self.server = Session(self.server_transport, server_main, **(server_options or {}))
        self.client = Session(self.client_transport, client_main, **(client_options or {}))
        self.main = self.client.main
        """The client's stub for the server's main capability."""

    @property
    def client_sent(self) -> list[str]:
        """Every frame the client sent, as text."""
        return self.client_transport.sent

    @property
    def server_sent(self) -> list[str]:
        """Every frame the server sent, as text."""
        return self.server_transport.sent

    def client_frames(self) -> list[Any]:
        """Every frame the client sent, parsed."""
        return frames(self.client_transport.sent)

    def server_frames(self) -> list[Any]:
        """Every frame the server sent, parsed."""
        return frames(self.server_transport.sent)

    def mark(self) -> tuple[int, int]:
        """How many frames each side has sent so far (for :meth:`since`)."""
        return len(self.client_sent), len(self.server_sent)

    def since(self, mark: tuple[int, int]) -> tuple[list[Any], list[Any]]:
        """The frames (client, server) sent after ``mark``, parsed."""
        return frames(self.client_sent[mark[0] :]), frames(self.server_sent[mark[1] :])

    async def settle(self) -> None:
        """Let the loop turn until no new frames move (bounded; raises if they never stop)."""
        await settle_transports([self.client_transport, self.server_transport])

    async def collect(self) -> None:
        """Run the garbage collector, then settle (for releases driven by collection)."""
        for _ in range(3):
            gc.collect()
            await self.settle()

    def stats(self) -> tuple[Stats, Stats]:
        """(client, server) stats."""
        return self.client.stats(), self.server.stats()

    async def assert_clean(self, *, collect: bool = False) -> None:
        """Settle, then assert both sessions are back to their main entries only."""
        if collect:
            await self.collect()
        else:
            await self.settle()
        assert self.client.broken is None, f"client broke: {self.client.broken!r}"
        assert self.server.broken is None, f"server broke: {self.server.broken!r}"
        assert self.client.stats() == CLEAN, "client"
        assert self.server.stats() == CLEAN, "server"

    async def close(self) -> None:
        """Shut both sessions down."""
        await self.client.close()
        await self.server.close()

    async def __aenter__(self) -> SessionPair:
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


class ScriptedPeer:
    """A session under test whose peer is driven by hand: send raw frames, read the answers."""

    def __init__(self, main: Any = None, **options: Any) -> None:
        self.transport, self.peer = memory_pair()
        self.session = Session(self.transport, main, **options)

    def send(self, *messages: Any) -> None:
        """Send frames to the session (lists are JSON-encoded, strings sent as they are)."""
        for msg in messages:
            self.peer.send(msg if isinstance(msg, str) else json.dumps(msg))

    def received(self) -> list[Any]:
        """Every frame the session sent, parsed."""
        return frames(self.transport.sent)

    async def settle(self) -> None:
        """Let the loop turn until no new frames move."""
        await settle_transports([self.transport, self.peer], [self.transport])

    async def close(self) -> None:
        """Shut the session down."""
        await self.session.close()

    async def __aenter__(self) -> ScriptedPeer:
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


NPM_CI_TIMEOUT_S = 300.0


def npm_ci(directory: Path, packages: tuple[str, ...]) -> None:
    """``npm ci`` in ``directory`` (bounded in time) unless all ``packages`` are installed."""
    modules = directory / "node_modules"
    if all((modules / p).is_dir() for p in packages):
        return
    try:
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"],
            cwd=directory,
            check=True,
            capture_output=True,
            text=True,
            timeout=NPM_CI_TIMEOUT_S,
        )
    except subprocess.CalledProcessError as exc:
        raise RuntimeError(f"npm ci failed in {directory}:\n{exc.stdout}\n{exc.stderr}") from exc


class Counter(RpcTarget):
    """A counter capability that counts how often its last reference was released."""

    def __init__(self, n: int = 0) -> None:
        self.n = n
        self.disposed = 0

    def increment(self, k: int = 1) -> int:
        self.n += k
        return self.n

    def on_dispose(self) -> None:
        self.disposed += 1


PeerClose = tuple[int | None, str | None, list[Any]]


@asynccontextmanager
async def recording_peer(
    greeting: str | None = None,
) -> AsyncIterator[tuple[str, asyncio.Future[PeerClose]]]:
    """A plain ``websockets`` server on 127.0.0.1 for one client: it sends ``greeting`` (if
    given), records every JSON message it receives, and resolves the future with the close
    code, the close reason and those messages once the connection closes."""
    from websockets.asyncio.server import ServerConnection
    from websockets.asyncio.server import serve as ws_serve
    from websockets.exceptions import ConnectionClosed

    closed: asyncio.Future[PeerClose] = asyncio.get_running_loop().create_future()

    async def handler(ws: ServerConnection) -> None:
        if greeting is not None:
            await ws.send(greeting)
        received: list[Any] = []
        try:
            while True:
                received.append(json.loads(await ws.recv()))
        except ConnectionClosed:
            pass
        closed.set_result((ws.close_code, ws.close_reason, received))

    async with ws_serve(handler, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}/", closed


def assert_exact(got: Any, want: Any) -> None:
    """Equal, with the same type at every level (nan equals nan; the sign of zero counts;
    dates in the same offset, UTC ones in UTC itself; errors by name, message and props)."""
    assert type(got) is type(want), f"{got!r}: {type(got).__name__} is not {type(want).__name__}"
    if isinstance(want, list):
        assert len(got) == len(want), f"{got!r} != {want!r}"
        for g, w in zip(got, want, strict=True):
            assert_exact(g, w)
    elif isinstance(want, dict):
        assert list(got) == list(want), f"{got!r} != {want!r}"
        for k in want:
            assert_exact(got[k], want[k])
    elif isinstance(want, float):
        if math.isnan(want):
            assert math.isnan(got)
        else:
            assert got == want and math.copysign(1, got) == math.copysign(1, want), got
    elif isinstance(want, datetime):
        assert got == want and got.utcoffset() == want.utcoffset(), got
        if want.tzinfo is UTC:
            assert got.tzinfo is UTC, got
    elif isinstance(want, RpcError):
        assert (got.name, got.message) == (want.name, want.message)
        assert_exact(got.props, want.props)
    else:
        assert got == want


def upgrade_request(target: str = "/rpc", *, version: str = "13", key: str = "") -> bytes:
    """A WebSocket upgrade request as a client sends it (a fixed key unless ``key``)."""
    key = key or base64.b64encode(b"0123456789abcdef").decode()
    return (
        f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        f"Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        f"Sec-WebSocket-Version: {version}\r\n\r\n"
    ).encode()
