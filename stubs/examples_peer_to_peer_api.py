# generated from examples.peer_to_peer.api:Peer — do not edit
"""Typed capnweb client stubs for:

- ``examples.peer_to_peer.api:Peer``

Get one with ``capnweb.connect(url, <Name>Stub)``; calls return typed promises that can be
awaited or pipelined. Regenerate with ``python -m capnweb_codegen``.
"""

from __future__ import annotations

import collections.abc as _collections_abc

import capnweb as _capnweb
import capnweb.typed as _capnweb_typed

__all__ = [
    "PeerPromise",
    "PeerStub",
]


class PeerStub(_capnweb_typed.TypedStub):
    """One end of a peer-to-peer session: each process serves one to the other."""

    __slots__ = ()
    _interface = "examples.peer_to_peer.api:Peer"

    def hello(self, name: str | _capnweb.RpcPromise[str]) -> _capnweb_typed.TypedPromise[str]:
        """``name`` has connected: this peer starts its own calls to the caller (the caller's
        main capability) and returns its own name.
        """
        return self._rpc_call(_capnweb_typed.TypedPromise, "hello", name)

    def greet(
        self, sender: str | _capnweb.RpcPromise[str], message: str | _capnweb.RpcPromise[str]
    ) -> _capnweb_typed.TypedPromise[str]:
        """A greeting from ``sender``; returns the reply."""
        return self._rpc_call(_capnweb_typed.TypedPromise, "greet", sender, message)

    def ask(
        self,
        sender: str | _capnweb.RpcPromise[str],
        question: str | _capnweb.RpcPromise[str],
        answer: _collections_abc.Callable[[str], _collections_abc.Awaitable[str]]
        | _capnweb.RpcStub,
    ) -> _capnweb_typed.TypedPromise[str]:
        """A question from ``sender``: this peer answers by calling ``answer`` (a function in
        the asking process) and returns what ``answer`` returned.
        """
        return self._rpc_call(_capnweb_typed.TypedPromise, "ask", sender, question, answer)

    def bye(self) -> _capnweb_typed.TypedPromise[None]:
        """The caller is done: returns once this peer has finished its own calls to the
        caller, so that the caller may hang up.
        """
        return self._rpc_call(_capnweb_typed.TypedPromise, "bye")


class PeerPromise(_capnweb_typed.TypedPromise[PeerStub], PeerStub):
    """A pending ``PeerStub``: await it for the stub, or call its methods pipelined.

    One end of a peer-to-peer session: each process serves one to the other.
    """

    __slots__ = ()
    _result_type = PeerStub
