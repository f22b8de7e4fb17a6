"""Hooks: what stands behind every stub and promise, local or remote.

Theory, once:

- A *hook* is one reference to something callable: a local RpcTarget or function
  (:class:`TargetHook`), a local value (:class:`ValueHook`), a value still being computed
  (:class:`PromiseHook`), an error (:class:`ErrorHook`), or an entry of a session's import table
  (``session.ImportHook``). ``call``/``get``/``map`` return a new hook for the result, at once:
  that is what makes pipelining work, locally and remotely alike.
- Hooks are linear: whoever holds one disposes it exactly once. ``dup()`` makes another
  reference to the same thing; the thing is released when every reference is disposed.
- A :class:`Payload` is a value tree plus the stubs it owns. Arguments travel as a payload owned
  by the callee, which disposes it when the call returns (so a callee that wants to keep a stub
  it received must ``dup()`` it). A value returned by a method is owned by the result hook and
  released when the caller releases the result.
- Values handed to the application (an awaited result, call arguments) are copies whose stubs
  are fresh dups, and in which every promise has been replaced by its resolution.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import sys
import traceback
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final, NoReturn

from ._codec import PROTO_KEYS
from ._target import Checked, RpcTarget, dispose_target, get_member
from ._tasks import spawn
from ._values import Request, Response, undefined

if TYPE_CHECKING:
    from .stubs import RpcPromise, RpcStub
else:  # capnweb.stubs imports this module; it fills these in once its classes exist
    RpcStub = RpcPromise = None

__all__ = [
    "ErrorHook",
    "Hook",
    "Path",
    "Payload",
    "PromiseHook",
    "TargetHook",
    "ValueHook",
]

Path = list[str | int]
BrokenCallback = Callable[[BaseException], None]


class Hook:
    """One reference to a callable thing; see the module docstring."""

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
        import logging

        logging.getLogger("capnweb").exception("error in on_broken callback")


# --------------------------------------------------------------------------------------------
# Payloads


_LEAF_TYPES: Final = frozenset((str, int, float, bool, type(None), bytes))


class Payload:
    """A value tree and the stubs it owns.

    ``source`` says where the tree came from: ``"params"`` (the application's arguments: not
    ours, copy before delivering or keeping), ``"return"`` (returned by the application: we own
    its stubs and RpcTargets) or ``"owned"`` (built by us: decoded or copied).
    """

    __slots__ = ("has_promises", "owned", "source", "targets", "value")

    def __init__(
        self,
        value: Any,
        source: str = "owned",
        owned: list[RpcStub] | None = None,
        has_promises: bool = False,
    ) -> None:
        self.value = value
        self.source = source
        self.owned: list[RpcStub] = owned if owned is not None else []
        self.has_promises = has_promises
        # hooks created for raw RpcTargets/functions in a "return" payload, one per target
        self.targets: dict[int, tuple[Any, TargetHook]] | None = None

    @staticmethod
    def params(value: Any) -> Payload:
        """Arguments from the application (not owned: copied or encoded before use)."""
        return Payload(value, "params")

    @staticmethod
    def returned(value: Any) -> Payload:
        """A value the application returned (its stubs and targets are now ours)."""
        return Payload(value, "return")

    def target_hook(self, target: Any) -> Hook:
        """A new reference to the hook for a raw RpcTarget/function in this payload."""
        if self.source != "return":
            return TargetHook(target)
        if self.targets is None:
            self.targets = {}
        entry = self.targets.get(id(target))
        if entry is None:
            hook = TargetHook(target)
            self.targets[id(target)] = (target, hook)
            return hook.dup()
        return entry[1].dup()

    def owned_copy(self) -> Payload:
        """This payload as one we own: params are deep-copied (stubs dup'ed) first."""
        if self.source == "owned":
            return self
        copy = copy_value(self.value, self)
        if self.source == "return":
            self.dispose()
        return copy

    def dispose(self) -> None:
        """Release every stub (and RpcTarget, for returned values) this payload owns."""
        owned, self.owned = self.owned, []
        for stub in owned:
            stub.dispose()
        if self.source == "return":
            self.source = "disposed"
            targets, self.targets = self.targets, None
            _dispose_returned(self.value, targets or {}, set(), 0)

    def release_unkept(self) -> None:
        """After a call: release the argument stubs the implementation kept no reference to."""
        owned, self.owned = self.owned, []
        self.value = None
        while owned:
            stub = owned.pop()
            if sys.getrefcount(stub) <= 2:  # only `stub` and getrefcount's own argument
                stub.dispose()

    async def deliver(self) -> Payload:
        """A copy for the application to own: stubs dup'ed, promises replaced by values."""
        if self.source == "owned" and not self.owned and not self.has_promises:
            return self  # nothing to release or resolve: the tree can be shared
        copy = copy_value(self.value, self)
        if copy.has_promises:
            await copy.substitute()
        return copy

    async def substitute(self) -> None:
        """Replace every promise in this (owned) payload by its resolution, in place."""
        found: list[tuple[Any, Any, RpcPromise[Any]]] = []
        root = [self.value]
        _find_promises(root, found, 0)
        for container, key, promise in found:
            resolved = await promise._pull_owned()
            container[key] = resolved.value
            self.owned.extend(resolved.owned)
            self.owned.remove(promise)
            promise.dispose()
        self.value = root[0]
        self.has_promises = False

    @property
    def has_refs(self) -> bool:
        """Whether the tree may hold stubs, promises or targets (else it can be shared)."""
        return bool(self.owned) or self.has_promises or self.source != "owned"


def _dispose_returned(
    value: Any, hooks: dict[int, tuple[Any, TargetHook]], seen: set[int], depth: int
) -> None:
    """Release the RpcTargets of a returned value: their hooks, or the raw disposer."""
    if depth > 256:
        return
    t = type(value)
    if t in _LEAF_TYPES:
        return
    if t is list or t is tuple:
        for x in value:
            _dispose_returned(x, hooks, seen, depth + 1)
    elif t is dict:
        for x in value.values():
            _dispose_returned(x, hooks, seen, depth + 1)
    elif isinstance(value, RpcTarget) and id(value) not in seen:
        seen.add(id(value))
        entry = hooks.get(id(value))
        if entry is not None:
            entry[1].dispose()
        else:
            dispose_target(value)


def _find_promises(container: Any, found: list[Any], depth: int) -> None:
    items = enumerate(container) if type(container) is list else container.items()
    for key, v in items:
        t = type(v)
        if t is list or t is dict:
            if depth < 256:
                _find_promises(v, found, depth + 1)
        elif isinstance(v, RpcPromise):
            found.append((container, key, v))


def copy_value(value: Any, source: Payload | None = None) -> Payload:
    """Deep-copy a value tree into a new owned payload: stubs dup'ed, targets wrapped."""
    out = Payload(None)
    out.value = _copy(value, out, source, 0)
    return out


def _copy(v: Any, out: Payload, source: Payload | None, depth: int) -> Any:
    t = type(v)
    if t in _LEAF_TYPES:
        return v
    if depth > 256:
        raise TypeError(
            "Serialization exceeded maximum allowed depth. (Does the message contain cycles?)"
        )
    if t is list or t is tuple:
        return [_copy(x, out, source, depth + 1) for x in v]
    if t is dict:
        return {k: _copy(x, out, source, depth + 1) for k, x in v.items()}
    if isinstance(v, RpcStub):
        dup = v.dup()
        out.owned.append(dup)
        if isinstance(dup, RpcPromise):
            out.has_promises = True
        return dup
    if isinstance(v, RpcTarget) or (
        callable(v) and not isinstance(v, type) and not isinstance(v, BaseException)
    ):
        hook = source.target_hook(v) if source is not None else TargetHook(v)
        stub = RpcStub(hook)
        out.owned.append(stub)
        return stub
    return v


# --------------------------------------------------------------------------------------------
# Following a property path through a value


class _Reached:
    """Where a path led: a plain value (with its parent), or a hook and the rest of the path."""

    __slots__ = ("hook_owner", "parent", "rest", "value")

    def __init__(self, value: Any, parent: Any, hook_owner: Any = None, rest: Path = ()) -> None:  # type: ignore[assignment]
        self.value = value
        self.parent = parent
        self.hook_owner = hook_owner
        self.rest = rest


# Object.prototype names are unreachable in paths (toJSON, unlike in objects, is not).
_PATH_BLOCKED: Final = PROTO_KEYS - {"toJSON"}


def follow(value: Any, path: Path) -> _Reached:
    """Follow ``path`` from ``value`` under the wire's rules (docs/values.md, "paths")."""
    parent: Any = None
    for i, part in enumerate(path):
        if isinstance(value, RpcStub):
            return _Reached(None, parent, value, list(value._path) + list(path[i:]))
        parent = value
        if type(part) is str and part in _PATH_BLOCKED:
            value = undefined
            continue
        if isinstance(value, dict):
            value = value.get(part if type(part) is str else str(part), undefined)
        elif isinstance(value, list | tuple):
            ok = type(part) is int and 0 <= part < len(value)
            value = value[part] if ok else undefined  # type: ignore[index]
        elif isinstance(value, RpcTarget):
            value = get_member(value, part)
        elif value is undefined:
            raise TypeError(f"Cannot read properties of undefined (reading '{part}')")
        elif (
            dataclasses.is_dataclass(value)
            and not isinstance(value, type)
            and not isinstance(value, Request | Response)
        ):
            names = {f.name for f in dataclasses.fields(value)}
            value = getattr(value, part) if part in names else undefined
        else:
            value = undefined  # primitives, null, bytes, dates, errors, functions: nothing
    if isinstance(value, RpcPromise):
        return _Reached(None, parent, value, list(value._path))
    return _Reached(value, parent)


def _hook_of(stub: Any) -> Hook:
    return stub._hook  # type: ignore[no-any-return]


def call_at(root: Any, path: Path, args: Payload, owner: Payload | None) -> Hook:
    """Call the function found at ``path`` from ``root`` (a target or a value)."""
    try:
        reached = follow(root, path)
    except Exception as e:  # a missing path, or a property getter that raised
        args.dispose()
        return ErrorHook(e)
    if reached.hook_owner is not None:
        return _hook_of(reached.hook_owner).call(reached.rest, args)
    fn = reached.value
    if isinstance(fn, RpcTarget | type) or not callable(fn):
        args.dispose()
        name = ".".join(str(part) for part in path)  # the reference's wording
        return ErrorHook(TypeError(f"'{name}' is not a function."))
    return invoke(fn, args)


def get_at(root: Any, path: Path, owner: Payload | None) -> Hook:
    """A hook for the value found at ``path`` from ``root``."""
    try:
        reached = follow(root, path)
    except Exception as e:  # a missing path, or a property getter that raised
        return ErrorHook(e)
    if reached.hook_owner is not None:
        stub = reached.hook_owner
        hook = _hook_of(stub)
        return hook.get(reached.rest) if reached.rest else hook.dup()
    value = reached.value
    if isinstance(value, RpcTarget) or (
        callable(value) and not isinstance(value, type) and not isinstance(value, BaseException)
    ):
        return owner.target_hook(value) if owner is not None else TargetHook(value)
    return ValueHook(copy_value(value, owner))


_defaults_cache: dict[Any, int] = {}


def _first_optional(fn: Callable[..., Any]) -> int:
    """Index of the first positional parameter of ``fn`` that has a default (or a large
    number when none has)."""
    code = getattr(getattr(fn, "__func__", fn), "__code__", None)
    key = code if code is not None else fn
    try:
        return _defaults_cache[key]
    except (KeyError, TypeError):
        pass
    first = 1 << 30
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        params = []
    for i, p in enumerate(params):
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is not p.empty:
            first = i
            break
    try:
        _defaults_cache[key] = first
    except TypeError:
        pass
    return first


def _strip_undefined(fn: Callable[..., Any], args: list[Any]) -> list[Any]:
    """Drop trailing ``undefined`` arguments that fall on parameters with defaults, so the
    defaults apply as they do in JavaScript."""
    if not args or args[-1] is not undefined or isinstance(fn, Checked):
        return args  # a checked method maps undefined to defaults itself
    first = _first_optional(fn)
    n = len(args)
    while n > first and args[n - 1] is undefined:
        n -= 1
    return args[:n]


def invoke(fn: Callable[..., Any], args: Payload) -> Hook:
    """Run an application function on a payload of arguments; the result as a hook.

    Calls whose arguments hold no promises start at once (sync functions run to completion),
    so calls are delivered in the order they arrived. Arguments are released when the call
    is over.
    """
    if args.source != "owned":
        args = args.owned_copy()
    if args.has_promises:
        return PromiseHook(spawn(_invoke_later(fn, args)))
    value = args.value
    try:
        result = fn(*_strip_undefined(fn, value)) if type(value) is list else fn(value)
    except Exception as e:
        traceback.clear_frames(e.__traceback__)
        args.release_unkept()
        return ErrorHook(e)
    if type(result) not in _LEAF_TYPES and inspect.isawaitable(result):
        return PromiseHook(spawn(_finish(result, args)))
    hook = _result_hook(result)
    del result
    args.release_unkept()
    return hook


async def _invoke_later(fn: Callable[..., Any], args: Payload) -> Hook:
    try:
        await args.substitute()
    except Exception as e:
        args.dispose()
        return ErrorHook(e)
    return invoke(fn, args)


async def _finish(result: Awaitable[Any], args: Payload) -> Hook:
    try:
        value = await result
    except Exception as e:
        traceback.clear_frames(e.__traceback__)
        del result
        args.release_unkept()
        return ErrorHook(e)
    del result
    hook = _result_hook(value)
    del value
    args.release_unkept()
    return hook


def hook_for_awaitable(aw: Awaitable[Any]) -> Hook:
    """A promise hook for a local awaitable (its result becomes the promise's value)."""

    async def run() -> Hook:
        try:
            value = await aw
        except Exception as e:
            traceback.clear_frames(e.__traceback__)
            return ErrorHook(e)
        return _result_hook(value)

    return PromiseHook(spawn(run()))


def _result_hook(value: Any) -> Hook:
    if isinstance(value, RpcStub):
        # Returning a stub or promise: the result is a new reference to the same thing.
        return value._take_hook()
    return ValueHook(Payload.returned(value))


# --------------------------------------------------------------------------------------------
# Local hooks


class _Shared:
    """Reference count shared by a hook and its dups."""

    __slots__ = ("refs",)

    def __init__(self) -> None:
        self.refs = 1


class TargetHook(Hook):
    """A reference to a local RpcTarget or function; its disposer runs after the last one."""

    __slots__ = ("_shared", "disposed", "target")

    def __init__(self, target: Any, shared: _Shared | None = None) -> None:
        self.target = target
        self._shared = shared or _Shared()
        self.disposed = False

    def call(self, path: Path, args: Payload) -> Hook:
        return call_at(self.target, path, args, None)

    def get(self, path: Path) -> Hook:
        return get_at(self.target, path, None)

    def map(self, path: Path, captures: list[Hook], instructions: list[Any]) -> Hook:
        from ._map import run_map

        if path:  # over the member the path reaches (the target's stub would lead back here)
            member = self.get(path)
            try:
                return member.map([], captures, instructions)
            finally:
                member.dispose()
        return run_map(self, path, captures, instructions)

    async def pull(self) -> Payload:
        stub = RpcStub(self.dup())
        return Payload(stub, owned=[stub])

    def dup(self) -> Hook:
        self._shared.refs += 1
        return TargetHook(self.target, self._shared)

    def dispose(self) -> None:
        if self.disposed:
            return
        self.disposed = True
        self._shared.refs -= 1
        if self._shared.refs == 0:
            dispose_target(self.target)


class ValueHook(Hook):
    """A reference to a resolved local value (a call's result, a decoded push)."""

    __slots__ = ("_shared", "disposed", "payload")

    def __init__(self, payload: Payload, shared: _Shared | None = None) -> None:
        self.payload = payload
        self._shared = shared or _Shared()
        self.disposed = False

    def call(self, path: Path, args: Payload) -> Hook:
        return call_at(self.payload.value, path, args, self.payload)

    def get(self, path: Path) -> Hook:
        if not path:
            return self.dup()
        return get_at(self.payload.value, path, self.payload)

    def map(self, path: Path, captures: list[Hook], instructions: list[Any]) -> Hook:
        from ._map import run_map

        return run_map(self, path, captures, instructions)

    async def pull(self) -> Payload:
        return self.payload

    def pulled(self) -> Payload | None:
        return self.payload

    def dup(self) -> Hook:
        self._shared.refs += 1
        return ValueHook(self.payload, self._shared)

    def on_broken(self, callback: BrokenCallback) -> None:
        value = self.payload.value
        if isinstance(value, RpcStub):  # a value that is one capability breaks with it
            value.on_broken(callback)

    def dispose(self) -> None:
        if self.disposed:
            return
        self.disposed = True
        self._shared.refs -= 1
        if self._shared.refs == 0:
            self.payload.dispose()


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
