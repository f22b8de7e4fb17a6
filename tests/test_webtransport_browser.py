"""A browser calls the Python server over WebTransport: headless Chromium (Playwright) loads a
page whose TypeScript ``capnweb`` client (the npm package's ES module) runs over a small
WebTransport ``RpcTransport`` (the integrated example's ``web/transport.js``, the guide's)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from browser import browser
from helpers import Counter, eventually, npm_ci

import capnweb
from capnweb import RpcStub, RpcTarget, current_session
from capnweb.transports.webtransport import dev_certificate

pytestmark = pytest.mark.timeout(60)

REPO = Path(__file__).resolve().parents[1]
JS = REPO / "tests" / "interop" / "js"
PAGE = REPO / "tests" / "webtransport_page"
WAIT_S = 20.0


class Api(RpcTarget):
    counters: list[Counter] = []  # noqa: RUF012 - every session's, for the test to see

    def square(self, x: int) -> int:
        return x * x

    def echo(self, value: Any) -> Any:
        return value

    def makeCounter(self, n: int) -> Counter:
        counter = Counter(n)
        Api.counters.append(counter)
        return counter

    def fail(self, message: str) -> None:
        raise ValueError(message)

    async def callBack(self, cb: RpcStub, x: int) -> Any:
        return await cb(x)

    async def callClient(self, x: int) -> Any:
        return await current_session().main.double(x)


@asynccontextmanager
async def page_server() -> AsyncIterator[str]:
    """The page and the capnweb ES module, over HTTP on 127.0.0.1 (a secure context)."""

    async def index(request: web.Request) -> web.FileResponse:
        return web.FileResponse(PAGE / "index.html")

    app = web.Application()
    app.router.add_get("/", index)
    app.router.add_static("/page/", PAGE)
    app.router.add_static("/example/", REPO / "examples" / "webtransport_integrated" / "web")
    app.router.add_static("/capnweb/", JS / "node_modules" / "capnweb" / "dist")
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/"
    finally:
        await runner.cleanup()


async def test_a_page_calls_the_python_server_over_webtransport(tmp_path: Path) -> None:
    npm_ci(JS, ("capnweb",))
    Api.counters = []
    digest = dev_certificate(tmp_path / "cert.pem", tmp_path / "key.pem")
    console: list[str] = []
    async with (
        capnweb.serve_webtransport(
            Api, certificate=tmp_path / "cert.pem", private_key=tmp_path / "key.pem"
        ) as server,
        page_server() as page_url,
        browser() as chrome,
    ):
        page = await chrome.new_page()
        # every WebTransport failure reads "Opening handshake failed" in the page: the reason
        # is only on the console
        page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
        await page.goto(page_url)
        await page.wait_for_function("window.ready === true", timeout=WAIT_S * 1000)
        run = page.evaluate("([url, hash]) => window.runCalls(url, hash)", [server.url, digest])
        try:
            out = await asyncio.wait_for(run, WAIT_S)
        except Exception as e:
            raise AssertionError(f"{e}; console: {console}") from None
        assert out == {
            "square": 49,
            "chain": 15,  # makeCounter(10).increment(5), one pipelined chain
            "callback": 42,  # the server called a function of the page
            "callClient": 42,  # ... and the page's main capability
            "error": "RangeError: no luck",
            "echo": {"text": "two\nlines", "list": [1, 2.5, None, True]},
            "big": 200000,
            "closed": 0,
        }, console
        # the page closed its session: the server released what it held
        await eventually(lambda: server.live_sessions == 0)
        assert [c.disposed for c in Api.counters] == [1]
