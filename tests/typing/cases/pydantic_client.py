"""Right uses of the stubs generated for ``tests/pydantic_sample.py`` (pydantic models):
``mypy --strict`` accepts this module, and every ``assert_type`` holds, for awaited models,
pipelined fields (aliased on the wire, named as in Python), lists of models and ``map()``."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import assert_type

from pydantic_sample import Address, Badge, Profile, Role
from pydantic_sample_stubs import (
    AddressListPromise,
    DirectoryStub,
    OptionalAddressPromise,
    ProfileListPromise,
    ProfilePromise,
    RolePromise,
    StrListPromise,
    UUIDPromise,
)

import capnweb
from capnweb.typed import TypedPromise


async def models(api: DirectoryStub) -> None:
    profile = Profile(name="bob", age=41)
    assert_type(api.register(profile), ProfilePromise)
    assert_type(await api.register(profile), Profile)
    assert_type(await api.find("ann"), Profile | None)
    assert_type(api.everyone(), ProfileListPromise)
    assert_type(await api.everyone(), list[Profile])
    assert_type(await api.user("ann").move(Address(street="s", zip_code="z")), Profile)
    assert_type(await api.badge("b"), Badge)


async def pipelined(api: DirectoryStub) -> None:
    profile = api.user("ann").profile
    assert_type(profile, ProfilePromise)
    assert_type(profile.name, TypedPromise[str])
    assert_type(await profile.name, str)
    assert_type(await profile.age, int)
    assert_type(await profile.joined, datetime)
    assert_type(await profile.avatar, bytes)
    assert_type(profile.address, OptionalAddressPromise)
    assert_type(await profile.address, Address | None)
    assert_type(profile.past_addresses, AddressListPromise)
    assert_type(await profile.past_addresses, list[Address])
    assert_type(profile.tags, StrListPromise)
    assert_type(profile.role, RolePromise)
    assert_type(await profile.role, Role)
    assert_type(profile.id, UUIDPromise)
    assert_type(await profile.id, uuid.UUID)
    assert_type(await profile.past_addresses.map(lambda a: a.zip_code), list[str])
    assert_type(await api.everyone().map(lambda p: p.name), list[str])
    assert_type(await api.everyone().map(lambda p: p.address), list[Address | None])
    # a model result as an argument, still one round trip
    assert_type(await api.register(api.user("ann").profile), Profile)


async def capability_field(api: DirectoryStub) -> None:
    badge = await api.badge("b")
    assert_type(badge.counter, capnweb.RpcStub)
    assert_type(api.badge("b").counter, capnweb.RpcPromise[capnweb.RpcStub])


async def connect(url: str) -> None:
    async with capnweb.connect(url, DirectoryStub) as api:
        assert_type(await api.user("ann").profile.name, str)
