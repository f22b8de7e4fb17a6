"""Typed Python stubs from TypeScript (``python -m capnweb_codegen --from-ts``).

``from_ts/server.ts`` is a capnweb server written in TypeScript. The Python interfaces and
stubs generated from it pass ``mypy --strict`` together with ``from_ts/client.py``
(``assert_type`` on pipelined results), ``from_ts/client_wrong.py`` fails with the expected
errors, and the server, compiled with ``tsc --strict`` and run on Node, answers that client.
``from_ts/types.ts`` has a member for each row of the type mapping table (docs/typed-stubs.md),
checked annotation by annotation. The interfaces of ``examples/typed/api.py`` written as a
``.d.ts`` (``--lang ts``) and read back give the same stubs, but for what a ``.d.ts`` cannot say;
so do those of ``examples/streaming/api.py`` (streams and a ``Blob``).
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import functools
import importlib
import json
import os
import re
import shutil
import subprocess
import sys
import typing
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType, NoneType
from typing import Any, Literal

import pytest
from helpers import npm_ci
from mypy import api as mypy_api
from typing_extensions import is_typeddict

from capnweb import (
    URL,
    BigInt,
    Blob,
    Headers,
    Request,
    Response,
    RpcStub,
    TypedArray,
    UndefinedType,
    WritableStream,
    undefined,
)
from capnweb.interface import describe
from capnweb_codegen import CodegenError, _from_ts, from_typescript, generate
from capnweb_codegen.__main__ import main
from capnweb_codegen._from_ts import TS_DIR, ensure_typescript

pytestmark = pytest.mark.timeout(120)

FIXTURES = Path(__file__).resolve().parent / "from_ts"
REPO = FIXTURES.parents[1]
SERVER_TS = FIXTURES / "server.ts"
TYPES_TS = FIXTURES / "types.ts"
INTEROP_JS = REPO / "tests" / "interop" / "js"
TSC = TS_DIR / "node_modules" / "typescript" / "bin" / "tsc"
TSC_TIMEOUT_S = 120.0
CLI_TIMEOUT_S = 120.0
SERVER_START_TIMEOUT_S = 20.0
CLIENT_TIMEOUT_S = 30.0
ERROR = re.compile(r"^(?P<path>.+?):(?P<line>\d+): error: (?P<message>.*)$")


@functools.cache
def node_packages() -> None:
    """The pinned TypeScript compiler, and capnweb + ws for running the server (npm ci once)."""
    ensure_typescript()
    npm_ci(INTEROP_JS, ("capnweb", "ws"))


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A client project: ``tsapi/`` holds what ``--from-ts`` generates for ``server.ts`` (by
    the command line, as a user runs it) and ``types.ts``, beside the two client modules."""
    node_packages()
    root = tmp_path_factory.mktemp("from_ts_project")
    (root / "tsapi").mkdir()
    (root / "tsapi" / "__init__.py").write_text("")
    command = [sys.executable, "-m", "capnweb_codegen", "--from-ts", str(SERVER_TS)]
    command += ["--interface", "Api", "--out", "tsapi"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        command, cwd=root, env=env, capture_output=True, text=True, timeout=CLI_TIMEOUT_S
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n") == [
        f"wrote {Path('tsapi') / 'server.py'}",
        f"wrote {Path('tsapi') / 'server_stubs.py'}",
        "",
    ]
    for name, text in from_typescript([TYPES_TS], ["Types"], module="tsapi.types").items():
        (root / "tsapi" / name).write_text(text)
    for name in ("client.py", "client_wrong.py"):
        shutil.copy(FIXTURES / name, root / name)
    return root


@pytest.fixture(scope="module")
def imported(project: Path) -> Iterator[Callable[[str], ModuleType]]:
    """Imports modules of the project (``tsapi.types``, ``client``...); forgets them after."""
    sys.path.insert(0, str(project))
    try:
        yield importlib.import_module
    finally:
        sys.path.remove(str(project))
        for name in [n for n in sys.modules if n == "client" or n.split(".")[0] == "tsapi"]:
            del sys.modules[name]


# --------------------------------------------------------------------------------------------
# mypy --strict


