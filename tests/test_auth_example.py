"""examples/auth.py (the in-band authentication of docs/security.md) runs as a user runs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.timeout(60)
def test_the_auth_example_grants_a_capability_for_a_good_token_only() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "auth.py")],
        capture_output=True,
        text=True,
        timeout=50,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["logged in as ann", "refused: unknown token"]


def test_the_snippet_in_docs_security_is_the_example() -> None:
    doc = (ROOT / "docs" / "security.md").read_text()
    snippet = doc.split("```python\nimport asyncio\nimport hmac", 1)[1].split("```", 1)[0]
    example = (ROOT / "examples" / "auth.py").read_text()
    lines = [line.strip() for line in snippet.splitlines() if line.strip()]
    assert lines and all(line in example for line in lines if line != "asyncio.run(main())")
