"""The auth service: checks a token and returns the session capability of its user, and
vouches for the single-use tickets its sessions issue.

Usage (from the repository root): ``python -m examples.microservices.auth --port 8081``.

Nothing here is reachable by a user name: ``login`` takes a token, ``redeem`` a ticket that
only a session (and so only a holder of the user's token) can have had issued.
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import secrets
import time

from capnweb import RpcTarget
from examples.microservices.api import Auth, AuthError, AuthSession
from examples.microservices.service import run

__all__ = ["TICKET_TTL", "TOKENS", "AuthImpl", "AuthSessionImpl", "Tickets", "main"]

TOKENS = {"s3cret-ann": "ann", "s3cret-bob": "bob"}
"""The users' tokens (in real life: your user store, holding digests)."""

TICKET_TTL = 10.0
"""Seconds a ticket can be redeemed after it was issued."""

MAX_TICKETS = 10_000
"""Tickets kept at most; the oldest are forgotten first."""


class Tickets:
    """Single-use tickets naming a user: issued by sessions, spent by ``Auth.redeem``."""

    def __init__(self, ttl: float = TICKET_TTL, limit: int = MAX_TICKETS) -> None:
        self._ttl = ttl
        self._limit = limit
        self._live: dict[str, tuple[str, float]] = {}  # oldest first: deadlines only grow

    def issue(self, user: str) -> str:
        """A new unguessable ticket for ``user``."""
        now = time.monotonic()
        while self._live:
            oldest = next(iter(self._live))
            if self._live[oldest][1] > now and len(self._live) < self._limit:
                break
            del self._live[oldest]
        ticket = secrets.token_urlsafe(24)
        self._live[ticket] = (user, now + self._ttl)
        return ticket

    def redeem(self, ticket: str) -> str | None:
        """The user ``ticket`` was issued for (the ticket is spent), or None if it is unknown,
        spent or expired."""
        entry = self._live.pop(ticket, None)
        if entry is None or entry[1] < time.monotonic():
            return None
        return entry[0]


class AuthSessionImpl(RpcTarget, AuthSession):
    """A signed-in user: what ``login`` returns to whoever presented the user's token."""

    def __init__(self, user: str, tickets: Tickets) -> None:
        self._user = user
        self._tickets = tickets

    async def ticket(self) -> str:
        return self._tickets.issue(self._user)


class AuthImpl(RpcTarget, Auth):
    """The main capability of each session of the auth service."""

    def __init__(self, tickets: Tickets) -> None:
        self._tickets = tickets

    async def login(self, token: str) -> AuthSession:
        given = token.encode("utf-8", "surrogatepass")  # any string a peer can send
        for known, user in TOKENS.items():
            if hmac.compare_digest(known.encode(), given):
                print(f"login: {user}", flush=True)
                return AuthSessionImpl(user, self._tickets)
        print("login refused: unknown token", flush=True)
        raise AuthError("unknown token")

    async def redeem(self, ticket: str) -> str:
        user = self._tickets.redeem(ticket)
        if user is None:
            print("redeem refused: unknown ticket", flush=True)
            raise AuthError("unknown, spent or expired ticket")
        print(f"redeemed a ticket of {user}", flush=True)
        return user


async def main(port: int) -> None:
    """Serve the auth service until SIGTERM or SIGINT."""
    tickets = Tickets()
    await run(lambda: AuthImpl(tickets), port)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8081)
    asyncio.run(main(parser.parse_args().port))
