"""Runs the benchmark suite: this project and the TypeScript reference, same run, same machine.

Usage: python benchmarks/run.py [--quick | --smoke] [--pairs py-py,ts-ts,py-ts,ts-py]
           [--workloads NAME,...|streams] [--full-streams] [--runs N]
           [--loop auto|asyncio|uvloop] [--out PATH] [--budget SECONDS]

A *pair* is ``client-server``: ``py`` is this project (``benchmarks/workloads.py`` and
``benchmarks/server.py``; the stream workloads: ``benchmarks/streams.py``), ``ts`` the official
capnweb package (``benchmarks/js/``: ``client.mjs`` and ``server.mjs``, ``streams.mjs``). Every
figure is the median of ``--runs`` measured runs (after ``--warmup`` runs) of one client process
per pair; the pairs' clients take their runs in turn (run 1 of every pair, then run 2, ...), so
a slow minute of a shared machine falls on all of them. Servers listen on 127.0.0.1 (free
ports) and are stopped by PID. The table goes to stdout and
the whole result, runs included, to ``benchmarks/results/latest.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"
JS = BENCH / "js"
PAIRS = ("py-py", "ts-ts", "py-ts", "ts-py")
SERVER_START_S = 30.0


@dataclass(frozen=True)
class Workload:
    """One row group of the table: a client workload over one transport."""

    name: str
    transport: str
    params: dict[str, Any]
    metrics: tuple[tuple[str, str], ...]  # (metric, "higher" | "lower") in table order
    fresh_server: bool = False  # a new server process for every run (memory figures)
    pairs: tuple[str, ...] = PAIRS
    server: bool = True
    program: str = "rpc"  # "rpc": workloads.py / server.py; "streams": streams.py (and .mjs)
    runs: int | None = None  # at most this many measured runs (None: --runs)

    @property
    def label(self) -> str:
        return self.name if self.transport == "-" else f"{self.name} ({self.transport})"


SIZES: dict[str, dict[str, dict[str, Any]]] = {
    "full": {
        "sequential": {"n": 2000},
        "concurrent": {"n": 10000},
        "pipelined": {"n": 100},
        "payload": {"n": 20, "items": 10000},
        "sessions": {"sessions": 200, "calls": 50},
        "codec": {"items": 10000, "min_seconds": 0.3},
        "raw_sequential": {"n": 2000},
        "raw_concurrent": {"n": 10000},
        "mem_exports": {"n": 10000},
        "mem_sessions": {"n": 10000},
        "stream_download": {"bytes": 16 << 20, "chunk": 64 << 10},
        "stream_upload": {"bytes": 16 << 20, "chunk": 64 << 10},
        "stream_objects": {"n": 20000},
        # 1 GiB offered, read at 32 MB/s for 5 s, then cancelled
        "stream_slow": {"bytes": 1 << 30, "chunk": 64 << 10, "rate_mb_s": 32, "seconds": 5},
    },
    "quick": {
        "sequential": {"n": 500},
        "concurrent": {"n": 2000},
        "pipelined": {"n": 100},
        "payload": {"n": 5, "items": 10000},
        "sessions": {"sessions": 50, "calls": 20},
        "codec": {"items": 10000, "min_seconds": 0.1},
        "raw_sequential": {"n": 500},
        "raw_concurrent": {"n": 2000},
        "mem_exports": {"n": 2000},
        "mem_sessions": {"n": 1000},
        "stream_download": {"bytes": 8 << 20, "chunk": 64 << 10},
        "stream_upload": {"bytes": 8 << 20, "chunk": 64 << 10},
        "stream_objects": {"n": 10000},
        "stream_slow": {"bytes": 1 << 30, "chunk": 64 << 10, "rate_mb_s": 32, "seconds": 3},
    },
    "smoke": {
        "sequential": {"n": 3},
        "concurrent": {"n": 5},
        "pipelined": {"n": 3},
        "payload": {"n": 1, "items": 10},
        "sessions": {"sessions": 2, "calls": 2},
        "codec": {"items": 10, "min_seconds": 0.001},
        "raw_sequential": {"n": 3},
        "raw_concurrent": {"n": 5},
        "mem_exports": {"n": 5},
        "mem_sessions": {"n": 3},
        "stream_download": {"bytes": 256 << 10, "chunk": 64 << 10},
        "stream_upload": {"bytes": 256 << 10, "chunk": 64 << 10},
        "stream_objects": {"n": 100},
        "stream_slow": {
            "bytes": 1 << 20,
            "chunk": 64 << 10,
            "rate_mb_s": 32,
            "seconds": 1,
            "sample_s": 0.01,
        },
    },
}

FULL_STREAMS: dict[str, dict[str, Any]] = {
    "stream_download": {"bytes": 64 << 20, "chunk": 64 << 10},
    "stream_upload": {"bytes": 64 << 20, "chunk": 64 << 10},
    "stream_objects": {"n": 100_000},
    # the whole GiB, read at 32 MB/s (34 s); cancelled after 50 s if it is not through by then
    "stream_slow": {"bytes": 1 << 30, "chunk": 64 << 10, "rate_mb_s": 32, "seconds": 50},
}
"""The stream workloads' sizes with ``--full-streams``: 64 MiB each way in 64 KiB chunks,
100,000 object chunks, and a 1 GiB stream read through by the slow consumer."""
STREAM_WORKLOADS = ("stream_download", "stream_upload", "stream_objects", "stream_slow")

CODEC_MESSAGES = ("call_args", "user", "mixed", "payload")
SAME_LANGUAGE = ("py-py", "ts-ts")


def workloads(size: str, full_streams: bool = False) -> list[Workload]:
    s = dict(SIZES[size])
    if full_streams:
        s |= FULL_STREAMS
    cpu = (("client_cpu_us", "lower"), ("server_cpu_us", "lower"))
    latency = (("calls_per_s", "higher"), ("p50_us", "lower"), ("p99_us", "lower"), *cpu)
    codec_metrics: list[tuple[str, str]] = []
    for m in CODEC_MESSAGES:
        for op in ("encode", "decode"):
            codec_metrics += [
                (f"{m}.{op}_mb_s", "higher"),
                (f"{m}.json_{op}_mb_s", "higher"),
                (f"{m}.stdlib_{op}_mb_s", "higher"),  # Python only: the json module
            ]
    return [
        Workload("sequential", "ws", s["sequential"], latency),
        Workload("sequential", "batch", s["sequential"], latency),
        # WebTransport: this project's server and client only (the reference has none)
        Workload("sequential", "wt", s["sequential"], latency, pairs=("py-py",)),
        Workload("concurrent", "ws", s["concurrent"], (("calls_per_s", "higher"), *cpu)),
        Workload("concurrent", "batch", s["concurrent"], (("calls_per_s", "higher"), *cpu)),
        Workload(
            "concurrent", "wt", s["concurrent"], (("calls_per_s", "higher"), *cpu), pairs=("py-py",)
        ),
        Workload("pipelined", "ws", s["pipelined"], (("wall_ms", "lower"),)),
        Workload(
            "pipelined",
            "batch",
            s["pipelined"],
            (("wall_ms", "lower"), ("http_requests", "lower")),
        ),
        Workload("payload", "ws", s["payload"], (("mb_per_s", "higher"),)),
        Workload("payload", "batch", s["payload"], (("mb_per_s", "higher"),)),
        Workload(
            "sessions",
            "ws",
            s["sessions"],
            (("calls_per_s", "higher"), ("server_peak_rss_mb", "lower")),
            fresh_server=True,
        ),
        Workload(
            "raw_sequential",
            "ws",
            s["raw_sequential"],
            (("msgs_per_s", "higher"), ("p50_us", "lower")),
        ),
        Workload(
            "raw_sequential_aiohttp",
            "ws",
            s["raw_sequential"],
            (("msgs_per_s", "higher"), ("p50_us", "lower")),
            pairs=("py-py", "py-ts"),
        ),
        Workload("raw_concurrent", "ws", s["raw_concurrent"], (("msgs_per_s", "higher"),)),
        Workload(
            "codec",
            "-",
            s["codec"],
            tuple(codec_metrics),
            pairs=SAME_LANGUAGE,
            server=False,
        ),
        Workload(
            "mem_exports",
            "ws",
            s["mem_exports"],
            (("bytes_per_export", "lower"),),
            fresh_server=True,
            pairs=SAME_LANGUAGE,
        ),
        Workload(
            "mem_sessions",
            "ws",
            s["mem_sessions"],
            (("bytes_per_session", "lower"),),
            fresh_server=True,
            pairs=SAME_LANGUAGE,
        ),
        *stream_workloads(s),
    ]


def stream_workloads(s: dict[str, dict[str, Any]]) -> list[Workload]:
    """The stream workloads (``benchmarks/streams.py``, ``benchmarks/js/streams.mjs``)."""
    per_mb = (("client_cpu_ms_per_mb", "lower"), ("server_cpu_ms_per_mb", "lower"))
    cpu = (("client_cpu_us", "lower"), ("server_cpu_us", "lower"))
    slow = (
        ("producer_peak_growth_mb", "lower"),
        ("producer_baseline_mb", "lower"),
        ("ahead_mb", "lower"),
        ("consumer_peak_growth_mb", "lower"),
        ("read_mb", "higher"),
        ("read_mb_s", "higher"),
    )
    streams = "streams"
    return [
        Workload(
            "stream_download",
            "ws",
            s["stream_download"],
            (("mb_per_s", "higher"), *per_mb),
            program=streams,
        ),
        Workload(
            "stream_upload",
            "ws",
            s["stream_upload"],
            (("mb_per_s", "higher"), *per_mb),
            program=streams,
        ),
        Workload(
            "stream_objects",
            "ws",
            s["stream_objects"],
            (("chunks_per_s", "higher"), *cpu),
            program=streams,
        ),
        # a fresh producer (server) per run, for its RSS; one run (a memory figure, not a speed)
        Workload(
            "stream_slow", "ws", s["stream_slow"], slow, fresh_server=True, program=streams, runs=1
        ),
    ]


# --------------------------------------------------------------------------------------------
# processes


@dataclass
class Server:
    lang: str
    proc: subprocess.Popen[str]
    rpc_port: int
    echo_port: int
    wt_port: int | None = None  # WebTransport (Python servers)
    wt_hash: str | None = None  # its certificate's SHA-256

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.rpc_port}/rpc"

    @property
    def stats_url(self) -> str:
        return f"http://127.0.0.1:{self.rpc_port}/stats"

    @property
    def echo_url(self) -> str:
        return f"ws://127.0.0.1:{self.echo_port}"

    @property
    def wt_url(self) -> str:
        return f"https://127.0.0.1:{self.wt_port}/rpc"


def python() -> str:
    venv = ROOT / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


PIN: list[str] = []
"""Prefix of every server and client command: ``taskset -c N`` with ``--cpu N``, else empty."""


def server_command(lang: str, loop: str, program: str = "rpc") -> tuple[list[str], Path]:
    if program == "streams":
        if lang == "py":
            return [*PIN, python(), str(BENCH / "streams.py"), "--serve", "--loop", loop], ROOT
        return [
            *PIN,
            "node",
            "--expose-gc",
            "--import",
            "./setup.mjs",
            "streams.mjs",
            "--serve",
        ], JS
    if lang == "py":
        return [*PIN, python(), str(BENCH / "server.py"), "--loop", loop], ROOT
    return [*PIN, "node", "--expose-gc", "--import", "./setup.mjs", "server.mjs"], JS


def client_command(
    lang: str, loop: str, w: Workload, srv: Server | None, *extra: str
) -> tuple[list[str], Path]:
    """The command line running workload ``w`` against ``srv``, and its directory."""
    streams = w.program == "streams"
    if lang == "py":
        script = BENCH / ("streams.py" if streams else "workloads.py")
        argv, cwd = [*PIN, python(), str(script), "--loop", loop], ROOT
    else:
        node = ["node", "--expose-gc"] if streams else ["node"]
        argv = [*PIN, *node, "--import", "./setup.mjs", "streams.mjs" if streams else "client.mjs"]
        cwd = JS
    argv += ["--workload", w.name, "--params", json.dumps(w.params), *extra]
    if w.transport != "-":
        argv += ["--transport", w.transport]
    if srv is not None:
        argv += ["--url", srv.url, "--echo-url", srv.echo_url, "--stats-url", srv.stats_url]
        if w.transport == "wt" and srv.wt_port is not None and srv.wt_hash is not None:
            argv += ["--wt-url", srv.wt_url, "--wt-hash", srv.wt_hash]
    return argv, cwd


def popen(argv: list[str], cwd: Path, stdin: Any, stderr: Any) -> subprocess.Popen[str]:
    """A benchmark process whose stdout is read as text."""
    return subprocess.Popen(
        argv, cwd=cwd, stdin=stdin, stdout=subprocess.PIPE, stderr=stderr, text=True
    )


def stop(proc: subprocess.Popen[str]) -> None:
    """SIGTERM to the process (by PID), SIGKILL if it is still there 3 s later."""
    if proc.poll() is not None:
        return
    try:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=3)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=3)
    except ProcessLookupError:
        pass


@contextmanager
def server(lang: str, loop: str, program: str = "rpc") -> Iterator[Server]:
    """A benchmark server of language ``lang`` on free ports, stopped when the block ends."""
    proc = popen(*server_command(lang, loop, program), subprocess.DEVNULL, subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + SERVER_START_S
        line = ""
        assert proc.stdout is not None
        os.set_blocking(proc.stdout.fileno(), False)
        while not line.endswith("\n"):
            if proc.poll() is not None:
                raise RuntimeError(f"{lang} server exited with {proc.returncode} before ready")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{lang} server not ready within {SERVER_START_S} s")
            chunk = proc.stdout.readline()
            if chunk:
                line += chunk
            else:
                time.sleep(0.02)
        ready = json.loads(line)
        ports = ready["rpc_port"], ready["echo_port"]
        yield Server(lang, proc, *ports, ready.get("wt_port"), ready.get("wt_hash"))
    finally:
        stop(proc)


def run_client(
    lang: str,
    loop: str,
    w: Workload,
    srv: Server | None,
    runs: int,
    warmup: int,
    timeout: float,
) -> list[dict[str, float]]:
    """Runs one client process; returns its measured runs."""
    argv, cwd = client_command(lang, loop, w, srv, "--runs", str(runs), "--warmup", str(warmup))
    proc = subprocess.run(
        argv,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"client failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    result: list[dict[str, float]] = out["runs"]
    return result


class GatedClient:
    """A client process started with ``--gate 1``: it does one run (warm-up or measured) per
    line written to its stdin and prints that run's figures as it ends."""

    def __init__(self, lang: str, loop: str, w: Workload, srv: Server | None) -> None:
        # as many runs as the suite asks for, one per line
        gated = ("--gate", "1", "--runs", "1000000", "--warmup", "0")
        self.stderr = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - closed by stop()
        self.proc = popen(*client_command(lang, loop, w, srv, *gated), subprocess.PIPE, self.stderr)

    def run(self, timeout: float) -> dict[str, float]:
        """One run: its figures, or an error if the client fails or takes over ``timeout``."""
        proc = self.proc
        assert proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write("\n")
            proc.stdin.flush()
        except BrokenPipeError:
            pass  # it exited: reported below
        ready, _, _ = select.select([proc.stdout], [], [], timeout)
        if not ready:
            raise TimeoutError(f"no result within {timeout:.0f} s")
        line = proc.stdout.readline()
        if not line:
            proc.wait(timeout=5)
            self.stderr.seek(0)
            raise RuntimeError(f"client exited ({proc.returncode}):\n{self.stderr.read()[-3000:]}")
        result: dict[str, float] = json.loads(line)["run"]
        return result

    def stop(self) -> None:
        """Close its stdin (it exits after the run in progress), else stop it by PID."""
        try:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
            self.proc.wait(timeout=10)
        except (BrokenPipeError, subprocess.TimeoutExpired):
            stop(self.proc)
        self.stderr.close()


