"""The chat example's server: rooms as capabilities, messages pushed to every member.

Usage (from the repository root, after ``npm ci --prefix examples/chat/web``):
``python -m examples.chat.server --port 8080``, then open http://127.0.0.1:8080/ in a browser
or run ``python -m examples.chat.client ws://127.0.0.1:8080/rpc --name ann``.

One port serves everything: RPC on ``/rpc``, the page on ``/`` (with its script ``/chat.js``
and the TypeScript ``capnweb`` module as ``/capnweb.js``), and ``GET /stats``: the live
sessions, their import and export table entries, and the members of each room. A member is
a ``Room`` capability held by one session; when that session ends (a page closed, a client
killed) the session releases it, and the room sees the member leave.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Awaitable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from aiohttp import web

import capnweb
from capnweb import RpcDisconnectedError, RpcTarget
from examples.chat.api import MAX_NAME, MAX_TEXT, Chat, Message, Room, RoomInfo, Subscriber
from stubs.examples_chat_api import SubscriberStub

__all__ = ["CAPNWEB_JS", "WEB", "ChatImpl", "Hall", "MemberImpl", "MissingModule", "main", "serve"]

log = logging.getLogger("examples.chat")

WEB = Path(__file__).resolve().parent / "web"
"""The page, its script, and the npm project that provides the capnweb module."""

CAPNWEB_JS = WEB / "node_modules" / "capnweb" / "dist" / "index.js"
"""The TypeScript capnweb package's ES module (one file, no imports), served to the page."""


class MissingModule(RuntimeError):
    """The capnweb ES module the page needs is not installed."""


class Hall:
    """Every room of one server, shared by all its sessions: room name -> members by name."""

    def __init__(self) -> None:
        self.rooms: dict[str, dict[str, MemberImpl]] = {}
        self._deliveries: set[asyncio.Task[None]] = set()

    def members(self, room: str) -> list[str]:
        """The names of ``room``'s members, in the order they joined."""
        return list(self.rooms.get(room, ()))

    def add(self, member: MemberImpl) -> None:
        """Seat ``member`` (its name must be free in its room) and tell the room."""
        self.rooms.setdefault(member.room, {})[member.name] = member
        print(f"{member.name} joined {member.room}", flush=True)
        self.broadcast(member.room, member.name, "", "joined")

    def remove(self, member: MemberImpl, why: str) -> None:
        """Unseat ``member`` and tell the others; an empty room is forgotten."""
        seats = self.rooms.get(member.room, {})
        if seats.get(member.name) is not member:
            return
        del seats[member.name]
        if not seats:
            del self.rooms[member.room]
        print(f"{member.name} left {member.room} ({why})", flush=True)
        self.broadcast(member.room, member.name, "", "left")

    def broadcast(
        self, room: str, sender: str, text: str, kind: Literal["message", "joined", "left"]
    ) -> None:
        """Push one message to every member of ``room``, without waiting for any of them.

        Each call is sent at once, so every member gets the room's messages in the room's
        order; a slow member delays nobody else.
        """
        message = Message(room=room, sender=sender, text=text, at=datetime.now(UTC), kind=kind)
        for member in list(self.rooms.get(room, {}).values()):
            delivery = member.deliver(message)
            if delivery is not None:
                task = asyncio.create_task(delivery)
                self._deliveries.add(task)
                task.add_done_callback(self._deliveries.discard)


