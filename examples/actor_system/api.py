"""The actor system's interface: a supervisor that spawns actors, each one a capability.

``Supervisor.spawn(kind, name)`` starts an actor and returns it as an ``Actor`` capability;
``Actor.send(message)`` hands it one message and returns its reply. A message the actor cannot
handle crashes it: that call rejects with an ``ActorCrashed`` error, and the supervisor
restarts the actor from a clean state behind the same capability, so the holder's stub keeps
working. ``Actor.stop()``, or releasing the stub, ends the actor. ``Supervisor.stats()`` reports
the live import and export entries of the caller's session, as the library counts them.

Errors an actor's calls reject with (``RpcError`` on the client, told apart by ``name``):

- ``ActorCrashed``: this message crashed the actor (props: ``actor``, ``restarted``,
  ``restarts``; the actor's own exception is ``cause``);
- ``ActorStopped``: the actor no longer runs (props: ``actor``, ``status``).

Typed client stubs: ``python -m capnweb_codegen examples.actor_system.api --out stubs``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from capnweb.interface import camel_case, rpc_interface, rpc_method

Kind = Literal["counter", "echo"]
"""What an actor does with a message.

``counter``: adds the integer written in the message to its total and replies the total; a
message that is not an integer crashes it. ``echo``: replies ``#N message``, N counting the
messages it has handled.
"""

Status = Literal["running", "stopped", "failed"]
"""``stopped``: by ``stop()`` or released; ``failed``: crashed with no restart left."""

ACTOR_CRASHED = "ActorCrashed"
"""The error name of a call whose message crashed the actor."""

ACTOR_STOPPED = "ActorStopped"
"""The error name of a call to an actor that no longer runs."""


@dataclass
class ActorState:
    """A snapshot of one actor, as its supervisor sees it."""

    name: str
    kind: Kind
    status: Status
    restarts: int
    """Times the supervisor restarted it."""
    handled: int
    """Messages handled since its last (re)start."""
    last_error: str | None = None
    """What crashed it last, if anything did."""


@dataclass
class SessionStats:
    """Live entries of one session's import and export tables (``capnweb.Session.stats()``)."""

    imports: int
    exports: int


@rpc_interface(names=camel_case)
class Actor(Protocol):
    """One actor: it handles the messages sent to it one at a time, in order."""

    @rpc_method
    async def send(self, message: str) -> str:
        """Hand the actor ``message``; its reply (rejects ``ActorCrashed``/``ActorStopped``)."""

    @rpc_method
    async def state(self) -> ActorState:
        """The actor's current state (works in every status)."""

    @rpc_method
    async def stop(self) -> ActorState:
        """Stop the actor for good (idempotent); its final state."""


@rpc_interface(names=camel_case)
class Supervisor(Protocol):
    """The main capability: one supervisor per session, owning that session's actors."""

    @rpc_method
    async def spawn(self, kind: Kind, name: str, max_restarts: int = 3) -> Actor:
        """Start an actor of ``kind`` called ``name`` (unique among the running ones); the
        supervisor restarts it after a crash at most ``max_restarts`` times."""

    @rpc_method
    async def actors(self) -> list[ActorState]:
        """The running actors, in the order they were spawned."""

    @rpc_method
    async def stats(self) -> SessionStats:
        """The live import and export entries of the caller's session, read from the library
        (the main capability and this call in flight included)."""
