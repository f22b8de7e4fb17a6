"""Connecting to a server: ``connect(url)`` picks WebSocket or HTTP batch from the scheme, or
WebTransport when asked (``webtransport=``)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from ssl import SSLContext
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast, overload

import aiohttp

from ._checked import validated
from ._codec import DEFAULT_LIMITS, Limits
from .errors import RpcError
from .session import SendErrorHook, Session, Transport
from .stubs import RpcStub
from .transports._ws import open_client
from .transports.http_batch import BatchClientTransport

if TYPE_CHECKING:
    from .transports.webtransport import WebTransportClient

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
        webtransport: bool | WebTransportClient = False,
        certificate_hashes: Sequence[str] = (),
        ca_file: str | os.PathLike[str] | None = None,
    ) -> None:
        if webtransport is False and (certificate_hashes or ca_file is not None):
            raise ValueError("certificate_hashes and ca_file are options of webtransport=")
        if webtransport is not False and (ssl is not None or http is not None):
            raise ValueError("ssl and http are not options of webtransport= (see ca_file)")
        self.url = url
        self.stub_type = validated(stub_type) if validate else stub_type
        self._main = main
        self._limits = limits
        self._on_send_error = on_send_error
        self._headers = headers
        self._http = http
        self._ssl = ssl
        self._webtransport = webtransport
        self._certificate_hashes = certificate_hashes
        self._ca_file = ca_file
        self.session: Session | None = None
        self.transport: Transport | None = None

    async def open(self) -> S:
        """Connect and return the server's main capability."""
        scheme = self.url.split(":", 1)[0].lower()
        transport: Transport
        if self._webtransport is not False:
            from .transports.webtransport import open_session  # aioquic: an optional extra

            wt = await open_session(
                self.url,
                self._webtransport,
                headers=self._headers,
                limits=self._limits,
                certificate_hashes=self._certificate_hashes,
                ca_file=self._ca_file,
                timeout=OPEN_TIMEOUT,
            )
            self.transport = wt
            self.session = Session(
                wt, self._main, limits=self._limits, on_send_error=self._on_send_error, start=False
            )
            wt.attach(self.session.feed, self.session.disconnected)
            return self._main_stub(self.session)
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
"""Seconds allowed for connecting and the WebSocket (or WebTransport) handshake."""


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
    webtransport: bool | WebTransportClient = False,
    certificate_hashes: Sequence[str] = (),
    ca_file: str | os.PathLike[str] | None = None,
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
    webtransport: bool | WebTransportClient = False,
    certificate_hashes: Sequence[str] = (),
    ca_file: str | os.PathLike[str] | None = None,
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
    webtransport: bool | WebTransportClient = False,
    certificate_hashes: Sequence[str] = (),
    ca_file: str | os.PathLike[str] | None = None,
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

    ``webtransport=True``: open a WebTransport session at the ``https://`` URL, on a QUIC
    connection of its own (closed with the session); a
    :class:`~capnweb.transports.webtransport.WebTransportClient`: a session on that open
    connection. Whom it trusts: ``certificate_hashes`` (hex SHA-256 hashes of the server's
    certificate, as a browser's ``serverCertificateHashes``), else the CAs of ``ca_file``
    (PEM), else the system's. Needs the ``webtransport`` extra (aioquic).

    Opening a WebSocket raises OSError when the connection fails, RpcDisconnectedError when the
    server does not accept the WebSocket, TimeoutError after ``OPEN_TIMEOUT`` seconds; opening
    a WebTransport session, RpcDisconnectedError when the handshake fails or the server refuses
    the session, TimeoutError after ``OPEN_TIMEOUT`` seconds (also when nothing answers).
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
        webtransport=webtransport,
        certificate_hashes=certificate_hashes,
        ca_file=ca_file,
    )
