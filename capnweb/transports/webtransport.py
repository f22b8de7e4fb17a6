"""WebTransport: RPC sessions over HTTP/3 (QUIC), for browsers and Python clients.

``serve_webtransport()`` answers WebTransport sessions at a path of a UDP port; the client
side is ``capnweb.connect(url, webtransport=True)`` (a QUIC connection of its own) or
``connect(url, webtransport=client)`` (a session on an open :class:`WebTransportClient`:
several sessions share one connection, none blocks another).

Each WebTransport session is one RPC session, carried on the first bidirectional stream the
client opens in it; a message is its UTF-8 JSON text followed by ``"\\n"`` (docs/guide.md says
why). The session then behaves as over a WebSocket: the same ``main`` factory, limits,
backpressure and bookkeeping (the server core, :class:`capnweb.Endpoint`).

aioquic and cryptography (the ``webtransport`` extra) are imported on first use: capnweb
itself imports without them.
"""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import ipaddress
import os
import socket
from collections.abc import Sequence
from typing import TYPE_CHECKING, cast

from .._codec import DEFAULT_LIMITS, Limits
from ..errors import RpcDisconnectedError
from ..server import Endpoint, MainFactory, Server, Starting
from ..session import SendErrorHook

if TYPE_CHECKING:
    from ._quic import ClientProtocol, WtConnection

__all__ = [
    "CERTIFICATE_DAYS",
    "SESSIONS_PER_CONNECTION",
    "WebTransportClient",
    "certificate_hash",
    "dev_certificate",
    "open_webtransport",
    "serve_webtransport",
]

SESSIONS_PER_CONNECTION = 16
"""WebTransport sessions one QUIC connection may hold open at once (more are answered 429)."""

OPEN_TIMEOUT = 10.0
"""Seconds allowed for the QUIC handshake and for the server to accept a session."""

CLOSE_WAIT = 2.0
"""Seconds a closing server or client waits for its QUIC connections to end."""

CERTIFICATE_DAYS = 10.0
"""Days a development certificate is valid (browsers accept pinned hashes of a certificate
valid at most 14 days)."""

PathLike = str | os.PathLike[str]


# -- serving


def serve_webtransport(
    main: MainFactory,
    host: str = "127.0.0.1",
    port: int = 0,
    path: str = "/rpc",
    *,
    certificate: PathLike,
    private_key: PathLike,
    limits: Limits | None = None,
    on_send_error: SendErrorHook | None = None,
    sessions_per_connection: int = SESSIONS_PER_CONNECTION,
) -> Starting:
    """Serve ``main()`` (called once per session) over WebTransport at
    ``https://host:port/path`` (HTTP/3 on a UDP port). ``await`` the result for the running
    :class:`~capnweb.Server`, or ``async with serve_webtransport(...) as server:``; port 0
    picks a free port (``Server.port``).

    ``certificate``, ``private_key``: PEM files (a chain, then its key). Browsers accept a
    certificate from a CA they trust, or, with ``serverCertificateHashes``, a self-signed one
    valid at most 14 days (:func:`dev_certificate`). ``limits``: as for ``serve()``.
    ``sessions_per_connection``: sessions one QUIC connection may hold at once.
    """
    if sessions_per_connection < 1:
        raise ValueError("sessions_per_connection must be at least 1")
    endpoint = Endpoint(main, limits=limits, on_send_error=on_send_error)
    return Starting(
        _serve(
            endpoint,
            host,
            port,
            path,
            os.fspath(certificate),
            os.fspath(private_key),
            sessions_per_connection,
        )
    )


async def _serve(
    endpoint: Endpoint,
    host: str,
    port: int,
    path: str,
    certificate: str,
    private_key: str,
    sessions_per_connection: int,
) -> Server:
    from aioquic.asyncio.server import QuicServer

    from . import _quic

    configuration = _quic.server_configuration(certificate, private_key)
    listener = _quic.Listener(path, endpoint.accept, endpoint.limits, sessions_per_connection)
    loop = asyncio.get_running_loop()
    transport, quic_server = await loop.create_datagram_endpoint(
        lambda: QuicServer(configuration=configuration, create_protocol=listener.protocol),
        local_addr=(host, port),
    )
    sock = transport.get_extra_info("socket")
    actual = sock.getsockname()[1]

    def stop_accepting() -> None:
        listener.accepting = False  # new sessions are answered 503

    async def cleanup() -> None:
        try:
            await listener.close_connections(CLOSE_WAIT)
        finally:
            quic_server.close()

    return Server(endpoint, host, actual, path, [sock], stop_accepting, cleanup, secure=True)


# -- connecting


class WebTransportClient:
    """One QUIC connection to a WebTransport server; sessions open on it with
    ``capnweb.connect(url, webtransport=client)``. ``async with`` it, or ``await close()``
    (which ends the sessions still open on it)."""

    def __init__(
        self, url: str, protocol: ClientProtocol, transport: asyncio.DatagramTransport
    ) -> None:
        self.url = url
        self._protocol = protocol
        self._transport = transport

    @property
    def live_sessions(self) -> int:
        """The sessions open on this connection now."""
        return self._protocol.live_sessions

    async def open_session(
        self, url: str, headers: dict[str, str] | None = None, limits: Limits | None = None
    ) -> WtConnection:
        """Open a WebTransport session at ``url``'s path and its RPC stream (for
        ``connect()``, which runs an RPC session over it)."""
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        max_line = (limits or DEFAULT_LIMITS).max_frame_size
        return await self._protocol.open_session(parts.netloc, target, headers or {}, max_line)

    async def close(self) -> None:
        """Close the connection: tell the server (QUIC's CONNECTION_CLOSE), end the sessions
        still open on it, release the socket."""
        if self._transport.is_closing():
            return
        protocol = self._protocol
        protocol.close()  # sent at once; what the server still sends is not waited for
        self._transport.close()
        protocol._terminated(RpcDisconnectedError("the WebTransport client was closed"))

    async def __aenter__(self) -> WebTransportClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def _digests(hashes: Sequence[str]) -> frozenset[bytes]:
    if isinstance(hashes, str):
        raise TypeError("certificate_hashes takes a list of hex strings, not one string")
    out = set()
    for h in hashes:
        digest = bytes.fromhex(h.replace(":", ""))
        if len(digest) != 32:
            raise ValueError(f"not a SHA-256 hash (64 hex digits): {h!r}")
        out.add(digest)
    return frozenset(out)


