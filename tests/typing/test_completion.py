"""IDE completion on generated stubs, as jedi computes it: a stub object lists the remote
methods with their signatures and docstrings; a pipelined result lists its typed fields."""

from __future__ import annotations

import sys
from pathlib import Path

import jedi  # type: ignore[import-untyped]
import pytest

pytestmark = pytest.mark.timeout(120)

REPO = Path(__file__).resolve().parents[2]
# the checkout (for `stubs` and `examples`) and the installed packages, not the test directories
SYS_PATH = [str(REPO), *(p for p in sys.path if not p.startswith(str(REPO / "tests")))]

PRELUDE = """\
from stubs.examples_typed_api import ApiStub

async def client(api: ApiStub) -> None:
"""


def complete(line: str) -> dict[str, jedi.api.classes.Completion]:
    """Completions at the end of ``line``, written inside ``client()``; public names only."""
    code = PRELUDE + f"    {line}"
    project = jedi.Project(REPO, sys_path=SYS_PATH)
    script = jedi.Script(code, path=REPO / "completion_snippet.py", project=project)
    rows = code.splitlines()
    found = script.complete(len(rows), len(rows[-1]))
    return {c.name: c for c in found if not c.name.startswith("_")}


REMOTE_METHODS = {
    "user": "user(name: str | _capnweb.RpcPromise[str]) -> UserPromise",
    "square": "square(x: int | _capnweb.RpcPromise[int]) -> _capnweb_typed.TypedPromise[int]",
    "fibonacci": "fibonacci(n: int | _capnweb.RpcPromise[int]) -> IntListPromise",
    "make_counter": "make_counter(start: int | _capnweb.RpcPromise[int]=0) -> CounterPromise",
    "find": "find(name: str | _capnweb.RpcPromise[str]) -> OptionalProfilePromise",
    "stats": "stats() -> StatsPromise",
}


def test_stub_lists_remote_methods_with_signatures() -> None:
    found = complete("api.")
    assert set(REMOTE_METHODS) | {"call_back", "user_names"} <= set(found)
    for name, signature in REMOTE_METHODS.items():
        assert found[name].type == "function"
        assert [s.to_string() for s in found[name].get_signatures()] == [signature]
    assert "The user called ``name`` (created on first use)." in found["user"].docstring()
    assert "makeCounter" not in found  # wire names are not Python names


def test_pipelined_capability_lists_its_methods_and_properties() -> None:
    found = complete('api.user("ann").')
    assert {"profile", "set_bio", "visits"} <= set(found)
    assert found["profile"].type == "property"
    assert "set_bio(bio: str | _capnweb.RpcPromise[str]) -> ProfilePromise" in [
        s.to_string() for s in found["set_bio"].get_signatures()
    ]


def test_pipelined_result_lists_its_typed_fields() -> None:
    found = complete('api.user("ann").profile.')
    assert {"name", "bio", "tags"} <= set(found)
    assert all(found[f].type == "property" for f in ("name", "bio", "tags"))
    found = complete("api.make_counter().")
    assert {"increment", "value"} <= set(found)


def test_pipelined_field_type_is_inferred() -> None:
    code = PRELUDE + '    api.user("ann").profile.tags'
    project = jedi.Project(REPO, sys_path=SYS_PATH)
    script = jedi.Script(code, path=REPO / "completion_snippet.py", project=project)
    rows = code.splitlines()
    names = [d.name for d in script.infer(len(rows), len(rows[-1]))]
    assert names == ["StrListPromise"]
