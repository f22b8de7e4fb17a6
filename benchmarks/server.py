"""Benchmark server on this project: ``BenchTarget`` over WebSocket and HTTP batch at /rpc,
and over WebTransport at /rpc of a UDP port.

Usage: python benchmarks/server.py [--loop asyncio|uvloop]
Listens on 127.0.0.1 with free ports and prints one JSON line once ready:
``{"rpc_port": N, "echo_port": M, "wt_port": W, "wt_hash": H, "pid": P}`` (``wt_hash``: the
SHA-256 of the development certificate made for this run, for ``certificate_hashes``).

- ``/rpc``: ``capnweb.serve``, one ``BenchTarget`` per session; sessions are counted as
  ``posts`` (over HTTP batch, a session is a POST).
- ``/stats``: GET ``{"posts", "cpu_s", "rss", "peak_rss"}`` (cpu_s: CPU seconds used so far);
  ``?gc=1`` collects garbage first, ``?reset_peak=1`` resets the peak RSS (Linux
  ``/proc/self/clear_refs``) after reading it.
- echo: a plain ``websockets`` echo server on its own port (the raw floor).

Stops on SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import re
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from aiohttp import web
from websockets.asyncio.server import ServerConnection
from websockets.asyncio.server import serve as ws_serve

import capnweb
from capnweb import Limits


class Counter(capnweb.RpcTarget):
    def __init__(self, value: int) -> None:
        self._value = value

    def increment(self, amount: int = 1) -> int:
        self._value += amount
        return self._value


class BenchTarget(capnweb.RpcTarget):
    def square(self, i: int) -> int:
        return i * i

    def makeCounter(self, start: int = 0) -> Counter:
        return Counter(start)

    def echo(self, x: Any) -> Any:
        return x


def memory() -> dict[str, int]:
    """Current and peak resident set size of this process, in bytes (Linux)."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return {"rss": 0, "peak_rss": 0}

    def field(name: str) -> int:
        m = re.search(rf"^{name}:\s+(\d+) kB", status, re.M)
        return int(m.group(1)) * 1024 if m else 0

    return {"rss": field("VmRSS"), "peak_rss": field("VmHWM")}


async def main() -> None:
    posts = 0

    def session_main() -> BenchTarget:
        # One per session, so one per batch POST: "posts" counts them (the workloads that
        # read it run over HTTP batch alone).
        nonlocal posts
        posts += 1
        return BenchTarget()

    async def stats(request: web.Request) -> web.StreamResponse:
        if request.query.get("gc") == "1":
            gc.collect()
        result = {"posts": posts, "cpu_s": time.process_time(), **memory()}
        if request.query.get("reset_peak") == "1":
            try:
                Path("/proc/self/clear_refs").write_text("5")
            except OSError:
                pass  # not Linux, or not permitted: the peak stays the lifetime peak
        return web.json_response(result)

    app = web.Application(client_max_size=Limits().max_batch_size)
    app.router.add_get("/stats", stats)
    server = await capnweb.serve(session_main, host="127.0.0.1", port=0, app=app)
    rpc_port = server.port

    async def echo(ws: ServerConnection) -> None:
        async for message in ws:
            await ws.send(message)

    echo_server = await ws_serve(echo, "127.0.0.1", 0, max_size=Limits().max_frame_size)
    echo_port = next(iter(echo_server.sockets)).getsockname()[1]

    from capnweb.transports.webtransport import dev_certificate  # the webtransport extra

    with tempfile.TemporaryDirectory() as certs:  # a fresh certificate each run
        cert, key = Path(certs) / "cert.pem", Path(certs) / "key.pem"
        wt_hash = dev_certificate(cert, key)
        wt_server = await capnweb.serve_webtransport(
            session_main, "127.0.0.1", 0, certificate=cert, private_key=key
        )

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    ready = {"rpc_port": rpc_port, "echo_port": echo_port, "pid": os.getpid()}
    ready |= {"wt_port": wt_server.port, "wt_hash": wt_hash}
    print(json.dumps(ready), flush=True)
    await stop.wait()
    echo_server.close()
    await wt_server.close()
    await server.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--loop", default="asyncio", choices=("asyncio", "uvloop"))
    args = parser.parse_args()
    if args.loop == "uvloop":
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(main())
    else:
        asyncio.run(main())
