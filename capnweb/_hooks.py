"""Hooks, payloads and stubs: the local half of the runtime, under one set of rules.

Theory, once:

- A *hook* is one reference to something callable: a local RpcTarget or function
  (:class:`TargetHook`), a local value (:class:`ValueHook`), a value still being computed
  (``PromiseHook``), an error (``ErrorHook``), or an entry of a session's import table
  (``session.ImportHook``). ``call``/``get``/``map`` return a new hook for the result, at once:
  that is what makes pipelining work, locally and remotely alike.
- Hooks are linear: whoever holds one disposes it exactly once. ``dup()`` makes another
  reference to the same thing; the thing is released when every reference is disposed.
- A stub (:class:`RpcStub`) or promise (:class:`RpcPromise`) is the application's handle on
  one hook. ``dispose()`` disposes the hook; a stub that is garbage-collected disposes its
  hook on the next loop turn (``RpcStub.__del__``).
- A :class:`Payload` is a value tree plus the stubs it owns. A value returned by a method is
  owned by the result hook and released when the caller releases the result.
- Values handed to the application (an awaited result, call arguments) are copies whose stubs
  are fresh dups, and in which every promise has been replaced by its resolution.

Ownership of call arguments follows reachability, not a count of references. The
implementation receives the argument payload's own stubs, and the dispatcher drops its
references to them as soon as the function has returned or raised (:meth:`Payload.hand_over`;
the coroutine of an ``async def`` method holds its arguments until it finishes). From then on
an argument stub lives as long as something reachable holds it (an object or container the
implementation stored it in, a closure, a task still running), and its finalizer releases it,
on the next loop turn, once nothing does: in CPython as soon as the last reference goes; at
the next garbage collection where objects are not reference counted, or where the stub sits
in a reference cycle. Returning an argument stub or ``dup()``-ing it makes a new reference
(the result's, or the dup), so the capability lives on through that one whatever becomes of
the argument stub.

Hooks and stubs make one module because they make each other: running a call on a local
target hands the application stubs, and a stub of a local object runs calls. What does not
take part in that lives below: the Hook interface, errors and promises in
``capnweb._hookbase``, map recording and budgets in ``capnweb._map``, the rules for reaching a
target's members in ``capnweb._target``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import traceback
from collections.abc import Awaitable, Callable, Generator
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, Final, Generic, NoReturn, TypeVar

from ._codec import DEFAULT_LIMITS, PROTO_KEYS, WireRef, decode, is_model, model_wire
from ._hookbase import BrokenCallback, ErrorHook, Hook, Path, PromiseHook
from ._map import MAP_COST, TURN_WORK, map_budget, map_turn, record_map, recording
from ._target import RpcTarget, dispose_target, get_member, strip_undefined
from ._tasks import spawn
from ._validate import convert
from ._values import Request, Response, undefined
from .errors import RpcError

if TYPE_CHECKING:
    from typing import Self

__all__ = [
    "BrokenCallback",
    "ErrorHook",
    "Hook",
    "Path",
    "Payload",
    "PromiseHook",
    "RpcPromise",
    "RpcStub",
    "TargetHook",
    "ValueHook",
]

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)
P = TypeVar("P", bound="RpcStub")


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

    def hand_over(self) -> None:
        """After a call: drop this payload's references to its tree and stubs.

        The implementation owns the stubs from then on: those it kept live on, the others
        are unreachable and their finalizer releases them (see the module docstring).
        """
        self.owned = []
        self.value = None

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
        elif is_model(value):  # what the peer would receive: its wire object
            fields = model_wire(value)
            key = part if type(part) is str else str(part)
            value = fields.get(key, undefined) if type(fields) is dict else undefined
        else:
            value = undefined  # primitives, null, bytes, dates, errors, functions: nothing
    if isinstance(value, RpcPromise):
        return _Reached(None, parent, value, list(value._path))
    return _Reached(value, parent)


def _hook_of(stub: Any) -> Hook:
    return stub._hook  # type: ignore[no-any-return]


def call_at(root: Any, path: Path, args: Payload) -> Hook:
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


def invoke(fn: Callable[..., Any], args: Payload) -> Hook:
    """Run an application function on a payload of arguments; the result as a hook.

    Calls whose arguments hold no promises start at once (sync functions run to completion),
    so calls are delivered in the order they arrived. When the call is over, the arguments
    are handed over to the implementation (:meth:`Payload.hand_over`).
    """
    if args.source != "owned":
        args = args.owned_copy()
    if args.has_promises:
        return PromiseHook(spawn(_invoke_later(fn, args)))
    value = args.value
    try:
        result = fn(*strip_undefined(fn, value)) if type(value) is list else fn(value)
    except Exception as e:
        # The error's traceback keeps this frame: let go of the arguments in it.
        del value
        args.hand_over()
        traceback.clear_frames(e.__traceback__)
        return ErrorHook(e)
    del value
    args.hand_over()
    if type(result) not in _LEAF_TYPES and inspect.isawaitable(result):
        return PromiseHook(spawn(_finish(result)))
    hook = _result_hook(result)
    del result
    return hook


async def _invoke_later(fn: Callable[..., Any], args: Payload) -> Hook:
    try:
        await args.substitute()
    except Exception as e:
        args.dispose()
        return ErrorHook(e)
    return invoke(fn, args)


async def _finish(result: Awaitable[Any]) -> Hook:
    """The result of an async implementation (its coroutine holds the arguments it uses)."""
    try:
        value = await result
    except Exception as e:
        traceback.clear_frames(e.__traceback__)
        del result
        return ErrorHook(e)
    del result
    hook = _result_hook(value)
    del value
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
        return call_at(self.target, path, args)

    def get(self, path: Path) -> Hook:
        return get_at(self.target, path, None)

    def map(self, path: Path, captures: list[Hook], instructions: list[Any]) -> Hook:
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
        return call_at(self.payload.value, path, args)

    def get(self, path: Path) -> Hook:
        if not path:
            return self.dup()
        return get_at(self.payload.value, path, self.payload)

    def map(self, path: Path, captures: list[Hook], instructions: list[Any]) -> Hook:
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


# --------------------------------------------------------------------------------------------
# Stubs and promises: the application's handles on hooks


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
        builder = recording.builder
        if builder is not None:
            return RpcPromise(builder.push_call(self._hook, list(self._path), list(args)))
        return RpcPromise(self._hook.call(list(self._path), Payload.params(list(args))))

    # -- used by generated typed stubs

    def _rpc_call(self, cls: type[P], name: str, *args: Any) -> P:
        """Call remote method ``name`` (a wire name); the result typed as promise class ``cls``."""
        path = [*self._path, name]
        builder = recording.builder
        if builder is not None:
            return cls(builder.push_call(self._hook, path, list(args)))
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
        placeholder = self._element_type or RpcPromise
        return RpcPromise(record_map(self._hook, list(self._path), fn, placeholder, RpcPromise))

    @staticmethod
    def from_awaitable(awaitable: Awaitable[T]) -> RpcPromise[T]:
        """A promise for a local awaitable: pipeline on it, return it, or send it to a peer."""
        return RpcPromise(hook_for_awaitable(awaitable))


# --------------------------------------------------------------------------------------------
# Running received map() instructions over a local value (the format: capnweb._map)


class _Applicator:
    """Importer for decoding instructions: references name variables and captures."""

    def __init__(self, captures: list[Hook], variables: list[Hook]) -> None:
        self.captures = captures
        self.variables = variables
        self.building: Payload | None = None

    def _var(self, idx: int) -> Hook:
        if idx < 0 and -idx <= len(self.captures):
            return self.captures[-idx - 1]
        if 0 <= idx < len(self.variables):
            return self.variables[idx]
        raise RpcError(f"mapper refers to an unknown variable: {idx}")

    def _record(self, stub: RpcStub, promise: bool) -> RpcStub:
        assert self.building is not None
        self.building.owned.append(stub)
        if promise:
            self.building.has_promises = True
        return stub

    def decode(self, expr: Any) -> Payload:
        prev = self.building
        payload = self.building = Payload(None)
        try:
            payload.value = decode(expr, self, DEFAULT_LIMITS)
        except BaseException:
            payload.dispose()
            raise
        finally:
            self.building = prev
        return payload

    def import_ref(
        self, promise: bool, ref_id: int, path: list[str | int] | None, args: Any
    ) -> Any:
        hook = self._var(ref_id)
        if args is not None:
            prev = self.building
            payload = self.building = Payload(None)
            try:
                payload.value = args()
            finally:
                self.building = prev
            result = hook.call(path or [], payload)
        elif path:
            result = hook.get(path)
        else:
            result = hook.dup()
        return self._record(RpcPromise(result) if promise else RpcStub(result), promise)

    def export_ref(self, ref_id: int, promise: bool) -> Any:
        raise RpcError("A mapper function cannot refer to exports.")

    def remap_ref(
        self, ref_id: int, path: list[str | int], captures: list[Any], instructions: list[Any]
    ) -> Any:
        hooks: list[Hook] = []
        for cap in captures:
            if type(cap) is not list or len(cap) != 2 or cap[0] != "import":
                raise RpcError("unknown map capture")
            hooks.append(self._var(cap[1]).dup())
        return self._record(RpcPromise(self._var(ref_id).map(path, hooks, instructions)), True)

    def unsupported(self, what: str) -> Any:
        raise RpcError(f"{what} cannot be used inside a mapper function.")

    def readable_ref(self, pipe_id: int) -> Any:
        return self.unsupported("A ReadableStream")

    def writable_ref(self, ref_id: int) -> Any:
        return self.unsupported("A WritableStream")

    def blob_ref(self, mime: str, content: Any) -> Any:
        return self.unsupported("A Blob")


def _apply_one(
    elem: Any, owner: Payload | None, captures: list[Hook], instructions: list[Any]
) -> Payload:
    if not instructions:
        raise RpcError("Invalid empty mapper function.")
    variables: list[Hook] = [ValueHook(copy_value(elem, owner))]
    app = _Applicator(captures, variables)
    try:
        for instr in instructions[:-1]:
            payload = app.decode(instr)
            value = payload.value
            if isinstance(value, RpcStub) and not value._path and payload.owned == [value]:
                variables.append(value._take_hook_and_forget())
            else:
                variables.append(ValueHook(payload))
        return app.decode(instructions[-1])
    finally:
        for v in variables:
            v.dispose()


def run_map(hook: Hook, path: Path, captures: list[Hook], instructions: list[Any]) -> Hook:
    """Run received map instructions over the value at ``hook``/``path``; the result hook.

    The work counts against the :data:`map_budget` of the context it is started in."""
    hook = hook.dup()  # our own reference: the caller may release its own before we run
    budget = map_budget.get()
    if budget is not None:
        budget.start()

    async def go() -> Hook:
        handed_over = False
        try:
            if budget is not None:
                budget.charge(MAP_COST)
            payload = await hook.pull()
            reached = follow(payload.value, path)
            if reached.hook_owner is not None:
                handed_over = True
                return reached.hook_owner._hook.map(reached.rest, captures, instructions)  # type: ignore[no-any-return]
            value = reached.value
            if value is None or value is undefined:
                return ValueHook(Payload(value))
            cost = len(instructions) or 1
            turn = map_turn()
            if type(value) is not list:
                if budget is not None:
                    budget.charge(cost)
                await turn.wait()
                turn.charge(cost)
                return ValueHook(_apply_one(value, payload, captures, instructions))
            if budget is not None:
                budget.charge(len(value) * cost)
            out = Payload([])
            try:
                for elem in value:
                    if turn.work >= TURN_WORK:
                        await turn.wait()  # let other connections in
                    turn.charge(cost)
                    one = _apply_one(elem, payload, captures, instructions)
                    out.value.append(one.value)
                    out.owned.extend(one.owned)
                    out.has_promises = out.has_promises or one.has_promises
            except BaseException:
                out.dispose()
                raise
            return ValueHook(out)
        except Exception as e:
            return ErrorHook(e)
        finally:
            hook.dispose()
            if not handed_over:
                for cap in captures:
                    cap.dispose()
            if budget is not None:
                budget.end()

    return PromiseHook(spawn(go()))
