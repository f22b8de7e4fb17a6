"""The actor system's server: one supervisor per session, implementing
``examples/actor_system/api.py``.

Usage (from the repository root): ``python -m examples.actor_system.server --port N`` (port 0:
any free port); it prints ``listening N`` once it accepts connections, then one line per actor
event (spawned, crashed, restarted, stopped, released), and stops on SIGTERM or Ctrl-C.

Supervision is one-for-one, as in Erlang/OTP: when a message crashes an actor, that call
rejects and the supervisor replaces the crashed incarnation with a fresh one (its state starts
over) behind the same capability, so every holder of the stub carries on without doing
anything. The capability names the actor, not one incarnation of it.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable
from typing import Protocol

import capnweb
from capnweb import RpcError, RpcTarget
from examples.actor_system.api import (
    ACTOR_CRASHED,
    ACTOR_STOPPED,
    Actor,
    ActorState,
    Kind,
    SessionStats,
    Status,
    Supervisor,
)

__all__ = ["ActorImpl", "SupervisorImpl", "main", "serve"]


class Behaviour(Protocol):
    """What one incarnation of an actor does with a message; its state lives on it."""

    def handle(self, message: str) -> str:
        """The reply to ``message``; raising crashes the actor."""
        ...


class CounterBehaviour:
    """Adds the integer in each message to a total. It does not check its input: a message
    that is not an integer crashes it, and the supervisor restarts it with a clean total."""

    def __init__(self) -> None:
        self.total = 0

    def handle(self, message: str) -> str:
        self.total += int(message)
        return str(self.total)


class EchoBehaviour:
    """Replies each message numbered: ``#N message``."""

    def __init__(self) -> None:
        self.seen = 0

    def handle(self, message: str) -> str:
        self.seen += 1
        return f"#{self.seen} {message}"


BEHAVIOURS: dict[str, Callable[[], Behaviour]] = {
    "counter": CounterBehaviour,
    "echo": EchoBehaviour,
}
"""A fresh incarnation of each kind of actor: what spawn and every restart build."""

MAX_NAME = 64
"""Longest actor name spawn() accepts."""


def log(line: str) -> None:
    """One line of the server's log."""
    print(line, flush=True)


class ActorImpl(RpcTarget, Actor):
    """One actor: the capability stays the same across restarts, the behaviour is replaced.

    Behaviours are synchronous, so each message is handled to the end before the next one
    starts: messages are handled one at a time, in the order they arrive.
    """

    def __init__(self, supervisor: SupervisorImpl, kind: Kind, name: str, max_restarts: int):
        self._supervisor = supervisor
        self._kind: Kind = kind
        self._name = name
        self._max_restarts = max_restarts
        self._behaviour = BEHAVIOURS[kind]()
        self._status: Status = "running"
        self._restarts = 0
        self._handled = 0
        self._last_error: str | None = None

    @property
    def name(self) -> str:
        """The actor's name (not remote: only the Actor interface's members are)."""
        return self._name

    async def send(self, message: str) -> str:
        if self._status != "running":
            raise RpcError(
                f"{self._name!r} is {self._status}",
                name=ACTOR_STOPPED,
                props={"actor": self._name, "status": self._status},
            )
        try:
            reply = self._behaviour.handle(message)
        except Exception as exc:
            self._last_error = f"{type(exc).__name__}: {exc}"
            restarted = self._supervisor.crashed(self, message)
            outcome = (
                f"restarted ({self._restarts} of {self._max_restarts})"
                if restarted
                else "no restart left: failed"
            )
            raise RpcError(
                f"{self._name!r} crashed on {message!r} ({self._last_error}); {outcome}",
                name=ACTOR_CRASHED,
                props={"actor": self._name, "restarted": restarted, "restarts": self._restarts},
            ) from exc
        self._handled += 1
        return reply

    async def state(self) -> ActorState:
        return self.snapshot()

    async def stop(self) -> ActorState:
        if self._status == "running":
            self.end("stopped")
            log(f"{self._name!r} stopped")
        return self.snapshot()

    def on_dispose(self) -> None:
        """The client released its stub: nobody can reach this actor any more, so end it."""
        running = self._status == "running"
        self.end("stopped")
        log(f"{self._name!r} released" + ("; stopped" if running else ""))

    # -- used by the supervisor

    def snapshot(self) -> ActorState:
        """The actor's state, by value."""
        return ActorState(
            self._name, self._kind, self._status, self._restarts, self._handled, self._last_error
        )

    def restart(self) -> bool:
        """Replace the crashed incarnation with a fresh one, if a restart is left."""
        if self._restarts >= self._max_restarts:
            return False
        self._restarts += 1
        self._behaviour = BEHAVIOURS[self._kind]()
        self._handled = 0
        return True

    def end(self, status: Status) -> None:
        """Leave the running state for good (nothing changes if it already has)."""
        if self._status == "running":
            self._status = status
            self._supervisor.forget(self)


class SupervisorImpl(RpcTarget, Supervisor):
    """The main capability of a session: spawns that session's actors and restarts them.

    The actors of a session end with it: when the session ends, the library releases every
    stub the client held, and each actor's ``on_dispose`` stops it.
    """

    def __init__(self) -> None:
        self._running: dict[str, ActorImpl] = {}

    async def spawn(self, kind: Kind, name: str, max_restarts: int = 3) -> Actor:
        if not 1 <= len(name) <= MAX_NAME:
            raise ValueError(f"an actor's name has 1 to {MAX_NAME} characters")
        if name in self._running:
            raise ValueError(f"an actor called {name!r} is running already")
        if max_restarts < 0:
            raise ValueError("max_restarts must be 0 or more")
        actor = ActorImpl(self, kind, name, max_restarts)
        self._running[name] = actor
        log(f"spawned {kind} {name!r}")
        return actor

    async def actors(self) -> list[ActorState]:
        return [actor.snapshot() for actor in self._running.values()]

    async def stats(self) -> SessionStats:
        stats = capnweb.current_session().stats()
        return SessionStats(imports=stats.imports, exports=stats.exports)

    # -- used by the actors

    def crashed(self, actor: ActorImpl, message: str) -> bool:
        """``actor`` crashed on ``message``: restart it, or let it fail. Whether it restarted."""
        state = actor.snapshot()
        if actor.restart():
            log(f"{state.name!r} crashed on {message!r} ({state.last_error}); restarted")
            return True
        actor.end("failed")
        log(f"{state.name!r} crashed on {message!r} ({state.last_error}); failed")
        return False

    def forget(self, actor: ActorImpl) -> None:
        """``actor`` no longer runs: its name is free again."""
        if self._running.get(actor.name) is actor:
            del self._running[actor.name]


async def serve(port: int = 0) -> capnweb.Server:
    """A server for the example on 127.0.0.1 (port 0: any free port), RPC on ``/rpc``."""
    return await capnweb.serve(SupervisorImpl, host="127.0.0.1", port=port)


async def main(port: int) -> None:
    """Serve until SIGTERM or SIGINT."""
    server = await serve(port)
    print(f"listening {server.port}", flush=True)
    await server.serve_until_signal()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8080)
    asyncio.run(main(parser.parse_args().port))
