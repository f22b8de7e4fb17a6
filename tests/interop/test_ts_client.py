"""The official TypeScript client against both servers: one pytest item per conformance scenario.

``js/client.mjs`` runs every scenario of INTEROP-CONTRACT.md with npm ``capnweb`` 0.12.0. It is run
once per (server, transport) pair, lazily, and each scenario it knows (``client.mjs --list``, read
at collection time) becomes its own test: ``test_scenario[ts-ws-values.bigint_huge]``. A scenario
missing from the runner's output fails, as does a runner that crashed or timed out.

Servers: ``ts`` is the reference ``js/server.mjs``, ``py`` is ``examples/interop/server.py``.
Set ``CAPNWEB_INTEROP_JOBS`` to change how many scenarios the runner runs at a time (default 8).
Select one server with e.g. ``pytest tests/interop -k "ts-ws or ts-batch"``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from dataclasses import dataclass, field

import pytest

from .conftest import JS_DIR, ensure_js_deps, node_command

SERVERS = ("ts", "py")
TRANSPORTS = ("ws", "batch")
RUNNER_JOBS = int(os.environ.get("CAPNWEB_INTEROP_JOBS", "8"))
RUNNER_TIMEOUT_S = 600.0
LIST_TIMEOUT_S = 60.0


def list_scenarios(transport: str) -> list[str]:
    """Scenario names the runner has for ``transport`` (no server needed)."""
    ensure_js_deps()
    proc = subprocess.run(
        node_command("client.mjs", "--list", "--transport", transport),
        cwd=JS_DIR,
        capture_output=True,
        text=True,
        timeout=LIST_TIMEOUT_S,
        check=True,
    )
    names = [line.strip() for line in proc.stdout.splitlines() if line.strip()]
    if not names:
        raise RuntimeError(f"client.mjs --list --transport {transport} printed nothing")
    return names


SCENARIOS: dict[str, list[str]] = {transport: list_scenarios(transport) for transport in TRANSPORTS}


@dataclass(frozen=True)
class ScenarioResult:
    ok: bool
    detail: str | None


@dataclass
class RunnerOutcome:
    """What one ``client.mjs`` run against one server over one transport produced."""

    returncode: int | None
    timed_out: bool
    stderr_tail: str
    results: dict[str, ScenarioResult] = field(default_factory=dict)
    garbage: list[str] = field(default_factory=list)

    def describe(self) -> str:
        status = "timed out" if self.timed_out else f"exited with {self.returncode}"
        return f"runner {status}; stderr tail:\n{self.stderr_tail}"


def run_client(url: str, transport: str, jobs: int = RUNNER_JOBS) -> RunnerOutcome:
    """Runs every scenario of ``transport`` against ``url``, ``jobs`` at a time; never raises
    for runner failures."""
    proc = subprocess.Popen(
        node_command("client.mjs", "--url", url, "--transport", transport, "--jobs", str(jobs)),
        cwd=JS_DIR,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    timed_out = False
    try:
        out, err = proc.communicate(timeout=RUNNER_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        timed_out = True
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate(timeout=10)
    outcome = RunnerOutcome(
        returncode=proc.returncode,
        timed_out=timed_out,
        stderr_tail=err.decode("utf-8", "replace")[-3000:],
    )
    for line in out.decode("utf-8", "replace").splitlines():
        try:
            record = json.loads(line)
            name, ok, detail = record["name"], record["ok"], record["detail"]
        except (ValueError, KeyError, TypeError):
            outcome.garbage.append(line)
            continue
        text = None if detail is None else str(detail)
        outcome.results[str(name)] = ScenarioResult(ok is True, text)
    return outcome


class ClientRuns:
    """Runs the client at most once per (server, transport) and remembers the outcome."""

    def __init__(self) -> None:
        self._outcomes: dict[tuple[str, str], RunnerOutcome] = {}

    def get(self, request: pytest.FixtureRequest, server: str, transport: str) -> RunnerOutcome:
        key = (server, transport)
        if key not in self._outcomes:
            url = request.getfixturevalue(f"{server}_server")
            assert isinstance(url, str)
            self._outcomes[key] = run_client(url, transport)
        return self._outcomes[key]


@pytest.fixture(scope="session")
def client_runs() -> ClientRuns:
    return ClientRuns()


def _marks(server: str) -> list[pytest.MarkDecorator]:
    """The reference client against the reference server exercises no code of this project:
    those runs carry the ``reference`` marker (run on their own, not counted with the rest),
    and check only that the conformance scenarios themselves are right."""
    return [pytest.mark.reference] if server == "ts" else []


PAIRS = [
    pytest.param(server, transport, id=f"{server}-{transport}", marks=_marks(server))
    for server in SERVERS
    for transport in TRANSPORTS
]

CASES = [
    pytest.param(server, transport, name, id=f"{server}-{transport}-{name}", marks=_marks(server))
    for server in SERVERS
    for transport in TRANSPORTS
    for name in SCENARIOS[transport]
]


@pytest.mark.parametrize(("server", "transport", "scenario"), CASES)
def test_scenario(
    request: pytest.FixtureRequest,
    client_runs: ClientRuns,
    server: str,
    transport: str,
    scenario: str,
) -> None:
    outcome = client_runs.get(request, server, transport)
    result = outcome.results.get(scenario)
    if result is None:
        pytest.fail(f"scenario {scenario} missing from the runner output; {outcome.describe()}")
    if not result.ok:
        pytest.fail(f"{scenario}: {result.detail}", pytrace=False)


@pytest.mark.parametrize(("server", "transport"), PAIRS)
def test_runner_completed(
    request: pytest.FixtureRequest, client_runs: ClientRuns, server: str, transport: str
) -> None:
    """The runner finished by itself, reported exactly its scenarios, and exited accordingly."""
    outcome = client_runs.get(request, server, transport)
    assert not outcome.timed_out, outcome.describe()
    assert not outcome.garbage, f"unexpected runner output: {outcome.garbage[:5]}"
    assert sorted(outcome.results) == sorted(SCENARIOS[transport]), outcome.describe()
    all_ok = all(result.ok for result in outcome.results.values())
    assert outcome.returncode == (0 if all_ok else 1), outcome.describe()
