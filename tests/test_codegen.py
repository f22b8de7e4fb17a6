"""The code generator: deterministic output, ``--check`` on the committed stubs, and generated
stubs for awkward interfaces (tests/codegen_sample.py) that work at run time."""

from __future__ import annotations

import importlib.util
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from codegen_sample import EPOCH, Chunk, Node, SampleImpl
from helpers import SessionPair

from capnweb import BigInt, undefined
from capnweb_codegen import generate, ruff_executable
from capnweb_codegen.__main__ import main

pytestmark = pytest.mark.timeout(60)

REPO = Path(__file__).resolve().parents[1]
STUBS = REPO / "stubs"
TARGETS = [
    "examples.typed.api",
    "examples.interop.contract",
    "examples.reconnect.api",
    "examples.calculator.api",
    "examples.batch_pipelining.api",
    "examples.peer_to_peer.api",
    "examples.chat.api",
    "examples.microservices.api",
    "examples.actor_system.api",
    "examples.webtransport.api",
    "examples.streaming.api",
]


def test_generating_twice_gives_identical_output() -> None:
    for lang in ("py", "ts"):
        first = generate(TARGETS, lang)
        assert first == generate(TARGETS, lang)
        assert list(first) == sorted(first)
        for text in first.values():
            assert str(REPO) not in text


def test_output_does_not_depend_on_the_working_directory(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "capnweb_codegen", *TARGETS, "--out", str(tmp_path / "out")]
    subprocess.run(command, cwd=tmp_path, env=env, check=True, capture_output=True, timeout=60)
    for name in ("examples_typed_api.py", "examples_interop_contract.py"):
        assert (tmp_path / "out" / name).read_bytes() == (STUBS / name).read_bytes()


@pytest.mark.parametrize(("lang", "out"), [("py", STUBS), ("ts", STUBS / "ts")])
def test_committed_stubs_are_up_to_date(
    lang: str, out: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main([*TARGETS, "--out", str(out), "--lang", lang, "--check"])
    assert status == 0, capsys.readouterr().out
    assert "up to date" in capsys.readouterr().out


def test_check_reports_stale_files_with_a_diff_and_the_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "stubs"
    shutil.copytree(STUBS, out, ignore=shutil.ignore_patterns("__pycache__"))
    stale = out / "examples_typed_api.py"
    stale.write_text(stale.read_text().replace("def square(", "def squared("))
    (out / "examples_interop_contract.py").unlink()

    status = main([*TARGETS, "--out", str(out), "--check"])
    printed = capsys.readouterr().out
    assert status == 1
    assert f"stale: {stale}" in printed
    assert f"missing: {out / 'examples_interop_contract.py'}" in printed
    assert f"--- {stale} (on disk)" in printed and f"+++ {stale} (generated)" in printed
    assert "-    def squared(" in printed and "+    def square(" in printed
    fix = f"python -m capnweb_codegen {' '.join(TARGETS)} --out {out}"
    assert f"regenerate with:\n  {fix}" in printed
    assert stale.read_text().count("def squared(") == 1  # --check writes nothing

    assert main([*TARGETS, "--out", str(out)]) == 0
    assert main([*TARGETS, "--out", str(out), "--check"]) == 0


def test_write_mode_leaves_unchanged_files_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["examples.typed.api", "--out", str(tmp_path)]) == 0
    path = tmp_path / "examples_typed_api.py"
    assert f"wrote {path}" in capsys.readouterr().out
    before = path.stat().st_mtime_ns
    assert main(["examples.typed.api:Api", "examples.typed.api", "--out", str(tmp_path)]) == 0
    assert f"unchanged {path}" in capsys.readouterr().out
    assert path.stat().st_mtime_ns == before


def test_headers_name_the_source_of_each_file() -> None:
    py = (STUBS / "examples_typed_api.py").read_text().splitlines()
    assert py[:3] == [
        "# generated from examples.typed.api:Api — do not edit",
        "# generated from examples.typed.api:Counter — do not edit",
        "# generated from examples.typed.api:User — do not edit",
    ]
    ts = (STUBS / "ts" / "examples_typed_api.d.ts").read_text().splitlines()
    assert ts[0] == "// generated from examples.typed.api:Api — do not edit"
    one = generate(["examples.interop.contract:Counter"])["examples_interop_contract.py"]
    assert one.startswith("# generated from examples.interop.contract:Counter — do not edit\n")


