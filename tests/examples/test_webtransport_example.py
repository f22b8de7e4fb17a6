"""examples/webtransport run as a user runs it: ``capnweb cert`` makes the certificate, the
server serves WebTransport on a UDP port of 127.0.0.1, and the client, trusting the printed
hash or the certificate file, prints what it did."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from deploy.servers import REPO, START_TIMEOUT, python_env
from interop.conftest import log_tail, stop_process

pytestmark = pytest.mark.timeout(60)

WAIT_S = 20.0
"""Seconds a process may take to finish."""

EXPECTED = [
    "greet: Hello, WebTransport! (session 1)",
    "square(square(3)) = 81",
    "make_counter(10).increment(5) = 15",
    "tick 3",
    "tick 2",
    "tick 1",
    "countdown(3) made 3 ticks",
    "fail raised RpcRangeError: no luck",
    "one QUIC connection, 2 sessions: session 2 and session 3",
]


def free_udp_port() -> int:
    """A UDP port of 127.0.0.1 that nothing is bound to right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def make_certificate(out: Path) -> str:
    """``capnweb cert --out out``: the hash it prints on stdout."""
    done = subprocess.run(
        [sys.executable, "-m", "capnweb", "cert", "--out", str(out)],
        cwd=REPO,
        env=python_env(),
        capture_output=True,
        text=True,
        timeout=WAIT_S,
    )
    assert done.returncode == 0, done.stderr
    assert (out / "cert.pem").is_file() and (out / "key.pem").is_file()
    return done.stdout.strip()


@contextmanager
def server(port: int, certs: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """The example server until the block ends, ready once it printed ``listening port``
    (UDP: there is no accepting port to poll)."""
    command = [sys.executable, "-m", "examples.webtransport.server", "--port", str(port)]
    command += ["--cert", str(certs / "cert.pem"), "--key", str(certs / "key.pem")]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command,
            cwd=REPO,
            env=python_env(),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while f"listening {port}\n" not in log.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the server did not start:\n{log_tail(log)}")
            time.sleep(0.05)  # polling the log for the line: bounded by the deadline
        yield proc
    finally:
        stop_process(proc)


def run_client(port: int, *trust: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "examples.webtransport.client"]
    command += [f"https://127.0.0.1:{port}/rpc", *trust]
    return subprocess.run(
        command, cwd=REPO, env=python_env(), capture_output=True, text=True, timeout=WAIT_S
    )


def test_the_client_trusts_the_printed_hash_or_the_certificate_file(tmp_path: Path) -> None:
    certs = tmp_path / "certs"
    digest = make_certificate(certs)
    assert len(digest) == 64 and int(digest, 16) >= 0
    port = free_udp_port()
    log = tmp_path / "server.log"
    with server(port, certs, log) as proc:
        by_hash = run_client(port, "--hash", digest)
        assert by_hash.returncode == 0, by_hash.stdout + by_hash.stderr
        assert by_hash.stdout.splitlines() == EXPECTED
        by_file = run_client(port, "--cert", str(certs / "cert.pem"))
        assert by_file.returncode == 0, by_file.stdout + by_file.stderr
        # a new server session count: the greeting's numbers go on
        assert by_file.stdout.splitlines()[0] == "greet: Hello, WebTransport! (session 4)"
        assert by_file.stdout.splitlines()[1:-1] == EXPECTED[1:-1]
        stop_process(proc)  # SIGTERM: a clean exit
    assert proc.returncode == 0, log_tail(log)
    assert log.read_text().splitlines() == [
        f"listening {port}",
        f"url https://127.0.0.1:{port}/rpc",
        f"certificate sha-256 {digest}",
    ]


def test_a_client_trusting_another_certificate_is_refused(tmp_path: Path) -> None:
    make_certificate(tmp_path / "certs")
    other = make_certificate(tmp_path / "other")
    port = free_udp_port()
    with server(port, tmp_path / "certs", tmp_path / "server.log"):
        done = run_client(port, "--hash", other)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.startswith("cannot connect: WebTransport connection failed")


def test_without_a_certificate_the_server_says_how_to_make_one(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "examples.webtransport.server", "--port", "0"]
    command += ["--cert", str(tmp_path / "none" / "cert.pem")]
    command += ["--key", str(tmp_path / "none" / "key.pem")]
    done = subprocess.run(
        command, cwd=REPO, env=python_env(), capture_output=True, text=True, timeout=WAIT_S
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"python -m capnweb cert --out {tmp_path / 'none'}" in done.stderr
    assert "listening" not in done.stdout
