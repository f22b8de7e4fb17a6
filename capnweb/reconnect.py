"""Clients that reconnect when their WebSocket drops, and tokens that resume server-side state.

A session cannot be healed: when its connection drops, every stub of it is broken for good
(calls raise :class:`~capnweb.RpcDisconnectedError`) and the server has released everything
the session held. What can be rebuilt is the *application's* state, in a new session:

- on the client, :func:`reconnecting` keeps one live session at a time. When it ends, the
  client waits (:class:`Backoff`), connects again and runs the application's ``on_connect``
  hook on the new main stub, which gets back the capabilities the application needs, before
  :meth:`Reconnecting.api` hands the stub out again;
- on the server, a capability whose state must outlive its session is handed out with a
  *resume token*; a later session exchanges the token for the same logical object
  (:class:`ResumeTokens` when the state lives in the server process; an external store when
  it must also survive a restart of the server, as in ``examples/reconnect/``).

The client's life, one task per client::

    connect -> on_connect -> ready (api() returns the stub) -> session ends -> on_disconnect
       ^  | failed                                                                  |
       |  v                                                                         |
       +-- wait backoff.delay(n) <----------------------------------------------------+

A failed attempt (the connection refused or dropped, the handshake refused, a timeout) is
followed by a longer wait, up to ``max_delay``; after ``max_attempts`` failed attempts in a
row the client gives up (:class:`ReconnectError`). A session that ends during ``on_connect``
is a failed attempt too. Every wait is longer than ``initial * (1 - jitter)`` seconds, which
:class:`Backoff` keeps positive, so a server that is down, or one that accepts and drops at
once, never makes the client spin. Any other exception, from connecting (a certificate that
does not verify, too) or from ``on_connect`` while the session is alive, is an application
error: the client stops and :meth:`Reconnecting.api` raises it.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
import random
import secrets
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from ssl import SSLCertVerificationError, SSLContext
from types import TracebackType
from typing import Any, Generic, TypeVar, overload

from ._codec import Limits
from ._tasks import settle_all
from .client import Connection
from .errors import RpcDisconnectedError, RpcError
from .session import SendErrorHook, Session
from .stubs import RpcStub

__all__ = ["Backoff", "ReconnectError", "Reconnecting", "ResumeTokens", "reconnecting"]

log = logging.getLogger("capnweb")

S = TypeVar("S", bound=RpcStub)
T = TypeVar("T")

RETRYABLE: tuple[type[BaseException], ...] = (OSError, TimeoutError, RpcDisconnectedError)
"""What a failed connection attempt raises; anything else stops the client."""

FATAL: tuple[type[BaseException], ...] = (SSLCertVerificationError,)
"""Connection errors that waiting does not cure: they stop the client at once."""


class ReconnectError(RpcError):
    """The client stopped reconnecting: it gave up after too many failed attempts (the last
    error is the ``__cause__``), or it was closed. Not an ``RpcDisconnectedError``, so a loop
    that retries on disconnection does not retry this."""

    def __init__(self, message: str, *, attempts: int = 0) -> None:
        super().__init__(message)
        self.attempts = attempts
        """Failed connection attempts in a row before giving up (0 when closed)."""


@dataclass(frozen=True)
class Backoff:
    """How long a client waits before each connection attempt.

    The n-th wait in a row (n = 0, 1, ...) is ``initial * factor**n`` seconds, at most
    ``max_delay``, shortened by a random fraction of up to ``jitter`` (so the clients of a
    restarted server do not all come back at the same moment). After ``max_attempts`` failed
    attempts in a row the client gives up; None: it never does.
    """

    initial: float = 0.5
    """Seconds before the first attempt after a drop, and after the first failed attempt."""
    factor: float = 2.0
    """How much longer each wait is than the one before (>= 1)."""
    max_delay: float = 10.0
    """The longest wait, in seconds."""
    jitter: float = 0.5
    """Each wait is shortened by a random fraction in ``[0, jitter)`` (0 <= jitter < 1)."""
    max_attempts: int | None = None
    """Failed attempts in a row after which the client gives up; None: never give up."""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.initial) and self.initial > 0):
            raise ValueError(f"Backoff.initial must be > 0 seconds, got {self.initial!r}")
        if not (math.isfinite(self.factor) and self.factor >= 1):
            raise ValueError(f"Backoff.factor must be >= 1, got {self.factor!r}")
        if not (math.isfinite(self.max_delay) and self.max_delay >= self.initial):
            raise ValueError(f"Backoff.max_delay must be >= initial, got {self.max_delay!r}")
        if not 0 <= self.jitter < 1:
            raise ValueError(f"Backoff.jitter must be in [0, 1), got {self.jitter!r}")
        if self.max_attempts is not None and self.max_attempts < 1:
            raise ValueError(f"Backoff.max_attempts must be >= 1, got {self.max_attempts!r}")

    def delay(self, n: int, rand: Callable[[], float] = random.random) -> float:
        """Seconds of the n-th wait in a row (n = 0 for the first); ``rand()`` in [0, 1)
        picks the jitter."""
        try:
            base = min(self.max_delay, self.initial * self.factor**n)
        except OverflowError:
            base = self.max_delay
        return base * (1 - self.jitter * rand())


OnConnect = Callable[[S], Awaitable[object]]
OnDisconnect = Callable[[BaseException], object]


class Reconnecting(Generic[S]):
    """A WebSocket client that keeps a live session, reconnecting when it ends; see
    :func:`reconnecting`. ``async with`` it; :meth:`api` gives the current main stub."""

    def __init__(
        self,
        url: str,
        stub_type: type[S],
        *,
        on_connect: OnConnect[S] | None = None,
        on_disconnect: OnDisconnect | None = None,
        backoff: Backoff = Backoff(),
        main: Any = None,
        limits: Limits | None = None,
        on_send_error: SendErrorHook | None = None,
        headers: dict[str, str] | None = None,
        ssl: SSLContext | None = None,
    ) -> None:
        scheme = url.split(":", 1)[0].lower()
        if scheme in ("http", "https"):
            raise ValueError(
                f"reconnecting() needs a ws:// or wss:// URL, got {url!r}: an HTTP batch "
                "session ends with each batch, so there is no session to keep; use connect()"
            )
        if scheme not in ("ws", "wss"):
            raise ValueError(f"unsupported URL scheme {scheme!r}: use ws or wss")
        self.url = url
        self.stub_type = stub_type
        self.backoff = backoff
        self._on_connect = on_connect
        self._on_disconnect = on_disconnect
        self._options: dict[str, Any] = {
            "main": main,
            "limits": limits,
            "on_send_error": on_send_error,
            "headers": headers,
        }
        if ssl is not None:
            self._options["ssl"] = ssl
        self.generation = 0
        """How many sessions have been handed out so far (1 once the first is ready)."""
        self.failures = 0
        """Failed connection attempts since the last session was ready."""
        self.last_error: BaseException | None = None
        """Why the last attempt failed or the last session ended."""
        self._conn: Connection[S] | None = None
        self._stub: S | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopped: BaseException | None = None
        self._waiters: list[asyncio.Future[None]] = []

    # -- public

    @property
    def connected(self) -> bool:
        """Whether a session is ready and alive right now."""
        return self._live() is not None

    @property
    def session(self) -> Session | None:
        """The live session (for ``stats()``), or None while reconnecting."""
        return self._conn.session if self._live() is not None and self._conn else None

    def start(self) -> None:
        """Begin connecting in the background (``async with`` and :meth:`api` call it)."""
        if self._task is None and self._stopped is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def api(self) -> S:
        """The main stub of the live session, waiting while a (re)connection is under way.

        The stub belongs to the client: do not dispose of it (that ends the session, and the
        client reconnects). Once its session ends it stays broken; call ``api()`` again.

        Raises:
            ReconnectError: the client gave up or was closed.
            RuntimeError: called from ``on_connect`` or ``on_disconnect``.
        """
        if self._task is not None and asyncio.current_task() is self._task:
            raise RuntimeError(
                "api() cannot wait inside on_connect or on_disconnect: on_connect receives the stub"
            )
        self.start()
        while True:
            if self._stopped is not None:
                raise self._stopped
            stub = self._live()
            if stub is not None:
                return stub
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)

    def reconnect(self) -> None:
        """End the live session now and connect again, as if the connection had dropped: for a
        connection that died without a word (a call timed out, say)."""
        conn = self._conn
        if conn is not None and conn.session is not None:
            conn.session.abort(RpcDisconnectedError("reconnect() was called"), False)

    async def close(self) -> None:
        """Stop reconnecting and end the live session; :meth:`api` then raises
        :class:`ReconnectError`."""
        if self._stopped is None:
            self._stopped = ReconnectError("the reconnecting client is closed")
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            if task is not asyncio.current_task():
                await asyncio.gather(task, return_exceptions=True)
        self._notify()

    async def __aenter__(self) -> Reconnecting[S]:
        self.start()
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # -- the connection loop

    def _live(self) -> S | None:
        conn, stub = self._conn, self._stub
        if conn is None or stub is None or conn.session is None or conn.session.broken is not None:
            return None
        return stub

    def _notify(self) -> None:
        waiters, self._waiters = self._waiters, []
        settle_all(waiters)

    async def _run(self) -> None:
        waits = 0  # waits in a row since the last ready session: index into the backoff
        try:
            while True:
                if self.generation > 0 or self.failures > 0:
                    await asyncio.sleep(self.backoff.delay(waits))
                    waits += 1
                conn = await self._attempt()
                if conn is None:
                    if self._stopped is not None:
                        return
                    continue
                waits = 0
                reason = await self._hold(conn)
                await self._after_drop(reason)
        except Exception as e:  # an application error: stop, and say why
            self._stop(e)
        finally:
            conn, self._conn, self._stub = self._conn, None, None
            if conn is not None:
                await _discard(conn, "the reconnecting client is closed")
            self._stop(ReconnectError("the reconnecting client was stopped"))  # if not yet

    async def _attempt(self) -> Connection[S] | None:
        """Connect and run on_connect; the connection, or None after a failed attempt."""
        conn = Connection(self.url, self.stub_type, **self._options)
        try:
            stub = await conn.open()
            if self._on_connect is not None:
                await self._on_connect(stub)
            assert conn.session is not None
            if conn.session.broken is not None:
                raise conn.session.broken
        except BaseException as e:
            # the session ended under on_connect: whatever it raised, the attempt failed
            ended = conn.session is not None and conn.session.broken is not None
            await _discard(conn, "the connection attempt failed")
            retry = ended or (isinstance(e, RETRYABLE) and not isinstance(e, FATAL))
            if not isinstance(e, Exception) or not retry:
                raise
            self.failures += 1
            self.last_error = e
            limit = self.backoff.max_attempts
            log.info("connecting to %s failed (attempt %d): %r", self.url, self.failures, e)
            if limit is not None and self.failures >= limit:
                error = ReconnectError(
                    f"gave up connecting to {self.url} after {self.failures} failed "
                    f"attempt{'s' if self.failures != 1 else ''}: {e}",
                    attempts=self.failures,
                )
                error.__cause__ = e
                self._stop(error)
            return None
        self.failures = 0
        self.generation += 1
        self._conn, self._stub = conn, stub
        self._notify()
        return conn

    async def _hold(self, conn: Connection[S]) -> BaseException:
        """Wait until the session of ``conn`` ends; returns why."""
        assert conn.session is not None
        reason = await conn.session.wait_closed()
        self._conn, self._stub = None, None
        self.last_error = reason
        await _discard(conn, "the session ended")
        return reason

    async def _after_drop(self, reason: BaseException) -> None:
        log.info("session with %s ended: %r; reconnecting", self.url, reason)
        if self._on_disconnect is None:
            return
        try:
            result = self._on_disconnect(reason)
            if inspect.isawaitable(result):
                await result
        except Exception:
            log.exception("error in on_disconnect")

    def _stop(self, error: BaseException) -> None:
        if self._stopped is None:
            self._stopped = error
        self._notify()


async def _discard(conn: Connection[Any], why: str) -> None:
    """End ``conn``'s session (its stubs raise RpcDisconnectedError) and close the socket."""
    if conn.session is not None:
        conn.session.abort(RpcDisconnectedError(why), False)
    try:
        await conn.close()
    except Exception:  # the connection is gone already
        pass


