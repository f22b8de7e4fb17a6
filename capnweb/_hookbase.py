"""The Hook interface, and the hooks that need nothing of the local runtime: errors and
promises.

A *hook* is one reference to something callable; stubs and promises (``capnweb._hooks``) are
the application's handles on hooks, and a session's import table (``capnweb.session``) has
hooks of its own. The rules hooks follow are written in ``capnweb._hooks``. This module
imports nothing of the runtime, so every layer above can build on it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from ._hooks import Payload

__all__ = ["BrokenCallback", "ErrorHook", "Hook", "Path", "PromiseHook"]

Path = list[str | int]
BrokenCallback = Callable[[BaseException], None]

log = logging.getLogger("capnweb")


class Hook:
    """One reference to a callable thing; see ``capnweb._hooks`` for the rules."""

    __slots__ = ()

    def call(self, path: Path, args: Payload) -> Hook:
        """Call the function at ``path`` with ``args`` (ownership passes to the callee)."""
        raise NotImplementedError

    def get(self, path: Path) -> Hook:
        """A hook for the property at ``path``."""
        raise NotImplementedError

    def map(self, path: Path, captures: list[Hook], instructions: list[Any]) -> Hook:
        """Run recorded map() ``instructions`` over the value at ``path`` (owns ``captures``)."""
        raise NotImplementedError

    async def pull(self) -> Payload:
        """The resolved value; the payload stays owned by this hook."""
        raise NotImplementedError

    def ready(self) -> asyncio.Future[Hook] | None:
        """A future for the hook this one resolves to, if that has to be waited for, else
        None. (With :meth:`pulled`, the fast path of awaiting a promise: no coroutine per
        level.)"""
        return None

    def pulled(self) -> Payload | None:
        """What :meth:`pull` gives, if that is known without waiting; else None."""
        return None

    def dup(self) -> Hook:
        """Another reference to the same thing."""
        raise NotImplementedError

    def dispose(self) -> None:
        """Release this reference."""
        raise NotImplementedError

    def on_broken(self, callback: BrokenCallback) -> None:
        """Call ``callback(error)`` once this reference can never work again."""

    def gc_dispose(self) -> None:
        """Release because the owning Python object was garbage-collected."""
        self.dispose()


class ErrorHook(Hook):
    """A reference that is broken: every use fails with ``error``."""

    __slots__ = ("_tb", "error")

    def __init__(self, error: BaseException) -> None:
        self.error = error
        self._tb = error.__traceback__

    def _raise(self) -> NoReturn:
        # Every user gets the error with its own traceback on top of the original one: raised
        # as is, each raise would add to the same traceback (thousands of awaiting tasks: a
        # traceback thousands of frames long, and every frame kept alive by it).
        raise self.error.with_traceback(self._tb)

    def call(self, path: Path, args: Payload) -> Hook:
        args.dispose()
        return self

    def get(self, path: Path) -> Hook:
        return self

    def map(self, path: Path, captures: list[Hook], instructions: list[Any]) -> Hook:
        for c in captures:
            c.dispose()
        return self

    async def pull(self) -> Payload:
        self._raise()

    def pulled(self) -> Payload | None:
        self._raise()

    def dup(self) -> Hook:
        return self

    def dispose(self) -> None:
        pass

    def on_broken(self, callback: BrokenCallback) -> None:
        _safe_call(callback, self.error)


def _safe_call(callback: BrokenCallback, error: BaseException) -> None:
    try:
        callback(error)
    except Exception:
        log.exception("error in on_broken callback")


# --------------------------------------------------------------------------------------------
# A value still being computed locally


class _PromiseState:
    __slots__ = ("broken", "refs", "resolution")

    def __init__(self) -> None:
        self.refs = 1
        self.resolution: Hook | None = None
        self.broken: list[BrokenCallback] = []


class PromiseHook(Hook):
    """A reference to a value still being computed locally; uses queue until it resolves."""

    __slots__ = ("_state", "disposed", "future")

    def __init__(self, future: asyncio.Future[Hook], state: _PromiseState | None = None) -> None:
        self.future = future
        self.disposed = False
        if state is None:
            state = _PromiseState()
            future.add_done_callback(self._on_done)
        self._state = state

    def _on_done(self, future: asyncio.Future[Hook]) -> None:
        state = self._state
        if future.cancelled():
            hook: Hook = ErrorHook(RuntimeError("the call was cancelled"))
        elif (exc := future.exception()) is not None:
            hook = ErrorHook(exc)
        else:
            hook = future.result()
        state.resolution = hook
        broken, state.broken = state.broken, []
        for cb in broken:
            hook.on_broken(cb)
        if state.refs == 0:
            hook.dispose()

    def _then(self, use: Callable[[Hook], Hook]) -> Hook:
        resolution = self._state.resolution
        if resolution is not None:
            return use(resolution)
        loop = asyncio.get_running_loop()
        result: asyncio.Future[Hook] = loop.create_future()
        state = self._state

        def forward(_: asyncio.Future[Hook]) -> None:
            resolved = state.resolution
            assert resolved is not None
            try:
                result.set_result(use(resolved))
            except Exception as e:
                result.set_result(ErrorHook(e))
            finally:
                state.refs -= 1
                if state.refs == 0:
                    resolved.dispose()

        if self.future.done() and self._state.resolution is None:
            self._on_done(self.future)
            return use(self._state.resolution)  # type: ignore[arg-type]
        state.refs += 1  # a queued use keeps the resolution alive until it has run
        self.future.add_done_callback(forward)
        return PromiseHook(result)

    def call(self, path: Path, args: Payload) -> Hook:
        if args.source == "params":
            args = args.owned_copy()
        return self._then(lambda h: h.call(path, args))

    def get(self, path: Path) -> Hook:
        return self._then(lambda h: h.get(path))

    def map(self, path: Path, captures: list[Hook], instructions: list[Any]) -> Hook:
        return self._then(lambda h: h.map(path, captures, instructions))

    async def pull(self) -> Payload:
        hook = await asyncio.shield(self.future) if self._state.resolution is None else None
        resolution = self._state.resolution or hook
        assert resolution is not None
        return await resolution.pull()

    def pulled(self) -> Payload | None:
        resolution = self._state.resolution
        return resolution.pulled() if resolution is not None else None

    def dup(self) -> Hook:
        self._state.refs += 1
        return PromiseHook(self.future, self._state)

    def dispose(self) -> None:
        if self.disposed:
            return
        self.disposed = True
        self._state.refs -= 1
        if self._state.refs == 0 and self._state.resolution is not None:
            self._state.resolution.dispose()

    def on_broken(self, callback: BrokenCallback) -> None:
        if self._state.resolution is not None:
            self._state.resolution.on_broken(callback)
        else:
            self._state.broken.append(callback)
