# generated from examples.batch_pipelining.api:Api — do not edit
"""Typed capnweb client stubs for:

- ``examples.batch_pipelining.api:Api``

Get one with ``capnweb.connect(url, <Name>Stub)``; calls return typed promises that can be
awaited or pipelined. Regenerate with ``python -m capnweb_codegen``.
"""

from __future__ import annotations

import capnweb as _capnweb
import capnweb.typed as _capnweb_typed
import examples.batch_pipelining.api as _examples_batch_pipelining_api

__all__ = [
    "ApiPromise",
    "ApiStub",
    "NotificationListPromise",
    "NotificationPromise",
    "ProfilePromise",
    "UserPromise",
]


class ApiStub(_capnweb_typed.TypedStub):
    """The main capability of the batch pipelining example server."""

    __slots__ = ()
    _interface = "examples.batch_pipelining.api:Api"

    def authenticate(self, token: str | _capnweb.RpcPromise[str]) -> UserPromise:
        """The user ``token`` belongs to (a RangeError when it belongs to nobody)."""
        return self._rpc_call(UserPromise, "authenticate", token)

    def profile(self, user_id: int | _capnweb.RpcPromise[int]) -> ProfilePromise:
        """The profile of user ``user_id``."""
        return self._rpc_call(ProfilePromise, "profile", user_id)

    def notifications(self, user_id: int | _capnweb.RpcPromise[int]) -> NotificationListPromise:
        """The notifications of user ``user_id``, newest first."""
        return self._rpc_call(NotificationListPromise, "notifications", user_id)


class ApiPromise(_capnweb_typed.TypedPromise[ApiStub], ApiStub):
    """A pending ``ApiStub``: await it for the stub, or call its methods pipelined.

    The main capability of the batch pipelining example server.
    """

    __slots__ = ()
    _result_type = ApiStub


class NotificationPromise(_capnweb_typed.TypedPromise[_examples_batch_pipelining_api.Notification]):
    """A pending ``Notification``: await it, or read its fields pipelined.

    One message waiting for a user.
    """

    __slots__ = ()
    _result_type = _examples_batch_pipelining_api.Notification

    @property
    def id(self) -> _capnweb_typed.TypedPromise[int]:
        return self._rpc_get(_capnweb_typed.TypedPromise, "id")

    @property
    def text(self) -> _capnweb_typed.TypedPromise[str]:
        return self._rpc_get(_capnweb_typed.TypedPromise, "text")

    @property
    def unread(self) -> _capnweb_typed.TypedPromise[bool]:
        return self._rpc_get(_capnweb_typed.TypedPromise, "unread")


class NotificationListPromise(
    _capnweb_typed.TypedListPromise[
        list[_examples_batch_pipelining_api.Notification], NotificationPromise
    ]
):
    """A pending ``list[Notification]``: await it, or ``map()`` over it."""

    __slots__ = ()
    _result_type = list[_examples_batch_pipelining_api.Notification]
    _element_type = NotificationPromise


class ProfilePromise(_capnweb_typed.TypedPromise[_examples_batch_pipelining_api.Profile]):
    """A pending ``Profile``: await it, or read its fields pipelined.

    What a user tells about themselves.
    """

    __slots__ = ()
    _result_type = _examples_batch_pipelining_api.Profile

    @property
    def user_id(self) -> _capnweb_typed.TypedPromise[int]:
        return self._rpc_get(_capnweb_typed.TypedPromise, "user_id")

    @property
    def display_name(self) -> _capnweb_typed.TypedPromise[str]:
        return self._rpc_get(_capnweb_typed.TypedPromise, "display_name")

    @property
    def bio(self) -> _capnweb_typed.TypedPromise[str]:
        return self._rpc_get(_capnweb_typed.TypedPromise, "bio")


class UserPromise(_capnweb_typed.TypedPromise[_examples_batch_pipelining_api.User]):
    """A pending ``User``: await it, or read its fields pipelined.

    Who a token belongs to.
    """

    __slots__ = ()
    _result_type = _examples_batch_pipelining_api.User

    @property
    def id(self) -> _capnweb_typed.TypedPromise[int]:
        return self._rpc_get(_capnweb_typed.TypedPromise, "id")

    @property
    def name(self) -> _capnweb_typed.TypedPromise[str]:
        return self._rpc_get(_capnweb_typed.TypedPromise, "name")
