"""nginx in front of two worker processes (nginx.conf.in, the setup docs/deploy.md describes):
WebSocket sessions and batch POSTs pass the proxy, each WebSocket session stays with the
worker that took it, and the two workers both serve.

Two ways to have two workers: two uvicorn processes on two ports, which nginx balances (as it
would two machines), and ``capnweb serve --workers 2``, two processes on one port, which the
kernel balances (``SO_REUSEPORT``).
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from interop.conftest import free_port

import capnweb

from .servers import BIN, HERE, asgi_command, running

pytestmark = pytest.mark.timeout(120)

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
CONNECTIONS = 24


def workers(backend: str) -> list[tuple[list[str], int, str]]:
    """(command, port, what it prints once ready) of the processes that make two workers."""
    if backend == "uvicorn":
        ports = [free_port(), free_port()]
        return [(asgi_command("uvicorn", "workers", p), p, "") for p in ports]
    port = free_port()
    command = [str(BIN / "capnweb"), "serve", "asgi_apps:Worker", "--workers", "2"]
    return [([*command, "--host", "127.0.0.1", "--port", str(port)], port, "2 workers")]


@pytest.fixture(params=["uvicorn", "capnweb"])
def proxied(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[int]:
    """The port of nginx, proxying /rpc to two workers."""
    if not Path(NGINX).exists():
        pytest.fail("nginx is not installed (.ci/run installs Debian's nginx-light)")
    processes = workers(request.param)
    port = free_port()
    servers = "\n".join(f"        server 127.0.0.1:{p};" for _, p, _ in processes)
    config = (HERE / "nginx.conf.in").read_text()
    for name, value in (("DIR", tmp_path), ("PORT", port), ("SERVERS", servers)):
        config = config.replace(f"@{name}@", str(value))
    (tmp_path / "nginx.conf").write_text(config)
    nginx = [NGINX, "-c", str(tmp_path / "nginx.conf"), "-e", str(tmp_path / "error.log")]
    with ExitStack() as stack:
        for i, (command, backend, ready) in enumerate(processes):
            log = tmp_path / f"worker{i}.log"
            stack.enter_context(running(command, backend, log, ready=ready))
        stack.enter_context(running(nginx, port, tmp_path / "nginx.log"))
        yield port


async def session_pid(url: str) -> tuple[int, int]:
    """(the pid of the worker, the counter's final value) for one WebSocket session."""
    async with capnweb.connect(url) as api:
        counter = api.counter(10)
        pids = {await api.pid() for _ in range(3)}
        for _ in range(5):
            await counter.increment(1)
        assert len(pids) == 1  # a session lives in one worker
        return pids.pop(), await counter.value


async def test_websocket_sessions_through_nginx_are_spread_over_two_workers(
    proxied: int,
) -> None:
    url = f"ws://127.0.0.1:{proxied}/rpc"
    results = await asyncio.gather(*(session_pid(url) for _ in range(CONNECTIONS)))
    assert {value for _, value in results} == {15}  # each session's capability kept its state
    assert len({pid for pid, _ in results}) == 2


async def test_batches_through_nginx(proxied: int) -> None:
    url = f"http://127.0.0.1:{proxied}/rpc"
    for _ in range(5):
        async with capnweb.connect(url) as api:
            counter = api.counter(2)
            results = await asyncio.gather(counter.increment(3), api.square(4), api.pid())
        assert results[:2] == [5, 16]