@pytest.fixture(scope="module")
def mypy_errors(project: Path) -> dict[str, dict[int, list[str]]]:
    """Error messages by file and line, from one ``mypy --strict`` run over the project."""
    (project / "mypy.ini").write_text(f"[mypy]\nstrict = True\nmypy_path = {REPO}\n")
    args = ["--config-file", "mypy.ini", "--no-error-summary"]
    args += ["--cache-dir", str(REPO / ".mypy_cache" / "from-ts")]
    args += ["client.py", "client_wrong.py", "tsapi"]
    with contextlib.chdir(project):
        stdout, stderr, status = mypy_api.run(args)
    assert stderr == "" and status in (0, 1), stderr + stdout
    errors: dict[str, dict[int, list[str]]] = defaultdict(lambda: defaultdict(list))
    for line in stdout.splitlines():
        match = ERROR.match(line)
        assert match, line
        errors[Path(match["path"]).as_posix()][int(match["line"])].append(match["message"])
    return errors


def test_generated_modules_and_the_typed_client_pass_mypy_strict(
    mypy_errors: dict[str, dict[int, list[str]]],
) -> None:
    assert {path: dict(lines) for path, lines in mypy_errors.items()} == {
        "client_wrong.py": mypy_errors["client_wrong.py"]
    }


def test_wrong_uses_fail_mypy_with_the_expected_messages(
    mypy_errors: dict[str, dict[int, list[str]]],
) -> None:
    expected: dict[int, list[str]] = defaultdict(list)
    pending: list[str] = []
    lines = (FIXTURES / "client_wrong.py").read_text().splitlines()
    for number, line in enumerate(lines, start=1):
        stripped = line.strip()
        if stripped.startswith("# E: "):
            pending.append(stripped.removeprefix("# E: "))
        elif pending and stripped:
            expected[number].extend(pending)
            pending = []
    assert len(expected) == 7
    assert dict(mypy_errors["client_wrong.py"]) == dict(expected)


# --------------------------------------------------------------------------------------------
# The TypeScript server on Node, the typed Python client


