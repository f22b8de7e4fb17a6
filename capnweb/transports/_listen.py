"""The listening sockets of ``serve()``: accepting connections without spinning.

asyncio's own accept loop, out of file descriptors, logs the error and schedules a retry for
every connection still queued, on every loop turn: a server at its descriptor limit spends
its CPU and its disk on that. Here the listening socket is left alone for ``ACCEPT_RETRY``
seconds instead, with one log line, and accepted sockets become connections through the
event loop's public ``connect_accepted_socket()``.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import ssl as ssl_module
from collections.abc import Callable

from .._tasks import spawn

__all__ = ["ACCEPT_PER_TURN", "ACCEPT_RETRY", "TLS_HANDSHAKE_TIMEOUT", "Listener", "listen"]

log = logging.getLogger("capnweb")

ACCEPT_PER_TURN = 64
"""Connections accepted per event loop turn (the others wait their turn in the backlog)."""

ACCEPT_RETRY = 1.0
"""Seconds without accepting after the process ran out of descriptors (or memory)."""

TLS_HANDSHAKE_TIMEOUT = 10.0
"""Seconds a client may take to complete the TLS handshake before its connection is dropped."""

_RESOURCES = frozenset((errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM))


class Listener:
    """Accepts the connections of listening ``sockets`` for protocols made by ``factory``
    (over TLS with ``ssl``)."""

    def __init__(
        self,
        sockets: list[socket.socket],
        factory: Callable[[], asyncio.Protocol],
        ssl: ssl_module.SSLContext | None = None,
    ) -> None:
        self.sockets = sockets
        self._factory = factory
        self._ssl = ssl
        self._loop = asyncio.get_running_loop()
        self._closed = False
        self._retry: asyncio.TimerHandle | None = None
        for sock in sockets:
            self._loop.add_reader(sock.fileno(), self._accept, sock)

    def _accept(self, sock: socket.socket) -> None:
        for _ in range(ACCEPT_PER_TURN):
            try:
                conn, _ = sock.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return  # none left
            except OSError as e:
                if e.errno in _RESOURCES:
                    self._pause(e)
                else:
                    log.warning("accepting a connection failed: %s", e)
                return
            conn.setblocking(False)
            spawn(self._connect(conn))

    async def _connect(self, conn: socket.socket) -> None:
        try:
            if self._ssl is None:
                await self._loop.connect_accepted_socket(self._factory, conn)
            else:
                await self._loop.connect_accepted_socket(
                    self._factory,
                    conn,
                    ssl=self._ssl,
                    ssl_handshake_timeout=TLS_HANDSHAKE_TIMEOUT,
                )
        except Exception as e:  # the peer is gone already: nothing to serve
            log.debug("an accepted connection failed: %s", e)
            conn.close()

    def _pause(self, error: OSError) -> None:
        log.error("not accepting connections for %g s: %s", ACCEPT_RETRY, error)
        for sock in self.sockets:
            self._loop.remove_reader(sock.fileno())
        self._retry = self._loop.call_later(ACCEPT_RETRY, self._resume)

    def _resume(self) -> None:
        self._retry = None
        if not self._closed:
            for sock in self.sockets:
                self._loop.add_reader(sock.fileno(), self._accept, sock)

    def close(self) -> None:
        """Stop accepting and close the listening sockets."""
        if self._closed:
            return
        self._closed = True
        if self._retry is not None:
            self._retry.cancel()
        else:
            for sock in self.sockets:
                self._loop.remove_reader(sock.fileno())
        for sock in self.sockets:
            sock.close()


async def listen(
    factory: Callable[[], asyncio.Protocol],
    host: str,
    port: int,
    backlog: int,
    ssl: ssl_module.SSLContext | None = None,
    reuse_port: bool = False,
) -> Listener:
    """Listen on every address of ``host`` (port 0: a free one, the same for all); with
    ``reuse_port``, other processes may listen on the same port (the kernel spreads the
    connections among them)."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(
        host, port, family=socket.AF_UNSPEC, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(infos):  # no duplicates
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            if port == 0 and len(sockets) > 1:  # every address on the port the first got
                address = (address[0], sockets[0].getsockname()[1], *address[2:])
            sock.bind(address)
            sock.listen(backlog)
            sock.setblocking(False)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return Listener(sockets, factory, ssl)
