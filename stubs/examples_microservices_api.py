# generated from examples.microservices.api:Auth — do not edit
# generated from examples.microservices.api:AuthSession — do not edit
# generated from examples.microservices.api:Gateway — do not edit
# generated from examples.microservices.api:UserData — do not edit
# generated from examples.microservices.api:Users — do not edit
"""Typed capnweb client stubs for:

- ``examples.microservices.api:Auth``
- ``examples.microservices.api:AuthSession``
- ``examples.microservices.api:Gateway``
- ``examples.microservices.api:UserData``
- ``examples.microservices.api:Users``

Get one with ``capnweb.connect(url, <Name>Stub)``; calls return typed promises that can be
awaited or pipelined. Regenerate with ``python -m capnweb_codegen``.
"""

from __future__ import annotations

import capnweb as _capnweb
import capnweb.typed as _capnweb_typed
import examples.microservices.api as _examples_microservices_api

__all__ = [
    "AuthPromise",
    "AuthSessionPromise",
    "AuthSessionStub",
    "AuthStub",
    "GatewayPromise",
    "GatewayStub",
    "ProfilePromise",
    "StrListPromise",
    "UserDataPromise",
    "UserDataStub",
    "UsersPromise",
    "UsersStub",
]


class AuthSessionStub(_capnweb_typed.TypedStub):
    """A signed-in user, held by whoever presented the user's token: it can prove who it is
    to the auth service, and does nothing else.
    """

    __slots__ = ()
    _interface = "examples.microservices.api:AuthSession"

    def ticket(self) -> _capnweb_typed.TypedPromise[str]:
        """A fresh single-use ticket naming this session's user, to redeem with
        ``Auth.redeem`` within seconds.
        """
        return self._rpc_call(_capnweb_typed.TypedPromise, "ticket")


class AuthStub(_capnweb_typed.TypedStub):
    """The auth service: checks tokens, and vouches for the tickets of its sessions."""

    __slots__ = ()
    _interface = "examples.microservices.api:Auth"

    def login(self, token: str | _capnweb.RpcPromise[str]) -> AuthSessionPromise:
        """The session of the user ``token`` belongs to; an ``AuthError`` if it is unknown."""
        return self._rpc_call(AuthSessionPromise, "login", token)

    def redeem(self, ticket: str | _capnweb.RpcPromise[str]) -> _capnweb_typed.TypedPromise[str]:
        """The user a ticket was issued for; the ticket is spent. An ``AuthError`` if it is
        unknown, spent or expired.
        """
        return self._rpc_call(_capnweb_typed.TypedPromise, "redeem", ticket)


class GatewayStub(_capnweb_typed.TypedStub):
    """The public API: the only service a client talks to, and nothing but a way in."""

    __slots__ = ()
    _interface = "examples.microservices.api:Gateway"

    def authenticate(self, token: str | _capnweb.RpcPromise[str]) -> UserDataPromise:
        """The data of the user ``token`` belongs to; an ``AuthError`` for an unknown token."""
        return self._rpc_call(UserDataPromise, "authenticate", token)


class UserDataStub(_capnweb_typed.TypedStub):
    """One user's data in the users service. Every member acts on that user: whoever holds
    this capability can reach this user's data and nobody else's.
    """

    __slots__ = ()
    _interface = "examples.microservices.api:UserData"

    def profile(self) -> ProfilePromise:
        """The user's profile."""
        return self._rpc_call(ProfilePromise, "profile")

    def notes(self) -> StrListPromise:
        """The user's notes, oldest first."""
        return self._rpc_call(StrListPromise, "notes")

    def add_note(self, text: str | _capnweb.RpcPromise[str]) -> StrListPromise:
        """Append a note (1 to 500 characters); the notes after it."""
        return self._rpc_call(StrListPromise, "addNote", text)


class UsersStub(_capnweb_typed.TypedStub):
    """The users service: opens a user's data for a session the auth service vouches for."""

    __slots__ = ()
    _interface = "examples.microservices.api:Users"

    def open(
        self, session: _examples_microservices_api.AuthSession | AuthSessionStub
    ) -> UserDataPromise:
        """The data of the session's user, once the auth service has redeemed a ticket of the
        session; an ``AuthError`` if it does not.
        """
        return self._rpc_call(UserDataPromise, "open", session)


class AuthPromise(_capnweb_typed.TypedPromise[AuthStub], AuthStub):
    """A pending ``AuthStub``: await it for the stub, or call its methods pipelined.

    The auth service: checks tokens, and vouches for the tickets of its sessions.
    """

    __slots__ = ()
    _result_type = AuthStub


class AuthSessionPromise(_capnweb_typed.TypedPromise[AuthSessionStub], AuthSessionStub):
    """A pending ``AuthSessionStub``: await it for the stub, or call its methods pipelined.

    A signed-in user, held by whoever presented the user's token: it can prove who it is
    to the auth service, and does nothing else.
    """

    __slots__ = ()
    _result_type = AuthSessionStub


class GatewayPromise(_capnweb_typed.TypedPromise[GatewayStub], GatewayStub):
    """A pending ``GatewayStub``: await it for the stub, or call its methods pipelined.

    The public API: the only service a client talks to, and nothing but a way in.
    """

    __slots__ = ()
    _result_type = GatewayStub


class ProfilePromise(_capnweb_typed.TypedPromise[_examples_microservices_api.Profile]):
    """A pending ``Profile``: await it, or read its fields pipelined.

    Who a user is, as the users service keeps it.
    """

    __slots__ = ()
    _result_type = _examples_microservices_api.Profile

    @property
    def user(self) -> _capnweb_typed.TypedPromise[str]:
        return self._rpc_get(_capnweb_typed.TypedPromise, "user")

    @property
    def name(self) -> _capnweb_typed.TypedPromise[str]:
        return self._rpc_get(_capnweb_typed.TypedPromise, "name")

    @property
    def email(self) -> _capnweb_typed.TypedPromise[str]:
        return self._rpc_get(_capnweb_typed.TypedPromise, "email")


class StrListPromise(_capnweb_typed.TypedListPromise[list[str], _capnweb_typed.TypedPromise[str]]):
    """A pending ``list[str]``: await it, or ``map()`` over it."""

    __slots__ = ()
    _result_type = list[str]
    _element_type = _capnweb_typed.TypedPromise


class UserDataPromise(_capnweb_typed.TypedPromise[UserDataStub], UserDataStub):
    """A pending ``UserDataStub``: await it for the stub, or call its methods pipelined.

    One user's data in the users service. Every member acts on that user: whoever holds
    this capability can reach this user's data and nobody else's.
    """

    __slots__ = ()
    _result_type = UserDataStub


class UsersPromise(_capnweb_typed.TypedPromise[UsersStub], UsersStub):
    """A pending ``UsersStub``: await it for the stub, or call its methods pipelined.

    The users service: opens a user's data for a session the auth service vouches for.
    """

    __slots__ = ()
    _result_type = UsersStub
