"""The reconnect example's client: increments its counter in a loop and carries on, with the
same counter, when the connection drops or the server is killed and started again.

Usage (from the repository root, with the server running):
``python -m examples.reconnect.client [ws://127.0.0.1:8080/rpc] [--name ann] [--count N]``.
"""

from __future__ import annotations

import argparse
import asyncio

from capnweb import RpcDisconnectedError
from capnweb.reconnect import Backoff, reconnecting
from stubs.examples_reconnect_api import ApiStub, CounterStub

__all__ = ["CounterClient", "main"]

BACKOFF = Backoff(initial=0.2, max_delay=2.0)
"""Retry soon after a drop, then every 2 s at most while the server is down."""


class CounterClient:
    """What the application rebuilds in each new session: its counter, through its token."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.token: str | None = None
        self.counter: CounterStub | None = None
        self.connections = 0

    async def on_connect(self, api: ApiStub) -> None:
        """Get the counter in the new session: resume it with the token, or log in."""
        self.connections += 1
        if self.token is not None:
            try:
                self.counter = await api.resume(self.token)
                value = await self.counter.value
                print(f"connection {self.connections}: resumed the counter at {value}", flush=True)
                return
            except ValueError:  # a RangeError: the server does not know the token any more
                print(f"connection {self.connections}: resume refused", flush=True)
        self.counter, self.token = await api.login(self.name)
        print(f"connection {self.connections}: logged in as {self.name}", flush=True)

    def on_disconnect(self, reason: BaseException) -> None:
        """Say so; the client is reconnecting already."""
        print(f"connection lost ({str(reason).strip()}); reconnecting", flush=True)


async def main(url: str, name: str, count: int | None, interval: float) -> None:
    """Increment the counter ``count`` times (None: forever), ``interval`` seconds apart."""
    app = CounterClient(name)
    async with reconnecting(
        url,
        ApiStub,
        on_connect=app.on_connect,
        on_disconnect=app.on_disconnect,
        backoff=BACKOFF,
    ) as client:
        done = 0
        while count is None or done < count:
            await client.api()  # waits while reconnecting; on_connect has set app.counter
            assert app.counter is not None
            try:
                value = await app.counter.increment()
            except RpcDisconnectedError:
                # The session ended during the call: it may or may not have been applied.
                # The next api() waits for the new session.
                continue
            done += 1
            print(f"{name}: {value}", flush=True)
            await asyncio.sleep(interval)
    print("done", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url", nargs="?", default="ws://127.0.0.1:8080/rpc")
    parser.add_argument("--name", default="ann")
    parser.add_argument("--count", type=int, default=None, help="stop after N increments")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between calls")
    args = parser.parse_args()
    try:
        asyncio.run(main(args.url, args.name, args.count, args.interval))
    except KeyboardInterrupt:
        pass
