"""The chat example as its users run it: the server as a process, two pages in headless
Chromium (Playwright) and terminal clients, all in one room.

Each member is a ``Room`` capability held by its session; the server's ``/stats`` shows the
sessions, their table entries and the rooms' members, so the tests see a closed page or a
killed client give its member back.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from browser import browser
from deploy.servers import python_env, running
from helpers import npm_ci
from interop.conftest import free_port
from playwright.async_api import Browser, Page, expect

pytestmark = pytest.mark.timeout(90)

REPO = Path(__file__).resolve().parents[2]
WEB = REPO / "examples" / "chat" / "web"
WAIT_S = 10.0
"""Seconds any one awaited event (a message shown, a line printed, a count) may take."""
PNG = b"\x89PNG\r\n\x1a\n"


@dataclass
class ChatServer:
    """A running chat server: its address and its output."""

    host: str
    log: Path

    @property
    def rpc(self) -> str:
        return f"ws://{self.host}/rpc"


@pytest.fixture(scope="module")
def web_deps() -> None:
    """The page's capnweb module: ``npm ci`` in examples/chat/web if it is not there."""
    npm_ci(WEB, ("capnweb",))


@pytest.fixture
def server(web_deps: None, tmp_path: Path) -> Iterator[ChatServer]:
    port = free_port()
    log = tmp_path / "server.log"
    command = [sys.executable, "-m", "examples.chat.server", "--port", str(port)]
    with running(command, port, log, env=python_env(), cwd=REPO, ready=f"listening {port}"):
        yield ChatServer(f"127.0.0.1:{port}", log)


class Terminal:
    """``python -m examples.chat.client`` in a process: lines in on stdin, lines out."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self._more = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def start(cls, server: ChatServer, name: str, *options: str) -> Terminal:
        proc = await asyncio.create_subprocess_exec(
            *[sys.executable, "-m", "examples.chat.client", server.rpc, "--name", name],
            *options,
            cwd=REPO,
            env=python_env(),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        return cls(proc)

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        async for raw in self.proc.stdout:
            self.lines.append(raw.decode().rstrip("\n"))
            self._more.set()
        self._more.set()

    async def expect(self, line: str, times: int = 1) -> None:
        """Wait until the client has printed ``line`` (``times`` times)."""
        try:
            async with asyncio.timeout(WAIT_S):
                while self.lines.count(line) < times:
                    if self._reader.done():
                        raise AssertionError(f"{line!r} not printed {times}x: {self.lines}")
                    self._more.clear()
                    await self._more.wait()
        except TimeoutError:
            raise AssertionError(f"{line!r} not printed {times}x: {self.lines}") from None

    def type(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{line}\n".encode())

    async def exit_code(self) -> int:
        """Wait for the client to end (the end of its output first)."""
        async with asyncio.timeout(WAIT_S):
            await self._reader
            return await self.proc.wait()

    async def stop(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        with suppress(Exception):
            await self._reader

    def said(self) -> list[str]:
        """What the client printed of the room: messages and notices, in order."""
        own = ("in ", "cannot join: ", "cannot connect: ", "disconnected: ")  # not the room's
        return [
            line
            for line in self.lines
            if (": " in line and not line.startswith(own)) or line.startswith("* ")
        ]


async def stats(server: ChatServer) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://{server.host}/stats") as response,
    ):
        assert response.status == 200
        result: dict[str, Any] = await response.json()
        return result


async def settles_at(server: ChatServer, want: dict[str, Any]) -> None:
    """Poll ``/stats`` until it reads ``want`` (at most WAIT_S seconds)."""
    seen: dict[str, Any] = {}
    try:
        async with asyncio.timeout(WAIT_S):
            while (seen := await stats(server)) != want:
                await asyncio.sleep(0.05)  # polling a condition, bounded by the timeout
    except TimeoutError:
        raise AssertionError(f"/stats never read {want}; last: {seen}") from None


async def join(browser: Browser, server: ChatServer, name: str, errors: list[str]) -> Page:
    """A new page of the server's, joined to the lobby as ``name`` as a user does it."""
    page = await browser.new_page()
    page.on("pageerror", lambda exc: errors.append(f"{name}: {exc}"))
    page.on("console", lambda m: errors.append(f"{name}: {m.text}") if m.type == "error" else None)
    await page.goto(f"http://{server.host}/")
    await expect(page.locator("#status")).to_contain_text("connected", timeout=WAIT_S * 1000)
    await page.fill("#name", name)
    await page.fill("#room", "lobby")
    await page.click("#join")
    await expect(page.locator("#title")).to_have_text(f"#lobby as {name}", timeout=WAIT_S * 1000)
    return page


async def sees(page: Page, lines: list[str]) -> None:
    """The page's message list is exactly ``lines``."""
    await expect(page.locator("#messages .line")).to_have_text(lines, timeout=WAIT_S * 1000)


async def members(page: Page, names: list[str]) -> None:
    await expect(page.locator("#members li")).to_have_text(names, timeout=WAIT_S * 1000)


async def say(page: Page, text: str) -> None:
    await page.fill("#text", text)
    await page.press("#text", "Enter")


