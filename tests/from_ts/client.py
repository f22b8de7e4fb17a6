"""A typed Python client of the TypeScript server in ``server.ts``.

It uses the stubs ``python -m capnweb_codegen --from-ts server.ts --interface Api --out tsapi``
generates (``tsapi/server.py``, ``tsapi/server_stubs.py``): ``tests/test_from_ts.py`` checks it
with ``mypy --strict`` (every ``assert_type`` must hold) and runs it against the server on Node.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any, Literal, assert_type

from tsapi.server import ApiStatsResult, PageProfile, Profile
from tsapi.server_stubs import ApiStub, ProfilePromise, UserPromise, UsersPromise, UserStub

import capnweb
from capnweb.typed import TypedPromise


async def run(url: str) -> dict[str, Any]:
    """Calls what the server offers through the typed stubs; returns what came back."""
    out: dict[str, Any] = {}
    async with capnweb.connect(url, ApiStub) as api:
        # Pipelined through a property, a method and a property: one round trip.
        assert_type(api.users, UsersPromise)
        assert_type(api.users.get(1), UserPromise)
        assert_type(api.users.get(1).profile, ProfilePromise)
        assert_type(api.users.get(1).name, TypedPromise[str])
        out["name"] = assert_type(await api.users.get(1).name, str)
        out["tags"] = assert_type(await api.users.get(1).profile.tags, list[str])
        out["joined"] = assert_type(await api.users.get(1).profile.joined, datetime)
        out["karma"] = assert_type(await api.users.get(1).profile.karma, capnweb.BigInt)
        out["avatar"] = assert_type(await api.users.get(1).profile.avatar, bytes | None)
        role = await api.users.get(2).profile.role
        out["role"] = assert_type(role, Literal["admin", "member"])
        out["bio"] = assert_type(await api.users.get(2).profile.bio, str | capnweb.UndefinedType)

        profile = assert_type(await api.users.get(1).set_bio("likes types"), Profile)
        out["profile"] = profile
        out["bio_removed"] = "bio" in await api.users.get(1).set_bio(None)

        out["greet"] = assert_type(await api.users.get(1).greet(), str)
        out["greet_hi"] = await api.users.get(2).greet("Hi")
        out["seat"] = assert_type(await api.users.get(2).seat(), tuple[float, float])
        out["self"] = await api.users.get(2).self().self().name
        out["added"] = assert_type(await api.users.add("cy", "member").profile.id, float)
        out["found"] = assert_type(await api.users.find("bob"), Profile | None)
        out["not_found"] = await api.users.find("nobody")

        page = assert_type(await api.users.list("admin"), PageProfile)
        out["admins"] = [p["name"] for p in page["items"]]
        names = await api.users.list().items.map(lambda p: p.name)
        out["names"] = assert_type(names, list[str])

        user = assert_type(await api.user_stub(2), UserStub)
        with user:
            out["stub"] = await user.name

        out["version"] = assert_type(await api.version(), str)
        out["add"] = assert_type(await api.add(2, api.add(1, 0.5)), float)
        out["double"] = assert_type(await api.double(capnweb.BigInt(21)), capnweb.BigInt)
        out["reverse"] = assert_type(await api.reverse(b"abc"), bytes)
        start = datetime(2024, 1, 1, tzinfo=UTC)
        out["next_day"] = assert_type(await api.next_day(start), datetime)
        out["stats"] = assert_type(await api.stats(), ApiStatsResult)
        out["motto"] = assert_type(await api.lookup("motto"), str | capnweb.UndefinedType)
        out["unknown"] = await api.lookup("nothing")
        headers = assert_type(await api.headers(), capnweb.Headers)
        out["content_type"] = headers.get("content-type")

        # Streams both ways: a ReadableStream<string> result, a ReadableStream<string>
        # parameter (any async iterable of str), a WritableStream<number> parameter.
        tail = assert_type(await api.tail(), AsyncIterator[str])
        out["tail"] = [line async for line in tail]
        out["count_lines"] = assert_type(await api.count_lines(lines("a", "b", "c")), float)
        sink = Numbers()
        await api.countdown(3, sink)
        out["countdown"] = sink.received

        events: list[tuple[str, float]] = []

        async def listener(event: str, user_id: float) -> None:
            events.append((event, user_id))

        out["notified"] = assert_type(await api.notify(listener), float)
        out["events"] = events

        try:
            await api.users.get(99).name
        except capnweb.RpcRangeError as e:
            out["error"] = e.message
    return out


async def lines(*items: str) -> AsyncIterator[str]:
    """``items``, sent as a stream."""
    for item in items:
        yield item


class Numbers(capnweb.WritableStream[float]):
    """What the server writes into it, in order."""

    def __init__(self) -> None:
        self.received: list[float] = []

    async def write(self, chunk: float) -> None:
        self.received.append(chunk)