@pytest.fixture(scope="module")
def server_js(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``server.ts`` compiled by the pinned ``tsc --strict``, where Node finds capnweb and ws."""
    node_packages()
    build = tmp_path_factory.mktemp("ts_server")
    for name in ("server.ts", "ws.d.ts", "tsconfig.json"):
        shutil.copy(FIXTURES / name, build / name)
    (build / "package.json").write_text('{"type": "module"}\n')
    (build / "node_modules").symlink_to(INTEROP_JS / "node_modules", target_is_directory=True)
    proc = subprocess.run(
        ["node", str(TSC), "-p", "tsconfig.json"],
        cwd=build,
        capture_output=True,
        text=True,
        timeout=TSC_TIMEOUT_S,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return build / "build" / "server.js"


@asynccontextmanager
async def running(server_js: Path) -> AsyncIterator[str]:
    """The compiled server on Node, on a free port of 127.0.0.1; yields its ``ws://`` URL."""
    log = server_js.with_suffix(".log")
    with log.open("wb") as stderr:
        proc = await asyncio.create_subprocess_exec(
            "node",
            "--import",
            str(INTEROP_JS / "setup.mjs"),
            str(server_js),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
        )
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(SERVER_START_TIMEOUT_S):
            line = await proc.stdout.readline()
        match = re.fullmatch(rb"listening (\d+)\n", line)
        if match is None:
            proc.kill()
            await proc.wait()
            pytest.fail(f"the server did not start: {line!r}\n{log.read_text()}")
        yield f"ws://127.0.0.1:{int(match[1])}/"
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_the_typescript_server_answers_the_typed_python_client(
    server_js: Path, imported: Callable[[str], ModuleType]
) -> None:
    client = imported("client")
    async with running(server_js) as url, asyncio.timeout(CLIENT_TIMEOUT_S):
        out = await client.run(url)
    ann = {
        "id": 1,
        "name": "ann",
        "role": "admin",
        "tags": ["admin"],
        "joined": datetime(2024, 1, 1, tzinfo=UTC),
        "karma": 2**60 + 1,
        "avatar": b"\x01\x02\x03",
    }
    bob = ann | {
        "id": 2,
        "name": "bob",
        "role": "member",
        "tags": ["member"],
        "joined": datetime(2024, 1, 2, tzinfo=UTC),
        "karma": 2**60 + 2,
        "avatar": None,
    }
    assert out == {
        "name": "ann",
        "tags": ["admin"],
        "joined": datetime(2024, 1, 1, tzinfo=UTC),
        "karma": 2**60 + 1,
        "avatar": b"\x01\x02\x03",
        "role": "member",
        "bio": undefined,
        "profile": ann | {"bio": "likes types"},
        "bio_removed": False,
        "greet": "Hello, ann!",
        "greet_hi": "Hi, bob!",
        "seat": (2, 20),
        "self": "bob",
        "added": 3,
        "found": bob,
        "not_found": None,
        "admins": ["ann"],
        "names": ["ann", "bob", "cy"],
        "stub": "bob",
        "version": "1.0",
        "add": 3.5,
        "double": 42,
        "reverse": b"cba",
        "next_day": datetime(2024, 1, 2, tzinfo=UTC),
        "stats": {"users": 3, "admins": 1, "roles": {"admin": 1, "member": 2}},
        "motto": "typed both ways",
        "unknown": undefined,
        "content_type": "text/plain",
        "tail": ["ann joined", "bob joined", "cy joined"],
        "count_lines": 3,
        "countdown": [3, 2, 1],
        "notified": 3,
        "events": [("hello", 1), ("hello", 2), ("hello", 3)],
        "error": "no user 99",
    }
    assert type(out["karma"]) is BigInt and type(out["double"]) is BigInt


# --------------------------------------------------------------------------------------------
# The type mapping


def test_each_typescript_type_maps_as_documented(
    project: Path, imported: Callable[[str], ModuleType]
) -> None:
    types = imported("tsapi.types")
    iface = describe(types.Types)
    child, item, box, anonymous = (
        types.Child,
        types.Item,
        types.BoxNumber,
        types.TypesAnonymousResult,
    )
    expected: dict[str, tuple[list[Any], Any]] = {
        "number": ([float], float),
        "bigint": ([BigInt], BigInt),
        "string": ([str], str),
        "boolean": ([bool], bool),
        "null": ([], NoneType),
        "undefined": ([], NoneType),
        "void": ([], NoneType),
        "nullable": ([str | None], str | UndefinedType),
        "optional": ([float, str | UndefinedType], NoneType),
        "rest": ([float], NoneType),
        "date": ([datetime], datetime),
        "bytes": ([bytes], bytes),
        "buffer": ([TypedArray], TypedArray),
        "array": ([list[str]], list[float]),
        "tuple": ([], tuple[str, float]),
        "optional_tuple": ([], tuple[str] | tuple[str, float | UndefinedType]),
        "rest_tuple": ([], list[str | float]),
        "record": ([], dict[str, float]),
        "item": ([item], item),
        "literal": ([], Literal["red", "green"]),
        "enum": ([], Literal["s", "l"]),
        "mixed": ([], Literal["a", 1, True] | None),
        "union": ([str | float], child | item),
        "promise": ([], str),
        "callback": ([Callable[[str, float], Awaitable[None]]], NoneType),
        "returns_function": ([], Callable[[float], Awaitable[str]]),
        "target": ([], child),
        "stub": ([], child),
        "any_stub": ([RpcStub], NoneType),
        "stream": ([], AsyncIterator[bytes]),
        "writable": ([WritableStream[str]], NoneType),
        "blob": ([Blob], Blob),
        "request": ([Request], Response),
        "headers": ([Headers], URL),
        "error": ([], Exception),
        "generic": ([], box),
        "generic_method": ([Any], Any),
        "branded": ([str], str),
        "json": ([], str | float | bool | list[Any] | dict[str, Any] | None),
        "unknown": ([object], Any),
        "map_": ([], Any),
        "symbol": ([], Any),
        "plain": ([], Any),
        "never": ([], Any),
        "anonymous": ([], anonymous),
        "self": ([], types.Types),
        "count": ([], float),
        "list": ([], str),
        "import_": ([], str),
    }
    assert list(iface.members) == list(expected)
    for name, (params, returns) in expected.items():
        member = iface.members[name]
        assert [p.annotation for p in member.params] == params, name
        assert member.returns == returns, name
    wire = {m.name: m.wire_name for m in iface.members.values()}
    assert (
        wire["optional_tuple"] == "optionalTuple" and wire["returns_function"] == "returnsFunction"
    )
    assert wire["map_"] == "map" and wire["import_"] == "import" and wire["list"] == "list"
    assert iface.members["count"].kind == "property" and iface.members["import_"].kind == "property"
    optional = iface.members["optional"].params[1]
    assert optional.default is undefined
    assert iface.members["rest"].variadic

    assert is_typeddict(item) and is_typeddict(box) and is_typeddict(anonymous)
    assert item.__required_keys__ == {"name", "content-type", "from", "str"}
    assert item.__optional_keys__ == {"note"}
    assert typing.get_type_hints(item)["note"] == str | UndefinedType
    assert typing.get_type_hints(box) == {"value": float}
    assert typing.get_type_hints(anonymous) == {"ok": bool, "child": child}
    assert list(describe(child).members) == ["ping"]

    source = (project / "tsapi" / "types.py").read_text()
    for comment in (
        "    # result: File: sent as a Blob (its name and date are not)",
        "    # result: Map<string, number>: capnweb does not send a Map",
        "    # result: Plain: a class that does not extend RpcTarget: capnweb does not send its",
        "    # result: [string, ...number[]]: a tuple of any length is a list here",
        "# Json refers to itself: those references are Any here",
        "        # Optional: may be absent.",
    ):
        assert comment in source
    assert '"""A string-literal union, kept as an alias."""' in source


def test_without_interface_every_exported_rpc_target_class_is_described() -> None:
    files = from_typescript([SERVER_TS], module="everything")
    source = files["everything.py"]
    protocols = re.findall(r"^class (\w+)\(Protocol\):", source, re.MULTILINE)
    assert protocols == ["ApiServer", "User", "Users"]
    assert source.startswith("# generated from server.ts by python -m capnweb_codegen --from-ts")


def test_an_unknown_interface_is_reported_with_the_names_found() -> None:
    with pytest.raises(CodegenError) as info:
        from_typescript([SERVER_TS], ["Nope"])
    assert str(info.value) == (
        "no interface, class or type named Nope in server.ts "
        "(found: Api, ApiServer, Listener, Page, Profile, Role, User, Users)"
    )


def test_a_missing_node_is_reported_clearly(tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    env = {**os.environ, "PYTHONPATH": str(REPO), "PATH": str(empty)}
    command = [sys.executable, "-m", "capnweb_codegen", "--from-ts", str(SERVER_TS)]
    proc = subprocess.run(
        [*command, "--out", str(tmp_path / "out")],
        env=env,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
    )
    assert proc.returncode == 2
    assert "`node` is not on PATH: install Node.js 20 or later" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_the_compiler_is_installed_from_the_lock_file_when_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("package.json", "package-lock.json", "describe.mjs"):
        shutil.copy(TS_DIR / name, tmp_path / name)
    monkeypatch.setattr(_from_ts, "TS_DIR", tmp_path)
    path = os.environ["PATH"]
    monkeypatch.setenv("PATH", str(tmp_path))  # no npm there
    with pytest.raises(CodegenError, match=r"`npm` is not on PATH: run `npm ci` in "):
        _from_ts.ensure_typescript()
    monkeypatch.setenv("PATH", path)
    _from_ts.ensure_typescript()
    lock = json.loads((tmp_path / "package-lock.json").read_text())
    installed = json.loads((tmp_path / "node_modules/typescript/package.json").read_text())
    assert installed["version"] == lock["packages"]["node_modules/typescript"]["version"]


# --------------------------------------------------------------------------------------------
# Deterministic output, --check


def test_output_is_deterministic_and_check_tells_stale_files(
    project: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(sys, "path", list(sys.path))  # main() adds the working directory
    command = ["--from-ts", str(SERVER_TS), "--interface", "Api", "--out", "tsapi"]
    on_disk = {
        name: (project / "tsapi" / name).read_text() for name in ("server.py", "server_stubs.py")
    }
    monkeypatch.chdir(tmp_path)  # elsewhere, the same output for the same module name
    assert from_typescript([SERVER_TS], ["Api"], module="tsapi.server") == on_disk
    for text in on_disk.values():
        assert str(FIXTURES) not in text and str(REPO) not in text

    monkeypatch.chdir(project)
    assert main([*command, "--check"]) == 0
    assert "up to date" in capsys.readouterr().out
    stale = project / "tsapi" / "server_stubs.py"
    stale.write_text(on_disk["server_stubs.py"].replace("def version(", "def versions("))
    try:
        assert main([*command, "--check"]) == 1
        printed = capsys.readouterr().out
        assert f"stale: {Path('tsapi') / 'server_stubs.py'}" in printed
        assert "-    def versions(" in printed and "+    def version(" in printed
        assert "regenerate with:\n  python -m capnweb_codegen --from-ts " in printed
        assert stale.read_text().count("def versions(") == 1  # --check writes nothing
    finally:
        stale.write_text(on_disk["server_stubs.py"])


# --------------------------------------------------------------------------------------------
# Python Protocol -> .d.ts -> Python Protocol

INHERENT = {
    # A .d.ts says `x?: T` for a parameter with a default, not the default itself: read back,
    # the parameter's default is `undefined` (what TypeScript passes when it is left out).
    "ApiStub.user_names",
    "ApiStub.make_counter",
    "CounterStub.increment",
}


def _names(node: ast.stmt) -> bool:
    """Whether ``node`` is the ``_interface = "module:Name"`` line (each module names its own)."""
    targets = node.targets if isinstance(node, ast.Assign) else []
    return any(isinstance(t, ast.Name) and t.id == "_interface" for t in targets)


def _parts(source: str, alias: str) -> dict[str, str]:
    """Each top-level class of a stub module (without its methods) and each method, as text,
    with the module's alias renamed ``_api`` and ``int`` written ``float`` (a TypeScript
    ``number``)."""
    out: dict[str, str] = {}
    for node in ast.parse(source).body:
        if not isinstance(node, ast.ClassDef):
            continue
        methods = [n for n in node.body if isinstance(n, ast.FunctionDef)]
        for method in methods:
            out[f"{node.name}.{method.name}"] = ast.unparse(method)
        node.body = [n for n in node.body if not isinstance(n, ast.FunctionDef) and not _names(n)]
        out[node.name] = ast.unparse(node)
    return {
        re.sub(r"\bIntList", "FloatList", key): re.sub(
            r"\bint\b", "float", re.sub(r"\bIntList", "FloatList", text.replace(alias, "_api"))
        )
        for key, text in out.items()
    }


def test_round_trip_through_a_declaration_file_gives_the_same_stubs(tmp_path: Path) -> None:
    dts = tmp_path / "examples_typed_api.d.ts"
    dts.write_text(generate(["examples.typed.api"], "ts")["examples_typed_api.d.ts"])
    back = from_typescript([dts], ["Api"], module="roundtrip")
    original = _parts(
        generate(["examples.typed.api:Api"])["examples_typed_api.py"], "_examples_typed_api"
    )
    round_trip = _parts(back["roundtrip_stubs.py"], "_roundtrip")

    assert set(round_trip) == set(original)
    differ = {key for key in original if original[key] != round_trip[key]}
    assert differ == INHERENT
    for key in INHERENT:
        assert "=_capnweb.undefined" in round_trip[key]
        assert "=_capnweb.undefined" not in original[key]

    assert '_interface = "roundtrip:Api"' in back["roundtrip_stubs.py"]
    protocols = back["roundtrip.py"]
    assert "class Profile(TypedDict):" in protocols  # a dataclass before: a .d.ts cannot say
    assert '"""The user called ``name`` (created on first use)."""' in protocols


def test_streams_and_blobs_round_trip_through_a_declaration_file(tmp_path: Path) -> None:
    dts = tmp_path / "examples_streaming_api.d.ts"
    dts.write_text(generate(["examples.streaming.api"], "ts")["examples_streaming_api.d.ts"])
    back = from_typescript([dts], ["Storage"], module="roundtrip_streams")
    original = _parts(
        generate(["examples.streaming.api"])["examples_streaming_api.py"],
        "_examples_streaming_api",
    )
    round_trip = _parts(back["roundtrip_streams_stubs.py"], "_roundtrip_streams")

    assert set(round_trip) == set(original)
    differ = {key for key in original if original[key] != round_trip[key]}
    assert differ == {"StorageStub.upload", "StorageStub.download"}  # defaults: `x?: T`
    for key in differ:
        assert "=_capnweb.undefined" in round_trip[key]
    protocols = back["roundtrip_streams.py"]
    for line in (
        "    async def tail(self, log: str) -> AsyncIterator[str]:",
        "        data: AsyncIterator[bytes],",
        "        progress: capnweb.WritableStream[float] | capnweb.UndefinedType | None = "
        "capnweb.undefined,",
        "    async def read(self, name: str) -> capnweb.Blob:",
    ):
        assert line in protocols.splitlines(), line
