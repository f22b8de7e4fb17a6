# generated from examples.webtransport.api:Counter — do not edit
# generated from examples.webtransport.api:Listener — do not edit
# generated from examples.webtransport.api:Service — do not edit
"""Typed capnweb client stubs for:

- ``examples.webtransport.api:Counter``
- ``examples.webtransport.api:Listener``
- ``examples.webtransport.api:Service``

Get one with ``capnweb.connect(url, <Name>Stub)``; calls return typed promises that can be
awaited or pipelined. Regenerate with ``python -m capnweb_codegen``.
"""

from __future__ import annotations

import capnweb as _capnweb
import capnweb.typed as _capnweb_typed
import examples.webtransport.api as _examples_webtransport_api

__all__ = [
    "CounterPromise",
    "CounterStub",
    "GreetingPromise",
    "ListenerPromise",
    "ListenerStub",
    "ServicePromise",
    "ServiceStub",
]


class CounterStub(_capnweb_typed.TypedStub):
    """A counter held by the server for one session."""

    __slots__ = ()
    _interface = "examples.webtransport.api:Counter"

    def increment(
        self, amount: int | _capnweb.RpcPromise[int] = 1
    ) -> _capnweb_typed.TypedPromise[int]:
        """Add ``amount``; the new value."""
        return self._rpc_call(_capnweb_typed.TypedPromise, "increment", amount)

    @property
    def value(self) -> _capnweb_typed.TypedPromise[int]:
        """The current value."""
        return self._rpc_get(_capnweb_typed.TypedPromise, "value")


class ListenerStub(_capnweb_typed.TypedStub):
    """Implemented by the client: the server calls it back."""

    __slots__ = ()
    _interface = "examples.webtransport.api:Listener"

    def on_tick(self, n: int | _capnweb.RpcPromise[int]) -> _capnweb_typed.TypedPromise[None]:
        """Tick number ``n``."""
        return self._rpc_call(_capnweb_typed.TypedPromise, "onTick", n)


class ServiceStub(_capnweb_typed.TypedStub):
    """The main capability of each session."""

    __slots__ = ()
    _interface = "examples.webtransport.api:Service"

    def greet(self, name: str | _capnweb.RpcPromise[str]) -> GreetingPromise:
        """A greeting for ``name``."""
        return self._rpc_call(GreetingPromise, "greet", name)

    def square(self, x: float | _capnweb.RpcPromise[float]) -> _capnweb_typed.TypedPromise[float]:
        """``x * x``."""
        return self._rpc_call(_capnweb_typed.TypedPromise, "square", x)

    def make_counter(self, start: int | _capnweb.RpcPromise[int] = 0) -> CounterPromise:
        """A new counter starting at ``start``."""
        return self._rpc_call(CounterPromise, "makeCounter", start)

    def countdown(
        self,
        n: int | _capnweb.RpcPromise[int],
        listener: _examples_webtransport_api.Listener | ListenerStub,
    ) -> _capnweb_typed.TypedPromise[int]:
        """Call ``listener.on_tick`` for ``n``, ``n - 1``, ..., 1 (each awaited, in order);
        the number of ticks.
        """
        return self._rpc_call(_capnweb_typed.TypedPromise, "countdown", n, listener)

    def fail(self, message: str | _capnweb.RpcPromise[str]) -> _capnweb_typed.TypedPromise[None]:
        """Raise ValueError(``message``), which arrives as an RpcRangeError."""
        return self._rpc_call(_capnweb_typed.TypedPromise, "fail", message)


class CounterPromise(_capnweb_typed.TypedPromise[CounterStub], CounterStub):
    """A pending ``CounterStub``: await it for the stub, or call its methods pipelined.

    A counter held by the server for one session.
    """

    __slots__ = ()
    _result_type = CounterStub


class GreetingPromise(_capnweb_typed.TypedPromise[_examples_webtransport_api.Greeting]):
    """A pending ``Greeting``: await it, or read its fields pipelined.

    What ``greet`` answers: the text, and which session of the server answered.
    """

    __slots__ = ()
    _result_type = _examples_webtransport_api.Greeting

    @property
    def text(self) -> _capnweb_typed.TypedPromise[str]:
        return self._rpc_get(_capnweb_typed.TypedPromise, "text")

    @property
    def session(self) -> _capnweb_typed.TypedPromise[int]:
        return self._rpc_get(_capnweb_typed.TypedPromise, "session")


class ListenerPromise(_capnweb_typed.TypedPromise[ListenerStub], ListenerStub):
    """A pending ``ListenerStub``: await it for the stub, or call its methods pipelined.

    Implemented by the client: the server calls it back.
    """

    __slots__ = ()
    _result_type = ListenerStub


class ServicePromise(_capnweb_typed.TypedPromise[ServiceStub], ServiceStub):
    """A pending ``ServiceStub``: await it for the stub, or call its methods pipelined.

    The main capability of each session.
    """

    __slots__ = ()
    _result_type = ServiceStub
