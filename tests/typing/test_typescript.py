"""TypeScript clients typed by the generated declarations (``stubs/ts``): a right client passes
``tsc --noEmit --strict`` and, compiled and run on Node, calls the Python typed example server;
a wrong one fails ``tsc`` with the expected errors. The Node packages (typescript, capnweb
0.12.0, ws) are installed from ``ts/package-lock.json`` with ``npm ci`` when missing."""

from __future__ import annotations

import asyncio
import functools
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from helpers import npm_ci

from examples.typed.server import serve

pytestmark = pytest.mark.timeout(300)

TS_DIR = Path(__file__).resolve().parent / "ts"
TSC_TIMEOUT_S = 120.0
RUN_TIMEOUT_S = 30.0
TS_ERROR = re.compile(r"^bad\.ts\((?P<line>\d+),\d+\): error (?P<code>TS\d+):", re.MULTILINE)


@functools.cache
def ensure_ts_deps() -> None:
    """``npm ci`` in ``ts/`` once, when its packages are not installed yet."""
    npm_ci(TS_DIR, ("typescript", "capnweb", "ws", "@types/node"))


def tsc(*args: str) -> subprocess.CompletedProcess[str]:
    ensure_ts_deps()
    command = ["node", str(TS_DIR / "node_modules" / "typescript" / "bin" / "tsc"), *args]
    return subprocess.run(
        command, cwd=TS_DIR, capture_output=True, text=True, timeout=TSC_TIMEOUT_S, check=False
    )


def test_right_client_passes_tsc_strict() -> None:
    proc = tsc("--noEmit", "--strict", "-p", "tsconfig.json")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_wrong_client_fails_tsc_with_the_expected_errors() -> None:
    proc = tsc("--noEmit", "--strict", "-p", "tsconfig.bad.json")
    assert proc.returncode != 0
    found = {(int(m["line"]), m["code"]) for m in TS_ERROR.finditer(proc.stdout)}
    expected = {
        (number, code)
        for number, line in enumerate((TS_DIR / "bad.ts").read_text().splitlines(), start=1)
        for code in re.findall(r"// expect (TS\d+)", line)
    }
    assert len(expected) == 5
    assert found == expected, proc.stdout


@pytest.fixture(scope="module")
def compiled_client(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``good.ts`` compiled to ``good.js``, in a directory where Node finds its packages."""
    out = tmp_path_factory.mktemp("ts_build")
    proc = tsc("-p", "tsconfig.json", "--outDir", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    shutil.copy(TS_DIR / "package.json", out / "package.json")  # "type": "module"
    (out / "node_modules").symlink_to(TS_DIR / "node_modules", target_is_directory=True)
    return out / "good.js"


async def test_right_client_calls_the_python_server(compiled_client: Path) -> None:
    async with await serve(0) as server:
        proc = await asyncio.create_subprocess_exec(
            "node",
            "--import",
            str(TS_DIR / "setup.mjs"),
            str(compiled_client),
            server.ws_url,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            async with asyncio.timeout(RUN_TIMEOUT_S):
                stdout, stderr = await proc.communicate()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    assert proc.returncode == 0, stderr.decode()
    assert json.loads(stdout) == {
        "name": "ann",
        "chained": 256,
        "visits": 3,
        "bio": "likes types",
        "missing": None,
        "squares": [0, 1, 1, 4, 9, 25],
        "names": ["ann"],
        "next": 15,
        "value": 15,
        "called": 22,
        "stats": {"users": 1, "counters": 1},
    }
