"""The calculator example's server: implementations of the Protocols of ``api.py``.

Usage (from the repository root): ``python -m examples.calculator.server --port N``
(``--port 0``: any free port). It prints ``listening N`` once it accepts connections.
"""

from __future__ import annotations

import argparse
import asyncio

import capnweb
from capnweb import RpcTarget
from examples.calculator.api import Calculator, Value

__all__ = ["CalculatorImpl", "ValueImpl", "main"]


def quotient(a: float, b: float) -> float:
    """``a / b``. Dividing by zero raises ValueError, which travels as a RangeError."""
    if b == 0:
        raise ValueError("division by zero")
    return a / b


class ValueImpl(RpcTarget, Value):
    """A number; returned by reference, so the client gets a capability, not the number."""

    def __init__(self, number: float) -> None:
        self._number = number

    async def add(self, x: float) -> Value:
        return ValueImpl(self._number + x)

    async def subtract(self, x: float) -> Value:
        return ValueImpl(self._number - x)

    async def multiply(self, x: float) -> Value:
        return ValueImpl(self._number * x)

    async def divide(self, x: float) -> Value:
        return ValueImpl(quotient(self._number, x))

    async def get(self) -> float:
        return self._number


class CalculatorImpl(RpcTarget, Calculator):
    """The main capability of each session."""

    async def add(self, a: float, b: float) -> float:
        return a + b

    async def subtract(self, a: float, b: float) -> float:
        return a - b

    async def multiply(self, a: float, b: float) -> float:
        return a * b

    async def divide(self, a: float, b: float) -> float:
        return quotient(a, b)

    async def value(self, x: float) -> Value:
        return ValueImpl(x)


async def main(port: int) -> None:
    """Serve on 127.0.0.1:``port`` (``/rpc``, WebSocket and HTTP batch) until SIGTERM or SIGINT."""
    server = await capnweb.serve(CalculatorImpl, host="127.0.0.1", port=port)
    print(f"listening {server.port}", flush=True)
    await server.serve_until_signal()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8080, help="0: any free port")
    asyncio.run(main(parser.parse_args().port))
