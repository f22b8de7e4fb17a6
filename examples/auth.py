"""Authentication in-band: a method checks a token and returns the capability it grants.

The server's main object can do one thing: ``login(token)``. What a peer may do after that is
whatever the returned object offers, and nothing else: the capability is the permission.
With pipelining, ``api.login(token).whoami()`` is still a single round trip.

Run: ``.venv/bin/python examples/auth.py``
"""

from __future__ import annotations

import asyncio
import hmac

import capnweb

TOKENS = {"s3cret-ann": "ann", "s3cret-bob": "bob"}  # in real life: your user store


class Account(capnweb.RpcTarget):
    """What a logged-in user may do."""

    def __init__(self, user: str) -> None:
        self._user = user  # names starting with "_" are never reachable by a peer

    def whoami(self) -> str:
        return self._user


class Gate(capnweb.RpcTarget):
    """The main capability of every session: nothing but a way in."""

    def login(self, token: str) -> Account:
        for known, user in TOKENS.items():
            if hmac.compare_digest(known, token):
                return Account(user)
        raise PermissionError("unknown token")


async def main() -> None:
    async with (
        capnweb.serve(Gate, port=0) as server,
        capnweb.connect(server.ws_url) as api,
    ):
        print("logged in as", await api.login("s3cret-ann").whoami())  # one round trip
        try:
            await api.login("guess").whoami()
        except capnweb.RpcError as e:  # the server's error, type name and message only
            print("refused:", e)


if __name__ == "__main__":
    asyncio.run(main())
