"""Typed interfaces: ``typing.Protocol`` classes whose remote members carry ``@rpc_method``.

One plain description (:class:`Interface`) is built from a Protocol's annotations and used by
both the dispatcher (what a peer may call, how arguments are checked) and the code generator
(typed client stubs), so they can never disagree::

    @rpc_interface(names=camel_case)         # optional: wire names for TypeScript peers
    class Counter(Protocol):
        '''A counter capability.'''

        @rpc_method
        async def increment(self, amount: int = 1) -> int: ...

        @property
        @rpc_property
        def value(self) -> int: ...

An implementation subclasses ``RpcTarget`` and the Protocol (``class CounterImpl(RpcTarget,
Counter)``); a peer then reaches exactly the declared members and nothing else.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import inspect
import re
import sys
import types
import typing
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Final, Literal, TypeVar, Union, get_args, get_origin, overload

from typing_extensions import is_typeddict

from ._codec import WireReadable, WireRef, WireWritable
from ._values import Blob, Request, Response

__all__ = [
    "Interface",
    "Member",
    "Param",
    "camel_case",
    "describe",
    "interfaces_of",
    "is_interface",
    "rpc_interface",
    "rpc_method",
    "rpc_property",
    "stream_chunk",
    "writable_chunk",
]

F = TypeVar("F", bound=Callable[..., Any])
C = TypeVar("C", bound=type)

_METHOD_ATTR: Final = "__rpc_member__"
_IFACE_ATTR: Final = "__rpc_interface_options__"


@dataclass(frozen=True, slots=True)
class _MemberMark:
    kind: Literal["method", "property"]
    name: str | None


@overload
def rpc_method(fn: F, /) -> F: ...
@overload
def rpc_method(*, name: str | None = None) -> Callable[[F], F]: ...
def rpc_method(fn: F | None = None, *, name: str | None = None) -> Any:
    """Mark a Protocol method as remote; ``name`` sets its wire name explicitly.

    Returns the function unchanged (usable bare, ``@rpc_method``, or called,
    ``@rpc_method(name="getUser")``).
    """

    def mark(f: F) -> F:
        setattr(f, _METHOD_ATTR, _MemberMark("method", name))
        return f

    return mark(fn) if fn is not None else mark


@overload
def rpc_property(fn: F, /) -> F: ...
@overload
def rpc_property(*, name: str | None = None) -> Callable[[F], F]: ...
def rpc_property(fn: F | None = None, *, name: str | None = None) -> Any:
    """Mark a Protocol property getter as remotely readable (put it under ``@property``)."""

    def mark(f: F) -> F:
        setattr(f, _METHOD_ATTR, _MemberMark("property", name))
        return f

    return mark(fn) if fn is not None else mark


def camel_case(name: str) -> str:
    """``get_user`` -> ``getUser`` (the usual TypeScript spelling)."""
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def snake_case(name: str) -> str:
    """``getUser`` -> ``get_user``."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


NamePolicy = Callable[[str], str]


@overload
def rpc_interface(cls: C, /) -> C: ...
@overload
def rpc_interface(*, names: NamePolicy | None = None) -> Callable[[C], C]: ...
def rpc_interface(cls: C | None = None, *, names: NamePolicy | None = None) -> Any:
    """Mark a Protocol as an RPC interface; ``names`` maps Python member names to wire names
    (e.g. :func:`camel_case`). Returns the class unchanged."""

    def mark(c: C) -> C:
        setattr(c, _IFACE_ATTR, {"names": names})
        return c

    return mark(cls) if cls is not None else mark


# --------------------------------------------------------------------------------------------
# The description


@dataclass(frozen=True, slots=True)
class Param:
    """One parameter of a remote method."""

    name: str
    annotation: Any
    default: Any = inspect.Parameter.empty

    @property
    def required(self) -> bool:
        """Whether a caller must pass it."""
        return self.default is inspect.Parameter.empty


@dataclass(frozen=True, slots=True)
class Member:
    """One remote member: a method or a readable property."""

    name: str
    wire_name: str
    kind: Literal["method", "property"]
    params: tuple[Param, ...]
    returns: Any
    doc: str | None
    is_async: bool
    variadic: bool = False


@dataclass(frozen=True)
class Interface:
    """What a Protocol declares as remote: members by Python name, with wire names."""

    cls: type
    name: str
    module: str
    doc: str | None
    members: dict[str, Member] = field(default_factory=dict)

    @property
    def by_wire_name(self) -> dict[str, Member]:
        """The members keyed by wire name."""
        return {m.wire_name: m for m in self.members.values()}

    @property
    def ref(self) -> str:
        """``module:Name``, how the code generator names it."""
        return f"{self.module}:{self.cls.__qualname__}"


def is_interface(obj: Any) -> bool:
    """Whether ``obj`` is a class that declares remote members (an RPC interface)."""
    if not isinstance(obj, type):
        return False
    if _IFACE_ATTR in obj.__dict__:
        return True
    if not getattr(obj, "_is_protocol", False):
        return False
    return any(_mark_of(v) is not None for v in obj.__dict__.values())


def _mark_of(attr: Any) -> _MemberMark | None:
    if isinstance(attr, property):
        attr = attr.fget
    if isinstance(attr, staticmethod | classmethod):
        attr = attr.__func__
    mark = getattr(attr, _METHOD_ATTR, None)
    return mark if isinstance(mark, _MemberMark) else None


def _unwrap_awaitable(tp: Any) -> Any:
    origin = get_origin(tp)
    if origin in (Awaitable, Coroutine, collections.abc.Awaitable, collections.abc.Coroutine):
        args = get_args(tp)
        return args[-1] if args else Any
    return tp


_cache: dict[type, Interface] = {}


