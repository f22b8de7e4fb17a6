"""The calculator example's client: pipelined arithmetic, a typed error and a capability as a
result, all through the generated stubs.

Usage (from the repository root, with the server running):
``python -m examples.calculator.client ws://127.0.0.1:8080/rpc``.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable

import aiohttp

import capnweb
from stubs.examples_calculator_api import CalculatorStub

__all__ = ["in_one_batch", "main"]


async def main(url: str) -> None:
    """Compute over a WebSocket session, then count what the same costs as HTTP batches."""
    async with capnweb.connect(url, CalculatorStub) as calc:
        # multiply() and divide() are sent at once, and add() right behind them with their
        # promises as arguments: the server feeds it their results. One round trip.
        total = await calc.add(calc.multiply(2, 3), calc.divide(8, 4))
        print("add(multiply(2, 3), divide(8, 4)) =", total)

        # value() returns a capability; so does each of its operations. Pipelined too.
        print("value(5).add(3).multiply(2).get() =", await calc.value(5).add(3).multiply(2).get())

        # The server raises ValueError: it travels as a RangeError and arrives typed.
        try:
            await calc.divide(1, 0)
        except capnweb.RpcRangeError as error:
            print(f"divide(1, 0) raised {type(error).__name__}: {error}")

    # The proof: the same endpoint answers HTTP batches, and a batch is one HTTP request.
    batch_url = "http" + url.removeprefix("ws")  # ws:// -> http://, wss:// -> https://
    result, requests = await in_one_batch(
        batch_url, lambda calc: calc.add(calc.multiply(2, 3), calc.divide(8, 4))
    )
    print(f"HTTP batch: add(multiply(2, 3), divide(8, 4)) = {result}, HTTP requests: {requests}")
    result, requests = await in_one_batch(
        batch_url, lambda calc: calc.value(5).add(3).multiply(2).get()
    )
    print(f"HTTP batch: value(5).add(3).multiply(2).get() = {result}, HTTP requests: {requests}")


async def in_one_batch(
    url: str, compute: Callable[[CalculatorStub], Awaitable[float]]
) -> tuple[float, int]:
    """Await ``compute(calc)`` in an HTTP batch session: its result, and the number of HTTP
    requests that took (counted by aiohttp's request tracing)."""
    requests = 0

    async def count(*_: object) -> None:
        nonlocal requests
        requests += 1

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(count)
    async with (
        aiohttp.ClientSession(trace_configs=[trace]) as http,
        capnweb.connect(url, CalculatorStub, http=http) as calc,
    ):
        result = await compute(calc)
    return result, requests


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url", nargs="?", default="ws://127.0.0.1:8080/rpc")
    asyncio.run(main(parser.parse_args().url))
