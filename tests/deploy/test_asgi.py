"""The ASGI adapter under real ASGI servers (uvicorn, hypercorn), alone and mounted in Starlette
and FastAPI beside other routes, driven by the Python client and by the TypeScript client.

Each server runs ``asgi_apps.py`` in a process of its own on a free port of 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from interop.conftest import free_port
from interop.test_ts_client import list_scenarios, run_client

import capnweb
from capnweb.transports._ws import WsConnection
from capnweb.transports.http_batch import BatchClientTransport

from .servers import asgi_command, running

pytestmark = pytest.mark.timeout(120)

SERVERS = ("uvicorn", "hypercorn")
APPS = ("bare", "starlette", "fastapi")

ASGI_JOBS = 1
"""Scenarios the TypeScript runner runs at a time against an ASGI server: one. Several at once
share one Node.js process, where a stream producer that is never held back runs without
letting the others read; against the ASGI servers, whose WebSocket layers cost more per
message than ``capnweb.serve``'s, a timed stream check (20,000 numbers within 10 s, a cancel
seen within 3 s) then failed now and then. ``capnweb.serve`` is checked eight at a time
(``tests/interop/test_ts_client.py``); here the whole run is still checked, one at a time
(about 40 s per server)."""


@pytest.fixture(scope="module", params=[(s, a) for s in SERVERS for a in APPS], ids="-".join)
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, int]]:
    """(app, port) of an ASGI server running one of ``asgi_apps``."""
    server, app = request.param
    port = free_port()
    log = tmp_path_factory.mktemp("asgi") / f"{server}-{app}.log"
    with running(asgi_command(server, app, port), port, log):
        yield app, port


def get(port: int, path: str) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
        text: str = response.read().decode()
        return text


async def test_calls_pipelining_and_callbacks_over_websocket(served: tuple[str, int]) -> None:
    _, port = served
    async with capnweb.connect(f"ws://127.0.0.1:{port}/rpc") as api:
        assert await api.square(7) == 49
        assert await api.makeCounter(2).increment(3) == 5  # pipelined
        assert await api.callFunction(lambda x: x * 10, 4) == {"result": 40}  # called back
        with pytest.raises(capnweb.RpcRangeError, match="test error"):
            await api.throwError()


async def test_batch_requests_are_counted(served: tuple[str, int]) -> None:
    _, port = served
    connection = capnweb.connect(f"http://127.0.0.1:{port}/rpc")
    async with connection as api:
        counter = api.makeCounter(2)
        assert await asyncio.gather(counter.increment(3), counter.value) == [5, 5]
    assert isinstance(connection.transport, BatchClientTransport)
    assert connection.transport.requests == 1


def test_other_routes_are_served_beside_the_endpoint(served: tuple[str, int]) -> None:
    app, port = served
    if app == "bare":  # the endpoint alone answers its path only
        with pytest.raises(urllib.error.HTTPError, match="404"):
            get(port, "/health")
    else:
        assert get(port, "/health").strip('"') == "ok"


@pytest.mark.parametrize("server", SERVERS)
async def test_sessions_end_when_their_clients_leave(server: str, tmp_path: Path) -> None:
    port = free_port()
    with running(asgi_command(server, "starlette", port), port, tmp_path / "log"):
        url = f"ws://127.0.0.1:{port}/rpc"
        connections = [capnweb.connect(url) for _ in range(3)]
        stubs = [await c.open() for c in connections]
        assert [await s.square(i) for i, s in enumerate(stubs)] == [0, 1, 4]
        assert get(port, "/sessions") == "3"
        await connections[0].close()
        transport = connections[1].transport
        assert isinstance(transport, WsConnection) and transport._socket is not None
        transport._socket.abort()  # gone without a closing handshake
        await until(lambda: get(port, "/sessions") == "1")
        await connections[2].close()
        await until(lambda: get(port, "/sessions") == "0")
        await connections[1].close()


async def until(condition: object, timeout: float = 10.0) -> None:
    """Wait until ``condition()`` holds, polling (it asks another process), within ``timeout``."""
    assert callable(condition)
    async with asyncio.timeout(timeout):
        while not await asyncio.to_thread(condition):
            await asyncio.sleep(0.05)


TS_RUNS = [(s, t) for s in SERVERS for t in ("ws", "batch")]


@pytest.mark.timeout(300)
@pytest.mark.parametrize(("server", "transport"), TS_RUNS, ids=[f"{s}-{t}" for s, t in TS_RUNS])
def test_typescript_client_passes_every_scenario(
    server: str, transport: str, tmp_path: Path
) -> None:
    """The TypeScript reference client's whole conformance run, against the ASGI app."""
    port = free_port()
    with running(asgi_command(server, "bare", port), port, tmp_path / "log"):
        outcome = run_client(f"http://127.0.0.1:{port}/rpc", transport, jobs=ASGI_JOBS)
    failed = {n: r.detail for n, r in outcome.results.items() if not r.ok}
    assert not failed, failed
    assert set(outcome.results) == set(list_scenarios(transport)), outcome.describe()
    assert outcome.returncode == 0, outcome.describe()
