"""Fixtures for the interop suite: Node dependencies, free ports and server processes.

``ts_server`` runs the TypeScript reference server (``js/server.mjs``, official capnweb package)
and ``py_server`` runs this project's ``examples/interop/server.py``; both yield the base URL
``http://127.0.0.1:PORT/rpc`` of a server that serves every session of the test run, and both
follow INTEROP-CONTRACT.md section 1 (readiness = the port accepts TCP connections; stop =
SIGTERM to the server's process group, SIGKILL 3 s later).
"""

from __future__ import annotations

import functools
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pytest
from helpers import npm_ci

INTEROP_DIR = Path(__file__).resolve().parent
JS_DIR = INTEROP_DIR / "js"
REPO_ROOT = INTEROP_DIR.parents[1]
PY_SERVER_SCRIPT = REPO_ROOT / "examples" / "interop" / "server.py"

NODE = "node"
SERVER_START_TIMEOUT_S = 20.0
SERVER_STOP_GRACE_S = 3.0


@functools.cache
def ensure_js_deps() -> None:
    """Installs ``js/node_modules`` from the lock file (``npm ci``) once, if it is missing."""
    npm_ci(JS_DIR, ("capnweb", "ws"))


def node_command(script: str, *args: str) -> list[str]:
    """The command line running ``js/<script>`` with the polyfills of ``js/setup.mjs``."""
    return [NODE, "--import", "./setup.mjs", script, *args]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def port_accepts(port: int) -> bool:
    """Whether 127.0.0.1:port accepts a TCP connection right now."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the process group started for ``proc``; SIGKILL if still alive 3 s later."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=SERVER_STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=SERVER_STOP_GRACE_S)
    except ProcessLookupError:
        proc.wait(timeout=SERVER_STOP_GRACE_S)


def log_tail(path: Path, limit: int = 4000) -> str:
    """The last ``limit`` characters of a log file (empty if it does not exist)."""
    try:
        return path.read_text(errors="replace")[-limit:]
    except OSError:
        return ""


def serve(
    command: Sequence[str], cwd: Path, log_path: Path, extra_env: Mapping[str, str] | None = None
) -> Iterator[str]:
    """Runs a server on a free port until the generator is closed; yields its ``/rpc`` URL.

    The server gets the port both as ``--port N`` (in ``command``, via ``{port}``) and as
    ``PORT``. Its output goes to ``log_path``.
    """
    port = free_port()
    argv = [part.replace("{port}", str(port)) for part in command]
    env = {**os.environ, **(extra_env or {}), "PORT": str(port)}
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while not port_accepts(port):
            if proc.poll() is not None:
                pytest.fail(
                    f"server {argv} exited with {proc.returncode} before accepting connections:"
                    f"\n{log_tail(log_path)}",
                    pytrace=False,
                )
            if time.monotonic() > deadline:
                pytest.fail(
                    f"server {argv} did not accept connections on port {port} within "
                    f"{SERVER_START_TIMEOUT_S} s:\n{log_tail(log_path)}",
                    pytrace=False,
                )
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/rpc"
    finally:
        stop_process(proc)


@pytest.fixture(scope="session")
def js_deps() -> None:
    """Makes sure ``js/node_modules`` exists (runs ``npm ci`` once if needed)."""
    ensure_js_deps()


@pytest.fixture(scope="session")
def ts_server(js_deps: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The TypeScript reference server (``js/server.mjs``); yields its base URL."""
    log_path = tmp_path_factory.mktemp("ts_server") / "server.log"
    yield from serve(node_command("server.mjs", "--port", "{port}"), JS_DIR, log_path)


@pytest.fixture(scope="session")
def py_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """This project's interop server (``examples/interop/server.py``); yields its base URL."""
    log_path = tmp_path_factory.mktemp("py_server") / "server.log"
    command = [sys.executable, str(PY_SERVER_SCRIPT.relative_to(REPO_ROOT)), "--port", "{port}"]
    # The script's own directory is on sys.path, not the checkout: make `capnweb` importable.
    pythonpath = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH")) if p)
    yield from serve(command, REPO_ROOT, log_path, {"PYTHONPATH": pythonpath})
