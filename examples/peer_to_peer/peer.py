"""The peer-to-peer example: one script for both processes, each the client and the server of
the other over one WebSocket.

Usage (from the repository root), in two terminals::

    python -m examples.peer_to_peer.peer --name alice --listen 8080
    python -m examples.peer_to_peer.peer --name bob --connect ws://127.0.0.1:8080/rpc

The connecting process passes its own :class:`PeerImpl` as ``main=`` of ``capnweb.connect()``;
the listening one reaches it, inside the ``hello()`` call, as the main capability of the session
that call came in on (``capnweb.current_session().main``). From then on both run the same
:func:`talk` against the other's ``PeerStub``, at the same time, over the one connection; each
passes a callback to the other's ``ask()``, and the other calls it back. The connecting process
hangs up once ``bye()`` has returned; the listening one ends once its peer has disconnected.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import signal
import sys
from collections.abc import Awaitable, Callable

import capnweb
from capnweb import RpcError, RpcTarget
from examples.peer_to_peer.api import Peer
from stubs.examples_peer_to_peer_api import PeerStub

__all__ = ["EXCHANGE_TIMEOUT", "PeerImpl", "answer_to", "connect", "listen", "main", "talk"]

EXCHANGE_TIMEOUT = 30.0
"""Seconds one process's calls to the other may take, all together."""

DEFAULT_QUESTION = "what is 6 x 7?"
"""What a peer asks unless told otherwise (``--ask``)."""


def say(text: str) -> None:
    """Print one line at once (the output may be a pipe)."""
    print(text, flush=True)


def answer_to(question: str) -> str:
    """What a peer answers: the product for ``what is A x B?``, else that it does not know."""
    match = re.search(r"(-?\d+)\s*[x*]\s*(-?\d+)", question)
    if match is None:
        return "I don't know"
    return str(int(match[1]) * int(match[2]))


async def talk(me: str, other_name: str, other: PeerStub, question: str) -> None:
    """One process's calls to the other: the same code runs on both sides."""
    message = f"hello {other_name}, this is {me}"
    say(f"calling {other_name}.greet({message!r})")
    reply = await other.greet(me, message)
    say(f"{other_name}.greet returned {reply!r}")

    async def answer(text: str) -> str:
        # Runs in this process, called by the other one while it handles ask().
        say(f"{other_name} called my callback with {text!r}")
        return f"thanks, {other_name}"

    say(f"calling {other_name}.ask({question!r}, my callback)")
    thanks = await other.ask(me, question, answer)
    say(f"{other_name}.ask returned {thanks!r}")


class PeerImpl(RpcTarget, Peer):
    """What one process serves to the other: the same class in both processes.

    ``on_gone(peer)`` is called once the peer that said ``hello()`` has disconnected.
    """

    def __init__(
        self, name: str, question: str, on_gone: Callable[[PeerImpl], None] | None = None
    ) -> None:
        self.name = name
        self.peer_name = "the peer"
        self.talking: asyncio.Task[None] | None = None
        """This process's own calls to the peer that said hello(), once started."""
        self._question = question
        self._on_gone = on_gone
        self._peer: PeerStub | None = None

    async def hello(self, name: str) -> str:
        if self.talking is not None:
            raise ValueError(f"{self.peer_name} said hello already")
        say(f"{name} called hello({name!r}); calling {name} back over the same connection")
        # The caller passed its PeerImpl as main= of connect(): in this session, that is the
        # main capability of the other side. Kept here, the reference lives as long as we do.
        self._peer = PeerStub(capnweb.current_session().main)
        self._peer.on_broken(self._broken)
        self.peer_name = name
        self.talking = asyncio.create_task(self._talk(name, self._peer))
        return self.name

    async def _talk(self, name: str, peer: PeerStub) -> None:
        async with asyncio.timeout(EXCHANGE_TIMEOUT):
            await talk(self.name, name, peer, self._question)

    def _broken(self, error: BaseException) -> None:
        if self._on_gone is not None:
            self._on_gone(self)

    async def greet(self, sender: str, message: str) -> str:
        say(f"{sender} called greet({message!r})")
        return f"hi {sender}, nice to meet you"

    async def ask(self, sender: str, question: str, answer: Callable[[str], Awaitable[str]]) -> str:
        text = answer_to(question)
        say(f"{sender} called ask({question!r}, a callback); calling it with {text!r}")
        thanks = await answer(text)  # a call into the asking process
        say(f"{sender}'s callback returned {thanks!r}")
        return thanks

    async def bye(self) -> None:
        say(f"{self.peer_name} called bye(); finishing my own calls first")
        if self.talking is not None:
            await self.talking


async def listen(name: str, port: int, question: str = DEFAULT_QUESTION) -> int:
    """Serve a :class:`PeerImpl` on 127.0.0.1:``port`` (0: any free port) until the first peer
    that said hello has disconnected, or SIGTERM or SIGINT; the exit status (1 if the
    conversation with that peer was cut short)."""
    stop = asyncio.Event()
    gone: list[PeerImpl] = []

    def on_gone(peer: PeerImpl) -> None:
        gone.append(peer)
        stop.set()

    loop = asyncio.get_running_loop()
    async with capnweb.serve(
        lambda: PeerImpl(name, question, on_gone), host="127.0.0.1", port=port
    ) as server:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        say(f"listening {server.port}")
        try:
            await stop.wait()
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
    if not gone:
        return 0  # stopped by a signal
    peer = gone[0]
    try:
        if peer.talking is not None:
            await peer.talking
    except (RpcError, TimeoutError) as error:
        reason = f"{type(error).__name__}: {error}"
        say(f"{peer.peer_name} disconnected before my calls were done: {reason}")
        return 1
    say(f"{peer.peer_name} disconnected")
    return 0


async def connect(name: str, url: str, question: str = DEFAULT_QUESTION) -> None:
    """Connect to the peer at ``url``, serving a :class:`PeerImpl` to it on the same
    connection; talk to it while it talks back, then hang up."""
    me = PeerImpl(name, question)
    async with asyncio.timeout(EXCHANGE_TIMEOUT):
        async with capnweb.connect(url, PeerStub, main=me) as other:
            say(f"connected to {url}; calling hello({name!r})")
            other_name = await other.hello(name)
            say(f"hello returned {other_name!r}")
            await talk(name, other_name, other, question)
            say(f"calling {other_name}.bye()")
            await other.bye()
            say(f"{other_name}.bye returned: hanging up")


def main(argv: list[str] | None = None) -> int:
    """Run one peer from the command line; the exit status."""
    parser = argparse.ArgumentParser(
        description="One of two peers calling each other over one WebSocket."
    )
    parser.add_argument("--name", required=True, help="this peer's name")
    role = parser.add_mutually_exclusive_group(required=True)
    role.add_argument("--listen", type=int, metavar="PORT", help="wait for a peer (0: any port)")
    role.add_argument("--connect", metavar="URL", help="connect to a peer: ws://HOST:PORT/rpc")
    parser.add_argument("--ask", default=DEFAULT_QUESTION, help="the question to ask the peer")
    args = parser.parse_args(argv)
    if args.connect is not None:
        asyncio.run(connect(args.name, args.connect, args.ask))
        return 0
    return asyncio.run(listen(args.name, args.listen, args.ask))


if __name__ == "__main__":
    sys.exit(main())
