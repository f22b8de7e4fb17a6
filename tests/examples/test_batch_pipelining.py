"""examples/batch_pipelining run as a user runs it: the server and the client as processes on
127.0.0.1. The dependent chain costs one POST pipelined and three awaited one by one (counted
by the client and by the server), with the same results both ways."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from deploy.servers import REPO, python_env, running
from interop.conftest import free_port

pytestmark = pytest.mark.timeout(60)

DELAY_MS = 40
"""The simulated latency the server adds to each batch POST."""

CLIENT_TIMEOUT = 30.0
"""Seconds one run of the client may take."""

ANN = [
    "user: ann (id 1)",
    "profile: Ann Lee, writes typed clients",
    "notifications: 3 (2 unread), latest: bob replied to your post",
]
BOB = [
    "user: bob (id 2)",
    "profile: Bob Kim, reads the wire format for fun",
    "notifications: 1 (0 unread), latest: welcome, bob",
]

HEADER = re.compile(r"^(pipelined|awaited one by one): (\d+) HTTP requests?, (\d+) ms$")


@pytest.fixture
def port(tmp_path: Path) -> Iterator[int]:
    """The port of a running example server (stopped after the test)."""
    port = free_port()
    command = [sys.executable, "-m", "examples.batch_pipelining.server",
               "--port", str(port), "--delay-ms", str(DELAY_MS)]  # fmt: skip
    log = tmp_path / "server.log"
    with running(command, port, log, env=python_env(), cwd=REPO, ready=f"listening {port}"):
        yield port


def run_client(port: int, *options: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "examples.batch_pipelining.client",
               f"http://127.0.0.1:{port}/rpc", *options]  # fmt: skip
    return subprocess.run(
        command, cwd=REPO, env=python_env(), capture_output=True, text=True,
        timeout=CLIENT_TIMEOUT,
    )  # fmt: skip


def ways(stdout: str) -> dict[str, tuple[int, int, list[str]]]:
    """Each way's requests, milliseconds and result lines, from the client's output."""
    found: dict[str, tuple[int, int, list[str]]] = {}
    current: list[str] = []
    for line in stdout.splitlines():
        header = HEADER.match(line)
        if header:
            current = []
            found[header[1]] = (int(header[2]), int(header[3]), current)
        elif line.startswith("  "):
            current.append(line.strip())
    return found


def posts_answered(port: int) -> int:
    """The server's count of batch POSTs answered (``GET /stats``)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"http://127.0.0.1:{port}/stats", timeout=5) as response:
        posts: int = json.load(response)["posts"]
        return posts


@pytest.mark.parametrize(("token", "expected"), [("ann-token", ANN), ("bob-token", BOB)])
def test_the_chain_is_one_post_pipelined_and_three_one_by_one(
    port: int, token: str, expected: list[str]
) -> None:
    result = run_client(port, "--token", token)
    assert result.returncode == 0, result.stderr
    found = ways(result.stdout)
    assert set(found) == {"pipelined", "awaited one by one"}, result.stdout
    pipelined, one_by_one = found["pipelined"], found["awaited one by one"]
    assert pipelined[0] == 1  # authenticate, profile(user.id), notifications(user.id): 1 POST
    assert one_by_one[0] == 3
    assert pipelined[2] == one_by_one[2] == expected
    assert "same results both ways: yes" in result.stdout
    assert posts_answered(port) == 1 + 3  # the server counted the same POSTs
    # Each POST waited DELAY_MS on the server, one after the other (1 ms of rounding allowed).
    assert pipelined[1] >= DELAY_MS - 1
    assert one_by_one[1] >= 3 * DELAY_MS - 1


def test_a_refused_token_fails_the_whole_chain_in_one_post(port: int) -> None:
    result = run_client(port, "--token", "nobody's")
    assert result.returncode == 1, result.stderr
    assert result.stdout.splitlines() == ["pipelined: failed: unknown token"]
    assert posts_answered(port) == 1


def test_the_client_refuses_a_websocket_url() -> None:
    command = [sys.executable, "-m", "examples.batch_pipelining.client", "ws://127.0.0.1:1/rpc"]
    result = subprocess.run(
        command, cwd=REPO, env=python_env(), capture_output=True, text=True,
        timeout=CLIENT_TIMEOUT,
    )  # fmt: skip
    assert result.returncode == 2
    assert "needs an http:// or https:// URL" in result.stderr
