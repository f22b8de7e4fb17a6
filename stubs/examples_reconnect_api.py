# generated from examples.reconnect.api:Api — do not edit
# generated from examples.reconnect.api:Counter — do not edit
"""Typed capnweb client stubs for:

- ``examples.reconnect.api:Api``
- ``examples.reconnect.api:Counter``

Get one with ``capnweb.connect(url, <Name>Stub)``; calls return typed promises that can be
awaited or pipelined. Regenerate with ``python -m capnweb_codegen``.
"""

from __future__ import annotations

import capnweb as _capnweb
import capnweb.typed as _capnweb_typed

__all__ = [
    "ApiPromise",
    "ApiStub",
    "CounterPromise",
    "CounterStrTuplePromise",
    "CounterStub",
]


class ApiStub(_capnweb_typed.TypedStub):
    """The main capability of the reconnect example server."""

    __slots__ = ()
    _interface = "examples.reconnect.api:Api"

    def login(self, name: str | _capnweb.RpcPromise[str]) -> CounterStrTuplePromise:
        """Start a new counter for ``name``, at 0: the counter and the token that resumes it."""
        return self._rpc_call(CounterStrTuplePromise, "login", name)

    def resume(self, token: str | _capnweb.RpcPromise[str]) -> CounterPromise:
        """The counter ``token`` was issued for (a RangeError if unknown or expired)."""
        return self._rpc_call(CounterPromise, "resume", token)


class CounterStub(_capnweb_typed.TypedStub):
    """A counter owned by one user, kept in the server's store."""

    __slots__ = ()
    _interface = "examples.reconnect.api:Counter"

    @property
    def owner(self) -> _capnweb_typed.TypedPromise[str]:
        """The name the counter was started for."""
        return self._rpc_get(_capnweb_typed.TypedPromise, "owner")

    @property
    def value(self) -> _capnweb_typed.TypedPromise[int]:
        """The current value."""
        return self._rpc_get(_capnweb_typed.TypedPromise, "value")

    def increment(
        self, amount: int | _capnweb.RpcPromise[int] = 1
    ) -> _capnweb_typed.TypedPromise[int]:
        """Add ``amount`` and return the new value (stored before the answer is sent)."""
        return self._rpc_call(_capnweb_typed.TypedPromise, "increment", amount)


class ApiPromise(_capnweb_typed.TypedPromise[ApiStub], ApiStub):
    """A pending ``ApiStub``: await it for the stub, or call its methods pipelined.

    The main capability of the reconnect example server.
    """

    __slots__ = ()
    _result_type = ApiStub


class CounterPromise(_capnweb_typed.TypedPromise[CounterStub], CounterStub):
    """A pending ``CounterStub``: await it for the stub, or call its methods pipelined.

    A counter owned by one user, kept in the server's store.
    """

    __slots__ = ()
    _result_type = CounterStub


class CounterStrTuplePromise(_capnweb_typed.TypedPromise[tuple[CounterStub, str]]):
    """A pending ``tuple[Counter, str]``."""

    __slots__ = ()
    _result_type = tuple[CounterStub, str]
