"""RpcTarget: objects passed by reference, and the rule for what a peer may reach on them.

A target whose class implements RPC interfaces (Protocols with ``@rpc_method`` members, see
``capnweb.interface``) exposes exactly the declared members, under their wire names, with
arguments checked against the annotations.

Otherwise a peer reaches only the *public class members* of an RpcTarget: methods (sync or
async) and ``property`` getters defined on its class or a base class below ``RpcTarget``.
Names starting with ``_`` (dunders included), members of ``RpcTarget`` itself, class
constants and instance attributes are never reachable. Looking one up yields ``undefined``,
except an instance attribute, which raises ``TypeError`` so that the mistake is easy to see.
"""

from __future__ import annotations

import inspect
import logging
import weakref
from collections.abc import Callable
from typing import Any, Final

from ._codec import WireTarget
from ._validate import args_checker
from ._values import undefined
from .interface import interfaces_of

__all__ = ["Checked", "RpcTarget", "dispose_target", "get_member", "strip_undefined"]

log = logging.getLogger("capnweb")


class RpcTarget(WireTarget):
    """Base class for objects passed by reference: the peer gets a stub and calls back here.

    Subclass it and define methods; a peer can call the public ones. Override
    :meth:`on_dispose` to learn when a peer released the last reference to one export.
    """

    __slots__ = ("__weakref__",)

    rpc_validate: bool = True
    """Check arguments against the implemented interfaces' annotations (when it has any)."""

    def on_dispose(self) -> None:
        """Called when every stub to one export of this target has been released."""


_BASE_NAMES: Final = frozenset(dir(RpcTarget)) | {"rpc_validate"}


class _Info:
    """How a wire name resolves on one RpcTarget class."""

    __slots__ = ("attr", "check", "kind")

    def __init__(self, kind: str, attr: str, check: Callable[[list[Any]], list[Any]] | None):
        self.kind = kind
        self.attr = attr
        self.check = check


class _Members:
    """The reachable members of one RpcTarget class, as far as they have been looked up.

    Only names that resolve are kept, so the table is bounded by the class's own members
    however many other names peers send; a class implementing interfaces has them all from
    the start. Misses are worked out again each time (a walk of the class's bases).
    """

    __slots__ = ("declared", "found")

    def __init__(self, cls: type) -> None:
        self.declared = _declared(cls)
        self.found: dict[str, _Info] = self.declared if self.declared is not None else {}


# Held weakly: a class that is no longer used goes away with its table.
_classes: weakref.WeakKeyDictionary[type, _Members] = weakref.WeakKeyDictionary()


def _declared(cls: type) -> dict[str, _Info] | None:
    """Wire name -> member for a class implementing RPC interfaces; None if it declares none."""
    ifaces = interfaces_of(cls)
    if not ifaces:
        return None
    validate = bool(getattr(cls, "rpc_validate", True))
    table: dict[str, _Info] = {}
    for iface in ifaces:
        for m in iface.members.values():
            check = args_checker(m, cls.__name__) if validate and m.kind == "method" else None
            table[m.wire_name] = _Info(m.kind, m.name, check)
    return table


def _classify(cls: type, name: str) -> _Info | None:
    """How ``name`` resolves on a class that declares no interface (None: unreachable)."""
    if name.startswith("_") or name in _BASE_NAMES:
        return None
    for klass in cls.__mro__:
        if klass is RpcTarget or klass is object:
            return None
        attr = klass.__dict__.get(name)
        if attr is None:
            continue
        if isinstance(attr, property):
            return _Info("property", name, None)
        if isinstance(attr, staticmethod | classmethod) or callable(attr):
            return _Info("method", name, None)
        return None
    return None


def member_info(cls: type, name: str) -> _Info | None:
    """How wire name ``name`` resolves on RpcTarget class ``cls`` (None: unreachable)."""
    members = _classes.get(cls)
    if members is None:
        members = _classes[cls] = _Members(cls)
    info = members.found.get(name)
    if info is not None or members.declared is not None:
        return info
    info = _classify(cls, name)
    if info is not None:
        members.found[name] = info
    return info


class Checked:
    """A bound method whose arguments are checked against its interface before it runs."""

    __slots__ = ("check", "fn")

    def __init__(self, fn: Callable[..., Any], check: Callable[[list[Any]], list[Any]]):
        self.fn = fn
        self.check = check

    def __call__(self, *args: Any) -> Any:
        return self.fn(*self.check(list(args)))


def get_member(target: RpcTarget, name: str | int) -> Any:
    """The value a peer sees at ``target.<name>``: a bound method, a property value, or
    ``undefined``. Raises TypeError for an instance attribute."""
    if type(name) is not str:
        return undefined
    info = member_info(type(target), name)
    if info is None:
        inst = getattr(target, "__dict__", None)
        if inst is not None and name in inst and not name.startswith("_"):
            raise TypeError(
                f"Attempted to access property '{name}', which is an instance property of the "
                "RpcTarget. To avoid leaking private internals, instance properties cannot be "
                "accessed over RPC. If you want to make this property available over RPC, define "
                "it as a method or property on the class, instead of an instance attribute."
            )
        return undefined
    value = getattr(target, info.attr)
    if info.check is not None:
        return Checked(value, info.check)
    return value


def dispose_target(target: Any) -> None:
    """Run a target's disposer, if it has one; errors in it are reported, never raised."""
    hook = getattr(target, "on_dispose", None)
    if hook is None:
        return
    try:
        hook()
    except Exception:  # a disposer must not break the session
        log.exception("error in on_dispose of %r", target)


# --------------------------------------------------------------------------------------------
# Trailing ``undefined`` arguments


# Callable (the function itself, for a bound method) -> index of its first positional
# parameter with a default. Held weakly: the key is application code.
_first_defaults: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()

_NO_DEFAULT: Final = 1 << 30


def _first_default(fn: Callable[..., Any]) -> int:
    """Index of the first positional parameter of ``fn`` that has a default (or a large
    number when none has)."""
    func: Callable[..., Any] = getattr(fn, "__func__", fn)
    bound = func is not fn and getattr(fn, "__self__", None) is not None
    key = func if bound else fn
    try:
        first = _first_defaults.get(key)
    except TypeError:  # not hashable, or not weakly referable: not cached
        first = None
    if first is None:
        first = _NO_DEFAULT
        try:
            params = list(inspect.signature(key).parameters.values())
        except (TypeError, ValueError):
            params = []
        for i, p in enumerate(params):
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is not p.empty:
                first = i
                break
        try:
            _first_defaults[key] = first
        except TypeError:
            pass
    return max(first - 1, 0) if bound else first  # a bound method's first parameter is bound


def strip_undefined(fn: Callable[..., Any], args: list[Any]) -> list[Any]:
    """Drop trailing ``undefined`` arguments that fall on parameters with defaults, so the
    defaults apply as they do in JavaScript."""
    if not args or args[-1] is not undefined or isinstance(fn, Checked):
        return args  # a checked method maps undefined to defaults itself
    first = _first_default(fn)
    n = len(args)
    while n > first and args[n - 1] is undefined:
        n -= 1
    return args[:n]
