"""The batch pipelining example's server: the Protocol of ``examples/batch_pipelining/api.py``
over a few fixed users, plus a simulated network latency and a count of the POSTs answered.

Usage (from the repository root):
``python -m examples.batch_pipelining.server --port N [--delay-ms MS]``. On loopback a request
takes well under a millisecond, which would hide what pipelining saves; so every HTTP batch
POST of ``/rpc`` waits ``--delay-ms`` (default 50) before it is handled, as if it had crossed a
network. ``GET /stats`` answers ``{"posts": N}``, the number of batch POSTs answered so far.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable

from aiohttp import web

import capnweb
from capnweb import RpcTarget
from examples.batch_pipelining.api import Api, Notification, Profile, User

__all__ = ["ApiImpl", "main", "serve"]

PATH = "/rpc"
"""Where the RPC endpoint is served."""

TOKENS = {"ann-token": User(id=1, name="ann"), "bob-token": User(id=2, name="bob")}
"""The demo's users, by the token that authenticates each."""

PROFILES = {
    1: Profile(user_id=1, display_name="Ann Lee", bio="writes typed clients"),
    2: Profile(user_id=2, display_name="Bob Kim", bio="reads the wire format for fun"),
}

NOTIFICATIONS = {
    1: [
        Notification(id=12, text="bob replied to your post", unread=True),
        Notification(id=11, text="your export is ready", unread=True),
        Notification(id=10, text="welcome, ann", unread=False),
    ],
    2: [Notification(id=20, text="welcome, bob", unread=False)],
}


class ApiImpl(RpcTarget, Api):
    """The main capability: the same data for every session (one per HTTP batch)."""

    async def authenticate(self, token: str) -> User:
        user = TOKENS.get(token)
        if user is None:
            raise ValueError("unknown token")
        return user

    async def profile(self, user_id: int) -> Profile:
        if user_id not in PROFILES:
            raise ValueError(f"no user {user_id}")
        return PROFILES[user_id]

    async def notifications(self, user_id: int) -> list[Notification]:
        if user_id not in NOTIFICATIONS:
            raise ValueError(f"no user {user_id}")
        return NOTIFICATIONS[user_id]


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def serve(port: int = 0, delay: float = 0.05) -> capnweb.Server:
    """The example server on 127.0.0.1 (port 0: any free port): RPC on ``/rpc`` and
    ``GET /stats`` beside it, every batch POST delayed by ``delay`` seconds."""
    posts = 0

    @web.middleware
    async def latency(request: web.Request, handler: Handler) -> web.StreamResponse:
        # Every request of the app passes here; only the batch POSTs are delayed and counted.
        nonlocal posts
        if request.method != "POST" or request.path != PATH:
            return await handler(request)
        await asyncio.sleep(delay)  # the simulated network latency
        response = await handler(request)
        posts += 1
        print(f"answered POST {PATH} #{posts}", flush=True)
        return response

    async def stats(request: web.Request) -> web.Response:
        return web.json_response({"posts": posts})

    app = web.Application(middlewares=[latency])
    app.router.add_get("/stats", stats)
    return await capnweb.serve(ApiImpl, host="127.0.0.1", port=port, path=PATH, app=app)


async def main(port: int, delay_ms: float) -> None:
    """Serve until SIGTERM or SIGINT."""
    server = await serve(port, delay_ms / 1000)
    print(f"listening {server.port}", flush=True)
    await server.serve_until_signal()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8080, help="0: any free port (printed)")
    parser.add_argument(
        "--delay-ms", type=float, default=50.0, help="simulated latency of each batch POST"
    )
    args = parser.parse_args()
    asyncio.run(main(args.port, args.delay_ms))
