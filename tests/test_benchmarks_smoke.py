"""The benchmark suite still runs: every workload once, at tiny size (no timing is asserted).

Python client -> Python server for every workload, plus Python client -> TypeScript server
(the reference, ``benchmarks/js``) for the workloads that take a server of either language.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
JS = ROOT / "benchmarks" / "js"


def ensure_js_deps() -> None:
    if (JS / "node_modules" / "capnweb").is_dir() and (JS / "node_modules" / "ws").is_dir():
        return
    subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund"],
        cwd=JS,
        check=True,
        capture_output=True,
        timeout=300,
    )


@pytest.mark.timeout(600)
def test_every_workload_produces_a_number(tmp_path: Path) -> None:
    ensure_js_deps()
    out = tmp_path / "smoke.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "run.py"),
            "--smoke",
            "--pairs",
            "py-py,py-ts",
            "--out",
            str(out),
            "--timeout",
            "120",
            "--budget",
            "400",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=500,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "| workload | metric |" in proc.stdout  # the table is printed
    result = json.loads(out.read_text())
    rows = result["rows"]
    workloads = {r["workload"] for r in rows}
    assert workloads >= {
        "sequential",
        "concurrent",
        "pipelined",
        "payload",
        "sessions",
        "codec",
        "raw_sequential",
        "raw_sequential_aiohttp",
        "raw_concurrent",
        "mem_exports",
        "mem_sessions",
        "stream_download",
        "stream_upload",
        "stream_objects",
        "stream_slow",
    }
    transports = {(r["workload"], r["transport"]) for r in rows}
    assert {("sequential", "wt"), ("concurrent", "wt")} <= transports  # WebTransport too
    for row in rows:
        assert not row["errors"], row
        expected = (
            ["py-py"]
            if row["workload"] in ("codec", "mem_exports", "mem_sessions")
            or row["transport"] == "wt"  # WebTransport: the reference has none
            else [
                "py-py",
                "py-ts",
            ]
        )
        for pair in expected:
            value = row["median"].get(pair)
            assert isinstance(value, int | float) and math.isfinite(value), (row, pair)
        if row["metric"] == "http_requests":
            # a pipelined chain over HTTP batch is one request, whichever server answers it
            assert row["median"] == {"py-py": 1, "py-ts": 1}
