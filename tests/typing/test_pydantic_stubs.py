"""Stubs generated for pydantic models (``tests/pydantic_sample.py``), in both languages.

Python: ``mypy --strict`` accepts ``cases/pydantic_client.py`` (every ``assert_type`` holds on
awaited models and pipelined fields) and fails ``cases/pydantic_wrong.py`` with exactly the
expected messages. TypeScript: the declarations map each model to an interface of its wire
keys; a client typed by them passes ``tsc --strict`` and, run on Node, calls the Python server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest
from helpers import npm_ci
from mypy import api as mypy_api

import capnweb
from capnweb_codegen import generate

pytestmark = pytest.mark.timeout(300)

HERE = Path(__file__).resolve().parent
CASES = HERE / "cases"
TS_DIR = HERE / "ts"
REPO = HERE.parents[1]
SAMPLE = REPO / "tests" / "pydantic_sample.py"
ERROR = re.compile(r"^(?P<path>.+?):(?P<line>\d+): error: (?P<message>.*)$")
TSC_TIMEOUT_S = 120.0
RUN_TIMEOUT_S = 30.0

CLIENT_TS = """\
// A TypeScript peer of the Python server of tests/pydantic_sample.py, typed by the generated
// declarations. Usage: node --import setup.mjs client.js ws://127.0.0.1:PORT/rpc
import { newWebSocketRpcSession, type RpcStub } from "capnweb";
import type { Address, Directory, Profile } from "./pydantic_sample.js";

const api: RpcStub<Directory> = newWebSocketRpcSession<Directory>(process.argv[2]!);
const address: Address = { street: "2 Side St", zipCode: "99999" };
const bob: Profile = {
  name: "bob",
  age: 41,
  joined: new Date(Date.UTC(2024, 0, 2)),
  avatar: new Uint8Array([1, 2]),
  address,
  pastAddresses: [],
  tags: ["ts"],
  role: "admin",
  id: "00000000-0000-0000-0000-00000000000b",
};
const stored: Profile = await api.register(bob);
const zip: string | undefined = (await api.user("ann").profile.address)?.zipCode;
const role: "admin" | "member" = await api.user("bob").profile.role;
let error = "";
try {
  await api.register({ ...bob, age: -1 });
} catch (e) {
  error = `${(e as Error).name}: ${(e as Error).message}`;
}
console.log(JSON.stringify({
  joined: stored.joined.toISOString(),
  avatar: Array.from(stored.avatar),
  zip,
  role,
  error,
}));
api[Symbol.dispose]();
"""


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with the Python stubs and TypeScript declarations of the sample, next to a
    copy of it (the stubs import it)."""
    out = tmp_path_factory.mktemp("pydantic_stubs")
    sys.path.insert(0, str(SAMPLE.parent))
    try:
        stubs = generate(["pydantic_sample"])["pydantic_sample.py"]
        declarations = generate(["pydantic_sample"], "ts")["pydantic_sample.d.ts"]
    finally:
        sys.path.remove(str(SAMPLE.parent))
    (out / "pydantic_sample_stubs.py").write_text(stubs)
    (out / "pydantic_sample.d.ts").write_text(declarations)
    shutil.copy(SAMPLE, out / "pydantic_sample.py")
    return out


@pytest.fixture(scope="module")
def mypy_errors(generated: Path) -> dict[str, dict[int, list[str]]]:
    """Error messages by file name and line, from one ``mypy --strict`` run."""
    files = [
        generated / "pydantic_sample.py",
        generated / "pydantic_sample_stubs.py",
        CASES / "pydantic_client.py",
        CASES / "pydantic_wrong.py",
    ]
    args = [
        "--strict",
        "--no-error-summary",
        "--cache-dir",
        str(REPO / ".mypy_cache" / "typing-pydantic"),
    ]
    with contextlib.chdir(REPO):
        stdout, stderr, status = mypy_api.run([*args, *map(str, files)])
    assert stderr == "" and status in (0, 1), stderr + stdout
    errors: dict[str, dict[int, list[str]]] = defaultdict(lambda: defaultdict(list))
    for line in stdout.splitlines():
        match = ERROR.match(line)
        assert match, line
        errors[Path(match["path"]).name][int(match["line"])].append(match["message"])
    return errors


