"""``https``/``wss``: ``serve()``, ``mount()`` on an aiohttp site and the ASGI app under
uvicorn, each given a certificate made here (trustme), called by ``connect()`` with ``ssl``."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trustme
from aiohttp import web
from interop.conftest import free_port

import capnweb
from examples.interop import server as interop_server

from .servers import asgi_command, running

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def server_ssl(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context


@pytest.fixture(scope="module")
def client_ssl(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


async def exercise(ws_url: str, https_url: str, client_ssl: ssl.SSLContext) -> None:
    """Calls, a pipelined call and a callback over wss, and a batch over https."""
    async with capnweb.connect(ws_url, ssl=client_ssl) as api:
        assert await api.square(9) == 81
        assert await api.makeCounter(2).increment(3) == 5
        assert await api.callFunction(lambda x: x + 1, 1) == {"result": 2}
    async with capnweb.connect(https_url, ssl=client_ssl) as api:
        assert await api.makeCounter(4).increment(1) == 5


async def test_serve_over_tls(server_ssl: ssl.SSLContext, client_ssl: ssl.SSLContext) -> None:
    async with capnweb.serve(interop_server.TestTargetImpl, ssl=server_ssl) as server:
        assert server.url.startswith("https://127.0.0.1:")
        assert server.ws_url.startswith("wss://127.0.0.1:")
        await exercise(server.ws_url, server.url, client_ssl)
        assert server.live_sessions == 0


@asynccontextmanager
async def mounted(server_ssl: ssl.SSLContext) -> AsyncIterator[int]:
    app = web.Application()
    capnweb.mount(app, "/rpc", interop_server.TestTargetImpl)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=server_ssl).start()
    try:
        yield port
    finally:
        await runner.cleanup()


async def test_mount_on_an_aiohttp_site_over_tls(
    server_ssl: ssl.SSLContext, client_ssl: ssl.SSLContext
) -> None:
    async with mounted(server_ssl) as port:
        base = f"127.0.0.1:{port}/rpc"
        await exercise(f"wss://{base}", f"https://{base}", client_ssl)


async def test_asgi_under_uvicorn_over_tls(
    ca: trustme.CA, client_ssl: ssl.SSLContext, tmp_path: Path
) -> None:
    cert = ca.issue_cert("127.0.0.1")
    cert.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "cert.pem"))
    port = free_port()
    options = ["--ssl-keyfile", str(tmp_path / "key.pem")]
    options += ["--ssl-certfile", str(tmp_path / "cert.pem")]
    with running(asgi_command("uvicorn", "bare", port, *options), port, tmp_path / "log"):
        base = f"127.0.0.1:{port}/rpc"
        await exercise(f"wss://{base}", f"https://{base}", client_ssl)


async def test_a_certificate_nobody_vouches_for_is_refused(server_ssl: ssl.SSLContext) -> None:
    async with capnweb.serve(interop_server.TestTargetImpl, ssl=server_ssl) as server:
        with pytest.raises(ssl.SSLCertVerificationError):
            await capnweb.connect(server.ws_url).open()  # the system's CAs do not know it
        with pytest.raises(capnweb.RpcDisconnectedError, match="certificate verify failed"):
            async with capnweb.connect(server.url) as api:
                await api.square(2)


async def test_plain_http_to_a_tls_port_fails_fast(server_ssl: ssl.SSLContext) -> None:
    async with capnweb.serve(interop_server.TestTargetImpl, ssl=server_ssl) as server:
        with pytest.raises((capnweb.RpcDisconnectedError, ConnectionError)):
            await capnweb.connect(f"ws://127.0.0.1:{server.port}/rpc").open()
        assert server.live_sessions == 0
