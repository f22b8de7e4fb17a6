"""TypeScript clients typed by the generated declarations (``stubs/ts``): right clients pass
``tsc --noEmit --strict`` and, compiled and run on Node, call the Python typed example server
and the streaming one (``ReadableStream<T>``, ``WritableStream<T>`` and ``Blob`` both ways); a
wrong one fails ``tsc`` with the expected errors. The Node packages (typescript, capnweb
0.12.0, ws) are installed from ``ts/package-lock.json`` with ``npm ci`` when missing."""

from __future__ import annotations

import asyncio
import functools
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from helpers import npm_ci

import capnweb
from examples.streaming.server import StorageImpl, Store
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
    assert len(expected) == 9
    assert found == expected, proc.stdout


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``good.ts`` and ``streams.ts`` compiled (``good.js``, ``streams.js``) into a directory
    where Node finds their packages."""
    out = tmp_path_factory.mktemp("ts_build")
    proc = tsc("-p", "tsconfig.json", "--outDir", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    shutil.copy(TS_DIR / "package.json", out / "package.json")  # "type": "module"
    (out / "node_modules").symlink_to(TS_DIR / "node_modules", target_is_directory=True)
    return out


async def run_node(script: Path, url: str) -> Any:
    """What ``script`` prints (JSON) when run on Node against ``url``; it must exit with 0."""
    proc = await asyncio.create_subprocess_exec(
        "node",
        "--import",
        str(TS_DIR / "setup.mjs"),
        str(script),
        url,
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
    return json.loads(stdout)


async def test_right_client_calls_the_python_server(compiled: Path) -> None:
    async with await serve(0) as server:
        printed = await run_node(compiled / "good.js", server.ws_url)
    assert printed == {
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


async def test_streams_client_calls_the_python_streaming_server(compiled: Path) -> None:
    store = Store()
    async with capnweb.serve(lambda: StorageImpl(store), host="127.0.0.1", port=0) as server:
        printed = await run_node(compiled / "streams.js", server.ws_url)
    assert printed == {
        "lines": ["one", "two"],  # followed as appended, until the log closed
        "progress": [1000, 2000, 3000],  # written into the client's WritableStream
        "size": 3000,
        "sha256": 64,
        "chunks": [1024, 1024, 952],
        "blob": [3000, "application/octet-stream"],
    }
    assert store.files["ts.bin"] == bytes(i % 251 for i in range(3000))
