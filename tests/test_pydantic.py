"""pydantic models as values: sent as plain wire objects (keys by alias), validated into the
annotated model where an interface names it, with errors naming the field; pipelined field
access through generated stubs; and capnweb without pydantic loaded.

The interface and its implementation are in ``tests/pydantic_sample.py``.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import re
import subprocess
import sys
import textwrap
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from codec_impls import codec_impl  # noqa: F401 (the fixture: compiled and pure codec)
from helpers import SessionPair
from pydantic import BaseModel, ConfigDict, Field
from pydantic_sample import (
    JOINED,
    Address,
    Badge,
    DirectoryImpl,
    Profile,
    Role,
)

import capnweb
from capnweb import RpcTarget, RpcTypeError
from capnweb._codec import decode, encode
from capnweb._validate import convert
from capnweb_codegen import generate

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}  # this checkout's capnweb, in subprocesses
BOB_WIRE = {
    "name": "bob",
    "age": 41,
    "joined": ["date", 1_700_000_000_000],
    "avatar": ["bytes", "AQI"],
    "address": {"street": "2 Side St", "zipCode": "99999"},
    "pastAddresses": [[{"street": "0 Old Rd", "zipCode": "00001"}]],
    "tags": [["a", "b"]],
    "role": "admin",
    "id": "00000000-0000-0000-0000-00000000000b",
}
BOB = Profile(
    name="bob",
    age=41,
    joined=datetime.fromtimestamp(1_700_000_000, UTC),
    avatar=b"\x01\x02",
    address=Address(street="2 Side St", zip_code="99999"),
    past_addresses=[Address(street="0 Old Rd", zip_code="00001")],
    tags=["a", "b"],
    role=Role.ADMIN,
    id=uuid.UUID(int=11),
)


# --------------------------------------------------------------------------------------------
# The codec


class Point(BaseModel):
    x: int
    y: int = 0


class Kind(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    when: datetime
    data: bytes
    ids: set[int]
    scores: dict[int, float]
    note: str | None = None
    hidden: str = Field(default="secret", exclude=True)


@pytest.mark.usefixtures("codec_impl")
class TestCodec:
    """The same with the compiled codec and the pure-Python one."""

    def test_a_model_is_sent_as_an_object_keyed_by_alias(self) -> None:
        assert encode(BOB) == BOB_WIRE
        assert encode([Point(x=1)]) == [[{"x": 1, "y": 0}]]

    def test_values_the_wire_has_no_form_for_go_as_pydantic_json_writes_them(self) -> None:
        value = Kind(when=JOINED, data=b"\xff", ids={3}, scores={1: 0.5})
        assert encode(value) == {
            "when": ["date", JOINED.timestamp() * 1000],
            "data": ["bytes", "/w"],
            "ids": [[3]],
            "scores": {"1": 0.5},
            "note": None,
        }

    def test_a_received_object_is_validated_into_the_annotated_model(self) -> None:
        received = decode(BOB_WIRE)
        assert convert(received, Profile) == BOB
        assert convert(received, Profile | None) == BOB
        assert convert(None, Profile | None) is None
        assert convert([received], list[Profile]) == [BOB]
        assert convert({"name": "c", "age": 1}, Profile).joined == JOINED  # defaults apply
        # keys holding undefined count as absent, as in JavaScript
        assert (
            convert({"name": "c", "age": 1, "address": capnweb.undefined}, Profile).address is None
        )


def test_validation_errors_name_the_fields() -> None:
    with pytest.raises(TypeError) as one:
        convert({"name": "c", "age": -1}, Profile, "p")
    assert str(one.value) == "p.age: Input should be greater than or equal to 0"
    with pytest.raises(TypeError) as several:
        convert({"age": "x", "pastAddresses": [{"street": 1}]}, Profile, "p")
    assert str(several.value) == (
        "p: 4 errors: name: Field required; "
        "age: Input should be a valid integer, unable to parse string as an integer; "
        "pastAddresses[0].street: Input should be a valid string; "
        "pastAddresses[0].zipCode: Field required"
    )
    with pytest.raises(TypeError, match=r"^p must be Profile, got str$"):
        convert("bob", Profile, "p")


# --------------------------------------------------------------------------------------------
# Over the network: a real server, WebSocket sessions and HTTP batches


@pytest.fixture(scope="module")
def stubs(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    """The stubs generated for ``pydantic_sample``, imported."""
    path = tmp_path_factory.mktemp("stubs") / "pydantic_sample_stubs.py"
    path.write_text(generate(["pydantic_sample"])["pydantic_sample.py"])
    spec = importlib.util.spec_from_file_location("pydantic_sample_stubs", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
async def server() -> AsyncIterator[capnweb.Server]:
    async with capnweb.serve(DirectoryImpl, host="127.0.0.1", port=0) as server:
        yield server


@pytest.fixture(params=["ws", "batch"])
def url(request: pytest.FixtureRequest, server: capnweb.Server) -> str:
    return server.ws_url if request.param == "ws" else server.url


async def test_models_as_arguments_and_results(url: str, stubs: ModuleType) -> None:
    async with capnweb.connect(url, stubs.DirectoryStub) as api:
        stored, found, missing, everyone = await asyncio.gather(
            api.register(BOB), api.find("bob"), api.find("nobody"), api.everyone()
        )
    assert stored == BOB
    assert found == BOB
    assert missing is None
    assert [p.name for p in everyone] == ["ann", "bob"]
    assert all(isinstance(p, Profile) for p in everyone)


async def test_nested_models_as_arguments(url: str, stubs: ModuleType) -> None:
    async with capnweb.connect(url, stubs.DirectoryStub) as api:
        moved = await api.user("ann").move(Address(street="3 New Ave", zip_code="55555"))
    assert moved.address == Address(street="3 New Ave", zip_code="55555")
    assert moved.past_addresses == [Address(street="1 Main St", zip_code="12345")]


async def test_an_untyped_peer_sends_and_receives_plain_objects(url: str) -> None:
    """What a TypeScript peer sees: camelCase keys, dates, bytes, strings for UUIDs."""
    async with capnweb.connect(url) as api:
        stored, ann = await asyncio.gather(
            api.register(
                {"name": "bob", "age": 41, "address": {"street": "2 Side St", "zipCode": "99999"}}
            ),
            api.find("ann"),
        )
    assert stored == {
        "name": "bob",
        "age": 41,
        "joined": JOINED,
        "avatar": b"",
        "address": {"street": "2 Side St", "zipCode": "99999"},
        "pastAddresses": [],
        "tags": [],
        "role": "member",
        "id": "00000000-0000-0000-0000-000000000000",
    }
    assert ann["address"] == {"street": "1 Main St", "zipCode": "12345"}
    assert ann["avatar"] == b"\x00\xff"


async def test_validation_errors_reach_the_caller_naming_the_field(url: str) -> None:
    async with capnweb.connect(url) as api:
        results = await asyncio.gather(
            api.register({"name": "bob", "age": -1}),
            api.user("ann").move({"street": "x"}),
            api.register("bob"),
            return_exceptions=True,
        )
    assert all(isinstance(e, RpcTypeError) and isinstance(e, TypeError) for e in results)
    assert [str(e) for e in results] == [
        "DirectoryImpl.register() argument 'profile'.age: "
        "Input should be greater than or equal to 0",
        "UserImpl.move() argument 'to'.zipCode: Field required",
        "DirectoryImpl.register() argument 'profile' must be Profile, got str",
    ]


async def test_pipelined_field_access_through_generated_stubs(url: str, stubs: ModuleType) -> None:
    async with capnweb.connect(url, stubs.DirectoryStub) as api:
        profile = api.user("ann").profile
        results = await asyncio.gather(
            profile.name,
            profile.role,  # sent as "admin", validated back into the enum by pydantic
            profile.id,  # sent as a string, validated back into a UUID
            profile.joined,
            profile.past_addresses.map(lambda a: a.zip_code),
            api.everyone().map(lambda p: p.name),
            profile,
        )
    assert results[:6] == ["ann", Role.ADMIN, uuid.UUID(int=1), JOINED, [], ["ann"]]
    assert results[1] is Role.ADMIN
    assert results[6].address == Address(street="1 Main St", zip_code="12345")


async def test_a_model_field_holding_a_capability(
    server: capnweb.Server, stubs: ModuleType
) -> None:
    async with capnweb.connect(server.ws_url, stubs.DirectoryStub) as api:
        badge = await api.badge("b")
        assert isinstance(badge, Badge) and badge.label == "b"
        assert await badge.counter.increment(2) == 2
        assert await badge.counter.increment(3) == 5
        assert await api.badge("c").counter.increment(7) == 7  # pipelined through the field
        badge.counter.dispose()


async def test_a_typed_client_validates_results(stubs: ModuleType) -> None:
    """A server that breaks the contract fails at the call site, naming the field."""

    class Broken(RpcTarget):
        def register(self, profile: Any) -> Any:
            return {"name": "bob", "age": "old"}

    pair = SessionPair(Broken())
    api = stubs.DirectoryStub(pair.main)
    with pytest.raises(TypeError) as e:
        await api.register(BOB)
    assert str(e.value) == (
        "result.age: Input should be a valid integer, unable to parse string as an integer"
    )
    api.dispose()


async def test_in_process_calls_pass_the_model_itself(stubs: ModuleType) -> None:
    """A local stub hands the implementation the caller's model; pipelined reads on a model
    result see its wire object, as a remote peer would."""
    directory = DirectoryImpl()
    api = stubs.DirectoryStub(capnweb.RpcStub(directory))
    stored = await api.register(BOB)
    assert stored is BOB and directory.profiles["bob"] is BOB
    assert await api.user("bob").profile.past_addresses.map(lambda a: a.zip_code) == ["00001"]
    assert await api.user("bob").profile.role is Role.ADMIN
    assert await api.user("bob").profile["pastAddresses"][0]["zipCode"] == "00001"
    api.dispose()


# --------------------------------------------------------------------------------------------
# Without pydantic


def test_importing_capnweb_does_not_import_pydantic() -> None:
    code = "import sys, capnweb, capnweb.interface, capnweb.typed; print('pydantic' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
        cwd=ROOT,
        env=ENV,
    )
    assert out.stdout.strip() == "False"


def test_capnweb_works_where_pydantic_cannot_be_imported() -> None:
    code = textwrap.dedent(
        """
        import sys
        sys.modules["pydantic"] = sys.modules["pydantic_core"] = None  # import fails
        import asyncio
        from dataclasses import dataclass
        from typing import Protocol
        import capnweb
        from capnweb.interface import rpc_method
        from capnweb_codegen import generate

        @dataclass
        class P:
            x: int

        class Api(Protocol):
            @rpc_method
            async def echo(self, p: P) -> P: ...

        class Impl(capnweb.RpcTarget, Api):
            async def echo(self, p: P) -> P:
                return P(p.x + 1)

        async def main():
            a, b = capnweb.memory_pair()
            capnweb.Session(a, Impl())
            api = capnweb.Session(b).main
            print(await api.echo({"x": 1}))
            try:
                await api.echo({"x": "1"})
            except TypeError as e:
                print(e)

        asyncio.run(main())
        print(sorted(generate(["__main__"])))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        cwd=ROOT,
        env=ENV,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "{'x': 2}",
        "Impl.echo() argument 'p'.x must be int, got str",
        "['__main__.py']",
    ]


# --------------------------------------------------------------------------------------------
# The documentation


def test_the_documented_example_runs(tmp_path: Path) -> None:
    """docs/typed-stubs.md, "pydantic models": its three files, run as the reader would."""
    text = (ROOT / "docs" / "typed-stubs.md").read_text()
    section = text[text.index("## 9. pydantic models") : text.index("\n## 10.")]
    people, untyped, typed = re.findall(r"```python\n(.*?)```", section, re.DOTALL)
    console = re.findall(r"```console\n(.*?)```", section, re.DOTALL)[0]
    (tmp_path / "people.py").write_text(people)
    (tmp_path / "untyped.py").write_text(untyped)
    (tmp_path / "typed.py").write_text(typed)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}

    def run(*args: str) -> str:
        out = subprocess.run(
            [sys.executable, *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            cwd=tmp_path,
            env=env,
        )
        assert out.returncode == 0, out.stderr
        return out.stdout

    assert run("untyped.py") == console
    run("-m", "capnweb_codegen", "people", "--out", "generated")
    assert run("typed.py") == "True 36\n"
