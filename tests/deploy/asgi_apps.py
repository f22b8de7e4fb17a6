"""ASGI applications serving the interop TestTarget, as users deploy them: the endpoint alone,
inside Starlette and inside FastAPI (each beside a ``/health`` route and a ``/sessions`` route
that tells how many RPC sessions are live).

Run with ``uvicorn asgi_apps:<name>`` or ``hypercorn asgi_apps:<name>`` from this folder, with
the repository root on ``PYTHONPATH`` (``web_app``, an aiohttp application, with gunicorn).
"""

from __future__ import annotations

import os

from aiohttp import web
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

import capnweb
from examples.interop.server import TestTargetImpl

ORIGINS = os.environ.get("CAPNWEB_TEST_CORS", "")

rpc = capnweb.AsgiApp(TestTargetImpl, cors=ORIGINS.split(",") if ORIGINS else None)

bare = capnweb.AsgiApp(TestTargetImpl, path="/rpc")


async def health(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


async def sessions(request: Request) -> PlainTextResponse:
    return PlainTextResponse(str(rpc.live_sessions))


starlette = Starlette(
    routes=[Route("/health", health), Route("/sessions", sessions), *rpc.routes("/rpc")]
)

fastapi = FastAPI()
fastapi.router.routes.extend(rpc.routes("/rpc"))


@fastapi.get("/health", response_class=PlainTextResponse)
def fastapi_health() -> str:
    return "ok"


@fastapi.get("/sessions", response_class=PlainTextResponse)
def fastapi_sessions() -> str:
    return str(rpc.live_sessions)


class Counter(capnweb.RpcTarget):
    def __init__(self, value: int) -> None:
        self._value = value

    def increment(self, amount: int = 1) -> int:
        self._value += amount
        return self._value

    @property
    def value(self) -> int:
        return self._value


class Worker(capnweb.RpcTarget):
    """A service that tells which process serves it (for the workers behind nginx)."""

    def pid(self) -> int:
        return os.getpid()

    def square(self, i: int) -> int:
        return i * i

    def counter(self, start: int) -> Counter:
        return Counter(start)


workers = capnweb.AsgiApp(Worker, path="/rpc")

# For gunicorn's aiohttp worker (``gunicorn asgi_apps:web_app -k aiohttp.GunicornWebWorker``):
# the same service mounted beside an aiohttp application's own routes.
web_app = web.Application()
capnweb.mount(web_app, "/rpc", Worker)
