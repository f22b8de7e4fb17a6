"""RpcTarget: objects passed by reference, and the rule for what a peer may reach on them.

A peer reaches only the *public class members* of an RpcTarget: methods (sync or async) and
``property`` getters defined on its class or a base class below ``RpcTarget``. Names starting
with ``_`` (dunders included), members of ``RpcTarget`` itself, class constants and instance
attributes are never reachable. Looking one up yields ``undefined``, except an instance
attribute, which raises ``TypeError`` so that the mistake is easy to see.
"""

from __future__ import annotations

from typing import Any, Final

from ._values import undefined

__all__ = ["RpcTarget", "get_member"]


class RpcTarget:
    """Base class for objects passed by reference: the peer gets a stub and calls back here.

    Subclass it and define methods; a peer can call the public ones. Override
    :meth:`on_dispose` to learn when a peer released the last reference to one export.
    """

    __slots__ = ("__weakref__",)

    def on_dispose(self) -> None:
        """Called when every stub to one export of this target has been released."""


_BASE_NAMES: Final = frozenset(dir(RpcTarget))

# kind of each (class, name): "method", "property" or None (not reachable)
_member_cache: dict[tuple[type, str], str | None] = {}


def _classify(cls: type, name: str) -> str | None:
    if name.startswith("_") or name in _BASE_NAMES:
        return None
    for klass in cls.__mro__:
        if klass is RpcTarget or klass is object:
            return None
        attr = klass.__dict__.get(name)
        if attr is None:
            continue
        if isinstance(attr, property):
            return "property"
        if isinstance(attr, staticmethod | classmethod) or callable(attr):
            return "method"
        return None
    return None


def member_kind(cls: type, name: str) -> str | None:
    """Whether ``name`` is a reachable method or property of RpcTarget class ``cls``."""
    key = (cls, name)
    try:
        return _member_cache[key]
    except KeyError:
        kind = _member_cache[key] = _classify(cls, name)
        return kind


def get_member(target: RpcTarget, name: str | int) -> Any:
    """The value a peer sees at ``target.<name>``: a bound method, a property value, or
    ``undefined``. Raises TypeError for an instance attribute."""
    if type(name) is not str:
        return undefined
    kind = member_kind(type(target), name)
    if kind is None:
        inst = getattr(target, "__dict__", None)
        if inst is not None and name in inst and not name.startswith("_"):
            raise TypeError(
                f"Attempted to access property '{name}', which is an instance property of the "
                "RpcTarget. To avoid leaking private internals, instance properties cannot be "
                "accessed over RPC. If you want to make this property available over RPC, define "
                "it as a method or property on the class, instead of an instance attribute."
            )
        return undefined
    return getattr(target, name)


def dispose_target(target: Any) -> None:
    """Run a target's disposer, if it has one; errors in it are reported, never raised."""
    hook = getattr(target, "on_dispose", None)
    if hook is None:
        return
    try:
        hook()
    except Exception:  # a disposer must not break the session
        import logging

        logging.getLogger("capnweb").exception("error in on_dispose of %r", target)
