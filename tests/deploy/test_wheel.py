"""capnweb as a user gets it: built, installed into a fresh venv, used from a project of one's own.

The wheel and the sdist are built from a copy of this checkout and must hold only ``capnweb``
and ``capnweb_codegen``. Each is installed with the ``codegen`` extra into a venv outside the
checkout (dependencies from the package index); there a user project declares an interface as
a Protocol, generates typed stubs into its own ``stubs/`` folder, and runs a server and a typed
client with the venv's Python.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tarfile
import textwrap
import tomllib
import zipfile
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest
from interop.conftest import serve
from packaging.requirements import Requirement

import capnweb

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("capnweb", "capnweb_codegen")
"""The only top-level packages a built artefact may hold."""

BUILD_TIMEOUT_S = 240.0
INSTALL_TIMEOUT_S = 300.0
RUN_TIMEOUT_S = 60.0

COPY_IGNORE = shutil.ignore_patterns(
    ".git",
    ".venv",
    "node_modules",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    ".*_cache",
    ".hypothesis",
    "*.so",
    "*.pyd",
)
"""What a fresh clone would not have: the build sees the sources only (and writes nothing here)."""

INTERFACE = '''
"""The interface of a small greeting service."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from capnweb.interface import camel_case, rpc_interface, rpc_method


@dataclass
class Greeting:
    """A greeting and how many were given so far."""

    text: str
    count: int


@rpc_interface(names=camel_case)
class Counter(Protocol):
    """A counter living on the server."""

    @rpc_method
    async def increment(self, amount: int = 1) -> int:
        """Add ``amount`` and return the new value."""


@rpc_interface(names=camel_case)
class Greeter(Protocol):
    """The service."""

    @rpc_method
    async def greet(self, name: str) -> Greeting:
        """Greet ``name``."""

    @rpc_method
    async def square(self, x: int) -> int:
        """``x * x``."""

    @rpc_method
    async def make_counter(self, start: int = 0) -> Counter:
        """A new counter starting at ``start``."""
