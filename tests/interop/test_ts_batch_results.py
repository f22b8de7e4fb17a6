"""Streams, Blobs and Response bodies in HTTP batch results, read by the official TypeScript
client (js/batch_results.mjs) from the Python interop server: every write and the close travel
in the response, so the client reads them whole; past ``Limits.max_batch_stream`` the stream
fails with the limit's message."""

from __future__ import annotations

import json
import subprocess

import pytest

from .conftest import JS_DIR, node_command

LIMIT = "The streams of an HTTP batch response are limited to 1048576 bytes"


@pytest.mark.timeout(60)
def test_the_typescript_client_reads_streams_from_batch_results(
    py_server: str, js_deps: None
) -> None:
    proc = subprocess.run(
        node_command("batch_results.mjs", "--url", py_server),
        cwd=JS_DIR,
        capture_output=True,
        text=True,
        timeout=45,
    )
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    too_big = got.pop("too_big")
    assert got == {
        "numbers": {"chunks": [0, 1, 2, 3, 4]},
        "bytes": {"sizes": [300, 300, 300, 100], "first": [0, 1, 2]},
        "empty": {"chunks": []},
        "blob": {"type": "text/x-greeting", "text": "hello ü"},
        "response": {"status": 201, "a": "1", "text": "a body ü"},
        "echo": {"chunks": [1, "two", {"three": 3}]},
    }
    assert too_big["error"].startswith(f"TypeError: {LIMIT} (Limits.max_batch_stream)")
