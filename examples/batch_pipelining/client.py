"""The batch pipelining example's client: the same dependent chain of calls made twice over
HTTP batches, pipelined in one POST and then awaited one by one, each way timed and its POSTs
counted.

Usage (from the repository root):
``python -m examples.batch_pipelining.client http://127.0.0.1:N/rpc [--token ann-token]``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import capnweb
from capnweb.transports.http_batch import BatchClientTransport
from examples.batch_pipelining.api import Notification, Profile, User
from stubs.examples_batch_pipelining_api import ApiStub

__all__ = ["Batches", "Results", "main", "one_by_one", "pipelined"]


@dataclass
class Results:
    """What the chain of calls gives."""

    user: User
    profile: Profile
    notifications: list[Notification]

    def lines(self) -> list[str]:
        """The results, one line each, as printed."""
        unread = sum(n.unread for n in self.notifications)
        return [
            f"user: {self.user.name} (id {self.user.id})",
            f"profile: {self.profile.display_name}, {self.profile.bio}",
            f"notifications: {len(self.notifications)} ({unread} unread), "
            f"latest: {self.notifications[0].text if self.notifications else '-'}",
        ]


class Batches:
    """Opens HTTP batches to one URL and counts the POSTs they sent."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.requests = 0

    @asynccontextmanager
    async def batch(self) -> AsyncIterator[ApiStub]:
        """One HTTP batch: the calls started in the block before the first ``await`` go in one
        POST; the session ends with its response, so a later call needs a new batch."""
        connection = capnweb.connect(self.url, ApiStub)
        try:
            async with connection as api:
                yield api
        finally:
            transport = connection.transport
            if isinstance(transport, BatchClientTransport):
                self.requests += transport.requests  # the POSTs this batch actually sent


async def pipelined(batches: Batches, token: str) -> Results:
    """Every call started before anything is awaited; ``user.id`` is passed while still
    pending, so the server resolves it: one POST."""
    async with batches.batch() as api:
        user = api.authenticate(token)
        profile = api.profile(user.id)
        notifications = api.notifications(user.id)
        return Results(*await asyncio.gather(user, profile, notifications))


async def one_by_one(batches: Batches, token: str) -> Results:
    """Each call awaited before the next is made: one batch, so one POST, per call."""
    async with batches.batch() as api:
        user = await api.authenticate(token)
    async with batches.batch() as api:
        profile = await api.profile(user.id)
    async with batches.batch() as api:
        notifications = await api.notifications(user.id)
    return Results(user, profile, notifications)


async def main(url: str, token: str) -> int:
    """Run both ways, print what each cost and gave; 0 when both gave the same results."""
    outcomes: list[Results] = []
    for title, way in (("pipelined", pipelined), ("awaited one by one", one_by_one)):
        batches = Batches(url)
        start = time.perf_counter()
        try:
            results = await way(batches, token)
        except ValueError as e:  # a RangeError from the server: the token was refused
            print(f"{title}: failed: {e}")
            return 1
        elapsed = (time.perf_counter() - start) * 1000
        plural = "" if batches.requests == 1 else "s"
        print(f"{title}: {batches.requests} HTTP request{plural}, {elapsed:.0f} ms")
        for line in results.lines():
            print(f"  {line}")
        outcomes.append(results)
    same = outcomes[0] == outcomes[1]
    print(f"same results both ways: {'yes' if same else 'no'}")
    return 0 if same else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url", help="the server's endpoint, e.g. http://127.0.0.1:8080/rpc")
    parser.add_argument("--token", default="ann-token", help="who to authenticate as")
    args = parser.parse_args()
    if not args.url.startswith(("http://", "https://")):
        parser.error("this example needs an http:// or https:// URL (HTTP batches)")
    sys.exit(asyncio.run(main(args.url, args.token)))
