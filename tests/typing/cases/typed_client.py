"""Right uses of the generated stubs (stubs/examples_typed_api.py): ``mypy --strict`` accepts
this module, and every ``assert_type`` holds, for awaited results, pipelined calls and fields,
promises passed as arguments, ``map()``, callbacks and ``capnweb.connect``."""

from __future__ import annotations

from typing import Any, assert_type

import capnweb
import stubs.examples_interop_contract as contract_stubs
from capnweb.typed import TypedPromise
from examples.interop.contract import CounterBatch
from examples.typed.api import Profile, Stats
from stubs.examples_typed_api import (
    ApiStub,
    CounterPromise,
    CounterStub,
    IntListPromise,
    ProfilePromise,
    StrListPromise,
    UserPromise,
    UserStub,
)


async def awaited(api: ApiStub) -> None:
    assert_type(await api.square(3), int)
    assert_type(await api.user("ann"), UserStub)
    assert_type(await api.make_counter(), CounterStub)
    assert_type(await api.find("ann"), Profile | None)
    assert_type(await api.fibonacci(5), list[int])
    assert_type(await api.user_names("desc"), list[str])
    assert_type(await api.stats(), Stats)


async def pipelined(api: ApiStub) -> None:
    assert_type(api.user("ann"), UserPromise)
    assert_type(api.user("ann").profile, ProfilePromise)
    assert_type(api.user("ann").profile.name, TypedPromise[str])
    assert_type(api.user("ann").profile.tags, StrListPromise)
    assert_type(api.make_counter(1), CounterPromise)
    assert_type(api.fibonacci(3), IntListPromise)
    assert_type(await api.user("ann").profile, Profile)
    assert_type(await api.user("ann").profile.name, str)
    assert_type(await api.user("ann").profile.tags, list[str])
    assert_type(await api.user("ann").visits().increment(2), int)
    assert_type(await api.make_counter(1).value, int)
    # promises as arguments: still one round trip, still typed
    assert_type(await api.square(api.square(api.square(2))), int)
    assert_type(await api.user(api.user("ann").profile.name).set_bio("hi"), Profile)
    assert_type(await api.make_counter(api.square(2)).increment(api.square(3)), int)


async def stub_lifetime(api: ApiStub) -> None:
    user = await api.user("ann")
    assert_type(user.dup(), UserStub)
    with user:
        assert_type(await user.profile.bio, str)


async def mapped(api: ApiStub) -> None:
    assert_type(await api.fibonacci(5).map(lambda x: api.square(x)), list[int])
    assert_type(await api.user_names().map(lambda n: api.user(n)), list[UserStub])
    assert_type(await api.user_names().map(lambda n: api.user(n).profile), list[Profile])
    assert_type(await api.user_names().map(lambda n: api.user(n).profile.name), list[str])
    assert_type(
        await api.user_names().map(lambda n: {"name": n, "bio": api.user(n).profile.bio}),
        list[Any],
    )


async def callbacks(api: ApiStub) -> None:
    async def triple(x: int) -> int:
        return 3 * x

    assert_type(await api.call_back(triple, 2), int)


async def connected(url: str) -> None:
    async with capnweb.connect(url, ApiStub) as api:
        assert_type(api, ApiStub)
        assert_type(await api.user("ann").profile.name, str)
    async with capnweb.connect(url) as dynamic:  # the untyped stub, for quick scripts
        assert_type(dynamic, capnweb.RpcStub)
        assert_type(await dynamic.anything(1), Any)


async def interop(target: contract_stubs.TestTargetStub) -> None:
    assert_type(await target.square(1.5), float)
    assert_type(await target.make_counters([1, 2]), CounterBatch)
    assert_type(await target.make_counters([1, 2]).count, int)
    assert_type(
        await target.make_counters([1, 2]).counters.map(lambda c: c.increment(1)), list[float]
    )
    assert_type(await target.increment_counter(target.make_counter(4)), float)
    assert_type(await target.echo({"any": ["value"]}), Any)
