"""RpcStub and RpcPromise: the application's handles on capabilities and pending results.

Attribute access and calls on a stub or promise build pipelined expressions: nothing waits
until a promise is awaited, so ``await api.user("ann").profile.name`` costs one round trip.
Names that start with ``_`` and the few local methods (``dup``, ``dispose``, ``map``,
``on_broken``) are not sent; reach a remote member with such a name with ``stub["name"]``.

Lifetime: a stub holds one reference to the remote object. ``dispose()`` (or leaving a
``with``/``async with`` block) releases it at once; a stub that is garbage-collected is
released soon after. A stub received as a call argument stays valid as long as the
implementation keeps a reference to it; if it keeps none, it is released when the call
returns.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Generator
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, Generic, NoReturn, TypeVar

from . import _hooks
from ._codec import WireRef
from ._hooks import ErrorHook, Hook, Path, Payload
from ._map import _map_state, record_map

if TYPE_CHECKING:
    from typing import Self

__all__ = ["RpcPromise", "RpcStub"]

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)
P = TypeVar("P", bound="RpcStub")


class _Disposed(ErrorHook):
    """What a disposed stub holds: each use raises an error of its own (one shared error
    would keep the frames of its last raise alive, through its traceback)."""

    __slots__ = ()

    def _raise(self) -> NoReturn:
        raise RuntimeError(str(self.error))


_DISPOSED = _Disposed(RuntimeError("Attempted to use RPC stub after it has been disposed."))


class RpcStub(WireRef):
    """A reference to a remote (or local) capability: call its methods, read its properties.

    ``RpcStub(target)`` makes a local stub for an RpcTarget or a function, e.g. to capture it
    in a ``map()`` function (which cannot export new capabilities itself).
    """

    __slots__ = ("__weakref__", "_hook", "_parent", "_path")

    def __init__(self, hook: Any, path: Path | tuple[()] = (), parent: RpcStub | None = None):
        self._hook: Hook = hook if isinstance(hook, Hook) else _local_hook(hook)
        self._path: Path | tuple[()] = path
        self._parent = parent  # keeps the owner of a shared hook alive

    # -- pipelining

    def __getattr__(self, name: str) -> RpcPromise[Any]:
        if name.startswith("_"):
            raise AttributeError(name)
        return RpcPromise(self._hook, [*self._path, name], self._root())

    def __getitem__(self, name: str | int) -> RpcPromise[Any]:
        """The remote member or element ``name`` (also for names that clash locally)."""
        return RpcPromise(self._hook, [*self._path, name], self._root())

    def __call__(self, *args: Any) -> RpcPromise[Any]:
        if _map_state.builder is not None:
            return _map_state.builder.push_call(self._hook, list(self._path), list(args))
        return RpcPromise(self._hook.call(list(self._path), Payload.params(list(args))))

    # -- used by generated typed stubs

    def _rpc_call(self, cls: type[P], name: str, *args: Any) -> P:
        """Call remote method ``name`` (a wire name); the result typed as promise class ``cls``."""
        path = [*self._path, name]
        if _map_state.builder is not None:
            return _map_state.builder.push_call(self._hook, path, list(args))._cast(cls)
        return cls(self._hook.call(path, Payload.params(list(args))))

    def _rpc_get(self, cls: type[P], name: str) -> P:
        """Read remote property ``name`` (a wire name) as promise class ``cls``."""
        return cls(self._hook, [*self._path, name], self._root())

    def _cast(self, cls: type[P]) -> P:
        """The same reference seen as stub or promise class ``cls`` (this one is given up)."""
        if not self._path and self._parent is None:
            return cls(self._take_hook_and_forget())
        return cls(self._hook, self._path, self._root())

    def _root(self) -> RpcStub:
        return self._parent if self._parent is not None else self

    # -- lifetime

    def dup(self) -> Self:
        """An independent reference; the target is released only when all are disposed."""
        hook = self._hook.get(list(self._path)) if self._path else self._hook.dup()
        return type(self)(hook)

    def dispose(self) -> None:
        """Release this reference now (idempotent). Property promises own nothing."""
        if self._parent is not None:
            return
        hook = self._hook
        if hook is not _DISPOSED:
            self._hook = _DISPOSED
            hook.dispose()

    def on_broken(self, callback: Callable[[BaseException], None]) -> None:
        """Call ``callback(error)`` when this reference breaks (disconnect, or rejection)."""
        self._hook.on_broken(callback)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.dispose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.dispose()

    def __del__(self) -> None:
        if getattr(self, "_parent", None) is not None:
            return
        hook = getattr(self, "_hook", _DISPOSED)
        if hook is _DISPOSED:
            return
        self._hook = _DISPOSED
        try:
            asyncio.get_running_loop().call_soon(hook.gc_dispose)
        except RuntimeError:
            try:
                hook.gc_dispose()
            except Exception:
                pass

    def _take_hook(self) -> Hook:
        """A new reference to what this stub or promise points at (for returning it)."""
        if self._path:
            return self._hook.get(list(self._path))
        return self._hook.dup()

    def _take_hook_and_forget(self) -> Hook:
        """Hand this stub's own reference over to the caller; the stub becomes disposed."""
        hook = self._hook
        self._hook = _DISPOSED
        return hook

    def __repr__(self) -> str:
        path = ".".join(str(p) for p in self._path)
        return f"<{type(self).__name__} {path or type(self._hook).__name__}>"

    def __bool__(self) -> bool:
        return True

    # Stubs are not iterable nor hashable by value; keep Python from probing remote names.
    __iter__ = None


