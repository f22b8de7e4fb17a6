"""Results checked against the interface on the client (``connect(url, ApiStub, validate=True)``,
``capnweb.typed.validated``), with the generated stubs of ``examples/typed/api.py``.

A server that honours its contract gives the same results, in the same frames, with and
without checking. One that breaks it fails at the ``await`` with an ``RpcTypeError`` naming
the interface and the member, when checking is on; without it, behaviour is what it always
was (plain values pass unchecked, converted ones raise the converter's bare ``TypeError``).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from helpers import SessionPair

import capnweb
from capnweb import RpcTarget, RpcTypeError
from capnweb.typed import TypedStub, validated
from examples.streaming.server import StorageImpl, Store
from examples.typed.api import Counter, Profile, User
from examples.typed.server import ApiImpl, Directory
from stubs.examples_streaming_api import StorageStub
from stubs.examples_typed_api import ApiStub, CounterStub, UserPromise, UserStub

pytestmark = pytest.mark.timeout(20)

ROOT = Path(__file__).resolve().parent.parent


# -- a server that breaks its contract (the dispatcher checks arguments, never results)


class LyingCounter(RpcTarget, Counter):
    """``increment`` answers a str, ``value`` None, where ints are declared."""

    async def increment(self, amount: int = 1) -> Any:
        return str(amount)

    @property
    def value(self) -> Any:
        return None


class LyingUser(RpcTarget, User):
    """A profile whose name is an int, a ``set_bio`` result without its ``name`` field, and a
    plain object where the ``visits`` counter (a capability) is declared."""

    @property
    def profile(self) -> Any:
        return {"name": 7, "bio": "", "tags": ["x"]}

    async def set_bio(self, bio: str) -> Any:
        return {"bio": bio}

    async def visits(self) -> Any:
        return {"count": 1}


class LyingApi(ApiImpl):
    """The typed example's service with some members breaking the interface."""

    async def user(self, name: str) -> Any:
        if name == "nobody":
            return None
        return LyingUser() if name == "liar" else await super().user(name)

    async def square(self, x: int) -> Any:
        return None  # None where int is declared

    async def user_names(self, order: Any = "asc") -> Any:
        return ["ann", 2]

    async def find(self, name: str) -> Any:
        return "nobody"  # neither a Profile nor None

    async def make_counter(self, start: int = 0) -> Any:
        return 5 if start < 0 else LyingCounter()

    async def stats(self) -> Any:
        return {"users": "1"}  # a str, and "counters" missing


Call = Callable[[ApiStub], Any]

