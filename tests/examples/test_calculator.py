"""examples/calculator run as a user runs it: the server and the client as processes on
127.0.0.1, the client's printed lines checked."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from deploy.servers import REPO, python_env, running
from interop.conftest import free_port, log_tail, stop_process

pytestmark = pytest.mark.timeout(60)

WAIT_S = 20.0
"""Seconds a process may take to start or to finish."""

EXPECTED = [
    "add(multiply(2, 3), divide(8, 4)) = 8.0",
    "value(5).add(3).multiply(2).get() = 16",
    "divide(1, 0) raised RpcRangeError: division by zero",
    "HTTP batch: add(multiply(2, 3), divide(8, 4)) = 8.0, HTTP requests: 1",
    "HTTP batch: value(5).add(3).multiply(2).get() = 16, HTTP requests: 1",
]


def server_command(port: int) -> list[str]:
    return [sys.executable, "-m", "examples.calculator.server", "--port", str(port)]


def run_client(port: int) -> list[str]:
    """The lines the client prints against the server on ``port`` (it must exit with 0)."""
    command = [sys.executable, "-m", "examples.calculator.client", f"ws://127.0.0.1:{port}/rpc"]
    done = subprocess.run(
        command, cwd=REPO, env=python_env(), capture_output=True, text=True, timeout=WAIT_S
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.splitlines()


def test_client_prints_pipelined_results_a_typed_error_and_one_request_per_batch(
    tmp_path: Path,
) -> None:
    port = free_port()
    log = tmp_path / "server.log"
    with running(server_command(port), port, log, env=python_env(), cwd=REPO, ready="listening"):
        assert run_client(port) == EXPECTED
    assert log.read_text().splitlines() == [f"listening {port}"]


def test_port_0_serves_on_the_printed_port_until_sigterm(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            server_command(0),
            cwd=REPO,
            env=python_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + WAIT_S
        while not (printed := re.fullmatch(r"listening (\d+)\n", log.read_text())):
            assert server.poll() is None and time.monotonic() < deadline, log_tail(log)
            time.sleep(0.05)  # polling the log until the line is there: bounded by the deadline
        port = int(printed[1])
        assert port != 0
        assert run_client(port) == EXPECTED
    finally:
        stop_process(server)  # SIGTERM first
    assert server.returncode == 0, log_tail(log)