def _local_hook(target: Any) -> Hook:
    from ._hooks import TargetHook
    from ._target import RpcTarget

    if isinstance(target, RpcStub):
        return target._take_hook()
    if isinstance(target, RpcTarget) or (callable(target) and not isinstance(target, type)):
        return TargetHook(target)
    raise TypeError(f"RpcStub() takes an RpcTarget, a function or a stub, not {target!r}")


class RpcPromise(RpcStub, Generic[T_co]):
    """A pending result: await it for the value, or pipeline on it without waiting."""

    __slots__ = ()

    def __await__(self) -> Generator[Any, Any, T_co]:
        if not self._path:
            # The usual case, without a coroutine per level: wait for the resolution, then
            # take its value as is when it holds no stubs or promises (nothing to copy).
            hook = self._hook
            ready = hook.ready()
            if ready is not None:
                hook = yield from ready.__await__()  # the resolution (held by the import)
            payload = hook.pulled()
            if payload is not None and not payload.has_refs:
                if self._result_type is not None:
                    from ._validate import convert

                    return convert(payload.value, self._result_type, "result")  # type: ignore[no-any-return]
                return payload.value  # type: ignore[no-any-return]
        return (yield from self._resolve().__await__())

    _result_type: ClassVar[Any] = None
    """For typed stubs: the annotation awaited values are checked against and converted to."""
    _element_type: ClassVar[type[RpcPromise[Any]] | None] = None
    """For typed list promises: the promise class map() hands to the mapper function."""

    async def _resolve(self) -> T_co:
        payload = await self._pull_owned()
        if self._result_type is not None:
            from ._validate import convert

            return convert(payload.value, self._result_type, "result")  # type: ignore[no-any-return]
        return payload.value  # type: ignore[no-any-return]

    async def _pull_owned(self) -> Payload:
        if self._path:
            hook = self._hook.get(list(self._path))
            try:
                return await (await hook.pull()).deliver()
            finally:
                hook.dispose()
        return await (await self._hook.pull()).deliver()

    def map(self, fn: Callable[[Any], Any]) -> RpcPromise[Any]:
        """Apply ``fn`` remotely to the result (to each element of a list), in one round trip.

        ``fn`` is run once, here, on a placeholder to record what it does; it must be
        synchronous and may only call stubs, read properties and build values.
        """
        return record_map(self._hook, list(self._path), fn, self._element_type)

    @staticmethod
    def from_awaitable(awaitable: Awaitable[T]) -> RpcPromise[T]:
        """A promise for a local awaitable: pipeline on it, return it, or send it to a peer."""
        from ._hooks import hook_for_awaitable

        return RpcPromise(hook_for_awaitable(awaitable))


vars(_hooks).update(RpcStub=RpcStub, RpcPromise=RpcPromise)  # see capnweb._hooks


def is_promise(value: Any) -> bool:
    """Whether ``value`` is an RpcPromise."""
    return isinstance(value, RpcPromise)
