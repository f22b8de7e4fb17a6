"""Where the time of a sequential WebSocket call goes, on each side (cProfile, asyncio loop).

Usage: python benchmarks/profile_breakdown.py [--calls N]
Runs ``benchmarks/server.py`` and a ``sequential`` client under cProfile (two processes, as in
the suite) and prints, per side, the microseconds per call spent in each package (own time of
its functions): capnweb itself, the WebSocket library, asyncio, system calls, and the rest.
"""

from __future__ import annotations

import argparse
import json
import os
import pstats
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"

Groups = tuple[tuple[str, tuple[str, ...]], ...]

GROUPS: Groups = (
    ("capnweb", ("/capnweb/",)),
    ("websockets", ("/websockets/",)),
    ("aiohttp", ("/aiohttp/",)),
    ("asyncio", ("/asyncio/", "selectors.py", "_weakrefset.py")),
    ("benchmark loop", ("workloads.py",)),
)
# helpers whose time belongs to their caller's group
LIBRARY_HELPERS: Groups = (
    ("aiohttp", ("aiohttp._websocket", "_http_parser", "_websocket.mask")),
    ("websockets", ("contextlib.py", "secrets.py", "posix.urandom", "_struct.pack", "BytesIO")),
    ("asyncio", ("_contextvars.Context", "_asyncio.Future", "_asyncio.Task")),
    ("JSON (orjson, json)", ("orjson", "/json/")),
)
SYSCALLS = ("'send' of", "'recv' of", "'poll' of", "'sendmsg'", "'recv_into'")


def group_of(key: tuple[str, int, str]) -> str:
    filename, _, name = key
    if any(s in name for s in SYSCALLS):
        return "system calls (idle wait included)" if "poll" in name else "system calls"
    for group, needles in GROUPS:
        if any(n in filename for n in needles):
            return group
    for group, needles in LIBRARY_HELPERS:
        if any(n in filename or n in name for n in needles):
            return group
    return "other (builtins, ...)"


def profile(py: str, calls: int, tmp: Path) -> tuple[dict[str, float], dict[str, float]]:
    """Total own time (s) per package on the client and the server side, for ``calls`` calls."""
    sprof, cprof = tmp / f"server-{calls}.prof", tmp / f"client-{calls}.prof"
    server = subprocess.Popen(
        [py, "-m", "cProfile", "-o", str(sprof), str(BENCH / "server.py")],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        ready = json.loads(server.stdout.readline())
        url = f"http://127.0.0.1:{ready['rpc_port']}"
        client = [py, "-m", "cProfile", "-o", str(cprof), str(BENCH / "workloads.py")]
        options = ["--workload", "sequential", "--url", f"{url}/rpc", "--runs", "1"]
        options += ["--stats-url", f"{url}/stats", "--warmup", "0"]
        options += ["--params", json.dumps({"n": calls})]
        subprocess.run([*client, *options], check=True, timeout=600, stdout=subprocess.DEVNULL)
    finally:
        os.kill(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    return totals(cprof), totals(sprof)


def totals(path: Path) -> dict[str, float]:
    stats = pstats.Stats(str(path)).stats  # type: ignore[attr-defined]
    out: dict[str, float] = {}
    for key, (_, _, tottime, _, _) in stats.items():
        g = group_of(key)
        out[g] = out.get(g, 0.0) + tottime
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=5000)
    args = parser.parse_args()
    py = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv").exists() else sys.executable
    base = max(1, args.calls // 10)
    with tempfile.TemporaryDirectory() as tmp:
        # Two runs, N and N/10 calls: their difference leaves out start-up and imports.
        big = profile(py, args.calls, Path(tmp))
        small = profile(py, base, Path(tmp))
    n = args.calls - base
    for side, b, s in (("client", big[0], small[0]), ("server", big[1], small[1])):
        rows = {g: (b.get(g, 0.0) - s.get(g, 0.0)) / n * 1e6 for g in b}
        rows = dict(sorted(rows.items(), key=lambda kv: -kv[1]))
        busy = sum(v for k, v in rows.items() if "idle" not in k)
        print(f"{side}: {busy:.0f} us of work per call (under cProfile), by package:")
        for group, us in rows.items():
            print(f"  {us:8.1f} us  {group}")


if __name__ == "__main__":
    main()
