"""Server processes for the deployment tests: started on a free port of 127.0.0.1, ready once
the port accepts connections, stopped (SIGTERM, then SIGKILL) whatever happens."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from interop.conftest import log_tail, port_accepts, stop_process

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
START_TIMEOUT = 20.0


def python_env(**extra: str) -> dict[str, str]:
    """The environment of a server process: the repository and this folder importable."""
    path = os.pathsep.join([str(REPO), str(HERE), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path, **extra}


@contextmanager
def running(
    command: Sequence[str],
    port: int,
    log: Path,
    *,
    env: dict[str, str] | None = None,
    cwd: Path = HERE,
    ready: str = "",
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``command`` until the block ends; it must accept connections on ``port`` (and have
    written ``ready`` to its output) within ``START_TIMEOUT`` seconds (its output goes to
    ``log``, shown if it does not)."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            list(command),
            cwd=cwd,
            env=env if env is not None else python_env(),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not port_accepts(port) or ready not in log.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{command[0]} did not start:\n{log_tail(log)}")
            time.sleep(0.05)  # polling the port until it accepts: bounded by the deadline
        yield proc
    finally:
        stop_process(proc)


def asgi_command(server: str, app: str, port: int, *options: str) -> list[str]:
    """The command serving ``asgi_apps:<app>`` with uvicorn or hypercorn on ``port``."""
    target = f"asgi_apps:{app}"
    if server == "uvicorn":
        return [str(BIN / "uvicorn"), target, "--host", "127.0.0.1", "--port", str(port),
                "--log-level", "warning", *options]  # fmt: skip
    return [str(BIN / "hypercorn"), target, "--bind", f"127.0.0.1:{port}", *options]