# --------------------------------------------------------------------------------------------
# the suite


@dataclass
class Row:
    workload: str
    transport: str
    metric: str
    better: str
    runs: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def median(self, pair: str) -> float | None:
        values = self.runs.get(pair)
        return statistics.median(values) if values else None

    def ratio(self) -> float | None:
        py, ts = self.median("py-py"), self.median("ts-ts")
        if py is None or ts is None or ts == 0:
            return None
        return py / ts


def measure(
    ws: list[Workload],
    pairs: list[str],
    runs: int,
    warmup: int,
    loop: str,
    timeout: float,
    budget: float,
) -> list[Row]:
    rows: dict[tuple[str, str, str], Row] = {}
    for w in ws:
        for metric, better in w.metrics:
            rows[(w.label, w.transport, metric)] = Row(w.name, w.transport, metric, better)
    deadline = time.monotonic() + budget
    shared: dict[tuple[str, str], Server] = {}
    stack: list[Any] = []

    def shared_server(lang: str, program: str) -> Server:
        if (lang, program) not in shared:
            cm = server(lang, loop, program)
            shared[(lang, program)] = cm.__enter__()
            stack.append(cm)
        return shared[(lang, program)]

    def record(w: Workload, pair: str, got: list[dict[str, float]]) -> None:
        for metric, _ in w.metrics:
            values = rows[(w.label, w.transport, metric)].runs.setdefault(pair, [])
            values += [r[metric] for r in got if metric in r]

    def fail(w: Workload, pair: str, e: BaseException) -> None:
        _record_error(rows, w, pair, f"{type(e).__name__}: {e}")
        print(f"    {pair} failed: {e}", file=sys.stderr, flush=True)

    try:
        for w in ws:
            pairs_here = [p for p in pairs if p in w.pairs]
            w_runs = min(runs, w.runs) if w.runs else runs
            if time.monotonic() > deadline:
                for pair in pairs_here:
                    _record_error(rows, w, pair, "skipped: time budget exhausted")
                continue
            print(f"  {w.label}: {', '.join(pairs_here)} ...", file=sys.stderr, flush=True)
            if w.fresh_server:  # a new server (and client) per run: nothing to interleave
                for pair in pairs_here:
                    client, server_lang = pair.split("-")
                    try:
                        for _ in range(w_runs):
                            left = max(5.0, deadline - time.monotonic())
                            with server(server_lang, loop, w.program) as srv:
                                record(w, pair, run_client(client, loop, w, srv, 1, 0, left))
                    except Exception as e:  # one failure must not lose the rest of the table
                        fail(w, pair, e)
                continue
            clients: dict[str, GatedClient] = {}
            try:
                for pair in pairs_here:
                    client, server_lang = pair.split("-")
                    try:
                        target = shared_server(server_lang, w.program) if w.server else None
                        clients[pair] = GatedClient(client, loop, w, target)
                        for _ in range(warmup):
                            clients[pair].run(min(timeout, max(5.0, deadline - time.monotonic())))
                    except Exception as e:
                        fail(w, pair, e)
                        clients.pop(pair, None)
                for _ in range(w_runs):
                    for pair, c in list(clients.items()):
                        try:
                            left = max(5.0, deadline - time.monotonic())
                            record(w, pair, [c.run(min(timeout, left))])
                        except Exception as e:
                            fail(w, pair, e)
                            c.stop()
                            del clients[pair]
            finally:
                for c in clients.values():
                    c.stop()
    finally:
        for cm in reversed(stack):
            cm.__exit__(None, None, None)
    return list(rows.values())


