"""The reconnect example's server: counters and their resume tokens live in an SQLite file, so
a client can get its counter back in a new session, even after this server was killed.

Usage (from the repository root):
``python -m examples.reconnect.server --port 8080 --db counters.sqlite``.

The pattern: ``login(name)`` hands out a capability and an unguessable token; ``resume(token)``
builds a new capability over the same stored state for whichever session presents the token.
Only a digest of each token is stored, so a copy of the file does not give anyone a way in.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import secrets
import sqlite3
import time
from typing import Any

import capnweb
from capnweb import RpcTarget
from examples.reconnect.api import Api, Counter

__all__ = ["TOKEN_TTL", "ApiImpl", "CounterImpl", "Store", "main", "serve"]

TOKEN_TTL = 24 * 3600.0
"""Seconds a resume token stays valid after it was issued or last used."""

MAX_NAME = 100
"""Longest name login() accepts."""


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Store:
    """Counters and resume tokens in an SQLite file: what must survive a restart."""

    def __init__(self, path: str) -> None:
        # autocommit: every change is in the file before its answer is sent
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.executescript(
            """
            CREATE TABLE IF NOT EXISTS counters (
                id INTEGER PRIMARY KEY, owner TEXT NOT NULL, value INTEGER NOT NULL);
            CREATE TABLE IF NOT EXISTS tokens (
                digest TEXT PRIMARY KEY, counter INTEGER NOT NULL, used REAL NOT NULL);
            """
        )

    def close(self) -> None:
        """Close the file."""
        self._db.close()

    def new_counter(self, owner: str) -> tuple[int, str]:
        """A new counter at 0, and a token that resumes it."""
        token = secrets.token_urlsafe(32)
        with self._db:  # one transaction: both rows or neither
            self._db.execute("BEGIN")
            cursor = self._db.execute("INSERT INTO counters (owner, value) VALUES (?, 0)", (owner,))
            counter_id = cursor.lastrowid
            assert counter_id is not None
            self._db.execute(
                "INSERT INTO tokens (digest, counter, used) VALUES (?, ?, ?)",
                (_digest(token), counter_id, time.time()),
            )
        return counter_id, token

    def resume(self, token: str) -> int | None:
        """The counter ``token`` resumes (its lifetime starts again), or None."""
        now = time.time()
        rows = self._db.execute(
            "UPDATE tokens SET used = ? WHERE digest = ? AND used > ? RETURNING counter",
            (now, _digest(token), now - TOKEN_TTL),
        ).fetchall()  # all: the change is committed once the statement has run to its end
        return int(rows[0][0]) if rows else None

    def owner(self, counter_id: int) -> str:
        """Who the counter was started for."""
        return str(self._one("SELECT owner FROM counters WHERE id = ?", counter_id))

    def value(self, counter_id: int) -> int:
        """The counter's value."""
        return int(self._one("SELECT value FROM counters WHERE id = ?", counter_id))

    def add(self, counter_id: int, amount: int) -> int:
        """Add ``amount`` to the counter; its new value."""
        sql = "UPDATE counters SET value = value + ? WHERE id = ? RETURNING value"
        return int(self._one(sql, amount, counter_id))

    def _one(self, sql: str, *args: object) -> Any:
        rows = self._db.execute(sql, args).fetchall()  # run to the end: committed
        if not rows:
            raise LookupError("no such counter")
        return rows[0][0]


class CounterImpl(RpcTarget, Counter):
    """A capability for one stored counter; a new one per session that logs in or resumes."""

    def __init__(self, store: Store, counter_id: int) -> None:
        self._store = store
        self._id = counter_id

    @property
    def owner(self) -> str:
        return self._store.owner(self._id)

    @property
    def value(self) -> int:
        return self._store.value(self._id)

    async def increment(self, amount: int = 1) -> int:
        return self._store.add(self._id, amount)


class ApiImpl(RpcTarget, Api):
    """The main capability of each session: a way to a counter, new or resumed."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def login(self, name: str) -> tuple[Counter, str]:
        if not name or len(name) > MAX_NAME:
            raise ValueError(f"a name has 1 to {MAX_NAME} characters")
        counter_id, token = self._store.new_counter(name)
        print(f"{name} logged in: counter {counter_id}", flush=True)
        return CounterImpl(self._store, counter_id), token

    async def resume(self, token: str) -> Counter:
        counter_id = self._store.resume(token)
        if counter_id is None:
            raise ValueError("unknown or expired resume token")
        print(f"counter {counter_id} resumed", flush=True)
        return CounterImpl(self._store, counter_id)


async def serve(port: int, store: Store) -> capnweb.Server:
    """A server for the example on 127.0.0.1 (port 0: any free port), RPC on ``/rpc``."""
    return await capnweb.serve(lambda: ApiImpl(store), host="127.0.0.1", port=port)


async def main(port: int, db: str) -> None:
    """Serve until SIGTERM or SIGINT."""
    store = Store(db)
    try:
        server = await serve(port, store)
        print(f"listening on {server.ws_url}", flush=True)
        await server.serve_until_signal()
    finally:
        store.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--db", default="counters.sqlite", help="the SQLite file (made if new)")
    args = parser.parse_args()
    asyncio.run(main(args.port, args.db))
