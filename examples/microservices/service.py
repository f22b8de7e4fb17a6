"""What the three services share: serving on 127.0.0.1 until a signal, and reaching another
service through a connection that comes back when that service restarts."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

import capnweb
from capnweb import Backoff, Reconnecting, RpcError, RpcStub, RpcTarget

__all__ = ["SERVICE_WAIT", "Unavailable", "connect_service", "reach", "run"]

S = TypeVar("S", bound=RpcStub)

SERVICE_WAIT = 10.0
"""Seconds a call waits for another service to be reachable before it fails."""

BACKOFF = Backoff(initial=0.1, max_delay=2.0)
"""Retry soon when another service is not there yet, then every 2 s at most."""


class Unavailable(RpcError):
    """Another service stayed unreachable for ``SERVICE_WAIT`` seconds; callers receive the
    error name ``Unavailable``."""

    default_name = "Unavailable"


def connect_service(url: str, stub_type: type[S]) -> Reconnecting[S]:
    """A connection to the service at ``url`` (``ws://``) that reconnects whenever it drops, so
    the services can start in any order and be restarted one by one."""
    return capnweb.reconnecting(url, stub_type, backoff=BACKOFF)


async def reach(service: Reconnecting[S], name: str) -> S:
    """The main capability of ``service``, waiting at most ``SERVICE_WAIT`` seconds while it
    connects; :class:`Unavailable` after that."""
    try:
        async with asyncio.timeout(SERVICE_WAIT):
            return await service.api()
    except TimeoutError:
        raise Unavailable(f"the {name} service cannot be reached") from None


async def run(main: Callable[[], RpcTarget], port: int) -> None:
    """Serve ``main()`` (one per session) on 127.0.0.1:``port`` (0: a free port), print
    ``listening N`` once ready, and stop on SIGTERM or SIGINT."""
    server = await capnweb.serve(main, host="127.0.0.1", port=port)
    print(f"listening {server.port}", flush=True)
    await server.serve_until_signal()
