"""The users service: keeps each user's profile and notes, and opens them for an auth session
that the auth service vouches for.

Usage (from the repository root):
``python -m examples.microservices.users --port 8082 --auth ws://127.0.0.1:8081/rpc``.

``open(session)`` takes no user name: it asks the session it was handed (a capability of the
auth service, passed along by the gateway) for a ticket, and redeems the ticket with the auth
service over its own connection. A session forged by someone else cannot produce a ticket the
auth service knows.
"""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import dataclass, field

from capnweb import Reconnecting, RpcTarget
from examples.microservices.api import AuthSession, Profile, UserData, Users
from examples.microservices.service import connect_service, reach, run
from stubs.examples_microservices_api import AuthSessionStub, AuthStub

__all__ = ["MAX_NOTE", "MAX_NOTES", "Record", "UserDataImpl", "UsersImpl", "main", "seed"]

MAX_NOTE = 500
"""Longest note, in characters."""

MAX_NOTES = 100
"""Notes kept per user."""


@dataclass
class Record:
    """What the service keeps about one user."""

    profile: Profile
    notes: list[str] = field(default_factory=list)


def seed() -> dict[str, Record]:
    """The users of the example and their data."""
    return {
        "ann": Record(Profile("ann", "Ann Example", "ann@example.com"), ["buy oat milk"]),
        "bob": Record(Profile("bob", "Bob Example", "bob@example.com"), ["bob's secret plan"]),
    }


class UserDataImpl(RpcTarget, UserData):
    """One user's data: every method reads or changes this record and no other."""

    def __init__(self, record: Record) -> None:
        self._record = record

    async def profile(self) -> Profile:
        return self._record.profile

    async def notes(self) -> list[str]:
        return list(self._record.notes)

    async def add_note(self, text: str) -> list[str]:
        if not 1 <= len(text) <= MAX_NOTE:
            raise ValueError(f"a note has 1 to {MAX_NOTE} characters")
        notes = self._record.notes
        notes.append(text)
        del notes[:-MAX_NOTES]
        return list(notes)


class UsersImpl(RpcTarget, Users):
    """The main capability of each session of the users service."""

    def __init__(self, records: dict[str, Record], auth: Reconnecting[AuthStub]) -> None:
        self._records = records
        self._auth = auth

    async def open(self, session: AuthSession) -> UserData:
        # The session arrives as a stub of whoever passed it; ask it for a ticket, then ask
        # the auth service (over this service's own connection) whose ticket that is.
        with AuthSessionStub(session) as proof:
            ticket = await proof.ticket()
        auth = await reach(self._auth, "auth")
        user = await auth.redeem(ticket)
        record = self._records.get(user)
        if record is None:  # a user the auth service knows, new here
            record = self._records[user] = Record(Profile(user, user, ""))
        print(f"opened the data of {user}", flush=True)
        return UserDataImpl(record)


async def main(port: int, auth_url: str) -> None:
    """Serve the users service until SIGTERM or SIGINT."""
    records = seed()
    async with connect_service(auth_url, AuthStub) as auth:
        await run(lambda: UsersImpl(records, auth), port)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8082)
    parser.add_argument("--auth", default="ws://127.0.0.1:8081/rpc", help="the auth service")
    args = parser.parse_args()
    asyncio.run(main(args.port, args.auth))
