"""RpcStub and RpcPromise: the application's handles on capabilities and pending results.

Attribute access and calls on a stub or promise build pipelined expressions: nothing waits
until a promise is awaited, so ``await api.user("ann").profile.name`` costs one round trip.
Names that start with ``_`` and the few local methods (``dup``, ``dispose``, ``map``,
``on_broken``) are not sent; reach a remote member with such a name with ``stub["name"]``.

Lifetime: a stub holds one reference to the remote object. ``dispose()`` (or leaving a
``with``/``async with`` block) releases it at once; a stub that is garbage-collected is
released soon after. A stub received as a call argument stays valid as long as the
implementation keeps a reference to it; one it does not keep is released when the call
returns (docs/guide.md, "Lifetimes"). The classes live in ``capnweb._hooks``, beside the hooks
they wrap, where the rule is written out.
"""

from __future__ import annotations

from typing import Any

from ._hooks import RpcPromise, RpcStub

__all__ = ["RpcPromise", "RpcStub", "is_promise"]


def is_promise(value: Any) -> bool:
    """Whether ``value`` is an RpcPromise."""
    return isinstance(value, RpcPromise)
