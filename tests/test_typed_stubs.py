"""Generated typed stubs at run time (stubs/examples_typed_api.py against the typed example
server): wire names, conversion of awaited values, typed map(), and round trips."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest
from helpers import SessionPair

from capnweb import RpcStub, RpcTypeError
from capnweb.typed import TypedPromise
from examples.typed.api import Profile
from examples.typed.server import ApiImpl, Directory
from stubs.examples_typed_api import (
    ApiStub,
    CounterStub,
    ProfilePromise,
    UserPromise,
    UserStub,
)

pytestmark = pytest.mark.timeout(10)


def typed(pair: SessionPair) -> ApiStub:
    """The pair's main stub seen through the generated stub class (a new reference)."""
    return ApiStub(pair.main)


def round_trip(pair: SessionPair, mark: int) -> tuple[list[Any], list[Any]]:
    """The frames after ``mark`` as (client frames, server frames), releases left out, after
    checking they form exactly one round trip: the client sends, then the server answers."""
    frames = [(side, f) for side, f in pair.log[mark:] if f[0] != "release"]
    turns = [side for side, _ in itertools.groupby(frames, key=lambda sf: sf[0])]
    assert turns == ["client", "server"], frames
    return [f for s, f in frames if s == "client"], [f for s, f in frames if s == "server"]


async def test_pipelined_field_through_a_returned_capability_is_one_round_trip() -> None:
    async with SessionPair(ApiImpl(Directory())) as pair:
        api = typed(pair)
        await pair.settle()
        mark = len(pair.log)
        assert await api.user("ann").profile.name == "ann"
        await pair.settle()
        client, server = round_trip(pair, mark)
        assert [f[0] for f in client] == ["push", "push", "pull"]
        pulled = client[-1][1]
        assert server == [["resolve", pulled, "ann"]]  # no intermediate result was awaited
        api.dispose()
        await pair.assert_clean(collect=True)


async def test_three_dependent_calls_are_one_round_trip() -> None:
    async with SessionPair(ApiImpl(Directory())) as pair:
        api = typed(pair)
        await pair.settle()
        mark = len(pair.log)
        assert await api.square(api.square(api.square(2))) == 256
        await pair.settle()
        client, server = round_trip(pair, mark)
        assert [f[0] for f in client] == ["push", "push", "push", "pull"]
        assert len(server) == 1 and server[0][0] == "resolve"

        mark = len(pair.log)
        assert await api.user("bob").visits().increment(3) == 3  # capability -> capability -> call
        await pair.settle()
        client, server = round_trip(pair, mark)
        assert [f[0] for f in client] == ["push", "push", "push", "pull"]
        assert [f[0] for f in server] == ["resolve"]
        api.dispose()
        await pair.assert_clean(collect=True)


async def test_wire_names_are_sent_for_snake_case_methods() -> None:
    async with SessionPair(ApiImpl(Directory())) as pair:
        api = typed(pair)
        counter = api.make_counter(5)
        assert await counter.increment() == 6
        pushes = [f for side, f in pair.log if side == "client" and f[0] == "push"]
        assert pushes[0][1][2] == ["makeCounter"]
        assert await api.user("ann").set_bio("hi") == Profile("ann", "hi", ["new"])
        assert any(f[1][2] == ["setBio"] for side, f in pair.log if f[0] == "push")


async def test_awaited_values_are_converted_to_the_declared_types() -> None:
    async with SessionPair(ApiImpl(Directory())) as pair:
        api = typed(pair)
        user = await api.user("ann")
        assert type(user) is UserStub
        profile = await user.profile
        assert profile == Profile(name="ann", bio="", tags=["new"])
        assert await api.find("ann") == profile
        assert await api.find("nobody") is None
        assert await api.stats() == {"users": 1, "counters": 0}
        counter = await api.make_counter(1)
        assert type(counter) is CounterStub
        assert type(counter.dup()) is CounterStub
        assert await counter.value == 1
        for stub in (user, counter):
            stub.dispose()
        api.dispose()
        await pair.assert_clean(collect=True)


async def test_typed_map_over_a_list() -> None:
    async with SessionPair(ApiImpl(Directory())) as pair:
        api = typed(pair)
        assert await api.fibonacci(6).map(lambda x: api.square(x)) == [0, 1, 1, 4, 9, 25]
        await asyncio.gather(api.user("ann"), api.user("bob"))
        placeholders: list[Any] = []

        def profile_of(name: TypedPromise[str]) -> ProfilePromise:
            placeholders.append(name)
            return api.user(name).profile

        assert await api.user_names().map(profile_of) == [
            Profile("ann", "", ["new"]),
            Profile("bob", "", ["new"]),
        ]
        assert all(isinstance(p, TypedPromise) for p in placeholders)
        users = await api.user_names("desc").map(lambda n: api.user(n))
        assert [type(u) for u in users] == [UserStub, UserStub]
        assert [await u.profile.name for u in users] == ["bob", "ann"]
        for u in users:
            u.dispose()
        names = await api.user_names().map(lambda n: {"n": n, "len": api.square(2)})
        assert names == [{"n": "ann", "len": 4}, {"n": "bob", "len": 4}]
        api.dispose()
        await pair.assert_clean(collect=True)


async def test_callbacks_and_promises_as_arguments() -> None:
    async def triple(x: int) -> int:
        return 3 * x

    async with SessionPair(ApiImpl(Directory())) as pair:
        api = typed(pair)
        assert await api.call_back(triple, 4) == 13
        assert await api.make_counter(api.square(3)).increment(api.square(2)) == 13
        assert await api.user(api.user("ann").profile.name).profile.tags == ["new"]


async def test_server_side_checks_reach_the_typed_client_as_type_errors() -> None:
    async with SessionPair(ApiImpl(Directory())) as pair:
        api = typed(pair)
        bad: Any = "x"
        with pytest.raises(RpcTypeError, match=r"ApiImpl\.square\(\) argument 'x' must be int"):
            await api.square(bad)
        with pytest.raises(RpcTypeError, match="must be one of"):
            await api.user_names(bad)
        assert await api.square(3) == 9


async def test_a_result_of_the_wrong_shape_fails_on_await() -> None:
    class LyingApi(ApiImpl):
        async def find(self, name: str) -> Any:
            return {"nickname": name}

    async with SessionPair(LyingApi(Directory())) as pair:
        api = typed(pair)
        with pytest.raises(TypeError, match=r"result must be .*Profile \| None, got dict"):
            await api.find("ann")


async def test_dynamic_access_still_works_on_typed_stubs() -> None:
    async with SessionPair(ApiImpl(Directory())) as pair:
        api = typed(pair)
        assert await api["square"](5) == 25
        dynamic: Any = api
        assert await dynamic.makeCounter(2).value == 2
        assert isinstance(api, RpcStub)
        assert isinstance(api.user("ann"), UserPromise)


async def test_the_example_client_runs(capsys: pytest.CaptureFixture[str]) -> None:
    from examples.typed.client import main

    await main([])
    printed = capsys.readouterr().out
    assert "user name: ann" in printed
    assert "users: ['ann', 'bob']" in printed


async def test_the_example_server_answers_health_beside_rpc() -> None:
    import aiohttp

    import capnweb
    from examples.typed.server import serve

    async with await serve(0) as server:
        async with capnweb.connect(server.ws_url, ApiStub) as api:
            assert await asyncio.wait_for(api.square(9), 5) == 81
        health = server.url.replace("/rpc", "/health")
        async with aiohttp.ClientSession() as http, http.get(health) as r:
            assert r.status == 200 and await r.json() == {"ok": True, "users": 0}
