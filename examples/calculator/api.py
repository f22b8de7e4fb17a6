"""The calculator example's interface: arithmetic on numbers, and on a ``Value`` capability.

``server.py`` implements these Protocols; ``python -m capnweb_codegen examples.calculator.api
--out stubs`` turns them into the typed client stubs ``client.py`` uses.
"""

from __future__ import annotations

from typing import Protocol

from capnweb.interface import camel_case, rpc_interface, rpc_method


@rpc_interface(names=camel_case)
class Value(Protocol):
    """A number held by the server. Each operation returns a new ``Value``; this one stays."""

    @rpc_method
    async def add(self, x: float) -> Value:
        """This value plus ``x``."""

    @rpc_method
    async def subtract(self, x: float) -> Value:
        """This value minus ``x``."""

    @rpc_method
    async def multiply(self, x: float) -> Value:
        """This value times ``x``."""

    @rpc_method
    async def divide(self, x: float) -> Value:
        """This value divided by ``x`` (a RangeError when ``x`` is 0)."""

    @rpc_method
    async def get(self) -> float:
        """The number."""


@rpc_interface(names=camel_case)
class Calculator(Protocol):
    """The calculator: the main capability of the example server."""

    @rpc_method
    async def add(self, a: float, b: float) -> float:
        """``a + b``."""

    @rpc_method
    async def subtract(self, a: float, b: float) -> float:
        """``a - b``."""

    @rpc_method
    async def multiply(self, a: float, b: float) -> float:
        """``a * b``."""

    @rpc_method
    async def divide(self, a: float, b: float) -> float:
        """``a / b`` (a RangeError when ``b`` is 0)."""

    @rpc_method
    async def value(self, x: float) -> Value:
        """A ``Value`` capability holding ``x``, to compute on step by step."""