def _record_error(rows: dict[tuple[str, str, str], Row], w: Workload, pair: str, msg: str) -> None:
    for metric, _ in w.metrics:
        rows[(w.label, w.transport, metric)].errors[pair] = msg


# --------------------------------------------------------------------------------------------
# output


def fmt(x: float | None) -> str:
    if x is None:
        return "-"
    if x >= 100:
        return f"{x:,.0f}"
    if x >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def table(rows: list[Row], pairs: list[str]) -> str:
    """A Markdown table: one line per workload metric, the medians, and Python/TypeScript."""
    head = ["workload", "metric", *pairs, "py/ts", "better"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        label = r.workload if r.transport == "-" else f"{r.workload} ({r.transport})"
        cells = []
        for p in pairs:
            if p in r.errors:
                cells.append("error" if "skipped" not in r.errors[p] else "skipped")
            else:
                cells.append(fmt(r.median(p)))
        ratio = r.ratio()
        arrow = "higher" if r.better == "higher" else "lower"
        ratio_cell = f"{ratio:.2f}x" if ratio is not None else "-"
        lines.append("| " + " | ".join([label, r.metric, *cells, ratio_cell, arrow]) + " |")
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    def cmd(*argv: str) -> str:
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    cpu = ""
    for line in cmd("lscpu").splitlines():
        if line.startswith("Model name:"):
            cpu = line.split(":", 1)[1].strip()
    try:
        import orjson

        orjson_version = orjson.__version__
    except ImportError:
        orjson_version = None
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "platform": platform.platform(),
        "python": cmd(python(), "--version"),
        "node": cmd("node", "--version"),
        "orjson": orjson_version,
    }


