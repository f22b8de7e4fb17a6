"""The typed example's server: implementations of the Protocols of ``examples/typed/api.py``.

Usage: ``python -m examples.typed.server --port N`` (from the repository root), or
``capnweb serve examples.typed.server:make_api --port N``. Methods are
snake_case here; peers call them by their wire names (``makeCounter``, ``setBio``...), and
arguments are checked against the Protocols' annotations before any of this code runs.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from typing import Literal

from aiohttp import web

import capnweb
from capnweb import RpcTarget
from examples.typed.api import Api, Counter, Profile, Stats, User

__all__ = ["ApiImpl", "CounterImpl", "Directory", "UserImpl", "main", "make_api"]


class CounterImpl(RpcTarget, Counter):
    """A counter; lives as long as someone holds a stub to it."""

    def __init__(self, start: int = 0) -> None:
        self._value = start

    async def increment(self, amount: int = 1) -> int:
        self._value += amount
        return self._value

    @property
    def value(self) -> int:
        return self._value


class UserImpl(RpcTarget, User):
    """A user of the directory."""

    def __init__(self, name: str) -> None:
        self._profile = Profile(name=name, tags=["new"])
        self._visits = CounterImpl()

    @property
    def profile(self) -> Profile:
        return self._profile

    async def set_bio(self, bio: str) -> Profile:
        self._profile = dataclasses.replace(self._profile, bio=bio)
        return self._profile

    async def visits(self) -> Counter:
        return self._visits


class Directory:
    """State shared by every session of one server: the users, and counters made."""

    def __init__(self) -> None:
        self.users: dict[str, UserImpl] = {}
        self.counters = 0


class ApiImpl(RpcTarget, Api):
    """The main capability handed to each session."""

    def __init__(self, directory: Directory) -> None:
        self._directory = directory

    async def user(self, name: str) -> User:
        users = self._directory.users
        if name not in users:
            users[name] = UserImpl(name)
        return users[name]

    async def user_names(self, order: Literal["asc", "desc"] = "asc") -> list[str]:
        return sorted(self._directory.users, reverse=order == "desc")

    async def find(self, name: str) -> Profile | None:
        user = self._directory.users.get(name)
        return user.profile if user is not None else None

    async def square(self, x: int) -> int:
        return x * x

    async def fibonacci(self, n: int) -> list[int]:
        out, a, b = [], 0, 1
        for _ in range(n):
            out.append(a)
            a, b = b, a + b
        return out

    async def make_counter(self, start: int = 0) -> Counter:
        self._directory.counters += 1
        return CounterImpl(start)

    async def call_back(self, callback: Callable[[int], Awaitable[int]], x: int) -> int:
        return await callback(x) + 1

    async def stats(self) -> Stats:
        return {"users": len(self._directory.users), "counters": self._directory.counters}


SHARED = Directory()
"""The directory of the sessions made by :func:`make_api`."""


def make_api() -> ApiImpl:
    """A session's main capability, over the users of :data:`SHARED`: the factory for
    ``capnweb serve examples.typed.server:make_api``."""
    return ApiImpl(SHARED)


async def serve(port: int = 0) -> capnweb.Server:
    """A server for the typed example on 127.0.0.1 (port 0: any free port): RPC on ``/rpc``
    (WebSocket and HTTP batch), and a plain ``GET /health`` beside it on the same port."""
    directory = Directory()

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"ok": True, "users": len(directory.users)})

    app = web.Application()
    app.router.add_get("/health", health)
    return await capnweb.serve(lambda: ApiImpl(directory), host="127.0.0.1", port=port, app=app)


async def main(port: int) -> None:
    """Serve until SIGTERM or SIGINT."""
    server = await serve(port)
    print(f"listening on {server.ws_url}", flush=True)
    await server.serve_until_signal()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8080)
    asyncio.run(main(parser.parse_args().port))
