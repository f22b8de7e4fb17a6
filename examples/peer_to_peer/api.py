"""The peer-to-peer example's interface: what each of two processes serves to the other.

A Cap'n Web session is symmetric: over its one WebSocket, each side exports a main capability
and imports the other's. Here both mains are a :class:`Peer`: the listening process serves one
to each session, and the connecting process passes its own as ``main=`` of
``capnweb.connect()``. ``python -m capnweb_codegen examples.peer_to_peer.api --out stubs``
turns this Protocol into ``stubs/examples_peer_to_peer_api.py``, whose ``PeerStub`` both
processes use to call each other.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from capnweb.interface import camel_case, rpc_interface, rpc_method


@rpc_interface(names=camel_case)
class Peer(Protocol):
    """One end of a peer-to-peer session: each process serves one to the other."""

    @rpc_method
    async def hello(self, name: str) -> str:
        """``name`` has connected: this peer starts its own calls to the caller (the caller's
        main capability) and returns its own name."""

    @rpc_method
    async def greet(self, sender: str, message: str) -> str:
        """A greeting from ``sender``; returns the reply."""

    @rpc_method
    async def ask(self, sender: str, question: str, answer: Callable[[str], Awaitable[str]]) -> str:
        """A question from ``sender``: this peer answers by calling ``answer`` (a function in
        the asking process) and returns what ``answer`` returned."""

    @rpc_method
    async def bye(self) -> None:
        """The caller is done: returns once this peer has finished its own calls to the
        caller, so that the caller may hang up."""
