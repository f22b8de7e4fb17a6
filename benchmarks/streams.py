"""Stream benchmarks on this project: the server (``--serve``) and the client of the stream
workloads; ``benchmarks/js/streams.mjs`` is the same on the reference, workload for workload.

Usage:
  python benchmarks/streams.py --serve [--loop asyncio|uvloop]
      Listens on 127.0.0.1 (a free port) and prints one JSON line once ready:
      ``{"rpc_port": N, "echo_port": 0, "pid": P}``. ``/rpc`` serves ``StreamTarget`` (below);
      ``/stats`` answers ``{"cpu_s", "rss", "peak_rss", "produced"}`` (``produced``: bytes
      the byte streams handed to the RPC layer so far); ``?gc=1`` collects garbage first,
      ``?reset_peak=1`` resets the peak RSS (Linux ``/proc/self/clear_refs``) and ``produced``.
  python benchmarks/streams.py --workload NAME --url http://127.0.0.1:N/rpc --stats-url URL
      [--params JSON] [--runs R] [--warmup W] [--gate 1] [--loop asyncio|uvloop]
      Prints ``{"runs": [...]}`` (or, with ``--gate 1``, one ``{"run": ...}`` line per line
      read on stdin), as ``benchmarks/workloads.py`` does.

Workloads (one WebSocket session each; MB is 10^6 bytes):

- ``stream_download``: ``download(bytes, chunk)`` returns a stream of ``bytes`` in ``chunk``-byte
  chunks, read to the end: MB/s from the call to the last chunk, and CPU per MB on both sides.
- ``stream_upload``: ``upload(stream)`` takes an async generator of such chunks and returns the
  byte count: MB/s from the call to its result.
- ``stream_objects``: ``objects(n)`` returns a stream of ``n`` small objects ``{i, name}``:
  chunks/s, CPU per chunk.
- ``stream_slow``: ``download(bytes, chunk)`` read by a slow consumer, paced to ``rate_mb_s``
  (a pause after each chunk until the schedule is met), for at most ``seconds``, then cancelled.
  The producer (the server) is measured: its peak RSS over the baseline taken just before the
  call (``producer_peak_growth_mb``, the kernel's high-water mark after a reset), and
  ``ahead_mb``, the most it had produced beyond what the consumer had read, sampled every
  ``sample_s``. The consumer's own peak RSS growth is ``consumer_peak_growth_mb``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout
sys.path.insert(0, str(Path(__file__).resolve().parent))  # server.py and workloads.py beside it

import aiohttp
from aiohttp import web
from server import memory  # benchmarks/server.py: VmRSS and VmHWM of this process
from workloads import run_gated, run_loop  # benchmarks/workloads.py: the run loop, the event loop

import capnweb

Result = dict[str, float]
MB = 1e6


def pattern(size: int) -> bytes:
    """The bytes every byte-stream chunk carries (the same in benchmarks/js/streams.mjs)."""
    return bytes(i & 255 for i in range(size))


def reset_peak() -> None:
    """Restart this process's peak-RSS count (VmHWM) from its current RSS (Linux)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass  # not Linux, or not permitted: the peak stays the lifetime peak


# --------------------------------------------------------------------------------------------
# server


class Produced:
    """Bytes the byte streams of this server process handed to the RPC layer (``/stats``)."""

    count = 0


class StreamTarget(capnweb.RpcTarget):
    """What the stream workloads call (the same methods in benchmarks/js/streams.mjs)."""

    def ping(self) -> bool:
        return True

    async def download(self, total: int, chunk: int) -> AsyncIterator[bytes]:
        """``total`` bytes in ``chunk``-byte chunks, made as the reader takes them."""
        block = pattern(chunk)
        left = total
        while left > 0:
            piece = block if left >= chunk else block[:left]
            left -= len(piece)
            Produced.count += len(piece)
            yield piece

    async def upload(self, stream: capnweb.ReadableStream[bytes]) -> int:
        """Reads ``stream`` to its end; returns its length in bytes."""
        total = 0
        async for piece in stream:
            total += len(piece)
        return total

    async def objects(self, n: int) -> AsyncIterator[dict[str, Any]]:
        """``n`` small objects, ``{"i": i, "name": "item-<i>"}``."""
        for i in range(n):
            yield {"i": i, "name": f"item-{i}"}


async def serve() -> None:
    async def stats(request: web.Request) -> web.StreamResponse:
        if request.query.get("gc") == "1":
            gc.collect()
        result = {"cpu_s": time.process_time(), "produced": Produced.count, **memory()}
        if request.query.get("reset_peak") == "1":
            reset_peak()
            Produced.count = 0
        return web.json_response(result)

    app = web.Application()
    app.router.add_get("/stats", stats)
    server = await capnweb.serve(StreamTarget, host="127.0.0.1", port=0, app=app)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(json.dumps({"rpc_port": server.port, "echo_port": 0, "pid": os.getpid()}), flush=True)
    await stop.wait()
    await server.close()


# --------------------------------------------------------------------------------------------
# client


