"""A tour of capnweb in one process: a server on a free port and a client talking to it.

Run with ``bash examples/run-demo``. It shows calls, promise pipelining (counting round
trips), a returned capability, a callback from the server into the client, map(), and a
remote error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import capnweb
from capnweb import RpcStub, RpcTarget


class Counter(RpcTarget):
    """A capability: whoever holds a stub can increment it."""

    def __init__(self, start: int) -> None:
        self._n = start

    def increment(self, by: int = 1) -> int:
        self._n += by
        return self._n

    @property
    def value(self) -> int:
        return self._n


class Api(RpcTarget):
    """The server's main capability."""

    def square(self, i: int) -> int:
        return i * i

    def make_counter(self, start: int = 0) -> Counter:
        return Counter(start)

    async def greet(self, name: str, callback: Callable[[str], Awaitable[Any]]) -> str:
        reply = await callback(f"hello {name}, this is the server calling you back")
        return f"the client answered: {reply}"

    def fibonacci(self, n: int) -> list[int]:
        out, a, b = [], 0, 1
        for _ in range(n):
            out.append(a)
            a, b = b, a + b
        return out

    def divide(self, a: float, b: float) -> float:
        if b == 0:
            raise ValueError("division by zero")
        return a / b


async def main() -> None:
    async with capnweb.serve(Api) as server:
        print(f"server listening on {server.ws_url}")
        conn = capnweb.connect(server.ws_url)
        async with conn as api:
            print("square(12) =", await api.square(12))

            # A callback: the server calls a function that lives in this client.
            def answer(message: str) -> str:
                print("  client got:", message)
                return "nice to meet you"

            print(await api.greet("ann", answer))

            # map(): square every element of a remote list without a round trip per element.
            squares = await api.fibonacci(8).map(lambda v: api.square(v))
            print("fibonacci(8), each squared on the server:", squares)

            try:
                await api.divide(1, 0)
            except ValueError as e:
                print(f"remote error arrived as {type(e).__name__}: {e}")
            stub: RpcStub = await api.make_counter(1)
            with stub:
                print("counter stub, incremented:", await stub.increment())
            print("session stats at the end:", conn.stats())

        # Pipelining over HTTP batch: three dependent calls travel in ONE request.
        batch = capnweb.connect(server.url)
        async with batch as api:
            counter = api.make_counter(10)
            counter.increment(5)
            total = await counter.increment(100)
            requests = _requests(batch)
        print(f"make_counter(10) -> +5 -> +100 = {total} in {requests} round trip(s)")


def _requests(conn: capnweb.Connection[Any]) -> int:
    transport: Any = conn.transport
    return int(transport.requests)


if __name__ == "__main__":
    asyncio.run(main())
