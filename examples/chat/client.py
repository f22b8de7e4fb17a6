"""The chat example's terminal client: joins a room, prints its messages as they arrive, and
sends each line typed on stdin.

Usage (from the repository root, with the server running):
``python -m examples.chat.client ws://127.0.0.1:8080/rpc --name ann [--room lobby]``.
Type a line to say it; ``/members`` lists the room's members; end of input (Ctrl-D) or
``/quit`` leaves. ``--say TEXT`` (repeatable) says each TEXT instead of reading stdin, waits
until they came back from the room, and leaves.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import threading

import capnweb
from capnweb import RpcDisconnectedError, RpcTarget
from examples.chat.api import Message, Subscriber
from stubs.examples_chat_api import ChatStub, RoomStub

__all__ = ["Printer", "main"]


class Printer(RpcTarget, Subscriber):
    """The subscriber this client passes to ``join``: prints each message of the room."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._mine: list[str] = []
        self._changed = asyncio.Event()

    async def on_message(self, message: Message) -> None:
        if message.kind == "message":
            print(f"{message.sender}: {message.text}", flush=True)
            if message.sender == self._name:
                self._mine.append(message.text)
                self._changed.set()
        else:
            print(f"* {message.sender} {message.kind}", flush=True)

    async def heard(self, texts: list[str]) -> None:
        """Wait until this member's own ``texts`` came back from the room, in that order."""
        while self._mine[-len(texts) :] != texts:
            self._changed.clear()
            await self._changed.wait()


Input = asyncio.Queue[str | BaseException | None]
"""Lines typed, None at the end of input, or why the connection was lost."""


def _read_lines(loop: asyncio.AbstractEventLoop, lines: Input) -> None:
    """Hand stdin's lines to the event loop (None at the end); runs in a thread of its own, so
    that a blocked read never keeps the program from exiting."""
    try:
        for line in sys.stdin:
            loop.call_soon_threadsafe(lines.put_nowait, line.rstrip("\n"))
        loop.call_soon_threadsafe(lines.put_nowait, None)
    except RuntimeError:  # the loop is closed: the program is ending
        pass


async def _members(room: RoomStub, name: str) -> None:
    print(f"in {name}: {', '.join(await room.members())}", flush=True)


async def _talk(room: RoomStub, room_name: str) -> None:
    """Send what is typed, until the end of input or ``/quit``; raises if the connection is
    lost meanwhile."""
    lines: Input = asyncio.Queue()
    room.on_broken(lines.put_nowait)
    loop = asyncio.get_running_loop()
    threading.Thread(target=_read_lines, args=(loop, lines), daemon=True).start()
    while (line := await lines.get()) is not None and line != "/quit":
        if isinstance(line, BaseException):
            raise line
        if line == "/members":
            await _members(room, room_name)
        elif line.strip():
            await room.send(line)


async def main(url: str, name: str, room_name: str, say: list[str]) -> int:
    """Join, talk, leave; 1 if the server refused, could not be reached, or went away."""
    printer = Printer(name)
    try:
        async with capnweb.connect(url, ChatStub) as chat:
            try:
                room = await chat.join(room_name, name, printer)
            except ValueError as exc:  # a RangeError: a name taken, or too long
                print(f"cannot join: {exc}", file=sys.stderr, flush=True)
                return 1
            with room:  # leaving the block disposes the stub: the member is released
                await _members(room, room_name)
                if say:
                    for text in say:
                        await room.send(text)
                    await printer.heard(say)
                else:
                    await _talk(room, room_name)
                await room.leave()
    except RpcDisconnectedError as exc:
        print(f"disconnected: {exc}", file=sys.stderr, flush=True)
        return 1
    except OSError as exc:  # the server cannot be reached
        print(f"cannot connect: {exc}", file=sys.stderr, flush=True)
        return 1
    print(f"left {room_name}", flush=True)
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url", nargs="?", default="ws://127.0.0.1:8080/rpc")
    parser.add_argument("--name", required=True, help="your name in the room")
    parser.add_argument("--room", default="lobby")
    parser.add_argument(
        "--say",
        action="append",
        default=[],
        metavar="TEXT",
        help="say TEXT (repeatable), then leave; stdin is not read",
    )
    args = parser.parse_args()
    try:
        sys.exit(asyncio.run(main(args.url, args.name, args.room, args.say)))
    except KeyboardInterrupt:
        pass