def lobby(*names: str) -> dict[str, Any]:
    """What ``/stats`` reads once these members are in the lobby and nothing is in flight: a
    session for each, holding the two main entries, its Room (an export of the server's) and
    its subscriber (an import)."""
    rooms = {"lobby": list(names)} if names else {}
    n = len(names)
    return {"sessions": n, "imports": 2 * n, "exports": 2 * n, "rooms": rooms}


async def test_two_pages_and_a_terminal_client_chat(server: ChatServer, tmp_path: Path) -> None:
    errors: list[str] = []
    carol: Terminal | None = None
    async with browser() as chromium_browser:
        try:
            ann = await join(chromium_browser, server, "ann", errors)
            await sees(ann, ["ann joined"])
            carol = await Terminal.start(server, "carol")
            await carol.expect("in lobby: ann, carol")
            await sees(ann, ["ann joined", "carol joined"])
            await settles_at(server, lobby("ann", "carol"))

            bob = await join(chromium_browser, server, "bob", errors)
            await carol.expect("* bob joined")
            await settles_at(server, lobby("ann", "carol", "bob"))

            await say(ann, "hello from ann")
            await carol.expect("ann: hello from ann")
            carol.type("hi from the terminal")
            await sees(bob, ["bob joined", "ann: hello from ann", "carol: hi from the terminal"])
            await say(bob, "bye <b>not bold</b>")
            await carol.expect("bob: bye <b>not bold</b>")
            talk = [
                "ann: hello from ann",
                "carol: hi from the terminal",
                "bob: bye <b>not bold</b>",
            ]
            await sees(ann, ["ann joined", "carol joined", "bob joined", *talk])
            await sees(bob, ["bob joined", *talk])
            assert carol.said() == ["* carol joined", "* bob joined", *talk]
            await members(ann, ["ann", "carol", "bob"])
            await expect(ann.locator("#messages .line b")).to_have_count(0)  # text, not HTML

            shot = tmp_path / "chat.png"
            await ann.screenshot(path=str(shot))
            assert shot.read_bytes()[:8] == PNG

            # Closing the page ends its session: the server releases bob's member and subscriber.
            await bob.close()
            await settles_at(server, lobby("ann", "carol"))
            await sees(ann, ["ann joined", "carol joined", "bob joined", *talk, "bob left"])
            await carol.expect("* bob left")
            await members(ann, ["ann", "carol"])
            assert "bob left lobby (released)" in server.log.read_text()

            # The end of the terminal's input: it leaves, disposes its stub and exits.
            assert carol.proc.stdin is not None
            carol.proc.stdin.close()
            assert await carol.exit_code() == 0
            assert carol.lines[-1] == "left lobby"
            await sees(
                ann, ["ann joined", "carol joined", "bob joined", *talk, "bob left", "carol left"]
            )
            await settles_at(server, lobby("ann"))

            # Leaving from the page releases the member; the session stays, with its main only.
            await ann.click("#leave")
            await expect(ann.locator("#join-form")).to_be_visible()
            await settles_at(server, {"sessions": 1, "imports": 1, "exports": 1, "rooms": {}})
        finally:
            if carol is not None:
                await carol.stop()
    assert errors == []
    await settles_at(server, lobby())


async def test_terminal_clients_say_and_a_killed_one_is_released(server: ChatServer) -> None:
    clients: list[Terminal] = []
    try:
        dave = await Terminal.start(server, "dave")
        clients.append(dave)
        await dave.expect("in lobby: dave")

        taken = await Terminal.start(server, "dave", "--say", "me too")
        clients.append(taken)
        assert await taken.exit_code() == 1
        assert "cannot join: 'dave' is taken in lobby" in taken.lines

        erin = await Terminal.start(server, "erin", "--say", "one", "--say", "two")
        clients.append(erin)
        assert await erin.exit_code() == 0
        assert erin.said()[-2:] == ["erin: one", "erin: two"]
        assert erin.lines[-1] == "left lobby"
        await dave.expect("* erin left")
        assert dave.said() == [
            "* dave joined",
            "* erin joined",
            "erin: one",
            "erin: two",
            "* erin left",
        ]

        frank = await Terminal.start(server, "frank")
        clients.append(frank)
        await frank.expect("in lobby: dave, frank")
        await settles_at(server, lobby("dave", "frank"))
        frank.proc.send_signal(signal.SIGKILL)  # no goodbye: the connection just drops
        await dave.expect("* frank left")
        await settles_at(server, lobby("dave"))
        assert "frank left lobby (released)" in server.log.read_text()

        dave.type("/members")
        await dave.expect("in lobby: dave", times=2)
        dave.type("/quit")
        assert await dave.exit_code() == 0
        await settles_at(server, lobby())
    finally:
        for client in clients:
            await client.stop()


def test_server_says_how_to_install_a_missing_module(tmp_path: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "examples.chat.server",
        "--port",
        "0",
        "--capnweb-js",
        str(tmp_path / "missing.js"),
    ]
    done = subprocess.run(
        command, cwd=REPO, env=python_env(), capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "missing.js is missing" in done.stderr
    assert "npm ci --prefix examples/chat/web" in done.stderr
    assert "listening" not in done.stdout