async def open_webtransport(
    url: str,
    *,
    certificate_hashes: Sequence[str] = (),
    ca_file: PathLike | None = None,
    timeout: float = OPEN_TIMEOUT,
) -> WebTransportClient:
    """Open a QUIC connection (HTTP/3) to the server of an ``https://`` URL.

    Whom to trust: ``certificate_hashes`` (hex SHA-256 of the certificate's DER, as a
    browser's ``serverCertificateHashes``: only those certificates are accepted, and only
    while valid), else the CAs of ``ca_file`` (PEM), else the system's CAs (certifi's).
    Raises RpcDisconnectedError when the handshake fails (an untrusted certificate, say),
    TimeoutError after ``timeout`` seconds (QUIC hears nothing from a closed UDP port).
    """
    from urllib.parse import urlsplit

    from aioquic.quic.connection import QuicConnection

    from ._quic import ClientProtocol, client_configuration

    parts = urlsplit(url)
    if parts.scheme.lower() != "https":
        raise ValueError(f"a WebTransport URL is https://, not {parts.scheme}://")
    digests = _digests(certificate_hashes)
    host = parts.hostname or "localhost"
    port = parts.port or 443
    configuration = client_configuration(
        host, bool(digests), None if ca_file is None else os.fspath(ca_file)
    )
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(timeout):
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
        address = cast(tuple[str, int], infos[0][4][:2])
        transport, protocol = await loop.create_datagram_endpoint(
            lambda: ClientProtocol(QuicConnection(configuration=configuration)),
            remote_addr=address,  # a connected socket: only the server's datagrams come in
        )
        protocol.certificate_hashes = digests
        try:
            protocol.connect(transport.get_extra_info("peername"))  # as sendto() wants it
            try:
                await protocol.wait_connected()
            except ConnectionError:
                gone = protocol._gone
                raise RpcDisconnectedError(
                    f"WebTransport connection failed: {gone or 'handshake refused'}"
                ) from None
            if protocol.certificate_error is not None:
                raise RpcDisconnectedError(
                    f"WebTransport connection failed: {protocol.certificate_error}"
                )
        except BaseException:
            transport.close()
            raise
    return WebTransportClient(url, protocol, transport)


async def open_session(
    url: str,
    webtransport: bool | WebTransportClient,
    *,
    headers: dict[str, str] | None,
    limits: Limits | None,
    certificate_hashes: Sequence[str],
    ca_file: PathLike | None,
    timeout: float,
) -> WtConnection:
    """A WebTransport session's RPC stream for ``connect()``: on ``webtransport`` if it is an
    open client, else on a connection of its own, closed with the session."""
    if isinstance(webtransport, WebTransportClient):
        client = webtransport
        owned = False
    else:
        client = await open_webtransport(
            url, certificate_hashes=certificate_hashes, ca_file=ca_file, timeout=timeout
        )
        owned = True
    try:
        async with asyncio.timeout(timeout):
            conn = await client.open_session(url, headers, limits)
    except BaseException:
        if owned:
            await client.close()
        raise
    if owned:
        conn._after_close = client.close
        client._protocol.on_idle = client._protocol.close  # the session was its only use
    return conn


# -- certificates


def dev_certificate(
    certificate: PathLike = "cert.pem",
    private_key: PathLike = "key.pem",
    *,
    days: float = CERTIFICATE_DAYS,
    hosts: Sequence[str] = ("localhost", "127.0.0.1", "::1"),
) -> str:
    """Write a self-signed ECDSA P-256 certificate for ``hosts`` and its private key as PEM
    files, valid from 5 minutes ago for ``days`` (at most 14 days in all, as browsers require
    of pinned certificates); returns its SHA-256 hash in hex, what a browser's
    ``serverCertificateHashes`` and ``connect(..., certificate_hashes=[...])`` take.

    For development only: in production, use a certificate from a CA that browsers trust.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    before = datetime.timedelta(minutes=5)
    valid = datetime.timedelta(days=days)
    if not valid > datetime.timedelta(0) or valid + before > datetime.timedelta(days=14):
        raise ValueError("days must be above 0 and leave the validity within 14 days")
    if isinstance(hosts, str) or not hosts:
        raise ValueError("hosts is a non-empty list of host names and addresses")
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - before)
        .not_valid_after(now + valid)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(private_key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key_pem)
    with open(certificate, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def certificate_hash(certificate: PathLike) -> str:
    """The SHA-256 hash (hex) of the first certificate of a PEM file, as
    ``serverCertificateHashes`` takes it."""
    import ssl

    with open(certificate) as f:
        pem = f.read()
    begin, end = "-----BEGIN CERTIFICATE-----", "-----END CERTIFICATE-----"
    start = pem.find(begin)
    stop = pem.find(end, start)
    if start < 0 or stop < 0:
        raise ValueError(f"no PEM certificate in {os.fspath(certificate)!r}")
    der = ssl.PEM_cert_to_DER_cert(pem[start : stop + len(end)])
    return hashlib.sha256(der).hexdigest()
