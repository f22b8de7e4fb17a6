"""The microservices example's interfaces: a public gateway, and the auth and users services
behind it.

A client sees only :class:`Gateway`: ``authenticate(token)`` gives it a :class:`UserData`
capability scoped to the token's user, and no method anywhere takes a user name as authority.
The other interfaces are spoken between the services: the gateway asks :class:`Auth` to check
the token and gets an :class:`AuthSession` back, hands that session to :class:`Users`, and
``Users.open`` asks the session for a ticket that it redeems with the auth service itself
before it opens anyone's data. The typed stubs of all of them are generated from this module:
``python -m capnweb_codegen examples.microservices.api --out stubs``.

Methods are declared ``def m(...) -> Awaitable[T]``: implementations are ``async def``, and a
generated stub conforms to the Protocol too, so the gateway can return the users service's
``UserData`` stub where its own Protocol promises a ``UserData``.
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Protocol

from capnweb import RpcError
from capnweb.interface import camel_case, rpc_interface, rpc_method

__all__ = ["Auth", "AuthError", "AuthSession", "Gateway", "Profile", "UserData", "Users"]


class AuthError(RpcError):
    """A token or ticket the auth service does not know; it reaches every caller, through the
    other services, with the error name ``AuthError``."""

    default_name = "AuthError"


@dataclass
class Profile:
    """Who a user is, as the users service keeps it."""

    user: str  # the name the auth service knows the user by
    name: str  # the full name
    email: str


@rpc_interface(names=camel_case)
class UserData(Protocol):
    """One user's data in the users service. Every member acts on that user: whoever holds
    this capability can reach this user's data and nobody else's."""

    @rpc_method
    def profile(self) -> Awaitable[Profile]:
        """The user's profile."""

    @rpc_method
    def notes(self) -> Awaitable[list[str]]:
        """The user's notes, oldest first."""

    @rpc_method
    def add_note(self, text: str) -> Awaitable[list[str]]:
        """Append a note (1 to 500 characters); the notes after it."""


@rpc_interface(names=camel_case)
class Gateway(Protocol):
    """The public API: the only service a client talks to, and nothing but a way in."""

    @rpc_method
    def authenticate(self, token: str) -> Awaitable[UserData]:
        """The data of the user ``token`` belongs to; an ``AuthError`` for an unknown token."""


# -- Between the services ------------------------------------------------------------------


@rpc_interface(names=camel_case)
class AuthSession(Protocol):
    """A signed-in user, held by whoever presented the user's token: it can prove who it is
    to the auth service, and does nothing else."""

    @rpc_method
    def ticket(self) -> Awaitable[str]:
        """A fresh single-use ticket naming this session's user, to redeem with
        ``Auth.redeem`` within seconds."""


@rpc_interface(names=camel_case)
class Auth(Protocol):
    """The auth service: checks tokens, and vouches for the tickets of its sessions."""

    @rpc_method
    def login(self, token: str) -> Awaitable[AuthSession]:
        """The session of the user ``token`` belongs to; an ``AuthError`` if it is unknown."""

    @rpc_method
    def redeem(self, ticket: str) -> Awaitable[str]:
        """The user a ticket was issued for; the ticket is spent. An ``AuthError`` if it is
        unknown, spent or expired."""


@rpc_interface(names=camel_case)
class Users(Protocol):
    """The users service: opens a user's data for a session the auth service vouches for."""

    @rpc_method
    def open(self, session: AuthSession) -> Awaitable[UserData]:
        """The data of the session's user, once the auth service has redeemed a ticket of the
        session; an ``AuthError`` if it does not."""
