"""Web pages of other origins calling the batch endpoint (CORS): the preflight answered, the
answer readable by the origins allowed, the others refused; the same through ``serve()``,
``mount()`` and the ASGI app under uvicorn."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from interop.conftest import free_port

import capnweb
from examples.interop import server as interop_server

from .servers import asgi_command, python_env, running

pytestmark = pytest.mark.timeout(60)

APP = "https://app.example"
BATCH = '["push",["pipeline",0,["square"],[7]]]\n["pull",1]'

Serving = Callable[[list[str] | None], AbstractAsyncContextManager[str]]


@asynccontextmanager
async def by_serve(cors: list[str] | None) -> AsyncIterator[str]:
    async with capnweb.serve(interop_server.TestTargetImpl, cors=cors) as server:
        yield server.url


@asynccontextmanager
async def by_mount(cors: list[str] | None) -> AsyncIterator[str]:
    app = web.Application()
    capnweb.mount(app, "/rpc", interop_server.TestTargetImpl, cors=cors)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}/rpc"
    finally:
        await runner.cleanup()


@asynccontextmanager
async def by_asgi(cors: list[str] | None, log: Path) -> AsyncIterator[str]:
    port = free_port()
    env = python_env(CAPNWEB_TEST_CORS=",".join(cors or []))
    with running(asgi_command("uvicorn", "starlette", port), port, log, env=env):
        yield f"http://127.0.0.1:{port}/rpc"


@pytest.fixture(params=["serve", "mount", "asgi"])
def serving(request: pytest.FixtureRequest, tmp_path: Path) -> Serving:
    if request.param == "asgi":
        return lambda cors: by_asgi(cors, tmp_path / "uvicorn.log")
    return by_serve if request.param == "serve" else by_mount


async def post(url: str, origin: str | None) -> tuple[int, dict[str, str], str]:
    headers = {"Content-Type": "text/plain;charset=UTF-8"}
    if origin is not None:
        headers["Origin"] = origin
    async with aiohttp.ClientSession() as http, http.post(url, data=BATCH, headers=headers) as r:
        return r.status, dict(r.headers), await r.text()


async def preflight(url: str, origin: str) -> tuple[int, dict[str, str]]:
    headers = {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
    }
    async with aiohttp.ClientSession() as http, http.options(url, headers=headers) as r:
        return r.status, dict(r.headers)


async def test_an_allowed_origin_gets_the_preflight_and_the_answer(serving: Serving) -> None:
    async with serving([APP, "https://other.example"]) as url:
        status, headers = await preflight(url, APP)
        assert status == 204
        assert headers["Access-Control-Allow-Origin"] == APP
        assert "POST" in headers["Access-Control-Allow-Methods"]
        assert headers["Access-Control-Allow-Headers"].lower() == "content-type"
        assert int(headers["Access-Control-Max-Age"]) > 0
        status, headers, body = await post(url, APP)
        assert status == 200
        assert headers["Access-Control-Allow-Origin"] == APP
        assert "Origin" in headers["Vary"]
        assert json.loads(body) == ["resolve", 1, 49]


async def test_other_origins_are_refused_before_any_call(serving: Serving) -> None:
    async with serving([APP]) as url:
        status, headers = await preflight(url, "https://evil.example")
        assert status == 403
        assert "Access-Control-Allow-Origin" not in headers
        status, headers, body = await post(url, "https://evil.example")
        assert status == 403
        assert "Access-Control-Allow-Origin" not in headers
        assert "resolve" not in body


async def test_the_endpoints_own_pages_and_non_browsers_are_always_served(
    serving: Serving,
) -> None:
    async with serving([APP]) as url:
        own = url.removesuffix("/rpc")
        status, _, body = await post(url, own)
        assert (status, json.loads(body)) == (200, ["resolve", 1, 49])
        status, _, body = await post(url, None)  # no Origin: not a web page
        assert (status, json.loads(body)) == (200, ["resolve", 1, 49])


async def test_any_origin_with_a_star(serving: Serving) -> None:
    async with serving(["*"]) as url:
        status, headers, body = await post(url, "https://anyone.example")
        assert (status, json.loads(body)) == (200, ["resolve", 1, 49])
        assert headers["Access-Control-Allow-Origin"] == "*"


async def test_without_cors_no_page_of_another_origin_may_read_answers(serving: Serving) -> None:
    async with serving(None) as url:
        status, headers, _ = await post(url, APP)
        assert status == 200
        assert "Access-Control-Allow-Origin" not in headers  # the browser hides the answer
        status, headers = await preflight(url, APP)
        assert status == 405
        assert "Access-Control-Allow-Origin" not in headers


def test_one_origin_string_is_a_mistake_caught_early() -> None:
    with pytest.raises(TypeError, match="list of origins"):
        capnweb.Cors(APP)