def _importable(module: str) -> bool:
    probe = [python(), "-c", f"import {module}"]
    return subprocess.run(probe, capture_output=True, timeout=60).returncode == 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="smaller workloads, 3 runs each")
    size.add_argument("--smoke", action="store_true", help="tiny workloads, 1 run, no warm-up")
    parser.add_argument("--pairs", default=",".join(PAIRS))
    parser.add_argument(
        "--workloads",
        default="",
        help="comma-separated workload names; 'streams' stands for the four stream workloads",
    )
    parser.add_argument(
        "--full-streams",
        action="store_true",
        help="stream workloads at full size: 64 MiB each way, 100,000 object chunks, "
        "a 1 GiB stream read through by the slow consumer (about 3 more minutes)",
    )
    parser.add_argument("--runs", type=int, default=None, help="measured runs (default 3)")
    parser.add_argument(
        "--loop",
        default="auto",
        choices=("auto", "asyncio", "uvloop"),
        help="event loop of the Python processes (auto: uvloop when installed)",
    )
    parser.add_argument(
        "--cpu",
        type=int,
        default=None,
        help="run every server and client on this one CPU (taskset): no cross-CPU wake-ups",
    )
    parser.add_argument("--out", default=str(BENCH / "results" / "latest.json"))
    parser.add_argument(
        "--warmup",
        type=int,
        default=5,
        help="unmeasured runs first, in each client process (Node's JIT needs a few)",
    )
    parser.add_argument("--timeout", type=float, default=600.0, help="per client process")
    parser.add_argument("--budget", type=float, default=3600.0, help="for the whole run")
    args = parser.parse_args()

    size_name = "smoke" if args.smoke else "quick" if args.quick else "full"
    if args.cpu is not None:
        PIN[:] = ["taskset", "-c", str(args.cpu)]
    if args.loop == "auto":
        args.loop = "uvloop" if _importable("uvloop") else "asyncio"
    runs = args.runs or (1 if args.smoke else 3)
    warmup = 0 if args.smoke else args.warmup
    pairs = [p for p in args.pairs.split(",") if p]
    unknown = set(pairs) - set(PAIRS)
    if unknown:
        parser.error(f"unknown pairs: {sorted(unknown)}")
    ws = workloads(size_name, full_streams=args.full_streams and not args.smoke)
    if args.workloads:
        wanted = set(args.workloads.split(","))
        if "streams" in wanted:
            wanted |= set(STREAM_WORKLOADS)
        ws = [w for w in ws if w.name in wanted]

    started = time.time()
    load_start = os.getloadavg()
    streams_size = "full" if args.full_streams and not args.smoke else size_name
    print(
        f"capnweb benchmarks ({size_name}, streams {streams_size}, {runs} runs, loop={args.loop})",
        file=sys.stderr,
    )
    rows = measure(ws, pairs, runs, warmup, args.loop, args.timeout, args.budget)
    text = table(rows, pairs)
    info = machine()
    info["loadavg_start"] = [round(x, 2) for x in load_start]
    info["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    result = {
        "size": size_name,
        "full_streams": bool(args.full_streams and not args.smoke),
        "runs": runs,
        "loop": args.loop,
        "cpu": args.cpu,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "seconds": round(time.time() - started, 1),
        "machine": info,
        "rows": [
            {
                "workload": r.workload,
                "transport": r.transport,
                "metric": r.metric,
                "better": r.better,
                "median": {p: r.median(p) for p in pairs if p in r.runs},
                "runs": r.runs,
                "errors": r.errors,
                "ratio_py_ts": r.ratio(),
            }
            for r in rows
        ],
        "table": text,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print()
    print(f"Medians of {runs} run(s); pairs are client-server; py/ts = py-py / ts-ts.")
    print(f"Python event loop: {args.loop}.")
    capped = [w.label for w in ws if w.runs is not None and w.runs < runs]
    if capped:
        print(f"One run per pair: {', '.join(capped)}.")
    if args.cpu is not None:
        print(f"Every process pinned to CPU {args.cpu} (taskset).")
    print(f"Machine: {info['cpus']} CPUs, {info['cpu']}; {info['python']}; node {info['node']}")
    print(f"Load average (1 min) at start and end: {load_start[0]:.2f}, {os.getloadavg()[0]:.2f}")
    print()
    print(text)
    print()
    print(f"JSON: {out}")
    failed = any(r.errors and any("skipped" not in e for e in r.errors.values()) for r in rows)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
