"""The chat example's interface: rooms as capabilities, messages pushed to each member.

``join(room, name, subscriber)`` returns a ``Room``: the member's capability, the only way to
speak in that room. The server calls ``subscriber.on_message`` for every message of the room,
the member's own included. Leaving (``Room.leave()``, disposing the ``Room`` stub, or simply
disconnecting) removes the member and releases its subscriber. The typed stubs are generated
from these Protocols: ``python -m capnweb_codegen examples.chat.api --out stubs`` (and
``--lang ts --out stubs/ts`` for the browser's TypeScript declarations).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol, TypedDict

from capnweb.interface import camel_case, rpc_interface, rpc_method

MAX_NAME = 32
"""Longest member or room name, in characters."""

MAX_TEXT = 2000
"""Longest message text, in characters."""


@dataclass
class Message:
    """One event of a room, pushed to every member: something said, or someone coming or going."""

    room: str
    sender: str
    text: str
    at: datetime
    kind: Literal["message", "joined", "left"] = "message"


class RoomInfo(TypedDict):
    """A room and who is in it."""

    room: str
    members: list[str]


@rpc_interface(names=camel_case)
class Subscriber(Protocol):
    """What a member passes to ``join``: the server calls it for each message of the room."""

    @rpc_method
    async def on_message(self, message: Message) -> None:
        """Show ``message`` (sent once per message, in the order the room saw them)."""


@rpc_interface(names=camel_case)
class Room(Protocol):
    """One member's capability in one room: whoever holds it speaks as that member."""

    @rpc_method
    async def send(self, text: str) -> None:
        """Say ``text`` in the room: every member's subscriber gets it, the sender's too."""

    @rpc_method
    async def members(self) -> list[str]:
        """The names of the room's members, in the order they joined."""

    @rpc_method
    async def leave(self) -> None:
        """Leave the room: the others see this member go, and this capability stops working."""


@rpc_interface(names=camel_case)
class Chat(Protocol):
    """The chat server: the main capability of each session."""

    @rpc_method
    async def join(self, room: str, name: str, subscriber: Subscriber) -> Room:
        """Join ``room`` (made on first use) as ``name``, a name nobody in the room has yet;
        ``subscriber`` is called for every message of the room from now on."""

    @rpc_method
    async def rooms(self) -> list[RoomInfo]:
        """Every room that has members, by name, with its members."""