VIOLATIONS: list[tuple[str, Call, str, Any]] = [
    # (case, call, the error with checking on, the outcome without: a value or a TypeError text)
    (
        "None where int is declared",
        lambda api: api.square(3),
        "Api.square() result must be int, got NoneType",
        None,
    ),
    (
        "wrong element type",
        lambda api: api.user_names(),
        "Api.user_names() result[1] must be str, got int",
        TypeError("result[1] must be str, got int"),
    ),
    (
        "missing TypedDict key",
        lambda api: api.stats(),
        "Api.stats() result (Stats) is missing key(s) ['counters']",
        TypeError("result (Stats) is missing key(s) ['counters']"),
    ),
    (
        "pipelined TypedDict field of the wrong type",
        lambda api: api.stats().users,
        "Api.stats() result['users'] must be int, got str",
        "1",
    ),
    (
        "neither the declared data type nor None",
        lambda api: api.find("ann"),
        "Api.find() result must be examples.typed.api.Profile | None, got str",
        TypeError("result must be examples.typed.api.Profile | None, got str"),
    ),
    (
        "a value where a capability is declared",
        lambda api: api.make_counter(-1),
        "Api.make_counter() result must be a capability (CounterStub), got int",
        TypeError("result must be a capability (CounterStub), got int"),
    ),
    (
        "None where a capability is declared",
        lambda api: api.user("nobody"),
        "Api.user() result must be a capability (UserStub), got NoneType",
        TypeError("result must be a capability (UserStub), got NoneType"),
    ),
    (
        "dataclass field of the wrong type",
        lambda api: api.user("liar").profile,
        "User.profile.name must be str, got int",
        TypeError("result.name must be str, got int"),
    ),
    (
        "pipelined dataclass field of the wrong type",
        lambda api: api.user("liar").profile.name,
        "User.profile.name must be str, got int",
        7,
    ),
    (
        "missing dataclass field",
        lambda api: api.user("liar").set_bio("hi"),
        "User.set_bio() result (Profile) is missing field 'name'",
        TypeError("result (Profile) is missing field 'name'"),
    ),
    (
        "an object where a capability is declared, pipelined",
        lambda api: api.user("liar").visits(),
        "User.visits() result must be a capability (CounterStub), got dict",
        TypeError("result must be a capability (CounterStub), got dict"),
    ),
    (
        "a method of a returned capability",
        lambda api: api.make_counter(1).increment(2),
        "Counter.increment() result must be int, got str",
        "2",
    ),
    (
        "a property of a returned capability",
        lambda api: api.make_counter(1).value,
        "Counter.value must be int, got NoneType",
        None,
    ),
    (
        "map() over a list, each element checked",
        lambda api: api.fibonacci(3).map(lambda n: api.square(n)),
        "Api.square() result[0] must be int, got NoneType",
        [None, None, None],
    ),
]


async def outcome(awaitable: Any) -> Any:
    """What awaiting gives: the value, or the error's (exact type, message). The error itself
    is not kept: its traceback would keep the promise and its references alive."""
    try:
        return await awaitable
    except Exception as e:
        return type(e), str(e)


@pytest.mark.parametrize(("case", "call", "error", "unchecked"), VIOLATIONS)
async def test_a_broken_contract_fails_at_the_await_only_with_validation(
    case: str, call: Call, error: str, unchecked: Any
) -> None:
    async with SessionPair(LyingApi(Directory())) as pair:
        checked = validated(ApiStub)(pair.main)
        promise = call(checked)  # making the call raises nothing: the await does
        assert await outcome(promise) == (RpcTypeError, error)
        del promise  # (a property promise owns nothing: its root goes with it)
        assert await checked.fibonacci(4) == [0, 1, 1, 2]  # the session goes on

        plain = ApiStub(pair.main)
        if isinstance(unchecked, TypeError):
            kind, message = await outcome(call(plain))  # the converter's own error
            assert issubclass(kind, TypeError) and not issubclass(kind, RpcTypeError)
            assert message == str(unchecked)
        else:
            assert await call(plain) == unchecked
        checked.dispose()
        plain.dispose()
        await pair.assert_clean(collect=True)


async def test_an_awaited_capability_checks_its_own_results() -> None:
    async with SessionPair(LyingApi(Directory())) as pair:
        api = validated(ApiStub)(pair.main)
        counter = await api.make_counter(1)
        assert isinstance(counter, CounterStub)
        assert await outcome(counter.increment()) == (
            RpcTypeError,
            "Counter.increment() result must be int, got str",
        )
        assert await outcome(counter.value) == (
            RpcTypeError,
            "Counter.value must be int, got NoneType",
        )
        user = await api.user("liar")
        assert await outcome(user.profile) == (
            RpcTypeError,
            "User.profile.name must be str, got int",
        )
        # the same references seen through the plain generated classes are not checked
        assert await CounterStub(counter).increment(3) == "3"
        for stub in (counter, user, api):
            stub.dispose()
        await pair.assert_clean(collect=True)


# -- a server that honours its contract