@overload
def reconnecting(
    url: str,
    /,
    *,
    on_connect: OnConnect[RpcStub] | None = None,
    on_disconnect: OnDisconnect | None = None,
    backoff: Backoff = ...,
    main: Any = None,
    limits: Limits | None = None,
    on_send_error: SendErrorHook | None = None,
    headers: dict[str, str] | None = None,
    ssl: SSLContext | None = None,
) -> Reconnecting[RpcStub]: ...
@overload
def reconnecting(
    url: str,
    stub_type: type[S],
    /,
    *,
    on_connect: OnConnect[S] | None = None,
    on_disconnect: OnDisconnect | None = None,
    backoff: Backoff = ...,
    main: Any = None,
    limits: Limits | None = None,
    on_send_error: SendErrorHook | None = None,
    headers: dict[str, str] | None = None,
    ssl: SSLContext | None = None,
) -> Reconnecting[S]: ...
def reconnecting(
    url: str,
    stub_type: Any = RpcStub,
    /,
    *,
    on_connect: Any = None,
    on_disconnect: OnDisconnect | None = None,
    backoff: Backoff = Backoff(),
    main: Any = None,
    limits: Limits | None = None,
    on_send_error: SendErrorHook | None = None,
    headers: dict[str, str] | None = None,
    ssl: SSLContext | None = None,
) -> Reconnecting[Any]:
    """A client of the WebSocket ``url`` that reconnects whenever its session ends.

    ``async with reconnecting(url, ApiStub, on_connect=setup) as client:`` then
    ``api = await client.api()``. After each connection, ``await on_connect(api)`` runs before
    the stub is handed out: rebuild there what the application needs from the new session
    (resume through a token, subscribe again). ``on_disconnect(reason)`` (plain or async) is
    called each time a ready session ends. ``backoff`` paces the attempts (:class:`Backoff`;
    by default 0.5 s doubling up to 10 s, jittered, forever). ``main``, ``limits``,
    ``on_send_error``, ``headers`` and ``ssl`` are those of :func:`capnweb.connect`, for every
    session.

    Raises ValueError for an ``http://`` URL: an HTTP batch has no session to keep.
    """
    return Reconnecting(
        url,
        stub_type,
        on_connect=on_connect,
        on_disconnect=on_disconnect,
        backoff=backoff,
        main=main,
        limits=limits,
        on_send_error=on_send_error,
        headers=headers,
        ssl=ssl,
    )


