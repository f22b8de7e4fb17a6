"""examples/microservices run as a user runs it: the auth, users and gateway services as three
processes on 127.0.0.1, the client as a fourth, its printed lines and the services' logs
checked; and the ``python -m examples.microservices`` launcher."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
from deploy.servers import REPO, python_env, running
from interop.conftest import free_port, port_accepts

pytestmark = pytest.mark.timeout(60)

WAIT_S = 30.0
"""Seconds the client (or the launcher) may take to finish."""

SEES = [
    "ann: Ann Example <ann@example.com>, notes ['buy oat milk']",
    """bob: Bob Example <bob@example.com>, notes ["bob's secret plan"]""",
    "ann adds a note: ['buy oat milk', 'call bob back']",
    """bob's notes are still: ["bob's secret plan"]""",
    "bad token: refused (AuthError: unknown token)",
    "reading bob's data with ann's capability:",
    "  profile('bob') on ann's: refused (TypeError: UserDataImpl.profile() takes 0 argument(s)"
    " but 1 were given)",
    "  open('bob') on ann's: refused (TypeError: 'open' is not a function.)",
    "  the gateway's link to the users service: refused (TypeError: Cannot read properties of"
    " undefined (reading 'open'))",
    "  bob's name as his token: refused (AuthError: unknown token)",
]
"""What the client prints against the gateway alone."""

FORGED = (
    "  a forged session, straight to the users service: refused (AuthError: unknown, spent or"
    " expired ticket)"
)
"""What it adds when it may also reach the users service (``--users``)."""


def command(name: str, *args: str) -> list[str]:
    return [sys.executable, "-m", f"examples.microservices.{name}", *args]


def url(port: int) -> str:
    return f"ws://127.0.0.1:{port}/rpc"


@contextmanager
def services(tmp_path: Path, order: tuple[str, ...]) -> Iterator[dict[str, int]]:
    """The three services on free ports, started in ``order``, each one ready (listening)
    before the next starts; all stopped when the block ends. Yields their ports by name."""
    ports = {"auth": free_port(), "users": free_port(), "gateway": free_port()}
    while len(set(ports.values())) < len(ports):  # the kernel may hand out a port again
        ports = {name: free_port() for name in ports}
    options = {
        "auth": [],
        "users": ["--auth", url(ports["auth"])],
        "gateway": ["--auth", url(ports["auth"]), "--users", url(ports["users"])],
    }
    with ExitStack() as stack:
        for name in order:
            argv = command(name, "--port", str(ports[name]), *options[name])
            log = tmp_path / f"{name}.log"
            stack.enter_context(
                running(argv, ports[name], log, env=python_env(), cwd=REPO, ready="listening")
            )
        yield ports


def run_client(*args: str) -> list[str]:
    """The lines the client prints (it must exit with 0)."""
    done = subprocess.run(
        command("client", *args),
        cwd=REPO,
        env=python_env(),
        capture_output=True,
        text=True,
        timeout=WAIT_S,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.splitlines()


def test_each_token_reaches_its_users_data_and_nothing_else(tmp_path: Path) -> None:
    with services(tmp_path, ("auth", "users", "gateway")) as ports:
        printed = run_client(url(ports["gateway"]), "--users", url(ports["users"]))
    assert printed == [*SEES, FORGED]

    # The users service opened ann's and bob's data once each, and nothing for the bad token,
    # bob's name or the forged session; the auth service refused those three.
    users_log = (tmp_path / "users.log").read_text().splitlines()
    assert sorted(users_log) == [
        f"listening {ports['users']}",
        "opened the data of ann",
        "opened the data of bob",
    ]
    auth_log = (tmp_path / "auth.log").read_text().splitlines()
    assert sorted(auth_log) == [
        f"listening {ports['auth']}",
        "login refused: unknown token",
        "login refused: unknown token",
        "login: ann",
        "login: bob",
        "redeem refused: unknown ticket",
        "redeemed a ticket of ann",
        "redeemed a ticket of bob",
    ]


def test_the_services_can_start_in_any_order(tmp_path: Path) -> None:
    # The gateway first: it connects to the others once they are there.
    with services(tmp_path, ("gateway", "users", "auth")) as ports:
        assert run_client(url(ports["gateway"])) == SEES


def test_the_launcher_runs_the_services_and_the_client_then_stops_them() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "examples.microservices"],
        cwd=REPO,
        env=python_env(),
        capture_output=True,
        text=True,
        timeout=WAIT_S,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    started = re.fullmatch(
        r"gateway ws://127\.0\.0\.1:(\d+)/rpc, auth ws://127\.0\.0\.1:(\d+)/rpc,"
        r" users ws://127\.0\.0\.1:(\d+)/rpc",
        lines[0],
    )
    assert started is not None, done.stdout
    client_lines = [line for line in lines[1:-1] if not line.startswith("[")]
    assert client_lines == [*SEES, FORGED]
    assert "[users] opened the data of ann" in lines
    assert lines[-1] == "services stopped"
    for port in started.groups():  # every service is gone: nothing listens any more
        assert not port_accepts(int(port))
