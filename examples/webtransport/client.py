"""The WebTransport example's client: calls, pipelining, a callback, a typed error, and two
sessions on one QUIC connection, all through the generated stubs.

Usage (from the repository root, with the server running):
``python -m examples.webtransport.client https://127.0.0.1:4433/rpc --cert certs/cert.pem``
(trust that certificate file), or ``--hash HEX`` (the hash the server and ``capnweb cert``
print).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

import capnweb
from capnweb import RpcTarget
from capnweb.transports.webtransport import certificate_hash, open_webtransport
from examples.webtransport.api import Listener
from stubs.examples_webtransport_api import ServiceStub

__all__ = ["Printer", "main"]


class Printer(RpcTarget, Listener):
    """The callback the server calls: prints each tick."""

    async def on_tick(self, n: int) -> None:
        print(f"tick {n}")


async def main(url: str, digest: str) -> None:
    """Run the demonstration against the server at ``url`` whose certificate hashes to
    ``digest`` (hex SHA-256: only that certificate is trusted)."""
    hashes = [digest]
    async with capnweb.connect(
        url, ServiceStub, webtransport=True, certificate_hashes=hashes
    ) as api:
        greeting = await api.greet("WebTransport")
        print(f"greet: {greeting.text} (session {greeting.session})")
        # square() is sent with the promise of another square() as its argument: one round trip.
        print("square(square(3)) =", await api.square(api.square(3)))
        print("make_counter(10).increment(5) =", await api.make_counter(10).increment(5))
        print(f"countdown(3) made {await api.countdown(3, Printer())} ticks")
        try:
            await api.fail("no luck")
        except capnweb.RpcRangeError as error:
            print(f"fail raised {type(error).__name__}: {error}")

    # One QUIC connection, two RPC sessions on it (each its own stream and main capability).
    quic = await open_webtransport(url, certificate_hashes=hashes)
    async with (
        quic,
        capnweb.connect(url, ServiceStub, webtransport=quic) as a,
        capnweb.connect(url, ServiceStub, webtransport=quic) as b,
    ):
        first, second = await asyncio.gather(a.greet("a"), b.greet("b"))
        print(
            f"one QUIC connection, {quic.live_sessions} sessions: "
            f"session {first.session} and session {second.session}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url", nargs="?", default="https://127.0.0.1:4433/rpc")
    trust = parser.add_mutually_exclusive_group(required=True)
    trust.add_argument("--hash", help="the server certificate's SHA-256 (hex)")
    trust.add_argument("--cert", type=Path, help="the server's certificate file (PEM)")
    args = parser.parse_args()
    digest = args.hash if args.hash is not None else certificate_hash(args.cert)
    try:
        asyncio.run(main(args.url, digest))
    except (capnweb.RpcDisconnectedError, TimeoutError) as exc:
        sys.exit(f"cannot connect: {exc or 'no answer'}")
