# generated from examples.actor_system.api:Actor — do not edit
# generated from examples.actor_system.api:Supervisor — do not edit
"""Typed capnweb client stubs for:

- ``examples.actor_system.api:Actor``
- ``examples.actor_system.api:Supervisor``

Get one with ``capnweb.connect(url, <Name>Stub)``; calls return typed promises that can be
awaited or pipelined. Regenerate with ``python -m capnweb_codegen``.
"""

from __future__ import annotations

import typing as _typing

import capnweb as _capnweb
import capnweb.typed as _capnweb_typed
import examples.actor_system.api as _examples_actor_system_api

__all__ = [
    "ActorPromise",
    "ActorStateListPromise",
    "ActorStatePromise",
    "ActorStub",
    "SessionStatsPromise",
    "SupervisorPromise",
    "SupervisorStub",
]


class ActorStub(_capnweb_typed.TypedStub):
    """One actor: it handles the messages sent to it one at a time, in order."""

    __slots__ = ()
    _interface = "examples.actor_system.api:Actor"

    def send(self, message: str | _capnweb.RpcPromise[str]) -> _capnweb_typed.TypedPromise[str]:
        """Hand the actor ``message``; its reply (rejects ``ActorCrashed``/``ActorStopped``)."""
        return self._rpc_call(_capnweb_typed.TypedPromise, "send", message)

    def state(self) -> ActorStatePromise:
        """The actor's current state (works in every status)."""
        return self._rpc_call(ActorStatePromise, "state")

    def stop(self) -> ActorStatePromise:
        """Stop the actor for good (idempotent); its final state."""
        return self._rpc_call(ActorStatePromise, "stop")


class SupervisorStub(_capnweb_typed.TypedStub):
    """The main capability: one supervisor per session, owning that session's actors."""

    __slots__ = ()
    _interface = "examples.actor_system.api:Supervisor"

    def spawn(
        self,
        kind: _typing.Literal["counter", "echo"]
        | _capnweb.RpcPromise[_typing.Literal["counter", "echo"]],
        name: str | _capnweb.RpcPromise[str],
        max_restarts: int | _capnweb.RpcPromise[int] = 3,
    ) -> ActorPromise:
        """Start an actor of ``kind`` called ``name`` (unique among the running ones); the
        supervisor restarts it after a crash at most ``max_restarts`` times.
        """
        return self._rpc_call(ActorPromise, "spawn", kind, name, max_restarts)

    def actors(self) -> ActorStateListPromise:
        """The running actors, in the order they were spawned."""
        return self._rpc_call(ActorStateListPromise, "actors")

    def stats(self) -> SessionStatsPromise:
        """The live import and export entries of the caller's session, read from the library
        (the main capability and this call in flight included).
        """
        return self._rpc_call(SessionStatsPromise, "stats")


class ActorPromise(_capnweb_typed.TypedPromise[ActorStub], ActorStub):
    """A pending ``ActorStub``: await it for the stub, or call its methods pipelined.

    One actor: it handles the messages sent to it one at a time, in order.
    """

    __slots__ = ()
    _result_type = ActorStub


class ActorStatePromise(_capnweb_typed.TypedPromise[_examples_actor_system_api.ActorState]):
    """A pending ``ActorState``: await it, or read its fields pipelined.

    A snapshot of one actor, as its supervisor sees it.
    """

    __slots__ = ()
    _result_type = _examples_actor_system_api.ActorState

    @property
    def name(self) -> _capnweb_typed.TypedPromise[str]:
        return self._rpc_get(_capnweb_typed.TypedPromise, "name")

    @property
    def kind(self) -> _capnweb_typed.TypedPromise[_typing.Literal["counter", "echo"]]:
        return self._rpc_get(_capnweb_typed.TypedPromise, "kind")

    @property
    def status(
        self,
    ) -> _capnweb_typed.TypedPromise[_typing.Literal["running", "stopped", "failed"]]:
        return self._rpc_get(_capnweb_typed.TypedPromise, "status")

    @property
    def restarts(self) -> _capnweb_typed.TypedPromise[int]:
        return self._rpc_get(_capnweb_typed.TypedPromise, "restarts")

    @property
    def handled(self) -> _capnweb_typed.TypedPromise[int]:
        return self._rpc_get(_capnweb_typed.TypedPromise, "handled")

    @property
    def last_error(self) -> _capnweb_typed.TypedPromise[str | None]:
        return self._rpc_get(_capnweb_typed.TypedPromise, "last_error")


class ActorStateListPromise(
    _capnweb_typed.TypedListPromise[list[_examples_actor_system_api.ActorState], ActorStatePromise]
):
    """A pending ``list[ActorState]``: await it, or ``map()`` over it."""

    __slots__ = ()
    _result_type = list[_examples_actor_system_api.ActorState]
    _element_type = ActorStatePromise


class SessionStatsPromise(_capnweb_typed.TypedPromise[_examples_actor_system_api.SessionStats]):
    """A pending ``SessionStats``: await it, or read its fields pipelined.

    Live entries of one session's import and export tables (``capnweb.Session.stats()``).
    """

    __slots__ = ()
    _result_type = _examples_actor_system_api.SessionStats

    @property
    def imports(self) -> _capnweb_typed.TypedPromise[int]:
        return self._rpc_get(_capnweb_typed.TypedPromise, "imports")

    @property
    def exports(self) -> _capnweb_typed.TypedPromise[int]:
        return self._rpc_get(_capnweb_typed.TypedPromise, "exports")


class SupervisorPromise(_capnweb_typed.TypedPromise[SupervisorStub], SupervisorStub):
    """A pending ``SupervisorStub``: await it for the stub, or call its methods pipelined.

    The main capability: one supervisor per session, owning that session's actors.
    """

    __slots__ = ()
    _result_type = SupervisorStub
