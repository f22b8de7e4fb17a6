"""The integrated example's server: ONE process answering WebSocket and HTTP batch (TCP) and
WebTransport (UDP) for the same service, with the same ``main`` factory, plus a page that
uses WebTransport when the browser has it and falls back to WebSocket.

Usage (from the repository root, after ``npm ci --prefix examples/chat/web``, which installs
the capnweb module the page loads): ``python -m examples.webtransport_integrated.server
--port 8080``. WebSocket and HTTP batch are on TCP ``/rpc``, WebTransport on UDP (the same
port number unless ``--wt-port``), the page on ``/``, and ``GET /config.json`` tells the page
the WebTransport URL (and, for a development certificate, its hash). Without
``--cert``/``--key`` it makes a development certificate (valid 10 days) in a temporary
folder, deleted on exit.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

from aiohttp import web

import capnweb
from capnweb.transports.webtransport import certificate_hash, dev_certificate
from examples.webtransport.server import sessions

__all__ = ["CAPNWEB_JS", "WEB", "main", "page_app"]

WEB = Path(__file__).resolve().parent / "web"
"""The page and its scripts."""

CAPNWEB_JS = (
    Path(__file__).resolve().parents[1] / "chat" / "web" / "node_modules" / "capnweb" / "dist"
) / "index.js"
"""The TypeScript capnweb package's ES module, as the chat example pins and installs it."""


def page_app(config: dict[str, str], capnweb_js: Path) -> web.Application:
    """The routes beside ``/rpc``: the page, its scripts, the capnweb module, ``config``."""

    def file(path: Path) -> web.FileResponse:
        return web.FileResponse(path, headers={"Cache-Control": "no-cache"})

    async def index(request: web.Request) -> web.FileResponse:
        return file(WEB / "index.html")

    async def page(request: web.Request) -> web.FileResponse:
        return file(WEB / "page.js")

    async def transport(request: web.Request) -> web.FileResponse:
        return file(WEB / "transport.js")

    async def module(request: web.Request) -> web.FileResponse:
        return file(capnweb_js)

    async def settings(request: web.Request) -> web.Response:
        return web.json_response(config)

    app = web.Application()
    app.router.add_get("/", index)
    app.router.add_get("/page.js", page)
    app.router.add_get("/transport.js", transport)
    app.router.add_get("/capnweb.js", module)
    app.router.add_get("/config.json", settings)
    return app


async def main(
    port: int, wt_port: int | None, cert: Path | None, key: Path | None, capnweb_js: Path
) -> int:
    """Serve until SIGTERM or SIGINT; 1 if the capnweb module is missing."""
    if not capnweb_js.is_file():
        print(
            f"error: {capnweb_js} is missing: the page needs the capnweb npm package. Install "
            "it with `npm ci --prefix examples/chat/web` (from the repository root).",
            file=sys.stderr,
            flush=True,
        )
        return 1
    with tempfile.TemporaryDirectory(prefix="capnweb-cert-") as folder:
        config: dict[str, str] = {"path": "/rpc"}
        if cert is None or key is None:
            cert, key = Path(folder) / "cert.pem", Path(folder) / "key.pem"
            dev_certificate(cert, key)
            # Browsers trust a self-signed certificate only by its hash (and only one valid
            # 14 days at most); a CA's certificate they check themselves, without one.
            config["certificateHash"] = certificate_hash(cert)
        digest = certificate_hash(cert)
        factory = sessions()  # one factory: every transport's sessions are numbered together
        app = page_app(config, capnweb_js)
        server = await capnweb.serve(factory, host="127.0.0.1", port=port, app=app)
        async with (
            server,
            capnweb.serve_webtransport(
                factory,
                host="127.0.0.1",
                port=server.port if wt_port is None else wt_port,
                certificate=cert,
                private_key=key,
            ) as wt_server,
        ):
            config["webtransport"] = wt_server.url
            print(f"listening {server.port}", flush=True)
            print(f"page http://127.0.0.1:{server.port}/", flush=True)
            print(f"websocket {server.ws_url}", flush=True)
            print(f"http batch {server.url}", flush=True)
            print(f"webtransport {wt_server.url} (UDP)", flush=True)
            print(f"certificate sha-256 {digest}", flush=True)
            await server.serve_until_signal()
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8080, help="TCP port; 0: any free port")
    parser.add_argument("--wt-port", type=int, help="UDP port (default: the TCP port's number)")
    parser.add_argument("--cert", type=Path, help="PEM chain (default: a development one)")
    parser.add_argument("--key", type=Path, help="PEM private key")
    parser.add_argument("--capnweb-js", type=Path, default=CAPNWEB_JS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.port, args.wt_port, args.cert, args.key, args.capnweb_js)))
