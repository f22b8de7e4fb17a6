"""The typed example's client: every call goes through the generated stubs, so mypy checks it and
an editor completes it.

Usage (from the repository root): ``python -m examples.typed.client [ws://HOST:PORT/rpc]``.
Without a URL it starts ``examples/typed/server.py`` in-process on a free port first.
"""

from __future__ import annotations

import asyncio
import sys

import capnweb
from examples.typed.server import serve
from stubs.examples_typed_api import ApiStub, UserStub


async def tour(url: str) -> None:
    """Calls, pipelining, capabilities, map() and a callback, printed as they go."""
    async with capnweb.connect(url, ApiStub) as api:  # api: ApiStub
        # One round trip: user() and the property read are pipelined.
        name: str = await api.user("ann").profile.name
        print("user name:", name)

        profile = await api.user("ann").set_bio("writes typed clients")
        print("profile:", profile)  # a Profile dataclass, built from the wire object

        # Promises as arguments: three dependent calls, one round trip.
        print("square(square(square(2))):", await api.square(api.square(api.square(2))))

        # A capability: a Counter stub, typed.
        counter = api.make_counter(10)
        print("counter:", await counter.increment(5), await counter.value)

        # map(): the function runs once, here, to record what to do for each element.
        squares = await api.fibonacci(8).map(lambda n: api.square(n))
        print("squared fibonacci:", squares)
        await api.user("bob")
        users: list[UserStub] = await api.user_names().map(lambda n: api.user(n))
        print("users:", [await u.profile.name for u in users])
        for user in users:
            user.dispose()

        # A callback: the server calls back into this process.
        async def triple(x: int) -> int:
            return 3 * x

        print("call_back(triple, 7):", await api.call_back(triple, 7))
        print("find('nobody'):", await api.find("nobody"))
        print("stats:", await api.stats())


async def main(argv: list[str]) -> None:
    if argv:
        await tour(argv[0])
        return
    async with await serve(0) as server:
        await tour(server.ws_url)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
