"""Background tasks that must run to completion even when nobody awaits them.

A task started while a session handles a message (a call, a map, a result being awaited) is
also counted as that session's (``owner``, set by the session for the message): when the
session ends, those still running get a grace period, then are cancelled, so a peer that
leaves cannot leave work behind.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from contextvars import ContextVar
from typing import Any, Protocol, TypeVar

T = TypeVar("T")

_running: set[asyncio.Task[Any]] = set()


class Owner(Protocol):
    """What owns the tasks started in its context (a session); ``tasks`` is made on first
    use."""

    tasks: set[asyncio.Task[Any]] | None


owner: ContextVar[Any] = ContextVar("capnweb_session", default=None)
"""The session whose message is being handled, or whose call is running."""


def spawn(coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
    """Start ``coro`` as a task and keep it alive until it finishes."""
    task = asyncio.get_running_loop().create_task(coro)
    _running.add(task)
    task.add_done_callback(_running.discard)
    session: Owner | None = owner.get()
    if session is not None:
        tasks = session.tasks
        if tasks is None:
            tasks = session.tasks = set()
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    return task


def settle(fut: asyncio.Future[None], error: BaseException | None = None) -> None:
    """Resolve ``fut`` (or fail it with ``error``) unless it is already done."""
    if not fut.done():
        if error is None:
            fut.set_result(None)
        else:
            fut.set_exception(error)


def settle_all(futures: list[asyncio.Future[None]], error: BaseException | None = None) -> None:
    """:func:`settle` each of ``futures`` (waiters taken from their list beforehand)."""
    for fut in futures:
        settle(fut, error)
