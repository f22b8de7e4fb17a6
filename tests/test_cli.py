"""The ``capnweb`` command, run as a user runs it: real processes, real servers on 127.0.0.1.

``capnweb call`` against the interop example server (the README's calls, over WebSocket and
HTTP batch) and against a small server of this file's own; ``capnweb serve`` running the typed
example, a TLS server, a CORS-restricted one, and two worker processes on one port.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from pathlib import Path
from typing import Any

import pytest
import trustme
from interop.conftest import free_port, port_accepts, stop_process

import capnweb

ROOT = Path(__file__).resolve().parent.parent
CAPNWEB = [sys.executable, "-m", "capnweb"]
START_TIMEOUT_S = 30.0
RUN_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 20.0

pytestmark = pytest.mark.timeout(120)

SERVER_MODULE = """
import os
from datetime import UTC, datetime

import capnweb


class Counter(capnweb.RpcTarget):
    def increment(self, n: int) -> int:
        return n + 1


class Api(capnweb.RpcTarget):
    def pid(self) -> int:
        return os.getpid()

    def values(self) -> dict:
        return {
            "bytes": b"hi",
            "big": capnweb.BigInt(2**64),
            "small": capnweb.BigInt(5),
            "date": datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC),
            "undefined": capnweb.undefined,
            "floats": [1.5, float("nan"), float("inf")],
            "cap": Counter(),
            "typed": capnweb.TypedArray("Uint16Array", b"\\x01\\x00"),
            "url": capnweb.URL("https://example.com/"),
        }
"""


def env() -> dict[str, str]:
    """The environment of the commands: the checkout importable from any directory."""
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path}


def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """Run ``capnweb ARGS`` to its end."""
    return subprocess.run(
        [*CAPNWEB, *args],
        cwd=cwd,
        env=env(),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        stdin=subprocess.DEVNULL,
    )


def call(url: str, expr: str, *options: str) -> subprocess.CompletedProcess[str]:
    """``capnweb call URL EXPR``."""
    return run("call", url, expr, *options)


def result(done: subprocess.CompletedProcess[str]) -> Any:
    """The JSON a successful ``capnweb call`` printed."""
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def wait_until(
    condition: Callable[[], object], proc: subprocess.Popen[bytes], log: Path, what: str
) -> None:
    """Poll ``condition()`` until it holds (bounded); fail if ``proc`` exits first."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while not condition():
        if proc.poll() is not None:
            pytest.fail(f"exited with {proc.returncode} before {what}:\n{log.read_text()}")
        if time.monotonic() > deadline:
            pytest.fail(f"not {what} within {START_TIMEOUT_S} s:\n{log.read_text()}")
        time.sleep(0.05)


@contextmanager
def started(
    command: list[str], cwd: Path, log: Path, port: int
) -> Iterator[subprocess.Popen[bytes]]:
    """A server process (its own process group, output in ``log``) once ``port`` accepts
    connections; stopped (its whole group) on the way out."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command,
            cwd=cwd,
            env=env(),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_until(lambda: port_accepts(port), proc, log, f"accepting on port {port}")
        yield proc
    finally:
        stop_process(proc)
        with suppress(ProcessLookupError):  # what it left behind in its group, if anything
            os.killpg(proc.pid, signal.SIGKILL)


def serve(
    cwd: Path, log: Path, port: int, *args: str
) -> AbstractContextManager[subprocess.Popen[bytes]]:
    """``capnweb serve ARGS --port PORT`` running in ``cwd``."""
    return started([*CAPNWEB, "serve", *args, "--port", str(port)], cwd, log, port)


def stopped_by_sigterm(proc: subprocess.Popen[bytes]) -> int:
    """SIGTERM to the process alone; its exit status."""
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=STOP_TIMEOUT_S)


def alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie waiting for its parent to reap it does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return stat.rpartition(")")[2].split()[0] != "Z"


@pytest.fixture(scope="module")
def interop_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The interop example server (examples/interop/server.py); its ``/rpc`` URL, no scheme."""
    port = free_port()
    log = tmp_path_factory.mktemp("interop") / "server.log"
    command = [sys.executable, "-m", "examples.interop.server", "--port", str(port)]
    with started(command, ROOT, log, port):
        yield f"127.0.0.1:{port}/rpc"


