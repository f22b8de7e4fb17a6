"""The batch pipelining example's interface: a token, the user it belongs to, and that user's
profile and notifications.

``profile()`` and ``notifications()`` take the id that ``authenticate()`` returns, so a client
either waits for the user before asking for the rest, or passes the pending ``user.id`` along
and sends the whole chain at once. ``server.py`` implements these Protocols;
``python -m capnweb_codegen examples.batch_pipelining.api --out stubs`` turns them into the
typed stubs ``client.py`` uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from capnweb.interface import camel_case, rpc_interface, rpc_method


@dataclass
class User:
    """Who a token belongs to."""

    id: int
    name: str


@dataclass
class Profile:
    """What a user tells about themselves."""

    user_id: int
    display_name: str
    bio: str


@dataclass
class Notification:
    """One message waiting for a user."""

    id: int
    text: str
    unread: bool


@rpc_interface(names=camel_case)
class Api(Protocol):
    """The main capability of the batch pipelining example server."""

    @rpc_method
    async def authenticate(self, token: str) -> User:
        """The user ``token`` belongs to (a RangeError when it belongs to nobody)."""

    @rpc_method
    async def profile(self, user_id: int) -> Profile:
        """The profile of user ``user_id``."""

    @rpc_method
    async def notifications(self, user_id: int) -> list[Notification]:
        """The notifications of user ``user_id``, newest first."""
