"""The integrated example's client: the same calls over WebSocket, HTTP batch and
WebTransport against one server, through the generated stubs; one line per transport.

Usage (from the repository root, with the server running):
``python -m examples.webtransport_integrated.client http://127.0.0.1:8080/`` (it reads
``/config.json`` there for the WebTransport URL and a development certificate's hash).
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

import aiohttp

import capnweb
from stubs.examples_webtransport_api import ServiceStub

__all__ = ["answers", "main"]


async def answers(api: ServiceStub) -> str:
    """Start every call before awaiting any (so an HTTP batch sends them in one request), then
    describe the results in one line."""
    greeting = api.greet("python").text
    square = api.square(api.square(3))  # pipelined: the promise is the argument
    counter = api.make_counter(10).increment(5)
    failed = api.fail("no luck")
    results = await asyncio.gather(greeting, square, counter, failed, return_exceptions=True)
    text, squared, count, error = results
    return (
        f"{text} | square(square(3)) = {squared} | make_counter(10).increment(5) = {count}"
        f" | fail: {type(error).__name__}: {error}"
    )


async def main(base: str) -> None:
    """Run :func:`answers` over each transport of the server at ``base``."""
    async with aiohttp.ClientSession() as http, http.get(base + "config.json") as response:
        response.raise_for_status()
        config: dict[str, Any] = await response.json()
    rpc = base.rstrip("/") + config["path"]
    ws = "ws" + rpc.removeprefix("http")  # http:// -> ws://, https:// -> wss://
    async with capnweb.connect(ws, ServiceStub) as api:
        print("websocket:", await answers(api))
    async with capnweb.connect(rpc, ServiceStub) as api:
        print("http batch:", await answers(api))
    # A development certificate is trusted by its hash; a CA's by the system's CAs.
    digest = config.get("certificateHash")
    hashes = [digest] if digest else []
    async with capnweb.connect(
        config["webtransport"], ServiceStub, webtransport=True, certificate_hashes=hashes
    ) as api:
        print("webtransport:", await answers(api))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("base", nargs="?", default="http://127.0.0.1:8080/")
    base = parser.parse_args().base
    asyncio.run(main(base if base.endswith("/") else base + "/"))
