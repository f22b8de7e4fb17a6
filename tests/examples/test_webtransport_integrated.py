"""examples/webtransport_integrated run as a user runs it: one server process answering
WebSocket, HTTP batch and WebTransport; the Python client over each transport, and the page
in headless Chromium (Playwright), over WebTransport, and over WebSocket when the browser has
no WebTransport."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from browser import browser
from deploy.servers import REPO, python_env, running
from helpers import npm_ci
from interop.conftest import free_port
from playwright.async_api import Browser

pytestmark = pytest.mark.timeout(60)

WEB = REPO / "examples" / "chat" / "web"
"""The npm project whose pinned capnweb module the page loads."""
WAIT_S = 20.0
"""Seconds a process, or the page, may take to finish."""

ANSWERS = (
    "Hello, python! | square(square(3)) = 81 | make_counter(10).increment(5) = 15"
    " | fail: RpcRangeError: no luck"
)


@dataclass
class Server:
    port: int
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}/"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    npm_ci(WEB, ("capnweb",))
    port = free_port()  # TCP; WebTransport takes the same number on UDP
    log = tmp_path / "server.log"
    command = [sys.executable, "-m", "examples.webtransport_integrated.server", "--port", str(port)]
    with running(command, port, log, env=python_env(), cwd=REPO, ready="certificate sha-256"):
        yield Server(port, log)


def test_the_python_client_gets_the_same_answers_over_each_transport(server: Server) -> None:
    command = [sys.executable, "-m", "examples.webtransport_integrated.client", server.base]
    done = subprocess.run(
        command, cwd=REPO, env=python_env(), capture_output=True, text=True, timeout=WAIT_S
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines() == [
        f"websocket: {ANSWERS}",
        f"http batch: {ANSWERS}",
        f"webtransport: {ANSWERS}",
    ]
    printed = server.log.read_text().splitlines()
    assert printed[:5] == [
        f"listening {server.port}",
        f"page http://127.0.0.1:{server.port}/",
        f"websocket ws://127.0.0.1:{server.port}/rpc",
        f"http batch http://127.0.0.1:{server.port}/rpc",
        f"webtransport https://127.0.0.1:{server.port}/rpc (UDP)",
    ]


async def page_result(chrome: Browser, server: Server, init_script: str = "") -> dict[str, Any]:
    """Load the page (``init_script`` runs before its scripts) and wait for what it did;
    the transport it shows must be the one it reports."""
    context = await chrome.new_context()
    console: list[str] = []
    try:
        if init_script:
            await context.add_init_script(init_script)
        page = await context.new_page()
        page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
        await page.goto(server.base)
        try:
            result: dict[str, Any] = await asyncio.wait_for(page.evaluate("window.result"), WAIT_S)
        except Exception as e:
            raise AssertionError(f"{e}; console: {console}") from None
        assert await page.text_content("#transport") == result["transport"]
        assert await page.text_content("#square") == "81"
        return {**result, "console": console}
    finally:
        await context.close()


def expected(transport: str, console: list[str]) -> dict[str, Any]:
    return {
        "transport": transport,
        "greet": "Hello, browser!",
        "square": 81,
        "counter": 15,
        "countdown": 3,
        "ticks": [3, 2, 1],  # the server called the page's listener
        "fail": "RangeError: no luck",
        "console": console,
    }


async def test_the_page_calls_over_webtransport_and_falls_back_to_websocket(
    server: Server,
) -> None:
    async with browser() as chrome:
        over_wt = await page_result(chrome, server)
        assert over_wt == expected("webtransport", []), over_wt["console"]

        without = "delete window.WebTransport;"  # a browser without WebTransport
        fallback = await page_result(chrome, server, without)
        assert fallback == expected("websocket", []), fallback["console"]


async def test_the_page_falls_back_when_webtransport_fails(server: Server) -> None:
    # The browser has WebTransport, but the certificate hash the page gets is not the server's:
    # the session never opens, and the page says so on the console and uses a WebSocket.
    wrong = "a" * 64
    patch = (
        "const fetch0 = window.fetch;"
        "window.fetch = async (...args) => {"
        "  const response = await fetch0(...args);"
        "  if (!String(args[0]).endsWith('/config.json')) return response;"
        "  const config = await response.json();"
        f"  return Response.json({{...config, certificateHash: '{wrong}'}});"
        "};"
    )
    async with browser() as chrome:
        result = await page_result(chrome, server, patch)
    console = result["console"]
    assert result == expected("websocket", console)
    assert any("falling back to WebSocket" in line for line in console), console


def test_server_says_how_to_install_a_missing_module(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "examples.webtransport_integrated.server", "--port", "0"]
    command += ["--capnweb-js", str(tmp_path / "missing.js")]
    done = subprocess.run(
        command, cwd=REPO, env=python_env(), capture_output=True, text=True, timeout=WAIT_S
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "missing.js is missing" in done.stderr
    assert "npm ci --prefix examples/chat/web" in done.stderr
    assert "listening" not in done.stdout
