"""examples/actor_system run as a user runs it: the server and the client as processes on
127.0.0.1, the client's printed lines (export counts, a crash and restart, stops) and the
server's log checked; then a session of this test's own against the same server (through a
dynamic stub: in this folder the name ``examples`` is the test package, so the example's
modules and stubs are not importable here)."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from deploy.servers import REPO, python_env, running
from interop.conftest import free_port, log_tail

import capnweb
from capnweb import RpcError

pytestmark = pytest.mark.timeout(60)

WAIT_S = 20.0
"""Seconds a process may take to start or to finish, or the server to log a line."""

CRASH = "ValueError: invalid literal for int() with base 10"


def server_command(port: int) -> list[str]:
    return [sys.executable, "-m", "examples.actor_system.server", "--port", str(port)]


def run_client(port: int) -> list[str]:
    """The lines the client prints against the server on ``port`` (it must exit with 0)."""
    command = [sys.executable, "-m", "examples.actor_system.client", f"ws://127.0.0.1:{port}/rpc"]
    done = subprocess.run(
        command, cwd=REPO, env=python_env(), capture_output=True, text=True, timeout=WAIT_S
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.splitlines()


def figure(lines: list[str], prefix: str) -> int:
    """The number printed after ``prefix`` on the one line starting with it."""
    found = [line for line in lines if line.startswith(prefix)]
    assert len(found) == 1, lines
    match = re.match(r"(\d+)", found[0][len(prefix) :])
    assert match is not None, found[0]
    return int(match[1])


async def logged(log: Path, line: str) -> None:
    """Wait until the server has written ``line`` to its log (at most WAIT_S seconds)."""
    deadline = time.monotonic() + WAIT_S
    while line not in log.read_text().splitlines():
        assert time.monotonic() < deadline, f"not logged: {line!r}\n{log_tail(log)}"
        await asyncio.sleep(0.05)  # polling the log: bounded by the deadline


def test_client_sees_a_restart_and_the_export_count_back_at_its_baseline(
    tmp_path: Path,
) -> None:
    port = free_port()
    log = tmp_path / "server.log"
    with running(server_command(port), port, log, env=python_env(), cwd=REPO, ready="listening"):
        lines = run_client(port)

    # The library's count: the supervisor and the stats() call itself, then one export per
    # actor stub held, then back where it started once the stubs are released.
    baseline = figure(lines, "exports at start: ")
    assert baseline == 2
    assert figure(lines, "exports with 3 actors held: ") == baseline + 3
    assert lines[-1] == f"exports after releasing them: {baseline} (at start: {baseline})"

    assert lines[1:5] == [
        "spawned: tally, parrot",
        "tally <- '5': 5",
        "tally <- '7': 12",
        "parrot <- 'hello': #1 hello",
    ]
    # The crashing call rejects, typed; the same stub then reaches the restarted actor, whose
    # total started over (3, not 15).
    assert lines[5] == (
        f"tally <- 'oops': ActorCrashed: 'tally' crashed on 'oops' ({CRASH}: 'oops'); "
        "restarted (1 of 3)"
    )
    assert lines[6:8] == ["tally <- '3': 3", "tally: running, restarts 1, handled 1"]
    # No restart allowed: the crash is final and later calls reject.
    assert lines[8] == (
        f"fragile <- 'x': ActorCrashed: 'fragile' crashed on 'x' ({CRASH}: 'x'); "
        "no restart left: failed"
    )
    assert lines[9] == "fragile <- '1': ActorStopped: 'fragile' is failed"
    assert lines[11:16] == [
        "parrot: stopped",
        "parrot <- 'again': ActorStopped: 'parrot' is stopped",
        "running: tally",
        "running after releasing: none",
        f"exports after releasing them: {baseline} (at start: {baseline})",
    ]
    assert len(lines) == 16

    assert log.read_text().splitlines() == [
        f"listening {port}",
        "spawned counter 'tally'",
        "spawned echo 'parrot'",
        f"'tally' crashed on 'oops' ({CRASH}: 'oops'); restarted",
        "spawned counter 'fragile'",
        f"'fragile' crashed on 'x' ({CRASH}: 'x'); failed",
        "'fragile' released",
        "'parrot' stopped",
        "'parrot' released",
        "'tally' released; stopped",
    ]


async def test_messages_are_handled_in_order_and_a_session_end_stops_its_actors(
    tmp_path: Path,
) -> None:
    port = free_port()
    log = tmp_path / "server.log"
    with running(server_command(port), port, log, env=python_env(), cwd=REPO, ready="listening"):
        url = f"ws://127.0.0.1:{port}/rpc"
        async with capnweb.connect(url) as supervisor:
            baseline = (await supervisor.stats())["exports"]
            tally = await supervisor.spawn("counter", "tally")
            await supervisor.spawn("echo", "parrot")  # its stub is dropped at once: released
            await logged(log, "'parrot' released; stopped")

            # Sent without waiting: handled in order, the restart between two messages.
            sent = [tally.send(m) for m in ("1", "2", "oops", "4", "5")]
            replies = await asyncio.gather(*sent, return_exceptions=True)
            assert replies[:2] == ["1", "3"] and replies[3:] == ["4", "9"]
            crash = replies[2]
            assert isinstance(crash, RpcError) and crash.name == "ActorCrashed"
            assert crash.props["actor"] == "tally" and crash.props["restarted"] is True
            assert isinstance(crash.props["cause"], ValueError)  # the actor's own error

            with pytest.raises(ValueError, match="'tally' is running already"):
                await supervisor.spawn("echo", "tally")
            with pytest.raises(TypeError):  # checked by the library against the Literal
                await supervisor.spawn("robot", "r2d2")
            assert [s["name"] for s in await supervisor.actors()] == ["tally"]
            assert (await supervisor.stats())["exports"] == baseline + 1

        # The client went away holding the stub: the session's end released it.
        await logged(log, "'tally' released; stopped")