async def _honest_calls(api: ApiStub) -> list[Any]:
    results: list[Any] = [
        await api.square(7),
        await api.user("ann").profile.name,
        await api.user("ann").profile,
        await api.user("ann").profile.tags,
        await api.user("ann").set_bio("hello"),
        await api.user_names("desc"),
        await api.find("ann"),
        await api.find("bob"),
        await api.fibonacci(6),
        await api.fibonacci(5).map(lambda n: api.square(n)),
        await api.user_names().map(lambda n: api.user(n).profile.name),
        await api.stats(),
        await api.stats().users,
        await api.make_counter(api.square(2)).increment(api.square(3)),
        await api.user("ann").visits().value,
        await api.call_back(_double, 5),
    ]
    counter = await api.make_counter(10)
    user = await api.user("ann")
    users = await api.user_names().map(lambda n: api.user(n))
    results += [
        type(counter).__name__,
        await counter.increment(),
        await counter.value,
        await user.profile.bio,
        [type(u).__name__ for u in users],
    ]
    for stub in (counter, user, *users):
        stub.dispose()
    return results


async def _double(x: int) -> int:
    return x * 2


async def test_an_honest_server_gives_the_same_results_and_frames_either_way() -> None:
    outcomes = []
    for check in (False, True):
        async with SessionPair(ApiImpl(Directory())) as pair:
            stub_class = validated(ApiStub) if check else ApiStub
            api = stub_class(pair.main)
            results = await _honest_calls(api)
            api.dispose()
            await pair.assert_clean(collect=True)
            outcomes.append((results, pair.client_frames()))
    (plain, plain_frames), (checked, checked_frames) = outcomes
    assert checked == plain
    assert checked[:3] == [49, "ann", Profile("ann", "", ["new"])]
    assert checked[-5] == "CounterStub" and checked[-1] == ["UserStub"]
    assert checked_frames == plain_frames  # checking sends nothing more


async def test_checking_spreads_to_promises_and_capabilities_it_hands_out() -> None:
    async with SessionPair(ApiImpl(Directory())) as pair:
        api = validated(ApiStub)(pair.main)
        assert isinstance(api, ApiStub) and type(api) is not ApiStub
        promise = api.user("ann")
        assert isinstance(promise, UserPromise) and type(promise) is not UserPromise
        user = await promise
        assert isinstance(user, UserStub) and type(user) is validated(UserStub)
        dup = user.dup()
        assert type(dup) is validated(UserStub)
        mapped = await api.user_names().map(lambda n: api.user(n))
        assert [type(u) for u in mapped] == [validated(UserStub)]
        plain = ApiStub(pair.main)
        plain_promise = plain.user("ann")
        assert type(plain_promise) is UserPromise  # the generated classes are untouched
        plain_user = await plain_promise
        assert type(plain_user) is UserStub
        for stub in (api, promise, user, dup, *mapped, plain, plain_promise, plain_user):
            stub.dispose()
        await pair.assert_clean(collect=True)


class LyingStorage(StorageImpl):
    """``tail`` streams an int among its lines (``AsyncIterator[str]`` is declared), and keeps
    going until it is stopped."""

    def __init__(self) -> None:
        super().__init__(Store())
        self.stopped = asyncio.Event()

    async def tail(self, log: str) -> AsyncIterator[Any]:
        try:
            yield "one"
            while True:
                yield 2
        finally:
            self.stopped.set()


async def test_stream_chunks_are_checked_as_they_are_read() -> None:
    impl = LyingStorage()
    async with SessionPair(impl) as pair:
        plain = StorageStub(pair.main)
        lines: Any = await plain.tail("x")
        assert [await anext(lines), await anext(lines)] == ["one", 2]  # unchecked: it passes
        del lines  # dropped unread: cancelled
        await asyncio.wait_for(impl.stopped.wait(), 5)
        plain.dispose()
        await pair.assert_clean(collect=True)
    impl = LyingStorage()
    async with SessionPair(impl) as pair:
        api = validated(StorageStub)(pair.main)
        lines = await api.tail("x")  # the stream arrives: its chunks are not there yet
        got: list[str] = []
        with pytest.raises(RpcTypeError) as info:
            async for line in lines:
                got.append(line)
        assert str(info.value) == "Storage.tail() result chunk 1 must be str, got int"
        assert got == ["one"]
        await asyncio.wait_for(impl.stopped.wait(), 5)  # the server's generator was stopped
        del lines, info
        await api.upload("f", _chunks(b"ab", b"c"))
        assert [c async for c in await api.download("f", 2)] == [b"ab", b"c"]  # honest: pass
        api.dispose()
        await pair.assert_clean(collect=True)


