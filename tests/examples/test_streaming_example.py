"""examples/streaming run as a user runs it: the server and the client as processes on
127.0.0.1, the client's printed lines (a followed log, upload progress, a download, a Blob, a
refused chunk) and the server's log checked; the client runs twice against one server."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from deploy.servers import REPO, python_env, running
from interop.conftest import free_port

pytestmark = pytest.mark.timeout(60)

WAIT_S = 20.0
"""Seconds a process may take to start or to finish."""

EXPECTED = [
    "tail: compiling",
    "tail: linking",
    "tail: done",
    "progress: 65536 bytes",
    "progress: 131072 bytes",
    "progress: 196608 bytes",
    "progress: 262144 bytes",
    "progress: done",
    "uploaded report.bin: 262144 bytes, sha256 matches: True",
    "downloaded report.bin in 3 chunks, same bytes: True",
    "read report.bin: a Blob of 262144 bytes, type application/octet-stream",
    "download of missing.bin raised RpcError: no file named 'missing.bin'",
    "upload of a str chunk raised RpcTypeError: StorageImpl.upload() argument 'data' chunk 1 "
    "must be bytes, got str",
]


def run_client(port: int) -> list[str]:
    """The lines the client prints against the server on ``port`` (it must exit with 0)."""
    command = [sys.executable, "-m", "examples.streaming.client", f"ws://127.0.0.1:{port}/rpc"]
    done = subprocess.run(
        command, cwd=REPO, env=python_env(), capture_output=True, text=True, timeout=WAIT_S
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.splitlines()


def test_client_follows_a_log_uploads_downloads_and_sees_a_bad_chunk_refused(
    tmp_path: Path,
) -> None:
    port = free_port()
    log = tmp_path / "server.log"
    command = [sys.executable, "-m", "examples.streaming.server", "--port", str(port)]
    with running(command, port, log, env=python_env(), cwd=REPO, ready="listening"):
        assert run_client(port) == EXPECTED
        # The closed log was forgotten and the file replaced: a second run prints the same.
        assert run_client(port) == EXPECTED
    stored = "stored report.bin: 262144 bytes"
    assert log.read_text().splitlines() == [f"listening {port}", stored, stored]
