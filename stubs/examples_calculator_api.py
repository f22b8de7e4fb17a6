# generated from examples.calculator.api:Calculator — do not edit
# generated from examples.calculator.api:Value — do not edit
"""Typed capnweb client stubs for:

- ``examples.calculator.api:Calculator``
- ``examples.calculator.api:Value``

Get one with ``capnweb.connect(url, <Name>Stub)``; calls return typed promises that can be
awaited or pipelined. Regenerate with ``python -m capnweb_codegen``.
"""

from __future__ import annotations

import capnweb as _capnweb
import capnweb.typed as _capnweb_typed

__all__ = [
    "CalculatorPromise",
    "CalculatorStub",
    "ValuePromise",
    "ValueStub",
]


class CalculatorStub(_capnweb_typed.TypedStub):
    """The calculator: the main capability of the example server."""

    __slots__ = ()
    _interface = "examples.calculator.api:Calculator"

    def add(
        self, a: float | _capnweb.RpcPromise[float], b: float | _capnweb.RpcPromise[float]
    ) -> _capnweb_typed.TypedPromise[float]:
        """``a + b``."""
        return self._rpc_call(_capnweb_typed.TypedPromise, "add", a, b)

    def subtract(
        self, a: float | _capnweb.RpcPromise[float], b: float | _capnweb.RpcPromise[float]
    ) -> _capnweb_typed.TypedPromise[float]:
        """``a - b``."""
        return self._rpc_call(_capnweb_typed.TypedPromise, "subtract", a, b)

    def multiply(
        self, a: float | _capnweb.RpcPromise[float], b: float | _capnweb.RpcPromise[float]
    ) -> _capnweb_typed.TypedPromise[float]:
        """``a * b``."""
        return self._rpc_call(_capnweb_typed.TypedPromise, "multiply", a, b)

    def divide(
        self, a: float | _capnweb.RpcPromise[float], b: float | _capnweb.RpcPromise[float]
    ) -> _capnweb_typed.TypedPromise[float]:
        """``a / b`` (a RangeError when ``b`` is 0)."""
        return self._rpc_call(_capnweb_typed.TypedPromise, "divide", a, b)

    def value(self, x: float | _capnweb.RpcPromise[float]) -> ValuePromise:
        """A ``Value`` capability holding ``x``, to compute on step by step."""
        return self._rpc_call(ValuePromise, "value", x)


class ValueStub(_capnweb_typed.TypedStub):
    """A number held by the server. Each operation returns a new ``Value``; this one stays."""

    __slots__ = ()
    _interface = "examples.calculator.api:Value"

    def add(self, x: float | _capnweb.RpcPromise[float]) -> ValuePromise:
        """This value plus ``x``."""
        return self._rpc_call(ValuePromise, "add", x)

    def subtract(self, x: float | _capnweb.RpcPromise[float]) -> ValuePromise:
        """This value minus ``x``."""
        return self._rpc_call(ValuePromise, "subtract", x)

    def multiply(self, x: float | _capnweb.RpcPromise[float]) -> ValuePromise:
        """This value times ``x``."""
        return self._rpc_call(ValuePromise, "multiply", x)

    def divide(self, x: float | _capnweb.RpcPromise[float]) -> ValuePromise:
        """This value divided by ``x`` (a RangeError when ``x`` is 0)."""
        return self._rpc_call(ValuePromise, "divide", x)

    def get(self) -> _capnweb_typed.TypedPromise[float]:
        """The number."""
        return self._rpc_call(_capnweb_typed.TypedPromise, "get")


class CalculatorPromise(_capnweb_typed.TypedPromise[CalculatorStub], CalculatorStub):
    """A pending ``CalculatorStub``: await it for the stub, or call its methods pipelined.

    The calculator: the main capability of the example server.
    """

    __slots__ = ()
    _result_type = CalculatorStub


class ValuePromise(_capnweb_typed.TypedPromise[ValueStub], ValueStub):
    """A pending ``ValueStub``: await it for the stub, or call its methods pipelined.

    A number held by the server. Each operation returns a new ``Value``; this one stays.
    """

    __slots__ = ()
    _result_type = ValueStub