async def _chunks(*items: bytes) -> AsyncIterator[bytes]:
    for item in items:
        yield item


def test_validated_is_one_class_per_stub_class() -> None:
    assert validated(ApiStub) is validated(ApiStub)
    assert validated(validated(ApiStub)) is validated(ApiStub)
    assert validated(ApiStub).__name__ == "ApiStub"
    assert issubclass(validated(ApiStub), ApiStub)


def test_validated_refuses_what_names_no_interface() -> None:
    class Handwritten(TypedStub):
        __slots__ = ()

    class Moved(TypedStub):
        __slots__ = ()
        _interface = "no_such_module_here:Api"

    with pytest.raises(TypeError, match="names its interface"):
        validated(Handwritten)
    with pytest.raises(TypeError, match="names its interface"):
        validated(capnweb.RpcStub)
    with pytest.raises(TypeError, match="cannot load its interface 'no_such_module_here:Api'"):
        validated(Moved)
    with pytest.raises(TypeError, match="not the promise class UserPromise"):
        validated(UserPromise)
    with pytest.raises(TypeError, match="names its interface"):
        capnweb.connect("ws://127.0.0.1:1/rpc", capnweb.RpcStub, validate=True)


# -- over real transports


@pytest.fixture
async def lying_server() -> Any:
    async with capnweb.serve(lambda: LyingApi(Directory()), host="127.0.0.1", port=0) as server:
        yield server


async def test_over_websocket(lying_server: capnweb.Server) -> None:
    async with capnweb.connect(lying_server.ws_url, ApiStub, validate=True) as api:
        assert type(api) is validated(ApiStub)
        with pytest.raises(RpcTypeError, match=r"^User\.profile\.name must be str, got int$"):
            await api.user("liar").profile.name
        with pytest.raises(RpcTypeError, match=r"^Api\.stats\(\) result \(Stats\) is missing"):
            await api.stats()
        assert await api.user("ann").profile.name == "ann"
    async with capnweb.connect(lying_server.ws_url, ApiStub) as api:
        assert type(api) is ApiStub
        assert await api.user("liar").profile.name == 7


async def test_over_http_batch(lying_server: capnweb.Server) -> None:
    async with capnweb.connect(lying_server.url, ApiStub, validate=True) as api:
        name = api.user("liar").profile.name  # every call of the batch before any await
        square = api.square(2)
        good = api.user("ann").profile.name
        results = await asyncio.gather(name, square, good, return_exceptions=True)
    assert [type(r) for r in results] == [RpcTypeError, RpcTypeError, str]
    assert str(results[0]) == "User.profile.name must be str, got int"
    assert str(results[1]) == "Api.square() result must be int, got NoneType"
    assert results[2] == "ann"
    async with capnweb.connect(lying_server.url, ApiStub) as api:
        name, square = api.user("liar").profile.name, api.square(2)
        assert await asyncio.gather(name, square) == [7, None]


# -- the documentation's snippet


@pytest.mark.timeout(60)
def test_the_snippet_in_docs_typed_stubs_runs_as_shown(tmp_path: Path) -> None:
    doc = (ROOT / "docs" / "typed-stubs.md").read_text()
    section = doc.split("\n## 8. Validated results\n", 1)[1]
    snippet = section.split("```python\n", 1)[1].split("```", 1)[0]
    script = tmp_path / "validated.py"
    script.write_text(snippet)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=50,
        cwd=ROOT,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["'9'", "ann", "Api.square() result must be int, got str"]