@pytest.fixture(scope="module")
def app_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding ``cliserver.py`` (SERVER_MODULE), a server as a user writes one."""
    directory = tmp_path_factory.mktemp("app")
    (directory / "cliserver.py").write_text(SERVER_MODULE)
    return directory


@pytest.fixture(scope="module")
def app_url(app_dir: Path) -> Iterator[str]:
    """``capnweb serve cliserver:Api`` run in ``app_dir``; its ``/rpc`` URL, no scheme."""
    port = free_port()
    with serve(app_dir, app_dir / "serve.log", port, "cliserver:Api"):
        yield f"127.0.0.1:{port}/rpc"


# -- capnweb call


@pytest.mark.parametrize("scheme", ["ws", "http"])
def test_call_prints_the_readme_calls_results(interop_url: str, scheme: str) -> None:
    url = f"{scheme}://{interop_url}"
    assert call(url, "square(7)").stdout == "49\n"
    # one round trip: over HTTP the batch ends after its one POST, so the chain is pipelined
    assert result(call(url, "makeCounter(2).increment(3)")) == 5
    assert result(call(url, 'echo({"a": [1, 2.5, true, null]})')) == {"a": [1, 2.5, True, None]}
    assert result(call(url, "echo('bob')")) == "bob"
    assert result(call(url, "makeCounters([1, 2]).counters[1].increment(5)")) == 7


def test_call_output_is_indented_json_or_one_line_with_compact(interop_url: str) -> None:
    url = f"ws://{interop_url}"
    expr = "echo({'a': [1, None, True, undefined]})"
    assert call(url, expr).stdout == '{\n  "a": [\n    1,\n    null,\n    true,\n    null\n  ]\n}\n'
    assert call(url, expr, "--compact").stdout == '{"a": [1, null, true, null]}\n'


def test_call_maps_values_to_json(app_url: str) -> None:
    assert result(call(f"ws://{app_url}", "values()")) == {
        "bytes": {"$bytes": "aGk="},
        "big": "18446744073709551616",
        "small": 5,
        "date": "2024-05-06T07:08:09Z",
        "undefined": None,
        "floats": [1.5, "NaN", "Infinity"],
        "cap": {"$capability": True},
        "typed": {"$bytes": "AQA=", "$type": "Uint16Array"},
        "url": "https://example.com/",
    }
    assert result(call(f"http://{app_url}", "values().cap.increment(1)")) == 2
    assert result(call(f"ws://{app_url}", "values()['small']")) == 5


@pytest.mark.parametrize("scheme", ["ws", "http"])
def test_a_remote_error_is_printed_with_its_name_and_exits_1(interop_url: str, scheme: str) -> None:
    done = call(f"{scheme}://{interop_url}", "throwError()")
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == "error: RangeError: test error\n"
    done = call(f"{scheme}://{interop_url}", "throwTypedError('MyError', 'boom')")
    assert (done.returncode, done.stderr) == (1, "error: MyError: boom\n")


def test_a_stream_result_is_printed_one_json_line_per_chunk(interop_url: str) -> None:
    url = f"ws://{interop_url}"
    done = call(url, "streamNumbers(3)")
    assert (done.returncode, done.stdout) == (0, "0\n1\n2\n")
    assert call(url, "streamBytes(3, 2)").stdout == '{"$bytes": "AAE="}\n{"$bytes": "Ag=="}\n'
    failed = call(url, "failingStream(2, 'kaput')")
    assert (failed.returncode, failed.stdout) == (1, "0\n1\n")
    assert failed.stderr == "error: Error: kaput\n"


def test_a_call_that_takes_too_long_fails_at_the_timeout(interop_url: str) -> None:
    started_at = time.monotonic()
    done = call(f"ws://{interop_url}", "delayedEcho(10000, 1)", "--timeout", "0.5")
    assert done.returncode == 1
    assert done.stderr == f"error: no answer from ws://{interop_url} within 0.5 s\n"
    assert time.monotonic() - started_at < 9


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("square(x)", "column 8: `x` is a name, not a literal"),
        ("square(1 + 2)", "column 8: `1 + 2` is not a literal"),
        ("square(lambda: 1)", "column 8: `lambda: 1` is not a literal"),
        ("echo([1, {2: 3}])", "column 11: `2` is not allowed as a key"),
        ("square(i=7)", "column 8: `i=7` is a keyword argument"),
        ("f()[g()]", "column 5: `g()` is not allowed as an index"),
        ("42", "column 1: `42` is not a member of the server's main capability"),
        ("square(7", "invalid expression 'square(7': '(' was never closed"),
    ],
)
def test_a_bad_expression_is_a_usage_error_pointing_at_the_problem(expr: str, message: str) -> None:
    # nothing listens on the port: the expression is refused before any connection
    done = call(f"ws://127.0.0.1:{free_port()}/rpc", expr)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("capnweb call: error: "), done.stderr
    assert message in done.stderr
    assert done.stderr.count("\n") == 1


@pytest.mark.parametrize("scheme", ["ws", "http"])
def test_a_refused_connection_fails_with_a_clear_error(scheme: str) -> None:
    url = f"{scheme}://127.0.0.1:{free_port()}/rpc"
    done = call(url, "square(7)")
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr.startswith("error: ")
    assert "Connection refused" in done.stderr or "Cannot connect" in done.stderr
    assert "Traceback" not in done.stderr


def test_call_usage_errors_exit_2() -> None:
    for args in (
        ("ftp://127.0.0.1/rpc", "square(7)"),
        ("ws://127.0.0.1/rpc", "square(7)", "--header", "no colon"),
        ("wss://127.0.0.1/rpc", "square(7)", "--insecure", "--cafile", "ca.pem"),
        ("ws://127.0.0.1/rpc",),
    ):
        done = run("call", *args)
        assert done.returncode == 2, (args, done.stderr)
        assert done.stderr.startswith("capnweb call: error: ")


# -- capnweb serve


def test_serve_runs_the_typed_example_for_its_typed_client(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "serve.log"
    with serve(ROOT, log, port, "examples.typed.server:make_api") as proc:
        url = f"ws://127.0.0.1:{port}/rpc"
        tour = subprocess.run(
            [sys.executable, "-m", "examples.typed.client", url],
            cwd=ROOT,
            env=env(),
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT_S,
        )
        assert tour.returncode == 0, tour.stderr
        assert "user name: ann" in tour.stdout
        # the sessions share the example's directory: ann and bob exist now
        assert result(call(f"http://127.0.0.1:{port}/rpc", "userNames('desc')")) == [
            "bob",
            "ann",
        ]
        assert stopped_by_sigterm(proc) == 0
    lines = log.read_text().splitlines()
    assert lines == [
        f"capnweb: serving examples.typed.server:make_api at {url} and "
        f"http://127.0.0.1:{port}/rpc (Ctrl-C to stop)"
    ]


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("cliserver", "expected MODULE:ATTR"),
        ("nosuchmodule:Api", "no module named 'nosuchmodule'"),
        ("cliserver:Nope", "'cliserver' has no attribute 'Nope'"),
        ("cliserver:os", "is a module, not a factory"),
        ("cliserver:Counter.increment", "cannot be called without arguments"),
    ],
)
def test_serve_refuses_a_bad_target_with_one_line(app_dir: Path, target: str, message: str) -> None:
    done = run("serve", target, "--port", str(free_port()), cwd=app_dir)
    assert done.returncode == 2
    assert done.stderr.startswith("capnweb serve: error: ")
    assert message in done.stderr
    assert done.stderr.count("\n") == 1


def test_serve_usage_errors_exit_2(app_dir: Path) -> None:
    for args in (
        ("--workers", "2", "--port", "0"),
        ("--workers", "0"),
        ("--path", "rpc"),
        ("--ssl-keyfile", "key.pem"),
        ("--cors-origin", "example.com"),
    ):
        done = run("serve", "cliserver:Api", *args, cwd=app_dir)
        assert done.returncode == 2, (args, done.stderr)
        assert done.stderr.startswith("capnweb serve: error: "), done.stderr


def test_serve_fails_when_the_port_is_taken(app_dir: Path, app_url: str) -> None:
    port = app_url.split(":")[1].split("/")[0]
    done = run("serve", "cliserver:Api", "--port", port, cwd=app_dir)
    assert done.returncode == 1
    assert done.stderr == f"error: cannot listen on 127.0.0.1:{port}: Address already in use\n"


def test_serve_over_tls_is_reached_with_the_ca(app_dir: Path, tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    cert.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    with (tmp_path / "cert.pem").open("wb") as chain:
        for pem in cert.cert_chain_pems:
            chain.write(pem.bytes())
    port = free_port()
    tls = ("--ssl-certfile", str(tmp_path / "cert.pem"), "--ssl-keyfile", str(tmp_path / "key.pem"))
    log = tmp_path / "serve.log"
    with serve(app_dir, log, port, "cliserver:Api", *tls) as proc:
        for scheme in ("wss", "https"):
            url = f"{scheme}://127.0.0.1:{port}/rpc"
            assert result(call(url, "pid()", "--cafile", str(tmp_path / "ca.pem"))) == proc.pid
            assert result(call(url, "pid()", "--insecure")) == proc.pid
            unknown_ca = call(url, "pid()")
            assert unknown_ca.returncode == 1
            assert "certificate verify failed" in unknown_ca.stderr or (
                "unable to get local issuer certificate" in unknown_ca.stderr
            )
    assert f"at wss://127.0.0.1:{port}/rpc and https://127.0.0.1:{port}/rpc" in log.read_text()


def test_serve_lets_only_the_given_origins_call_from_a_web_page(
    app_dir: Path, tmp_path: Path
) -> None:
    port = free_port()
    origin = "https://app.example"
    log = tmp_path / "serve.log"
    with serve(app_dir, log, port, "cliserver:Api", "--cors-origin", origin) as proc:
        url = f"http://127.0.0.1:{port}/rpc"
        assert result(call(url, "pid()", "--header", f"Origin: {origin}")) == proc.pid
        refused = call(url, "pid()", "--header", "Origin: https://elsewhere.example")
        assert refused.returncode == 1
        assert "403" in refused.stderr


async def pids_seen(url: str, want: int) -> set[int]:
    """The pids answering ``pid()`` on new connections, until ``want`` distinct (bounded)."""
    seen: set[int] = set()
    async with asyncio.timeout(START_TIMEOUT_S):
        while len(seen) < want:
            async with capnweb.connect(url) as api:
                seen.add(await api.pid())
    return seen


def test_serve_with_workers_serves_from_several_processes(app_dir: Path, tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "serve.log"
    url = f"ws://127.0.0.1:{port}/rpc"
    with serve(app_dir, log, port, "cliserver:Api", "--workers", "2") as parent:
        wait_until(lambda: "with 2 workers" in log.read_text(), parent, log, "serving")
        announced = re.search(r"with 2 workers \(pids (\d+), (\d+)\)", log.read_text())
        assert announced is not None, log.read_text()
        workers = {int(announced[1]), int(announced[2])}
        assert parent.pid not in workers
        assert asyncio.run(pids_seen(url, 2)) == workers

        # a worker that dies is replaced
        dead = min(workers)
        os.kill(dead, signal.SIGKILL)
        replaced = re.compile(rf"worker {dead} killed by SIGKILL; started worker (\d+)")
        wait_until(lambda: replaced.search(log.read_text()), parent, log, "restarting")
        found = replaced.search(log.read_text())
        assert found is not None
        workers = workers - {dead} | {int(found[1])}
        assert asyncio.run(pids_seen(url, 2)) == workers

        # SIGTERM to the parent alone stops every worker, then the parent
        assert stopped_by_sigterm(parent) == 0
        assert not [pid for pid in workers if alive(pid)]
        assert not port_accepts(port)
        assert "killing" not in log.read_text()  # they stopped on the signal, not SIGKILL


def test_workers_stop_when_their_parent_is_killed(app_dir: Path, tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "serve.log"
    with serve(app_dir, log, port, "cliserver:Api", "--workers", "2") as parent:
        wait_until(lambda: "with 2 workers" in log.read_text(), parent, log, "serving")
        announced = re.search(r"\(pids (\d+), (\d+)\)", log.read_text())
        assert announced is not None
        workers = {int(announced[1]), int(announced[2])}
        parent.kill()
        parent.wait(timeout=STOP_TIMEOUT_S)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not [pid for pid in workers if alive(pid)]


def test_workers_that_cannot_start_stop_the_command(app_dir: Path) -> None:
    done = run("serve", "cliserver:Nope", "--port", str(free_port()), "--workers", "2", cwd=app_dir)
    assert done.returncode == 2
    # the first worker failed: the error is printed once, not once per worker
    assert done.stderr.count("'cliserver' has no attribute 'Nope'") == 1
    assert "exited before serving" in done.stderr


# -- capnweb codegen, --version, --help


def test_codegen_runs_the_code_generator(tmp_path: Path) -> None:
    done = run("codegen", "--help")
    assert done.returncode == 0
    assert "--out" in done.stdout
    done = run("codegen", "examples.typed.api", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "class ApiStub(" in (tmp_path / "examples_typed_api.py").read_text()


def test_version_is_the_package_version() -> None:
    script = Path(sys.executable).parent / "capnweb"
    command = [str(script)] if script.exists() else CAPNWEB
    done = subprocess.run(
        [*command, "--version"], capture_output=True, text=True, timeout=RUN_TIMEOUT_S
    )
    assert (done.returncode, done.stdout) == (0, f"capnweb {capnweb.__version__}\n")


def test_each_command_has_help_with_examples() -> None:
    for command, example in (
        ((), "capnweb call ws://127.0.0.1:8080/rpc 'square(7)'"),
        (("serve",), "capnweb serve myapp:Api --host 0.0.0.0 --workers 4"),
        (("call",), "capnweb call http://127.0.0.1:8080/rpc 'makeCounter(2).increment(3)'"),
    ):
        done = run(*command, "--help")
        assert done.returncode == 0
        assert example in done.stdout
    done = run()
    assert done.returncode == 2
    assert done.stderr.startswith("capnweb: error: ")