class Bench:
    """One workload's context: the URLs and parameters from the command line."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.url: str = args.url
        self.ws_url = self.url.replace("http", "ws", 1)
        self.stats_url: str = args.stats_url
        self.p: dict[str, Any] = json.loads(args.params)

    async def stats(self, http: aiohttp.ClientSession, query: str = "") -> dict[str, Any]:
        async with http.get(self.stats_url + query) as r:
            data: dict[str, Any] = await r.json()
            return data

    async def _timed(
        self, body: Callable[[Any], Awaitable[int]], per: float, unit: str
    ) -> tuple[float, Result]:
        """Runs ``body(api)`` in a fresh session; returns its seconds and the CPU figures
        (client and server CPU time per ``per`` units, in ``unit``)."""
        scale = {"ms": 1e3, "us": 1e6}[unit]
        async with aiohttp.ClientSession() as http, capnweb.connect(self.ws_url) as api:
            assert await api.ping() is True
            before = await self.stats(http)
            cpu0 = time.process_time()
            start = time.perf_counter()
            await body(api)
            seconds = time.perf_counter() - start
            cpu = time.process_time() - cpu0
            after = await self.stats(http)
        return seconds, {
            f"client_cpu_{unit}": cpu / per * scale,
            f"server_cpu_{unit}": (after["cpu_s"] - before["cpu_s"]) / per * scale,
        }

    async def stream_download(self) -> Result:
        total, chunk = self.p.get("bytes", 64 << 20), self.p.get("chunk", 64 << 10)
        first = pattern(min(chunk, total))

        async def body(api: Any) -> int:
            got = 0
            stream: capnweb.ReadableStream[bytes] = await api.download(total, chunk)
            async for piece in stream:
                if not got:
                    assert piece == first, "wrong bytes"
                got += len(piece)
            assert got == total, (got, total)
            return got

        seconds, cpu = await self._timed(body, total / MB, "ms")
        return {"mb_per_s": total / MB / seconds, **_per_mb(cpu)}

    async def stream_upload(self) -> Result:
        total, chunk = self.p.get("bytes", 64 << 20), self.p.get("chunk", 64 << 10)
        block = pattern(chunk)

        async def chunks() -> AsyncIterator[bytes]:
            left = total
            while left > 0:
                piece = block if left >= chunk else block[:left]
                left -= len(piece)
                yield piece

        async def body(api: Any) -> int:
            got: int = await api.upload(chunks())
            assert got == total, (got, total)
            return got

        seconds, cpu = await self._timed(body, total / MB, "ms")
        return {"mb_per_s": total / MB / seconds, **_per_mb(cpu)}

    async def stream_objects(self) -> Result:
        n = self.p.get("n", 100_000)

        async def body(api: Any) -> int:
            count = 0
            stream: capnweb.ReadableStream[dict[str, Any]] = await api.objects(n)
            async for item in stream:
                assert item["i"] == count, item
                count += 1
            assert count == n and item["name"] == f"item-{n - 1}", (count, n)
            return count

        seconds, cpu = await self._timed(body, n, "us")
        return {"chunks_per_s": n / seconds, **cpu}

    async def stream_slow(self) -> Result:
        total, chunk = self.p.get("bytes", 1 << 30), self.p.get("chunk", 64 << 10)
        rate = self.p.get("rate_mb_s", 32) * MB  # bytes per second the consumer takes
        limit = self.p.get("seconds", 40.0)
        every = self.p.get("sample_s", 0.25)
        read = 0
        ahead = 0
        async with aiohttp.ClientSession() as http, capnweb.connect(self.ws_url) as api:
            assert await api.ping() is True
            gc.collect()
            reset_peak()
            own_base = memory()["rss"]
            base = await self.stats(http, "?gc=1&reset_peak=1")

            async def sample() -> None:
                nonlocal ahead
                while True:
                    await asyncio.sleep(every)
                    produced = (await self.stats(http))["produced"]
                    ahead = max(ahead, produced - read)

            sampler = asyncio.ensure_future(sample())
            try:
                stream: capnweb.ReadableStream[bytes] = await api.download(total, chunk)
                start = time.perf_counter()
                async for piece in stream:
                    read += len(piece)
                    now = time.perf_counter()
                    if now - start >= limit:
                        break
                    pause = start + read / rate - now  # keep to the pace
                    if pause > 0:
                        await asyncio.sleep(pause)
                seconds = time.perf_counter() - start
            finally:
                sampler.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sampler
            end = await self.stats(http)  # the stream is still open if it was not read through
            ahead = max(ahead, end["produced"] - read)
            stream.cancel()
            own_peak = memory()["peak_rss"]
        return {
            "producer_peak_growth_mb": (end["peak_rss"] - base["rss"]) / MB,
            "producer_baseline_mb": base["rss"] / MB,
            "ahead_mb": ahead / MB,
            "consumer_peak_growth_mb": (own_peak - own_base) / MB,
            "read_mb": read / MB,
            "read_mb_s": read / MB / seconds,
        }


def _per_mb(cpu: Result) -> Result:
    return {f"{k}_per_mb": v for k, v in cpu.items()}


WORKLOADS: dict[str, Callable[[Bench], Awaitable[Result]]] = {
    "stream_download": Bench.stream_download,
    "stream_upload": Bench.stream_upload,
    "stream_objects": Bench.stream_objects,
    "stream_slow": Bench.stream_slow,
}


async def run(args: argparse.Namespace) -> list[Result]:
    bench = Bench(args)
    return await run_gated(args, lambda: WORKLOADS[args.workload](bench))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--serve", action="store_true", help="run the server")
    parser.add_argument("--workload", choices=sorted(WORKLOADS))
    parser.add_argument("--transport", default="ws", choices=("ws",))
    parser.add_argument("--url")
    parser.add_argument("--echo-url", help="not used (the suite passes it to every client)")
    parser.add_argument("--stats-url")
    parser.add_argument("--params", default="{}")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--gate", type=int, default=0, help="1: one run per line read on stdin")
    parser.add_argument("--loop", default="asyncio", choices=("asyncio", "uvloop"))
    args = parser.parse_args()
    if args.serve:
        run_loop(serve, args.loop)
        return
    if not (args.workload and args.url and args.stats_url):
        parser.error("--workload, --url and --stats-url are required (or --serve)")
    runs = run_loop(lambda: run(args), args.loop)
    print(json.dumps({"runs": runs}))


if __name__ == "__main__":
    main()
