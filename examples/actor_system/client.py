"""The actor system's client: spawns actors, crashes one and keeps using it after the
supervisor restarted it, stops and releases them, and prints the server's export count at
each stage (back to where it started once every actor stub is released).

Usage (from the repository root, with the server running):
``python -m examples.actor_system.client ws://127.0.0.1:8080/rpc``.
"""

from __future__ import annotations

import argparse
import asyncio

import capnweb
from capnweb import RpcError
from stubs.examples_actor_system_api import ActorStub, SupervisorStub

__all__ = ["main", "running", "tell"]


async def tell(actor: ActorStub, name: str, message: str) -> None:
    """Send ``message`` to ``actor`` and print its reply, or the error the call rejected with."""
    try:
        reply = await actor.send(message)
    except RpcError as err:  # ActorCrashed, ActorStopped: told apart by err.name
        print(f"{name} <- {message!r}: {err.name}: {err}", flush=True)
    else:
        print(f"{name} <- {message!r}: {reply}", flush=True)


async def running(supervisor: SupervisorStub) -> str:
    """The names of the supervisor's running actors."""
    names = [state.name for state in await supervisor.actors()]
    return ", ".join(names) or "none"


async def main(url: str) -> None:
    """The whole tour, printed as it goes."""
    async with capnweb.connect(url, SupervisorStub) as supervisor:
        # The server's count of live exports in this session: the supervisor itself and the
        # stats() call being answered.
        baseline = (await supervisor.stats()).exports
        print(f"exports at start: {baseline}", flush=True)

        # Leaving the block releases the stub; the server then stops the actor.
        with await supervisor.spawn("counter", "tally") as tally:
            parrot = await supervisor.spawn("echo", "parrot")
            print(f"spawned: {await running(supervisor)}", flush=True)
            await tell(tally, "tally", "5")
            await tell(tally, "tally", "7")
            await tell(parrot, "parrot", "hello")

            # A message the counter cannot handle crashes it: that call rejects, the
            # supervisor restarts the actor with a clean state, and the same stub goes on.
            await tell(tally, "tally", "oops")
            await tell(tally, "tally", "3")
            state = await tally.state()
            print(
                f"tally: {state.status}, restarts {state.restarts}, handled {state.handled}",
                flush=True,
            )

            # With no restart allowed, a crash is final: later calls reject.
            with await supervisor.spawn("counter", "fragile", max_restarts=0) as fragile:
                await tell(fragile, "fragile", "x")
                await tell(fragile, "fragile", "1")
                alive = (await supervisor.stats()).exports
                print(f"exports with 3 actors held: {alive}", flush=True)

            # stop() ends an actor at once; its stub still holds an export until released.
            print(f"parrot: {(await parrot.stop()).status}", flush=True)
            await tell(parrot, "parrot", "again")
            parrot.dispose()
            print(f"running: {await running(supervisor)}", flush=True)

        after = (await supervisor.stats()).exports
        print(f"running after releasing: {await running(supervisor)}", flush=True)
        print(f"exports after releasing them: {after} (at start: {baseline})", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url", nargs="?", default="ws://127.0.0.1:8080/rpc")
    asyncio.run(main(parser.parse_args().url))