class MemberImpl(RpcTarget, Room):
    """One member of one room: the capability ``join`` returns. Released by its session (the
    stub disposed, or the connection gone), it leaves the room and lets go of its subscriber."""

    def __init__(self, hall: Hall, room: str, name: str, subscriber: SubscriberStub) -> None:
        self._hall = hall
        self._room = room
        self._name = name
        self._subscriber: SubscriberStub | None = subscriber

    @property
    def room(self) -> str:
        """The room's name."""
        return self._room

    @property
    def name(self) -> str:
        """The member's name."""
        return self._name

    def _seated(self) -> None:
        if self._subscriber is None:
            raise ValueError(f"{self.name} has left {self.room}")

    async def send(self, text: str) -> None:
        self._seated()
        if not text.strip() or len(text) > MAX_TEXT:
            raise ValueError(f"a message has 1 to {MAX_TEXT} characters")
        self._hall.broadcast(self.room, self.name, text, "message")

    async def members(self) -> list[str]:
        self._seated()
        return self._hall.members(self.room)

    async def leave(self) -> None:
        self._go("left")

    def on_dispose(self) -> None:
        self._go("released")

    def _go(self, why: str) -> None:
        subscriber, self._subscriber = self._subscriber, None
        if subscriber is None:
            return
        subscriber.dispose()
        self._hall.remove(self, why)

    def deliver(self, message: Message) -> Coroutine[Any, Any, None] | None:
        """Call this member's subscriber with ``message`` now (None if the member is gone);
        what it returns waits for the answer."""
        subscriber = self._subscriber
        if subscriber is None:
            return None
        return self._answered(subscriber.on_message(message))

    async def _answered(self, call: Awaitable[None]) -> None:
        try:
            await call
        except RpcDisconnectedError:
            pass  # its session ended: the session releases this member, which then leaves
        except Exception as exc:
            log.warning("%s in %s: the subscriber failed: %s", self.name, self.room, exc)


class ChatImpl(RpcTarget, Chat):
    """The main capability of each session."""

    def __init__(self, hall: Hall) -> None:
        self._hall = hall

    async def join(self, room: str, name: str, subscriber: Subscriber) -> Room:
        for what, value in (("room", room), ("name", name)):
            if not value.strip() or len(value) > MAX_NAME:
                raise ValueError(f"a {what} has 1 to {MAX_NAME} characters")
        if name in self._hall.rooms.get(room, {}):
            raise ValueError(f"{name!r} is taken in {room}")
        # The argument is released when this call returns; the typed stub is a reference of
        # its own, kept until the member leaves.
        member = MemberImpl(self._hall, room, name, SubscriberStub(subscriber))
        self._hall.add(member)
        return member

    async def rooms(self) -> list[RoomInfo]:
        return [{"room": room, "members": list(seats)} for room, seats in self._hall.rooms.items()]


async def serve(port: int = 0, capnweb_js: Path = CAPNWEB_JS) -> capnweb.Server:
    """A chat server on 127.0.0.1 (port 0: any free port): RPC on ``/rpc``, the page on ``/``,
    ``GET /stats``. Raises :class:`MissingModule` if ``capnweb_js`` does not exist."""
    if not capnweb_js.is_file():
        raise MissingModule(
            f"{capnweb_js} is missing: the page needs the capnweb npm package. "
            "Install it with `npm ci --prefix examples/chat/web` (from the repository root)."
        )
    hall = Hall()

    def file(path: Path) -> web.FileResponse:
        return web.FileResponse(path, headers={"Cache-Control": "no-cache"})

    async def page(request: web.Request) -> web.FileResponse:
        return file(WEB / "index.html")

    async def script(request: web.Request) -> web.FileResponse:
        return file(WEB / "chat.js")

    async def module(request: web.Request) -> web.FileResponse:
        return file(capnweb_js)

    async def stats(request: web.Request) -> web.Response:
        sessions = [session.stats() for session in server.endpoint.sessions]
        return web.json_response(
            {
                "sessions": len(sessions),
                "imports": sum(s.imports for s in sessions),
                "exports": sum(s.exports for s in sessions),
                "rooms": {room: list(seats) for room, seats in hall.rooms.items()},
            }
        )

    app = web.Application()
    app.router.add_get("/", page)
    app.router.add_get("/chat.js", script)
    app.router.add_get("/capnweb.js", module)
    app.router.add_get("/stats", stats)
    server = await capnweb.serve(lambda: ChatImpl(hall), host="127.0.0.1", port=port, app=app)
    return server


async def main(port: int, capnweb_js: Path) -> int:
    """Serve until SIGTERM or SIGINT; 1 if the capnweb module is missing."""
    try:
        server = await serve(port, capnweb_js)
    except MissingModule as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 1
    print(f"listening {server.port}", flush=True)
    print(f"open http://127.0.0.1:{server.port}/ or connect to {server.ws_url}", flush=True)
    await server.serve_until_signal()
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8080, help="0: any free port (printed)")
    parser.add_argument(
        "--capnweb-js", type=Path, default=CAPNWEB_JS, help="the capnweb ES module to serve"
    )
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.port, args.capnweb_js)))
