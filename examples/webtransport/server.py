"""The WebTransport example's server: the Protocols of ``api.py`` served over HTTP/3.

Usage (from the repository root): make a development certificate once,
``python -m capnweb cert --out certs`` (it prints the certificate's SHA-256 hash), then
``python -m examples.webtransport.server --port 4433 --cert certs/cert.pem --key
certs/key.pem``. It prints ``listening N`` (a UDP port; ``--port 0``: any free one), the URL
and the certificate's hash once it accepts sessions, and serves until SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import sys
from collections.abc import Callable
from pathlib import Path

import capnweb
from capnweb import RpcTarget
from capnweb.transports.webtransport import certificate_hash
from examples.webtransport.api import Counter, Greeting, Listener, Service
from stubs.examples_webtransport_api import ListenerStub

__all__ = ["CounterImpl", "ServiceImpl", "main", "sessions"]


class CounterImpl(RpcTarget, Counter):
    """A counter; returned by reference, so the client gets a capability."""

    def __init__(self, start: int) -> None:
        self._value = start

    async def increment(self, amount: int = 1) -> int:
        self._value += amount
        return self._value

    @property
    def value(self) -> int:
        return self._value


class ServiceImpl(RpcTarget, Service):
    """The main capability of one session (``number``: the how-manieth session it is)."""

    def __init__(self, number: int) -> None:
        self._number = number

    async def greet(self, name: str) -> Greeting:
        return Greeting(text=f"Hello, {name}!", session=self._number)

    async def square(self, x: float) -> float:
        return x * x

    async def make_counter(self, start: int = 0) -> Counter:
        return CounterImpl(start)

    async def countdown(self, n: int, listener: Listener) -> int:
        # The argument is released when this call returns: the calls below finish before.
        stub = ListenerStub(listener)
        for tick in range(n, 0, -1):
            await stub.on_tick(tick)
        return n

    async def fail(self, message: str) -> None:
        raise ValueError(message)


def sessions() -> Callable[[], ServiceImpl]:
    """The ``main`` factory: a new ``ServiceImpl`` for each session, numbered from 1."""
    numbers = itertools.count(1)
    return lambda: ServiceImpl(next(numbers))


async def main(port: int, cert: Path, key: Path) -> int:
    """Serve on UDP 127.0.0.1:``port`` until SIGTERM or SIGINT; 1 if the certificate is missing."""
    if not cert.is_file() or not key.is_file():
        print(
            f"error: {cert} or {key} is missing: make a development certificate with "
            f"`python -m capnweb cert --out {cert.parent}`",
            file=sys.stderr,
            flush=True,
        )
        return 1
    server = await capnweb.serve_webtransport(
        sessions(), host="127.0.0.1", port=port, certificate=cert, private_key=key
    )
    print(f"listening {server.port}", flush=True)
    print(f"url {server.url}", flush=True)
    print(f"certificate sha-256 {certificate_hash(cert)}", flush=True)
    await server.serve_until_signal()
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=4433, help="UDP port; 0: any free port")
    parser.add_argument("--cert", type=Path, default=Path("certs/cert.pem"), help="PEM chain")
    parser.add_argument("--key", type=Path, default=Path("certs/key.pem"), help="PEM key")
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.port, args.cert, args.key)))