def describe(cls: type) -> Interface:
    """The description of RPC interface ``cls`` (cached). Members of base interfaces are
    included; annotations may be strings (``from __future__ import annotations``)."""
    cached = _cache.get(cls)
    if cached is not None:
        return cached
    if not is_interface(cls):
        raise TypeError(f"{cls.__qualname__} declares no @rpc_method or @rpc_property members")
    policy: NamePolicy | None = None
    for klass in cls.__mro__:
        opts = klass.__dict__.get(_IFACE_ATTR)
        if opts is not None:
            policy = opts["names"]
            break
    members: dict[str, Member] = {}
    for klass in reversed(cls.__mro__):
        for attr_name, attr in klass.__dict__.items():
            mark = _mark_of(attr)
            if mark is None:
                continue
            if attr_name.startswith("_"):
                raise TypeError(f"{cls.__qualname__}.{attr_name}: remote names cannot start with _")
            members[attr_name] = _member(cls, klass, attr_name, attr, mark, policy)
    own = cls.__dict__.get("__doc__")  # not inherited: typing.Protocol's is not the interface's
    doc = inspect.cleandoc(own) if isinstance(own, str) else None
    iface = Interface(cls, cls.__name__, cls.__module__, doc, members)
    wires: dict[str, str] = {}
    for m in members.values():
        if m.wire_name in wires:
            raise TypeError(
                f"{cls.__qualname__}: {m.name} and {wires[m.wire_name]} share wire name "
                f"{m.wire_name!r}"
            )
        wires[m.wire_name] = m.name
    _cache[cls] = iface
    return iface


def _member(
    cls: type, owner: type, name: str, attr: Any, mark: _MemberMark, policy: NamePolicy | None
) -> Member:
    fn: Any = attr.fget if isinstance(attr, property) else attr
    if isinstance(fn, staticmethod | classmethod):
        fn = fn.__func__
    try:
        hints = typing.get_type_hints(fn, include_extras=True)
    except Exception as e:
        raise TypeError(f"cannot resolve the annotations of {cls.__qualname__}.{name}: {e}") from e
    sig = inspect.signature(fn)
    params: list[Param] = []
    variadic = False
    for i, p in enumerate(sig.parameters.values()):
        if i == 0 and p.name in ("self", "cls"):
            continue
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            variadic = True
            continue
        if p.kind is p.KEYWORD_ONLY:
            raise TypeError(
                f"{cls.__qualname__}.{name}: keyword-only parameter {p.name!r} cannot be "
                "passed over RPC (arguments are positional on the wire)"
            )
        params.append(Param(p.name, hints.get(p.name, Any), p.default))
    returns = _unwrap_awaitable(hints.get("return", Any))
    is_async = inspect.iscoroutinefunction(fn)
    wire = mark.name or (policy(name) if policy is not None else name)
    return Member(
        name=name,
        wire_name=wire,
        kind=mark.kind,
        params=tuple(params),
        returns=returns,
        doc=inspect.getdoc(fn),
        is_async=is_async,
        variadic=variadic,
    )


def interfaces_of(cls: type) -> list[Interface]:
    """The RPC interfaces an implementation class declares (its Protocol bases)."""
    return [describe(k) for k in cls.__mro__[1:] if is_interface(k)]


# --------------------------------------------------------------------------------------------
# Classifying types (shared by the validator and the code generator)


def is_capability_type(tp: Any) -> bool:
    """Whether values of annotation ``tp`` travel by reference (interfaces, callables, stubs)."""
    origin = get_origin(tp)
    if origin in (collections.abc.Callable, Callable):
        return True
    if isinstance(tp, type):
        return is_interface(tp) or issubclass(tp, WireRef)  # WireRef: RpcStub's base
    return False


_OWN_VALUES: Final = (Blob, Request, Response)
"""Dataclasses of this package that travel in wire forms of their own, not as wire objects."""


def is_data_class(tp: Any) -> bool:
    """Whether ``tp`` is a dataclass, a TypedDict or a pydantic model (sent as a wire object)."""
    return (
        isinstance(tp, type)
        and (dataclasses.is_dataclass(tp) or is_typeddict(tp) or is_model_class(tp))
        and not issubclass(tp, _OWN_VALUES)
    )


_READABLE: Final = (
    collections.abc.AsyncIterator,
    collections.abc.AsyncIterable,
    collections.abc.AsyncGenerator,
)


def stream_chunk(tp: Any) -> Any | None:
    """The chunk type when values of ``tp`` travel as a ``ReadableStream`` (``AsyncIterator[T]``,
    ``AsyncIterable[T]``, ``AsyncGenerator[T, None]``, ``ReadableStream[T]``), else None."""
    origin = get_origin(tp)
    base = tp if origin is None else origin
    if base in _READABLE or (isinstance(base, type) and issubclass(base, WireReadable)):
        args = get_args(tp)
        return args[0] if args else Any
    return None


def writable_chunk(tp: Any) -> Any | None:
    """The chunk type when ``tp`` is ``WritableStream[T]`` (passed by reference), else None."""
    origin = get_origin(tp)
    base = tp if origin is None else origin
    if isinstance(base, type) and issubclass(base, WireWritable):
        args = get_args(tp)
        return args[0] if args else Any
    return None


def is_model_class(tp: Any) -> bool:
    """Whether ``tp`` is a pydantic (v2) model class; pydantic is not imported to tell."""
    main = sys.modules.get("pydantic.main")  # a model class exists only once it is loaded
    return main is not None and isinstance(tp, type) and issubclass(tp, main.BaseModel)


def union_args(tp: Any) -> tuple[Any, ...] | None:
    """The members of a Union/Optional annotation, else None."""
    origin = get_origin(tp)
    if origin is Union or origin is types.UnionType:
        return get_args(tp)
    return None