def test_the_generated_stubs_and_right_uses_pass_mypy_strict(
    mypy_errors: dict[str, dict[int, list[str]]],
) -> None:
    assert set(mypy_errors) == {"pydantic_wrong.py"}


def test_wrong_uses_fail_with_the_expected_messages(
    mypy_errors: dict[str, dict[int, list[str]]],
) -> None:
    expected: dict[int, list[str]] = defaultdict(list)
    pending: list[str] = []
    lines = (CASES / "pydantic_wrong.py").read_text().splitlines()
    for number, line in enumerate(lines, start=1):
        if line.strip().startswith("# E: "):
            pending.append(line.strip().removeprefix("# E: "))
        elif pending:
            expected[number], pending = pending, []
    assert len(expected) == 3
    assert dict(mypy_errors["pydantic_wrong.py"]) == dict(expected)


def test_model_fields_are_pipelined_under_their_wire_names(generated: Path) -> None:
    stubs = (generated / "pydantic_sample_stubs.py").read_text()
    zip_code = stubs[stubs.index("    def zip_code(self)") :]
    assert zip_code.splitlines()[:2] == [
        "    def zip_code(self) -> _capnweb_typed.TypedPromise[str]:",
        '        return self._rpc_get(_capnweb_typed.TypedPromise, "zipCode")',
    ]
    assert "    _result_type = _pydantic.TypeAdapter(_uuid.UUID)\n" in stubs


def test_declarations_map_each_model_to_an_interface_of_its_wire_keys(generated: Path) -> None:
    text = (generated / "pydantic_sample.d.ts").read_text()
    assert "export interface Address {\n  street: string;\n  zipCode: string;\n}" in text
    profile = text[text.index("export interface Profile {") :]
    profile = profile[: profile.index("}")]
    assert profile.splitlines()[1:] == [
        "  name: string;",
        "  age: number;",
        "  joined: Date;",
        "  avatar: Uint8Array;",
        "  address: Address | null;",
        "  pastAddresses: Address[];",
        "  tags: string[];",
        '  role: "admin" | "member";',
        "  id: string;",
    ]


def tsc(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    npm_ci(TS_DIR, ("typescript", "capnweb", "ws", "@types/node"))
    command = ["node", str(TS_DIR / "node_modules" / "typescript" / "bin" / "tsc"), *args]
    return subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, timeout=TSC_TIMEOUT_S, check=False
    )


async def test_a_typescript_peer_typed_by_the_declarations(generated: Path) -> None:
    (generated / "client.ts").write_text(CLIENT_TS)
    shutil.copy(TS_DIR / "package.json", generated / "package.json")  # "type": "module"
    modules = generated / "node_modules"
    if not modules.exists():
        modules.symlink_to(TS_DIR / "node_modules", target_is_directory=True)
    options = ["--strict", "--target", "ES2022", "--module", "NodeNext"]
    options += ["--moduleResolution", "NodeNext", "--types", "node", "--skipLibCheck"]
    proc = tsc(*options, "client.ts", cwd=generated)
    assert proc.returncode == 0, proc.stdout + proc.stderr

    from pydantic_sample import DirectoryImpl

    async with capnweb.serve(DirectoryImpl, host="127.0.0.1", port=0) as server:
        node = await asyncio.create_subprocess_exec(
            "node",
            "--import",
            str(TS_DIR / "setup.mjs"),
            str(generated / "client.js"),
            server.ws_url,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            async with asyncio.timeout(RUN_TIMEOUT_S):
                stdout, stderr = await node.communicate()
        finally:
            if node.returncode is None:
                node.kill()
                await node.wait()
    assert node.returncode == 0, stderr.decode()
    assert json.loads(stdout) == {
        "joined": "2024-01-02T00:00:00.000Z",
        "avatar": [1, 2],
        "zip": "12345",
        "role": "admin",
        "error": "TypeError: DirectoryImpl.register() argument 'profile'.age: "
        "Input should be greater than or equal to 0",
    }
