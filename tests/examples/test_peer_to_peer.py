"""examples/peer_to_peer run as a user runs it: two processes on 127.0.0.1, each calling the
other and calling back the other's callbacks over one WebSocket, each ending by itself."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from deploy.servers import REPO, python_env, running
from interop.conftest import free_port, log_tail, stop_process

import capnweb
from stubs.examples_peer_to_peer_api import PeerStub

pytestmark = pytest.mark.timeout(60)

WAIT_S = 20.0
"""Seconds a process may take to start, to finish its exchange, or to end."""

ALICE_ASKS = "what is 12 x 12?"
BOB_ASKS = "what is 6 x 7?"

# Each process prints its own calls in order, and the other's calls to it in order; the two
# streams interleave as they happen.
BOB_CALLS = [
    "hello returned 'alice'",
    "calling alice.greet('hello alice, this is bob')",
    "alice.greet returned 'hi bob, nice to meet you'",
    "calling alice.ask('what is 6 x 7?', my callback)",
    "alice called my callback with '42'",
    "alice.ask returned 'thanks, alice'",
    "calling alice.bye()",
    "alice.bye returned: hanging up",
]
BOB_RECEIVES = [
    "alice called greet('hello bob, this is alice')",
    "alice called ask('what is 12 x 12?', a callback); calling it with '144'",
    "alice's callback returned 'thanks, bob'",
]
ALICE_CALLS = [
    "calling bob.greet('hello bob, this is alice')",
    "bob.greet returned 'hi alice, nice to meet you'",
    "calling bob.ask('what is 12 x 12?', my callback)",
    "bob called my callback with '144'",
    "bob.ask returned 'thanks, bob'",
]
ALICE_RECEIVES = [
    "bob called greet('hello alice, this is bob')",
    "bob called ask('what is 6 x 7?', a callback); calling it with '42'",
    "bob's callback returned 'thanks, alice'",
    "bob called bye(); finishing my own calls first",
]


def peer_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "examples.peer_to_peer.peer", *args]


def assert_in_order(lines: list[str], expected: list[str]) -> None:
    """``expected`` appear among ``lines`` in this order."""
    positions = [lines.index(line) if line in lines else -1 for line in expected]
    assert -1 not in positions and positions == sorted(positions), "\n".join(lines)


def test_each_peer_calls_the_other_and_calls_back_its_callback(tmp_path: Path) -> None:
    port = free_port()
    url = f"ws://127.0.0.1:{port}/rpc"
    log = tmp_path / "alice.log"
    alice_command = peer_command("--name", "alice", "--listen", str(port), "--ask", ALICE_ASKS)
    with running(alice_command, port, log, env=python_env(), cwd=REPO, ready="listening") as alice:
        bob = subprocess.run(
            peer_command("--name", "bob", "--connect", url, "--ask", BOB_ASKS),
            cwd=REPO,
            env=python_env(),
            capture_output=True,
            text=True,
            timeout=WAIT_S,
        )
        assert bob.returncode == 0, bob.stdout + bob.stderr
        # The listening peer ends by itself once bob has hung up.
        assert alice.wait(timeout=WAIT_S) == 0, log_tail(log)

    bob_lines = bob.stdout.splitlines()
    assert bob_lines[0] == f"connected to {url}; calling hello('bob')"
    assert sorted(bob_lines[1:]) == sorted(BOB_CALLS + BOB_RECEIVES)
    assert_in_order(bob_lines, BOB_CALLS)
    assert_in_order(bob_lines, BOB_RECEIVES)
    assert bob_lines[-1] == "alice.bye returned: hanging up"

    alice_lines = log.read_text().splitlines()
    assert alice_lines[:2] == [
        f"listening {port}",
        "bob called hello('bob'); calling bob back over the same connection",
    ]
    assert sorted(alice_lines[2:-1]) == sorted(ALICE_CALLS + ALICE_RECEIVES)
    assert_in_order(alice_lines, ALICE_CALLS)
    assert_in_order(alice_lines, ALICE_RECEIVES)
    assert alice_lines[-1] == "bob disconnected"


def start_listener(log: Path, name: str = "alice") -> tuple[subprocess.Popen[bytes], int]:
    """A listening peer on a free port of its choosing (``--listen 0``), and that port."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            peer_command("--name", name, "--listen", "0"),
            cwd=REPO,
            env=python_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + WAIT_S
        while not (printed := re.match(r"listening (\d+)\n", log.read_text())):
            assert proc.poll() is None and time.monotonic() < deadline, log_tail(log)
            time.sleep(0.05)  # polling the log until the line is there: bounded by the deadline
    except BaseException:
        stop_process(proc)
        raise
    return proc, int(printed[1])


def test_a_listening_peer_without_a_peer_stops_on_sigterm(tmp_path: Path) -> None:
    log = tmp_path / "alice.log"
    alice, port = start_listener(log)
    try:
        assert port != 0
        assert alice.poll() is None  # still waiting for a peer
    finally:
        stop_process(alice)  # SIGTERM first
    assert alice.returncode == 0, log_tail(log)
    assert log.read_text() == f"listening {port}\n"


async def test_a_peer_that_hangs_up_at_once_ends_the_listener_with_status_1(
    tmp_path: Path,
) -> None:
    log = tmp_path / "alice.log"
    alice, port = start_listener(log)
    try:
        # A peer that says hello, serves nothing back (no main=) and hangs up.
        async with capnweb.connect(f"ws://127.0.0.1:{port}/rpc", PeerStub) as peer:
            assert await peer.hello("eve") == "alice"
        # It ends by itself once eve has gone.
        await asyncio.to_thread(alice.wait, WAIT_S)
    finally:
        stop_process(alice)
    lines = log.read_text().splitlines()
    assert alice.returncode == 1, log_tail(log)
    assert lines[1] == "eve called hello('eve'); calling eve back over the same connection"
    assert lines[-1].startswith("eve disconnected before my calls were done: ")
