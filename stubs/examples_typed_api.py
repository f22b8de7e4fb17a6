# generated from examples.typed.api:Api — do not edit
# generated from examples.typed.api:Counter — do not edit
# generated from examples.typed.api:User — do not edit
"""Typed capnweb client stubs for:

- ``examples.typed.api:Api``
- ``examples.typed.api:Counter``
- ``examples.typed.api:User``

Get one with ``capnweb.connect(url, <Name>Stub)``; calls return typed promises that can be
awaited or pipelined. Regenerate with ``python -m capnweb_codegen``.
"""

from __future__ import annotations

import collections.abc as _collections_abc
import typing as _typing

import capnweb as _capnweb
import capnweb.typed as _capnweb_typed
import examples.typed.api as _examples_typed_api

__all__ = [
    "ApiPromise",
    "ApiStub",
    "CounterPromise",
    "CounterStub",
    "IntListPromise",
    "OptionalProfilePromise",
    "ProfilePromise",
    "StatsPromise",
    "StrListPromise",
    "UserPromise",
    "UserStub",
]


class ApiStub(_capnweb_typed.TypedStub):
    """The directory service: the main capability of the typed example server."""

    __slots__ = ()
    _interface = "examples.typed.api:Api"

    def user(self, name: str | _capnweb.RpcPromise[str]) -> UserPromise:
        """The user called ``name`` (created on first use)."""
        return self._rpc_call(UserPromise, "user", name)

    def user_names(
        self,
        order: _typing.Literal["asc", "desc"]
        | _capnweb.RpcPromise[_typing.Literal["asc", "desc"]] = "asc",
    ) -> StrListPromise:
        """The names of every user, sorted in ``order``."""
        return self._rpc_call(StrListPromise, "userNames", order)

    def find(self, name: str | _capnweb.RpcPromise[str]) -> OptionalProfilePromise:
        """The profile of user ``name``, or None when there is no such user."""
        return self._rpc_call(OptionalProfilePromise, "find", name)

    def square(self, x: int | _capnweb.RpcPromise[int]) -> _capnweb_typed.TypedPromise[int]:
        """``x * x``."""
        return self._rpc_call(_capnweb_typed.TypedPromise, "square", x)

    def fibonacci(self, n: int | _capnweb.RpcPromise[int]) -> IntListPromise:
        """The first ``n`` Fibonacci numbers."""
        return self._rpc_call(IntListPromise, "fibonacci", n)

    def make_counter(self, start: int | _capnweb.RpcPromise[int] = 0) -> CounterPromise:
        """A new counter starting at ``start``."""
        return self._rpc_call(CounterPromise, "makeCounter", start)

    def call_back(
        self,
        callback: _collections_abc.Callable[[int], _collections_abc.Awaitable[int]]
        | _capnweb.RpcStub,
        x: int | _capnweb.RpcPromise[int],
    ) -> _capnweb_typed.TypedPromise[int]:
        """Call ``callback(x)`` on the caller's side and return what it returned, plus one."""
        return self._rpc_call(_capnweb_typed.TypedPromise, "callBack", callback, x)

    def stats(self) -> StatsPromise:
        """How many users and counters the directory holds."""
        return self._rpc_call(StatsPromise, "stats")


class CounterStub(_capnweb_typed.TypedStub):
    """A counter living on the server; whoever holds a stub may increment it."""

    __slots__ = ()
    _interface = "examples.typed.api:Counter"

    def increment(
        self, amount: int | _capnweb.RpcPromise[int] = 1
    ) -> _capnweb_typed.TypedPromise[int]:
        """Add ``amount`` and return the new value."""
        return self._rpc_call(_capnweb_typed.TypedPromise, "increment", amount)

    @property
    def value(self) -> _capnweb_typed.TypedPromise[int]:
        """The current value."""
        return self._rpc_get(_capnweb_typed.TypedPromise, "value")


class UserStub(_capnweb_typed.TypedStub):
    """One user of the directory."""

    __slots__ = ()
    _interface = "examples.typed.api:User"

    @property
    def profile(self) -> ProfilePromise:
        """The user's public profile."""
        return self._rpc_get(ProfilePromise, "profile")

    def set_bio(self, bio: str | _capnweb.RpcPromise[str]) -> ProfilePromise:
        """Replace the user's bio; returns the updated profile."""
        return self._rpc_call(ProfilePromise, "setBio", bio)

    def visits(self) -> CounterPromise:
        """The counter of this user's profile visits (the same counter on every call)."""
        return self._rpc_call(CounterPromise, "visits")


class ApiPromise(_capnweb_typed.TypedPromise[ApiStub], ApiStub):
    """A pending ``ApiStub``: await it for the stub, or call its methods pipelined.

    The directory service: the main capability of the typed example server.
    """

    __slots__ = ()
    _result_type = ApiStub


class CounterPromise(_capnweb_typed.TypedPromise[CounterStub], CounterStub):
    """A pending ``CounterStub``: await it for the stub, or call its methods pipelined.

    A counter living on the server; whoever holds a stub may increment it.
    """

    __slots__ = ()
    _result_type = CounterStub


class IntListPromise(_capnweb_typed.TypedListPromise[list[int], _capnweb_typed.TypedPromise[int]]):
    """A pending ``list[int]``: await it, or ``map()`` over it."""

    __slots__ = ()
    _result_type = list[int]
    _element_type = _capnweb_typed.TypedPromise


class OptionalProfilePromise(_capnweb_typed.TypedPromise[_examples_typed_api.Profile | None]):
    """A pending ``Profile | None``."""

    __slots__ = ()
    _result_type = _examples_typed_api.Profile | None


class ProfilePromise(_capnweb_typed.TypedPromise[_examples_typed_api.Profile]):
    """A pending ``Profile``: await it, or read its fields pipelined.

    What anyone may know about a user.
    """

    __slots__ = ()
    _result_type = _examples_typed_api.Profile

    @property
    def name(self) -> _capnweb_typed.TypedPromise[str]:
        return self._rpc_get(_capnweb_typed.TypedPromise, "name")

    @property
    def bio(self) -> _capnweb_typed.TypedPromise[str]:
        return self._rpc_get(_capnweb_typed.TypedPromise, "bio")

    @property
    def tags(self) -> StrListPromise:
        return self._rpc_get(StrListPromise, "tags")


class StatsPromise(_capnweb_typed.TypedPromise[_examples_typed_api.Stats]):
    """A pending ``Stats``: await it, or read its fields pipelined.

    Numbers about the directory.
    """

    __slots__ = ()
    _result_type = _examples_typed_api.Stats

    @property
    def users(self) -> _capnweb_typed.TypedPromise[int]:
        return self._rpc_get(_capnweb_typed.TypedPromise, "users")

    @property
    def counters(self) -> _capnweb_typed.TypedPromise[int]:
        return self._rpc_get(_capnweb_typed.TypedPromise, "counters")


class StrListPromise(_capnweb_typed.TypedListPromise[list[str], _capnweb_typed.TypedPromise[str]]):
    """A pending ``list[str]``: await it, or ``map()`` over it."""

    __slots__ = ()
    _result_type = list[str]
    _element_type = _capnweb_typed.TypedPromise


class UserPromise(_capnweb_typed.TypedPromise[UserStub], UserStub):
    """A pending ``UserStub``: await it for the stub, or call its methods pipelined.

    One user of the directory.
    """

    __slots__ = ()
    _result_type = UserStub