class ResumeTokens(Generic[T]):
    """Tokens that give a later session of this server process the same object back.

    ``token = tokens.issue(obj)`` when handing ``obj`` out; ``tokens.resume(token)`` in a new
    session returns ``obj``. Tokens are unguessable (32 random bytes); a token expires ``ttl``
    seconds after it was issued or last resumed (None: never), and beyond ``max_tokens`` the
    least recently used one is forgotten (``clock``: seconds, for tests). State that must
    survive a restart of the server needs an external store instead (see
    ``examples/reconnect/``).
    """

    def __init__(
        self,
        *,
        ttl: float | None = 3600.0,
        max_tokens: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl is not None and not ttl > 0:
            raise ValueError(f"ttl must be > 0 seconds or None, got {ttl!r}")
        if max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {max_tokens!r}")
        self.ttl = ttl
        self.max_tokens = max_tokens
        self._clock = clock
        self._entries: OrderedDict[str, tuple[T, float]] = OrderedDict()  # by last use

    def __len__(self) -> int:
        self._expire()
        return len(self._entries)

    def issue(self, value: T) -> str:
        """A new token for ``value``."""
        self._expire()
        token = secrets.token_urlsafe(32)
        self._entries[token] = (value, self._deadline())
        while len(self._entries) > self.max_tokens:
            self._entries.popitem(last=False)
        return token

    def resume(self, token: str) -> T:
        """The value ``token`` was issued for (its lifetime starts again).

        Raises ValueError (a ``RangeError`` for the peer) for an unknown or expired token.
        """
        self._expire()
        entry = self._entries.get(token) if isinstance(token, str) else None
        if entry is None:
            raise ValueError("unknown or expired resume token")
        self._entries[token] = (entry[0], self._deadline())
        self._entries.move_to_end(token)
        return entry[0]

    def revoke(self, token: str) -> None:
        """Forget ``token`` (logging out); unknown tokens are ignored."""
        self._entries.pop(token, None)

    def _deadline(self) -> float:
        return math.inf if self.ttl is None else self._clock() + self.ttl

    def _expire(self) -> None:
        now = self._clock()
        entries = self._entries
        while entries:
            token, (_, deadline) = next(iter(entries.items()))
            if deadline > now:
                return
            del entries[token]
