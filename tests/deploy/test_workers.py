"""Two worker processes on one port, as docs/deploy.md runs them: ``uvicorn --workers 2`` and
``hypercorn --workers 2`` serving an ``AsgiApp``, gunicorn's aiohttp worker serving
``mount()``. Through each: WebSocket sessions stay in the worker that took them and keep
their capabilities' state, batches are answered, both workers serve, and stopping the
master process (SIGTERM, as a service manager does) stops every worker.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from interop.conftest import free_port

import capnweb

from .servers import BIN, asgi_command, running

pytestmark = pytest.mark.timeout(120)

WORKERS = 2
SPREAD_TIMEOUT = 30.0  # for both workers to have taken a session
STOP_TIMEOUT = 30.0

COMMANDS: dict[str, Callable[[int], list[str]]] = {
    "uvicorn": lambda port: asgi_command("uvicorn", "workers", port, "--workers", str(WORKERS)),
    "hypercorn": lambda port: asgi_command("hypercorn", "workers", port, "--workers", str(WORKERS)),
    "gunicorn": lambda port: [
        str(BIN / "gunicorn"),
        "asgi_apps:web_app",
        "-k",
        "aiohttp.GunicornWebWorker",
        "-w",
        str(WORKERS),
        "-b",
        f"127.0.0.1:{port}",
        "--graceful-timeout",
        "5",
    ],
}


@pytest.fixture(params=sorted(COMMANDS))
def server(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    port = free_port()
    command = COMMANDS[request.param](port)
    with running(command, port, tmp_path / "server.log") as proc:
        yield port, proc


def alive(pid: int) -> bool:
    """Whether process ``pid`` still runs (a zombie, exited but not reaped, does not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


async def spread_sessions(url: str) -> dict[int, list[int]]:
    """Open WebSocket sessions, one after another, until both workers have taken one (a
    worker may still be starting: bounded by SPREAD_TIMEOUT); per worker pid, the final
    values of its sessions' counters."""
    seen: dict[int, list[int]] = {}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SPREAD_TIMEOUT
    while len(seen) < WORKERS:
        assert loop.time() < deadline, f"only worker(s) {sorted(seen)} took sessions"
        async with asyncio.timeout(10), capnweb.connect(url) as api:
            counter = api.counter(10)
            pids = {await api.pid() for _ in range(3)}
            assert len(pids) == 1, pids  # a session lives in one worker
            for _ in range(5):
                await counter.increment(1)
            seen.setdefault(pids.pop(), []).append(await counter.value)
    return seen


async def test_two_workers_on_one_port_serve_sessions_and_batches_then_stop_together(
    server: tuple[int, subprocess.Popen[bytes]],
) -> None:
    port, master = server
    seen = await spread_sessions(f"ws://127.0.0.1:{port}/rpc")
    assert all(values == [15] * len(values) for values in seen.values())  # state kept
    assert master.pid not in seen  # the workers are processes of their own
    for _ in range(4):
        async with asyncio.timeout(30):
            async with capnweb.connect(f"http://127.0.0.1:{port}/rpc") as api:
                counter = api.counter(2)
                done = await asyncio.gather(counter.increment(3), api.square(4), api.pid())
        assert done[:2] == [5, 16] and done[2] in seen
    master.send_signal(signal.SIGTERM)  # to the master alone: it stops its workers
    assert master.wait(timeout=STOP_TIMEOUT) is not None
    deadline = time.monotonic() + STOP_TIMEOUT
    while any(alive(pid) for pid in seen):
        assert time.monotonic() < deadline, (
            f"workers still running: {[p for p in seen if alive(p)]}"
        )
        await asyncio.sleep(0.05)  # polling the process table until they are gone: bounded
