"""Connecting to a server: ``connect(url)`` picks WebSocket or HTTP batch from the scheme."""

from __future__ import annotations

from ssl import SSLContext
from types import TracebackType
from typing import Any, Generic, TypeVar, cast, overload

import aiohttp

from ._checked import validated
from ._codec import DEFAULT_LIMITS, Limits
from .errors import RpcError
from .session import SendErrorHook, Session, Transport
from .stubs import RpcStub
from .transports._ws import open_client
from .transports.http_batch import BatchClientTransport

__all__ = ["Connection", "connect"]

S = TypeVar("S", bound=RpcStub)


class Connection(Generic[S]):
    """A client session; ``async with`` it to get the server's main stub."""

    def __init__(
        self,
        url: str,
        stub_type: type[S],
        *,
        main: Any = None,
        limits: Limits | None = None,
        on_send_error: SendErrorHook | None = None,
        headers: dict[str, str] | None = None,
        http: aiohttp.ClientSession | None = None,
        ssl: SSLContext | None = None,
        validate: bool = False,
    ) -> None:
        self.url = url
        self.stub_type = validated(stub_type) if validate else stub_type
        self._main = main
        self._limits = limits
        self._on_send_error = on_send_error
        self._headers = headers
        self._http = http
        self._ssl = ssl
        self.session: Session | None = None
        self.transport: Transport | None = None

    async def open(self) -> S:
        """Connect and return the server's main capability."""
        scheme = self.url.split(":", 1)[0].lower()
        transport: Transport
        if scheme in ("ws", "wss"):
            max_size = (self._limits or DEFAULT_LIMITS).max_frame_size
            conn = await open_client(self.url, self._headers, max_size, OPEN_TIMEOUT, self._ssl)
            self.transport = conn
            self.session = Session(
                conn,
                self._main,
                limits=self._limits,
                on_send_error=self._on_send_error,
                start=False,
            )
            conn.attach(self.session.feed, self.session.disconnected)
            return self._main_stub(self.session)
        elif scheme in ("http", "https"):
            transport = BatchClientTransport(self.url, self._http, self._headers, self._ssl)
        else:
            raise ValueError(f"unsupported URL scheme {scheme!r}: use ws, wss, http or https")
        self.transport = transport
        self.session = Session(
            transport, self._main, limits=self._limits, on_send_error=self._on_send_error
        )
        return self._main_stub(self.session)

    def _main_stub(self, session: Session) -> S:
        main = session.main
        if self.stub_type is RpcStub:
            return cast(S, main)
        return self.stub_type(main._take_hook_and_forget())

    async def close(self) -> None:
        """End the session and close the connection."""
        if self.session is not None:
            await self.session.close()
        wait = getattr(self.transport, "wait_closed", None)
        if wait is not None:
            await wait()

    async def __aenter__(self) -> S:
        return await self.open()

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def stats(self) -> Any:
        """The session's live import/export counts."""
        if self.session is None:
            raise RpcError("not connected")
        return self.session.stats()


OPEN_TIMEOUT = 10.0
"""Seconds allowed for connecting and the WebSocket handshake."""


@overload
def connect(
    url: str,
    /,
    *,
    main: Any = None,
    limits: Limits | None = None,
    on_send_error: SendErrorHook | None = None,
    headers: dict[str, str] | None = None,
    http: aiohttp.ClientSession | None = None,
    ssl: SSLContext | None = None,
) -> Connection[RpcStub]: ...
@overload
def connect(
    url: str,
    stub_type: type[S],
    /,
    *,
    main: Any = None,
    limits: Limits | None = None,
    on_send_error: SendErrorHook | None = None,
    headers: dict[str, str] | None = None,
    http: aiohttp.ClientSession | None = None,
    ssl: SSLContext | None = None,
    validate: bool = False,
) -> Connection[S]: ...
def connect(
    url: str,
    stub_type: Any = RpcStub,
    /,
    *,
    main: Any = None,
    limits: Limits | None = None,
    on_send_error: SendErrorHook | None = None,
    headers: dict[str, str] | None = None,
    http: aiohttp.ClientSession | None = None,
    ssl: SSLContext | None = None,
    validate: bool = False,
) -> Connection[Any]:
    """Connect to ``url`` (``ws://``/``wss://``: WebSocket; ``http://``/``https://``: one
    HTTP batch). ``async with connect(url) as api:`` gives the server's main stub.

    Options: ``main`` (what the server may call back), ``limits``, ``on_send_error``,
    ``headers`` (sent with the HTTP request or the WebSocket handshake), ``http`` (an aiohttp
    ``ClientSession`` for the batch's POST; by default the batches of an event loop share one,
    reusing keep-alive connections), ``ssl`` (an ``ssl.SSLContext`` for ``wss://`` and
    ``https://``: whom to trust; by default the system's certificate authorities),
    ``validate`` (with a generated stub class: check every result against the interface's
    return annotations, raising ``RpcTypeError`` at the ``await``; see
    :func:`capnweb.typed.validated`).

    Opening a WebSocket raises OSError when the connection fails, RpcDisconnectedError when the
    server does not accept the WebSocket, TimeoutError after ``OPEN_TIMEOUT`` seconds.
    """
    return Connection(
        url,
        stub_type,
        main=main,
        limits=limits,
        on_send_error=on_send_error,
        headers=headers,
        http=http,
        ssl=ssl,
        validate=validate,
    )
