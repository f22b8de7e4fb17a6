# generated from examples.chat.api:Chat — do not edit
# generated from examples.chat.api:Room — do not edit
# generated from examples.chat.api:Subscriber — do not edit
"""Typed capnweb client stubs for:

- ``examples.chat.api:Chat``
- ``examples.chat.api:Room``
- ``examples.chat.api:Subscriber``

Get one with ``capnweb.connect(url, <Name>Stub)``; calls return typed promises that can be
awaited or pipelined. Regenerate with ``python -m capnweb_codegen``.
"""

from __future__ import annotations

import capnweb as _capnweb
import capnweb.typed as _capnweb_typed
import examples.chat.api as _examples_chat_api

__all__ = [
    "ChatPromise",
    "ChatStub",
    "RoomInfoListPromise",
    "RoomInfoPromise",
    "RoomPromise",
    "RoomStub",
    "StrListPromise",
    "SubscriberPromise",
    "SubscriberStub",
]


class ChatStub(_capnweb_typed.TypedStub):
    """The chat server: the main capability of each session."""

    __slots__ = ()
    _interface = "examples.chat.api:Chat"

    def join(
        self,
        room: str | _capnweb.RpcPromise[str],
        name: str | _capnweb.RpcPromise[str],
        subscriber: _examples_chat_api.Subscriber | SubscriberStub,
    ) -> RoomPromise:
        """Join ``room`` (made on first use) as ``name``, a name nobody in the room has yet;
        ``subscriber`` is called for every message of the room from now on.
        """
        return self._rpc_call(RoomPromise, "join", room, name, subscriber)

    def rooms(self) -> RoomInfoListPromise:
        """Every room that has members, by name, with its members."""
        return self._rpc_call(RoomInfoListPromise, "rooms")


class RoomStub(_capnweb_typed.TypedStub):
    """One member's capability in one room: whoever holds it speaks as that member."""

    __slots__ = ()
    _interface = "examples.chat.api:Room"

    def send(self, text: str | _capnweb.RpcPromise[str]) -> _capnweb_typed.TypedPromise[None]:
        """Say ``text`` in the room: every member's subscriber gets it, the sender's too."""
        return self._rpc_call(_capnweb_typed.TypedPromise, "send", text)

    def members(self) -> StrListPromise:
        """The names of the room's members, in the order they joined."""
        return self._rpc_call(StrListPromise, "members")

    def leave(self) -> _capnweb_typed.TypedPromise[None]:
        """Leave the room: the others see this member go, and this capability stops working."""
        return self._rpc_call(_capnweb_typed.TypedPromise, "leave")


class SubscriberStub(_capnweb_typed.TypedStub):
    """What a member passes to ``join``: the server calls it for each message of the room."""

    __slots__ = ()
    _interface = "examples.chat.api:Subscriber"

    def on_message(
        self, message: _examples_chat_api.Message | _capnweb.RpcPromise[_examples_chat_api.Message]
    ) -> _capnweb_typed.TypedPromise[None]:
        """Show ``message`` (sent once per message, in the order the room saw them)."""
        return self._rpc_call(_capnweb_typed.TypedPromise, "onMessage", message)


class ChatPromise(_capnweb_typed.TypedPromise[ChatStub], ChatStub):
    """A pending ``ChatStub``: await it for the stub, or call its methods pipelined.

    The chat server: the main capability of each session.
    """

    __slots__ = ()
    _result_type = ChatStub


class RoomInfoPromise(_capnweb_typed.TypedPromise[_examples_chat_api.RoomInfo]):
    """A pending ``RoomInfo``: await it, or read its fields pipelined.

    A room and who is in it.
    """

    __slots__ = ()
    _result_type = _examples_chat_api.RoomInfo

    @property
    def room(self) -> _capnweb_typed.TypedPromise[str]:
        return self._rpc_get(_capnweb_typed.TypedPromise, "room")

    @property
    def members(self) -> StrListPromise:
        return self._rpc_get(StrListPromise, "members")


class RoomInfoListPromise(
    _capnweb_typed.TypedListPromise[list[_examples_chat_api.RoomInfo], RoomInfoPromise]
):
    """A pending ``list[RoomInfo]``: await it, or ``map()`` over it."""

    __slots__ = ()
    _result_type = list[_examples_chat_api.RoomInfo]
    _element_type = RoomInfoPromise


class RoomPromise(_capnweb_typed.TypedPromise[RoomStub], RoomStub):
    """A pending ``RoomStub``: await it for the stub, or call its methods pipelined.

    One member's capability in one room: whoever holds it speaks as that member.
    """

    __slots__ = ()
    _result_type = RoomStub


class StrListPromise(_capnweb_typed.TypedListPromise[list[str], _capnweb_typed.TypedPromise[str]]):
    """A pending ``list[str]``: await it, or ``map()`` over it."""

    __slots__ = ()
    _result_type = list[str]
    _element_type = _capnweb_typed.TypedPromise


class SubscriberPromise(_capnweb_typed.TypedPromise[SubscriberStub], SubscriberStub):
    """A pending ``SubscriberStub``: await it for the stub, or call its methods pipelined.

    What a member passes to ``join``: the server calls it for each message of the room.
    """

    __slots__ = ()
    _result_type = SubscriberStub
