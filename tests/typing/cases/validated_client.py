"""Right uses of checked results: ``connect(url, ApiStub, validate=True)`` and
``validated(ApiStub)`` keep every type of the generated stubs, for ``mypy --strict``."""

from __future__ import annotations

from typing import assert_type

import capnweb
from capnweb.typed import TypedPromise, validated
from examples.typed.api import Profile, Stats
from stubs.examples_typed_api import ApiStub, CounterStub, ProfilePromise, UserStub


async def connected(url: str) -> None:
    assert_type(capnweb.connect(url, ApiStub, validate=True), capnweb.Connection[ApiStub])
    assert_type(capnweb.connect(url, ApiStub, validate=False), capnweb.Connection[ApiStub])
    async with capnweb.connect(url, ApiStub, validate=True, headers={"x": "1"}) as api:
        assert_type(api, ApiStub)
        assert_type(api.user("ann").profile, ProfilePromise)
        assert_type(api.user("ann").profile.name, TypedPromise[str])
        assert_type(await api.user("ann").profile.name, str)
        assert_type(await api.user("ann").profile, Profile)
        assert_type(await api.stats(), Stats)
        assert_type(await api.make_counter(1), CounterStub)
        assert_type(await api.fibonacci(4).map(lambda n: api.square(n)), list[int])


async def per_class(stub: capnweb.RpcStub) -> None:
    checked = validated(ApiStub)
    assert_type(checked, type[ApiStub])
    api = checked(stub)
    assert_type(api, ApiStub)
    assert_type(await api.user("ann"), UserStub)
    assert_type(validated(UserStub), type[UserStub])
    assert_type(
        capnweb.reconnecting("ws://127.0.0.1:8080/rpc", checked), capnweb.Reconnecting[ApiStub]
    )
