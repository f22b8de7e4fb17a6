"""The microservices example's client: talks to the gateway only, through the generated stubs,
and shows that the capability a token buys is the only authority there is.

Usage (from the repository root, the three services running):
``python -m examples.microservices.client ws://127.0.0.1:8080/rpc [--users URL]``.
With ``--users ws://127.0.0.1:8082/rpc`` it also tries what an attacker inside the network
could: handing the users service a forged auth session.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable

import capnweb
from capnweb import RpcError, RpcTarget
from examples.microservices.api import AuthSession
from stubs.examples_microservices_api import GatewayStub, UserDataStub, UsersStub

__all__ = ["ANN", "BOB", "ForgedSession", "main", "refused", "tour"]

ANN = "s3cret-ann"
"""Ann's token (the example's auth service knows it)."""

BOB = "s3cret-bob"
"""Bob's token."""


async def refused(attempt: Awaitable[object]) -> str:
    """Await an attempt that must fail; say how it failed (or that it did not)."""
    try:
        value = await attempt
    except RpcError as e:  # the remote error: its name and message, nothing else
        return f"refused ({e.name}: {e})"
    return f"NOT REFUSED: {value!r}"


class ForgedSession(RpcTarget, AuthSession):
    """An auth session made up by the client: it can only invent a ticket."""

    async def ticket(self) -> str:
        return "a ticket for bob, honest"


async def show(who: str, data: UserDataStub) -> None:
    """Print whose profile and notes ``data`` reaches."""
    profile = await data.profile()
    print(f"{who}: {profile.name} <{profile.email}>, notes {await data.notes()}")


async def tour(url: str, users_url: str | None = None) -> None:
    """Sign in as ann and as bob, read and write, then try to reach bob's data as ann."""
    async with capnweb.connect(url, GatewayStub) as api:
        # authenticate() returns a capability; nothing is awaited until the calls on it are.
        ann = api.authenticate(ANN)
        bob = api.authenticate(BOB)
        await show("ann", ann)
        await show("bob", bob)
        print("ann adds a note:", await ann.add_note("call bob back"))
        print("bob's notes are still:", await bob.notes())

        # A bad token: the auth service's AuthError, passed along by the users service and the
        # gateway, arrives under its own name.
        print("bad token:", await refused(api.authenticate("guess").profile()))

        # Reading bob's data with ann's capability. The typed stubs have no way to say it
        # (mypy rejects ann.profile("bob") and ann.open("bob")), so go around the types, by
        # wire name, as a hostile client would:
        print("reading bob's data with ann's capability:")
        print("  profile('bob') on ann's:", await refused(ann["profile"]("bob")))
        print("  open('bob') on ann's:", await refused(ann["open"]("bob")))
        link = api["_users"]["open"]("bob")  # the gateway's own link to the users service
        print("  the gateway's link to the users service:", await refused(link))
        print("  bob's name as his token:", await refused(api.authenticate("bob").profile()))
        if users_url is not None:
            async with capnweb.connect(users_url, UsersStub) as users:
                forged = users.open(ForgedSession()).profile()
                print("  a forged session, straight to the users service:", await refused(forged))


async def main(argv: list[str] | None = None) -> None:
    """Parse the command line and run :func:`tour`."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url", nargs="?", default="ws://127.0.0.1:8080/rpc", help="the gateway")
    parser.add_argument("--users", help="the users service, to try a forged session on it")
    args = parser.parse_args(argv)
    await tour(args.url, args.users)


if __name__ == "__main__":
    asyncio.run(main())
