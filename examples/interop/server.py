"""The interop contract server: ``TestTarget`` over WebSocket and HTTP batch on ``/rpc``.

Usage: ``python examples/interop/server.py --port N`` (or ``PORT=N``); listens on
127.0.0.1 only and exits promptly on SIGTERM. Method names are the contract's (camelCase).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import uuid
from typing import Any

import capnweb
from capnweb import RpcStub, RpcTarget, current_session, undefined
from capnweb.errors import make_error

MAX_DELAY_MS = 10_000

# session id -> number of live Counters made in that session (kept for the process lifetime)
LIVE: dict[str, int] = {}


class Counter(RpcTarget):
    """A counter capability; counts itself live until its last reference is released."""

    def __init__(self, value: int | float, session_id: str) -> None:
        self._value = value
        self._session_id = session_id
        self._released = False
        LIVE[session_id] += 1

    def increment(self, amount: int | float = 1) -> int | float:
        self._value += amount
        return self._value

    @property
    def value(self) -> int | float:
        return self._value

    def on_dispose(self) -> None:
        if not self._released:
            self._released = True
            LIVE[self._session_id] -= 1


class CallbackHolder(RpcTarget):
    """Keeps a client function and calls it on ``invoke``; releases it when released."""

    def __init__(self, func: RpcStub) -> None:
        self._func = func

    async def invoke(self, x: Any) -> Any:
        return await self._func(x)

    def on_dispose(self) -> None:
        self._func.dispose()


class TestTarget(RpcTarget):
    """The contract's main capability (INTEROP-CONTRACT.md, section 5)."""

    def __init__(self) -> None:
        self._id = uuid.uuid4().hex
        LIVE[self._id] = 0

    def square(self, i: float) -> float:
        return i * i

    def callSquare(self, target: RpcStub, i: float) -> dict[str, Any]:
        return {"result": target.square(i)}

    async def callFunction(self, func: RpcStub, i: Any) -> dict[str, Any]:
        return {"result": await func(i)}

    def throwError(self) -> None:
        raise ValueError("test error")  # ValueError is sent as a RangeError

    def throwTypedError(self, name: str, message: str) -> None:
        raise make_error(name, message)

    def makeCounter(self, i: int | float = 0) -> Counter:
        return Counter(i, self._id)

    def makeCounters(self, values: list[int | float]) -> dict[str, Any]:
        return {"counters": [Counter(v, self._id) for v in values], "count": len(values)}

    async def incrementCounter(self, counter: Any, i: int | float = 1) -> Any:
        # a Counter stub, or a plain object carrying an `increment` function
        increment = counter["increment"] if isinstance(counter, dict) else counter.increment
        return await increment(i)

    def generateFibonacci(self, n: int) -> list[int]:
        out: list[int] = []
        a, b = 0, 1
        for _ in range(max(0, int(n))):
            out.append(a)
            a, b = b, a + b
        return out

    def returnNull(self) -> None:
        return None

    def returnUndefined(self) -> Any:
        return undefined

    def returnNumber(self, i: Any) -> Any:
        return i

    def echo(self, x: Any) -> Any:
        return x

    async def delayedEcho(self, ms: float, x: Any) -> Any:
        await asyncio.sleep(max(0.0, min(float(ms), MAX_DELAY_MS)) / 1000)
        return x

    def makeCallbackHolder(self, func: RpcStub) -> CallbackHolder:
        return CallbackHolder(func)

    def getSessionId(self) -> str:
        return self._id

    def getLiveCounters(self, session_id: Any = None) -> int:
        key = self._id if session_id is None or session_id is undefined else session_id
        if key not in LIVE:
            raise ValueError(f"unknown session id: {key}")
        return LIVE[key]

    # -- test-only extras (not in the contract), mirrored by the TypeScript test server

    def getStats(self) -> dict[str, int]:
        stats = current_session().stats()
        return {"imports": stats.imports, "exports": stats.exports}

    async def callTwice(self, func: RpcStub, x: Any) -> list[Any]:
        return [await func(x), await func(x + 1)]

    async def callMethod(self, cap: RpcStub, name: str, args: Any = None) -> Any:
        return await cap[name](*(args if isinstance(args, list) else []))

    async def getProperty(self, cap: RpcStub, name: str) -> Any:
        return await cap[name]

    def throwValue(self, v: Any) -> None:
        if isinstance(v, BaseException):
            raise v
        raise capnweb.RpcError(str(v), props={"value": v})

    def returnNestedPromise(self, ms: float, x: Any) -> dict[str, Any]:
        return {"value": capnweb.RpcPromise.from_awaitable(self.delayedEcho(ms, x))}


async def main(port: int) -> None:
    server = await capnweb.serve(TestTarget, "127.0.0.1", port, "/rpc")
    print(f"listening {server.port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.close()


def parse_port(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=None)
    args = parser.parse_args(argv)
    port = args.port if args.port is not None else os.environ.get("PORT")
    if port is None:
        parser.error("give --port N or set PORT")
    return int(port)


if __name__ == "__main__":
    asyncio.run(main(parse_port(sys.argv[1:])))