'''

SERVER = """
import argparse
import asyncio

import capnweb
from greeter import Counter, Greeter, Greeting


class CounterImpl(capnweb.RpcTarget, Counter):
    def __init__(self, start: int) -> None:
        self._value = start

    async def increment(self, amount: int = 1) -> int:
        self._value += amount
        return self._value


class GreeterImpl(capnweb.RpcTarget, Greeter):
    def __init__(self) -> None:
        self._count = 0

    async def greet(self, name: str) -> Greeting:
        self._count += 1
        return Greeting(f"hello {name}", self._count)

    async def square(self, x: int) -> int:
        return x * x

    async def make_counter(self, start: int = 0) -> Counter:
        return CounterImpl(start)


async def main(port: int) -> None:
    server = await capnweb.serve(GreeterImpl, "127.0.0.1", port, "/rpc")
    await server.serve_until_signal()


parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, required=True)
asyncio.run(main(parser.parse_args().port))
"""

CLIENT = """
import asyncio
import sys

import capnweb
from stubs.greeter import GreeterStub


async def main(url: str) -> None:
    async with capnweb.connect(url, GreeterStub) as api:
        greeting = await api.greet("ann")
        print("greet:", type(greeting).__name__, greeting.text, greeting.count)
        print("pipelined:", await api.make_counter(api.square(3)).increment(5))
        print("squares:", await api.square(api.square(2)))


asyncio.run(main(sys.argv[1]))
"""

EXPECTED_CLIENT_OUTPUT = ["greet: Greeting hello ann 1", "pipelined: 14", "squares: 16"]

INSPECT = """
import importlib.metadata, importlib.util, json
import capnweb
dist = importlib.metadata.distribution("capnweb")
print(json.dumps({
    "version": capnweb.__version__,
    "metadata_version": importlib.metadata.version("capnweb"),
    "file": capnweb.__file__,
    "installed_from": json.loads(dist.read_text("direct_url.json") or "{}").get("url", ""),
    "top_level": {m: importlib.util.find_spec(m) is not None for m in ("stubs", "examples")},
}))
"""
"""Run from outside any project: what the venv itself holds."""


def run(argv: Sequence[str], cwd: Path, env: dict[str, str], timeout: float) -> str:
    """Run a command to completion (bounded); its stdout, or a failure showing its output."""
    try:
        proc = subprocess.run(
            argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        out, err = (
            o.decode() if isinstance(o, bytes) else o or "" for o in (exc.stdout, exc.stderr)
        )
        pytest.fail(f"{argv} did not finish within {timeout} s:\n{out}\n{err}")
    if proc.returncode != 0:
        pytest.fail(f"{argv} exited with {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


def build_command(src: Path, out: Path) -> list[str]:
    """``python -m build`` for ``src``; without isolation when this venv already has what the
    build needs (fast, no index), else in build's own isolated environment."""
    pyproject = tomllib.loads((src / "pyproject.toml").read_text(encoding="utf-8"))
    command = [sys.executable, "-m", "build", "--outdir", str(out)]
    if all(_installed(r) for r in pyproject["build-system"]["requires"]):
        command.append("--no-isolation")
    return [*command, str(src)]


def _installed(requirement: str) -> bool:
    req = Requirement(requirement)
    try:
        return req.specifier.contains(importlib.metadata.version(req.name), prereleases=True)
    except importlib.metadata.PackageNotFoundError:
        return False


def user_env(venv: Path) -> dict[str, str]:
    """The environment of a user working in ``venv``: nothing of this checkout on the import
    path or on PATH (so ruff, too, must come from the venv)."""
    dev_bin = Path(sys.executable).parent
    path = [
        p
        for p in os.environ.get("PATH", "").split(os.pathsep)
        if p and not Path(p).resolve().is_relative_to(REPO) and Path(p) != dev_bin
    ]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.pop("VIRTUAL_ENV", None)
    env.update(
        PATH=os.pathsep.join([str(venv / "bin"), *path]),
        PYTHONNOUSERSITE="1",
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PIP_NO_INPUT="1",
    )
    return env


def check_wheel(wheel: Path, version: str) -> list[str]:
    """The wheel's file list, after checking that it holds the two packages only."""
    names = zipfile.ZipFile(wheel).namelist()
    allowed = (*(f"{p}/" for p in PACKAGES), f"capnweb-{version}.dist-info/")
    assert [n for n in names if not n.startswith(allowed)] == []
    for needed in (
        "capnweb/__init__.py",
        "capnweb/py.typed",
        "capnweb/_speedups.pyi",
        "capnweb_codegen/__main__.py",
        "capnweb_codegen/templates/python.py.j2",
        "capnweb_codegen/templates/typescript.d.ts.j2",
    ):
        assert needed in names
    assert [n for n in names if n.endswith(".c")] == []
    return names


def check_sdist(sdist: Path, version: str) -> list[str]:
    """The sdist's file list, after checking that its only folders are the two packages (with
    the C source of the optional extension) and the metadata."""
    root = f"capnweb-{version}/"
    with tarfile.open(sdist) as tar:
        names = [m.name + ("/" if m.isdir() else "") for m in tar.getmembers()]
    assert all(n.startswith(root) for n in names)
    inner = [n[len(root) :] for n in names if n != root]
    folders = {n.split("/")[0] for n in inner if "/" in n}
    assert folders == {*PACKAGES, "capnweb.egg-info"}
    for needed in ("pyproject.toml", "setup.py", "capnweb/_speedups.c", "capnweb/py.typed"):
        assert needed in inner
    assert "capnweb_codegen/templates/python.py.j2" in inner
    return inner


def use_in_project(project: Path, venv: Path, env: dict[str, str]) -> list[str]:
    """A user project: interface, generated stubs in its own ``stubs/``, server and typed
    client run with the venv's Python. Returns the client's output lines."""
    python = str(venv / "bin" / "python")
    project.mkdir()
    for name, text in (("greeter.py", INTERFACE), ("server.py", SERVER), ("client.py", CLIENT)):
        (project / name).write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    out = run([python, "-m", "capnweb_codegen", "greeter", "--out", "stubs"], project, env, 60)
    assert out.split() == ["wrote", str(Path("stubs") / "greeter.py")]
    assert "class GreeterStub(" in (project / "stubs" / "greeter.py").read_text(encoding="utf-8")
    server_env = {**env, "PYTHONPATH": ""}  # serve() starts from os.environ: empty is unset
    with contextmanager(serve)(
        [python, "server.py", "--port", "{port}"], project, project / "server.log", server_env
    ) as url:
        ws_url = url.replace("http://", "ws://", 1)
        return run([python, "client.py", ws_url], project, env, RUN_TIMEOUT_S).splitlines()


def inspect_install(venv: Path, cwd: Path, env: dict[str, str]) -> dict[str, object]:
    """What the venv's Python says about the installed capnweb."""
    python = str(venv / "bin" / "python")
    found: dict[str, object] = json.loads(run([python, "-c", INSPECT], cwd, env, RUN_TIMEOUT_S))
    return found


@pytest.mark.timeout(600)
def test_wheel_and_sdist_install_into_a_user_project(tmp_path: Path) -> None:
    version = capnweb.__version__
    src, dist, venv = tmp_path / "src", tmp_path / "dist", tmp_path / "venv"
    shutil.copytree(REPO, src, ignore=COPY_IGNORE)
    run(build_command(src, dist), src, dict(os.environ), BUILD_TIMEOUT_S)
    sdist = dist / f"capnweb-{version}.tar.gz"
    (wheel,) = dist.glob(f"capnweb-{version}-*.whl")
    check_wheel(wheel, version)
    check_sdist(sdist, version)

    env = user_env(venv)
    run([sys.executable, "-m", "venv", str(venv)], tmp_path, env, RUN_TIMEOUT_S)
    pip = [str(venv / "bin" / "python"), "-m", "pip"]

    # The sdist first: it brings the dependencies, and compiles the extension if it can.
    run([*pip, "install", "-q", f"{sdist}[codegen]"], tmp_path, env, INSTALL_TIMEOUT_S)
    found = inspect_install(venv, tmp_path, env)
    assert found["version"] == found["metadata_version"] == version
    assert Path(str(found["file"])).is_relative_to(venv)
    assert found["top_level"] == {"stubs": False, "examples": False}
    assert use_in_project(tmp_path / "project-sdist", venv, env) == EXPECTED_CLIENT_OUTPUT

    # Then the wheel in its place (the dependencies it declares are already there).
    run([*pip, "uninstall", "-y", "-q", "capnweb"], tmp_path, env, INSTALL_TIMEOUT_S)
    run([*pip, "install", "-q", f"{wheel}[codegen]"], tmp_path, env, INSTALL_TIMEOUT_S)
    found = inspect_install(venv, tmp_path, env)
    assert str(found["installed_from"]).endswith(wheel.name)
    assert found["version"] == found["metadata_version"] == version
    assert found["top_level"] == {"stubs": False, "examples": False}
    assert use_in_project(tmp_path / "project-wheel", venv, env) == EXPECTED_CLIENT_OUTPUT