def test_interface_docstrings_become_stub_docstrings() -> None:
    text = (STUBS / "examples_typed_api.py").read_text()
    assert '"""The directory service: the main capability of the typed example server."""' in text
    assert '"""Add ``amount`` and return the new value."""' in text


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("no_such_module_here", "cannot import 'no_such_module_here'"),
        ("examples.typed.api:Profile", "examples.typed.api:Profile is not an RPC interface"),
        ("json", "module 'json' defines no RPC interface"),
    ],
)
def test_bad_targets_are_refused(
    target: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([target, "--out", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


# -- awkward interfaces


@pytest.fixture(scope="module")
def sample_stubs(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    """The stubs generated from tests/codegen_sample.py, imported."""
    path = tmp_path_factory.mktemp("codegen") / "codegen_sample_stubs.py"
    path.write_text(generate(["codegen_sample"])["codegen_sample.py"])
    spec = importlib.util.spec_from_file_location("codegen_sample_stubs", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["codegen_sample_stubs"] = module
    spec.loader.exec_module(module)
    return module


def test_names_taken_by_the_stub_get_no_attribute(sample_stubs: ModuleType) -> None:
    source = Path(sample_stubs.__file__ or "").read_text()
    local = "(used locally by stubs and promises)"
    assert f"# no attribute for 'map' {local}: use self['map']" in source
    assert f"# no attribute for 'dispose' {local}: use self['dispose']" in source
    assert "# no attribute for 'not-an-id' (not an identifier): use self['not-an-id']" in source
    stub_cls = sample_stubs.SampleStub
    assert "map" not in vars(stub_cls) and "dispose" not in vars(stub_cls)
    assert sample_stubs.SamplePromise.map is sample_stubs.SamplePromise.__mro__[2].map
    assert "tree" in vars(stub_cls) and "self_ref" in vars(stub_cls)


async def test_sample_stubs_at_run_time(sample_stubs: ModuleType) -> None:
    async with SessionPair(SampleImpl()) as pair:
        s: Any = sample_stubs.SampleStub(pair.main)
        stub_type = sample_stubs.SampleStub
        assert await s["map"](3) == 4
        tree = await s.tree(1)
        assert tree == Node("depth 1", [Node("leaf"), Node("leaf")])
        assert await s.tree().children.map(lambda n: n.label) == ["depth 1", "depth 1"]
        assert await s.forest().map(lambda n: n.children) == [[], [Node("c")]]
        assert await s.grid().map(lambda row: row.map(lambda x: x)) == [[1, 2], [3]]
        by_name = await s.by_name()
        assert sorted(by_name) == ["x", "y"]
        assert all(type(v) is stub_type for v in by_name.values())
        assert await s.maybe_child(False) is None
        assert type(await s.maybe_child(True)) is stub_type
        children = await s.children()
        assert [type(c) for c in children] == [stub_type, stub_type]
        assert await s.pair([1, "a"]) == (2, "aa")
        assert await s.options({"verbose": True}, {"a": [1, 2], "b": [3]}) == {
            "verbose": False,
            "level": 3,
        }
        assert await s.weird()["not-an-id"] == 1
        assert await s.weird().ok == "fine"
        assert await s.lookup("u1") == "u1:x"
        big = await s.big(BigInt(2**70))
        assert big == 2**71 and isinstance(big, BigInt)
        assert await s.blob() == b"\x00\x00"
        assert await s.nothing() is undefined
        assert await s.mode() == "a" and await s.mode(True) is True
        assert await s.log("a", 1, [2]) == ["a", 1, [2]]
        when, items, ratio = await s.defaults()
        assert (when, items, math.isinf(ratio)) == (EPOCH, [1, 2], True)
        assert await s.remove(1) == "1f"
        assert [f for side, f in pair.log if f[0] == "push"][-1][1][2] == ["delete"]
        assert await s.self_ref.tree(0) == Node("leaf")
        assert await s.list() == ["a", "b"]  # members named like builtins
        assert await s.property("abc") == Chunk(b"abc", [3])
        assert await s.property("ab").list == [2]
        assert await s.property("ab").bytes == b"ab"
        for stub in [*by_name.values(), *children]:
            stub.dispose()


def test_generated_code_is_lint_clean(sample_stubs: ModuleType) -> None:
    rules = "E,F,W,B,UP,SIM,RUF"  # import sorting depends on the project: see typed-stubs.md
    paths = [sample_stubs.__file__ or "", *(str(p) for p in STUBS.glob("*.py"))]
    command = [ruff_executable(), "check", "--isolated", "--line-length", "100", "--select"]
    proc = subprocess.run(
        [*command, rules, *paths], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_typescript_declarations_of_the_sample() -> None:
    text = generate(["codegen_sample"], "ts")["codegen_sample.d.ts"]
    for line in [
        'import type { RpcTarget } from "capnweb";',
        "export interface Sample extends RpcTarget {",
        "  level?: number;",  # a TypedDict key that is not required
        '  "not-an-id": number;',
        "  delete(new_: number, function_?: string): string;",  # wire name; reserved words
        "  byName(): Record<string, Sample>;",
        "  pair(p: [number, string]): [number, string];",
        '  mode(m?: "a" | "b" | 1 | true): "a" | "b" | 1 | true;',
        "  log(first: string, ...rest: unknown[]): unknown[];",
        "  readonly selfRef: Sample;",
        ' * A docstring with "quotes", a backslash \\ and `code`; and *\\/ for TypeScript.',
    ]:
        assert line in text.splitlines(), line


def test_an_interface_without_a_docstring_does_not_get_protocols(tmp_path: Path) -> None:
    (tmp_path / "bare_api.py").write_text(
        "from typing import Protocol\n"
        "from capnweb.interface import rpc_interface, rpc_method\n\n\n"
        "@rpc_interface\n"
        "class Bare(Protocol):\n"
        "    @rpc_method\n"
        "    async def ping(self) -> int: ...\n"
    )
    sys.path.insert(0, str(tmp_path))
    try:
        for lang in ("py", "ts"):
            (text,) = generate(["bare_api"], lang).values()
            assert "ping" in text
            assert "protocol classes" not in text  # typing.Protocol's own docstring
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("bare_api", None)


STREAMS_API = """
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator
from dataclasses import dataclass
from typing import Protocol

import capnweb
from capnweb.interface import rpc_interface, rpc_method


@dataclass
class Point:
    x: int


@rpc_interface
class Streams(Protocol):
    @rpc_method
    def points(self) -> AsyncIterator[Point]: ...
    @rpc_method
    async def lines(self) -> AsyncIterable[str]: ...
    @rpc_method
    async def numbers(self) -> AsyncGenerator[int, None]: ...
    @rpc_method
    async def raw(self) -> capnweb.ReadableStream[bytes]: ...
    @rpc_method
    async def take(
        self,
        a: AsyncIterator[bytes],
        b: AsyncIterable[Point],
        c: AsyncGenerator[str, None],
        d: capnweb.ReadableStream[int],
        sink: capnweb.WritableStream[float],
    ) -> None: ...
    @rpc_method
    async def blob(self, b: capnweb.Blob) -> capnweb.Blob: ...
    @rpc_method
    async def fetch(self, r: capnweb.Request) -> capnweb.Response: ...
"""


def test_stream_blob_and_fetch_types_in_stubs_and_declarations(tmp_path: Path) -> None:
    (tmp_path / "streams_api.py").write_text(STREAMS_API)
    sys.path.insert(0, str(tmp_path))
    try:
        py = generate(["streams_api"])["streams_api.py"]
        ts = generate(["streams_api"], "ts")["streams_api.d.ts"]
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("streams_api", None)
    abc, typed = "_collections_abc", "_capnweb_typed.TypedPromise"
    flat = "".join(py.split())  # as ruff wraps lines: compare without whitespace
    for line in [
        # results: await gives an async iterator (a generator cannot be sent values)
        "    def points(self) -> PointStreamPromise:",
        f"class PointStreamPromise({typed}[{abc}.AsyncIterator[_streams_api.Point]]):",
        f"    _result_type = {abc}.AsyncIterator[_streams_api.Point]",
        f"    def lines(self) -> {typed}[{abc}.AsyncIterator[str]]:",
        f"    def numbers(self) -> {typed}[{abc}.AsyncIterator[int]]:",
        f"    def raw(self) -> {typed}[_capnweb.ReadableStream[bytes]]:",
        # parameters: any async iterable of the chunk type; a writable stream as declared
        f"        a: {abc}.AsyncIterable[bytes],",
        f"        b: {abc}.AsyncIterable[_streams_api.Point],",
        f"        c: {abc}.AsyncIterable[str],",
        f"        d: {abc}.AsyncIterable[int],",
        "        sink: _capnweb.WritableStream[float],",
        # values of their own: no promise class with fields
        f"    ) -> {typed}[_capnweb.Blob]:",
        f"    ) -> {typed}[_capnweb.Response]:",
    ]:
        assert "".join(line.split()) in flat, line
    assert "BlobPromise" not in py and "ResponsePromise" not in py
    for line in [
        "  points(): ReadableStream<Point>;",
        "  lines(): ReadableStream<string>;",
        "  numbers(): ReadableStream<number>;",
        "  raw(): ReadableStream<Uint8Array>;",
        "  take(a: ReadableStream<Uint8Array>, b: ReadableStream<Point>, "
        "c: ReadableStream<string>, d: ReadableStream<number>, "
        "sink: WritableStream<number>): null;",
        "  blob(b: Blob): Blob;",
        "  fetch(r: Request): Response;",
    ]:
        assert line in ts.splitlines(), line
    # Blob, Request and Response are the platform's: not declared again as data interfaces
    assert re.findall(r"^export interface (\w+)", ts, re.MULTILINE) == ["Point", "Streams"]
    (tmp_path / "streams_stubs.py").write_text(py)
    command = [ruff_executable(), "check", "--isolated", "--line-length", "100", "--select"]
    proc = subprocess.run(
        [*command, "E,F,W,B,UP,SIM,RUF", str(tmp_path / "streams_stubs.py")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
