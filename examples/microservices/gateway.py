"""The gateway: the one public service. It authenticates in-band and hands the client the users
service's capability for that user, passing capabilities from one service to another.

Usage (from the repository root): ``python -m examples.microservices.gateway --port 8080
--auth ws://127.0.0.1:8081/rpc --users ws://127.0.0.1:8082/rpc``.

The gateway keeps no session state and checks nothing per call: what a client holds after
``authenticate`` is the users service's ``UserData`` of that user, reached through the gateway,
and the client can call nothing else on it.
"""

from __future__ import annotations

import argparse
import asyncio

from capnweb import Reconnecting, RpcTarget
from examples.microservices.api import Gateway, UserData
from examples.microservices.service import connect_service, reach, run
from stubs.examples_microservices_api import AuthStub, UsersStub

__all__ = ["GatewayImpl", "main"]


class GatewayImpl(RpcTarget, Gateway):
    """The main capability of each client session: nothing but a way in."""

    def __init__(self, auth: Reconnecting[AuthStub], users: Reconnecting[UsersStub]) -> None:
        self._auth = auth
        self._users = users

    async def authenticate(self, token: str) -> UserData:
        auth = await reach(self._auth, "auth")
        users = await reach(self._users, "users")
        # Both calls leave at once: the users service gets the auth service's answer as a
        # promise, and waits for it. A bad token's AuthError comes back through both.
        session = auth.login(token)
        # The users service's stub is returned as it is: the client's calls on it go through
        # this process to the users service, and reach that user's data only.
        return await users.open(session)


async def main(port: int, auth_url: str, users_url: str) -> None:
    """Serve the gateway until SIGTERM or SIGINT."""
    async with (
        connect_service(auth_url, AuthStub) as auth,
        connect_service(users_url, UsersStub) as users,
    ):
        await run(lambda: GatewayImpl(auth, users), port)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--auth", default="ws://127.0.0.1:8081/rpc", help="the auth service")
    parser.add_argument("--users", default="ws://127.0.0.1:8082/rpc", help="the users service")
    args = parser.parse_args()
    asyncio.run(main(args.port, args.auth, args.users))
