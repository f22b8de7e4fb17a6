"""Benchmark client on this project: runs one workload against a server, prints one JSON line.

Usage: python benchmarks/workloads.py --workload NAME [--transport ws|batch|wt]
           [--url http://127.0.0.1:N/rpc] [--echo-url ws://127.0.0.1:M] [--stats-url URL]
           [--wt-url https://127.0.0.1:W/rpc --wt-hash SHA256]
           [--params JSON] [--runs R] [--warmup W] [--loop asyncio|uvloop]

Output: ``{"runs": [{metric: value, ...}, ...]}``, one object per measured run. The workloads,
their data and their parameters mirror ``benchmarks/js/client.mjs`` exactly.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

import aiohttp
from websockets.asyncio.client import connect as ws_connect

import capnweb
from capnweb import _codec

try:
    import orjson
except ImportError:  # pragma: no cover - optional
    orjson = None  # type: ignore[assignment]

Result = dict[str, float]

# -- shared data (identical to benchmarks/js/client.mjs)


def make_payload(items: int) -> list[dict[str, Any]]:
    """``items`` small dicts of strings and ints (10,000 of them are about 1 MB of JSON)."""
    return [
        {
            "id": i,
            "name": f"user-{i}",
            "email": f"user{i}@example.com",
            "age": 20 + i % 50,
            "score": i * 3,
            "city": "Amsterdam",
        }
        for i in range(items)
    ]


def make_mixed() -> dict[str, Any]:
    """Nested lists and objects, floats, null, booleans and non-ASCII text."""
    rows = [
        {
            "title": f"Stra\u00dfe {i} \u2014 caf\u00e9 \U0001f600",
            "values": [i, i + 0.5, -i - 1, 10_000_000_000 + i],
            "flags": [True, False, None],
            "nested": {"depth": [[i, [i + 1, [i + 2]]]], "empty": {}, "none": None},
        }
        for i in range(50)
    ]
    return {"kind": "mixed", "count": len(rows), "rows": rows}


def codec_messages(items: int) -> dict[str, Any]:
    return {
        "call_args": [7],
        "user": make_payload(1)[0],
        "mixed": make_mixed(),
        "payload": make_payload(items),
    }


RAW_MESSAGE = json.dumps(["push", ["pipeline", 0, ["square"], [[7]]]], separators=(",", ":"))


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (nearest rank) of ``values``, sorted in place."""
    values.sort()
    if not values:
        return float("nan")
    return values[min(len(values) - 1, max(0, math.ceil(q * len(values)) - 1))]


class Bench:
    """One workload run's context: the URLs and parameters from the command line."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.url: str = args.url or ""
        self.ws_url = self.url.replace("http", "ws", 1)
        self.echo_url: str = args.echo_url or ""
        self.stats_url: str = args.stats_url or ""
        self.transport: str = args.transport
        self.wt_url: str = args.wt_url or ""
        self.wt_hash: str = args.wt_hash or ""
        self.p: dict[str, Any] = json.loads(args.params)

    async def stats(self, query: str = "") -> dict[str, Any]:
        async with aiohttp.ClientSession() as http, http.get(self.stats_url + query) as r:
            data: dict[str, Any] = await r.json()
            return data

    async def open(self) -> tuple[capnweb.RpcStub, capnweb.Connection[Any]]:
        if self.transport == "wt":
            conn = capnweb.connect(
                self.wt_url, webtransport=True, certificate_hashes=[self.wt_hash]
            )
        else:
            conn = capnweb.connect(self.ws_url if self.transport == "ws" else self.url)
        return await conn.open(), conn

    # -- workloads

    async def sequential(self) -> Result:
        n = self.p.get("n", 2000)
        lat: list[float] = []
        perf = time.perf_counter
        before = await self.stats()
        cpu0 = time.process_time()
        if self.transport in ("ws", "wt"):  # one session
            api, conn = await self.open()
            await api.square(1)
            start = perf()
            for i in range(n):
                t0 = perf()
                r = await api.square(i)
                lat.append(perf() - t0)
                assert r == i * i, r
            total = perf() - start
            await conn.close()
        else:
            start = perf()
            for i in range(n):
                t0 = perf()
                async with capnweb.connect(self.url) as batch:
                    r = await batch.square(i)
                lat.append(perf() - t0)
                assert r == i * i, r
            total = perf() - start
        cpu = time.process_time() - cpu0
        after = await self.stats()
        return {
            "calls_per_s": n / total,
            "p50_us": percentile(lat, 0.5) * 1e6,
            "p99_us": percentile(lat, 0.99) * 1e6,
            "client_cpu_us": cpu / n * 1e6,
            "server_cpu_us": (after["cpu_s"] - before["cpu_s"]) / n * 1e6,
        }

    async def concurrent(self) -> Result:
        n = self.p.get("n", 10000)
        before = await self.stats()
        cpu0 = time.process_time()
        api, conn = await self.open()
        if self.transport in ("ws", "wt"):
            await api.square(1)
        start = time.perf_counter()
        results = await asyncio.gather(*[api.square(i) for i in range(n)])
        total = time.perf_counter() - start
        assert results[-1] == (n - 1) ** 2
        await conn.close()
        cpu = time.process_time() - cpu0
        after = await self.stats()
        return {
            "calls_per_s": n / total,
            "client_cpu_us": cpu / n * 1e6,
            "server_cpu_us": (after["cpu_s"] - before["cpu_s"]) / n * 1e6,
        }

    async def pipelined(self) -> Result:
        n = self.p.get("n", 100)
        before = await self.stats()
        api, conn = await self.open()
        if self.transport == "ws":
            await api.square(1)
        start = time.perf_counter()
        counter = api.makeCounter(0)
        results = await asyncio.gather(*[counter.increment(1) for _ in range(n)])
        total = time.perf_counter() - start
        assert results[-1] == n, results[-1]
        counter.dispose()
        await conn.close()
        after = await self.stats()
        return {"wall_ms": total * 1e3, "http_requests": after["posts"] - before["posts"]}

    async def payload(self) -> Result:
        n = self.p.get("n", 20)
        data = make_payload(self.p.get("items", 10000))
        size = len(json.dumps(data, separators=(",", ":")).encode())
        perf = time.perf_counter
        if self.transport == "ws":
            api, conn = await self.open()
            await api.square(1)
            start = perf()
            for _ in range(n):
                echoed = await api.echo(data)
                assert len(echoed) == len(data)
            total = perf() - start
            await conn.close()
        else:
            start = perf()
            for _ in range(n):
                async with capnweb.connect(self.url) as batch:
                    echoed = await batch.echo(data)
                assert len(echoed) == len(data)
            total = perf() - start
        return {"mb_per_s": 2 * size * n / total / 1e6, "payload_bytes": size}

    async def sessions(self) -> Result:
        sessions = self.p.get("sessions", 200)
        calls = self.p.get("calls", 50)
        await self.stats("?gc=1&reset_peak=1")

        async def one() -> None:
            async with capnweb.connect(self.ws_url) as api:
                for i in range(calls):
                    r = await api.square(i)
                    assert r == i * i

        start = time.perf_counter()
        await asyncio.gather(*[one() for _ in range(sessions)])
        total = time.perf_counter() - start
        after = await self.stats()
        return {
            "calls_per_s": sessions * calls / total,
            "server_peak_rss_mb": after["peak_rss"] / 1e6,
        }

    async def codec(self) -> Result:
        min_seconds = self.p.get("min_seconds", 0.3)
        out: Result = {}
        std_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
        for name, value in codec_messages(self.p.get("items", 10000)).items():
            text = _codec.dumps(_codec.encode(value))
            tree = json.loads(text)
            size = len(std_dumps(tree).encode())
            assert _codec.decode(_codec.loads(text)) == value, name
            assert _codec.encode_text(value) == text, name

            def mb(seconds: float, size: int = size) -> float:
                return size / seconds / 1e6

            def enc(value: Any = value) -> Any:
                return _codec.encode_text(value)  # as a session sends a value

            def enc_tree(value: Any = value) -> Any:
                return _codec.dumps(_codec.encode(value))  # the tree, then its text

            def dec(text: str = text) -> Any:
                return _codec.decode(_codec.loads(text), fresh=True)  # as a session does

            ops: dict[str, Callable[[], Any]] = {
                "encode": enc,
                "encode_tree": enc_tree,
                "decode": dec,
                "stdlib_encode": partial(std_dumps, tree),
                "stdlib_decode": partial(json.loads, text),
            }
            if orjson is not None:
                ops["orjson_encode"] = partial(orjson.dumps, tree)
                ops["orjson_decode"] = partial(orjson.loads, text)
            for op, seconds in time_ops(ops, min_seconds).items():
                out[f"{name}.{op}_mb_s"] = mb(seconds)
            fastest = "orjson" if orjson is not None else "stdlib"
            out[f"{name}.json_encode_mb_s"] = out[f"{name}.{fastest}_encode_mb_s"]
            out[f"{name}.json_decode_mb_s"] = out[f"{name}.{fastest}_decode_mb_s"]
        return out

    async def raw_sequential(self) -> Result:
        async with ws_connect(self.echo_url) as ws:
            return await self._raw_round_trips(ws.send, ws.recv)

    async def raw_sequential_aiohttp(self) -> Result:
        """raw_sequential with aiohttp's WebSocket client (the one ``capnweb.connect`` uses)."""
        async with aiohttp.ClientSession() as http, http.ws_connect(self.echo_url) as ws:
            return await self._raw_round_trips(ws.send_str, ws.receive)

    async def _raw_round_trips(
        self, send: Callable[[str], Awaitable[Any]], recv: Callable[[], Awaitable[Any]]
    ) -> Result:
        n = self.p.get("n", 2000)
        lat: list[float] = []
        perf = time.perf_counter
        start = perf()
        for _ in range(n):
            t0 = perf()
            await send(RAW_MESSAGE)
            await recv()
            lat.append(perf() - t0)
        total = perf() - start
        return {
            "msgs_per_s": n / total,
            "p50_us": percentile(lat, 0.5) * 1e6,
            "p99_us": percentile(lat, 0.99) * 1e6,
        }

    async def raw_concurrent(self) -> Result:
        n = self.p.get("n", 10000)
        async with ws_connect(self.echo_url) as ws:

            async def reader() -> None:
                for _ in range(n):
                    await ws.recv()

            start = time.perf_counter()
            task = asyncio.ensure_future(reader())
            for _ in range(n):
                await ws.send(RAW_MESSAGE)
            await task
            total = time.perf_counter() - start
        return {"msgs_per_s": n / total}

    async def mem_exports(self) -> Result:
        n = self.p.get("n", 10000)
        api, conn = await self.open()
        await api.square(1)
        before = await self.stats("?gc=1")
        stubs = await asyncio.gather(*[api.makeCounter(i) for i in range(n)])
        assert await stubs[-1].increment(1) == n
        after = await self.stats("?gc=1")
        for s in stubs:
            s.dispose()
        await conn.close()
        return {"bytes_per_export": (after["rss"] - before["rss"]) / n}

    async def mem_sessions(self) -> Result:
        n = self.p.get("n", 10000)
        chunk = 250
        before = await self.stats("?gc=1")
        conns: list[capnweb.Connection[Any]] = []

        async def one() -> None:
            conn = capnweb.connect(self.ws_url)
            conns.append(conn)
            api = await conn.open()
            assert await api.square(2) == 4

        for i in range(0, n, chunk):
            await asyncio.gather(*[one() for _ in range(min(chunk, n - i))])
        after = await self.stats("?gc=1")
        for i in range(0, len(conns), chunk):
            await asyncio.gather(*[c.close() for c in conns[i : i + chunk]])
        return {"bytes_per_session": (after["rss"] - before["rss"]) / n}


def time_ops(fns: dict[str, Callable[[], Any]], min_seconds: float) -> dict[str, float]:
    """Seconds per call of each function: the median of its timed batches. The functions'
    batches are taken in turn, round after round (``min_seconds`` of each in all), so a slow
    spell of the machine falls on all of them and their ratios hold."""
    perf = time.perf_counter
    per_batch: dict[str, int] = {}
    for name, fn in fns.items():
        fn()
        t0 = perf()
        fn()
        per_batch[name] = max(1, int(min_seconds / 5 / max(perf() - t0, 1e-7)))
    samples: dict[str, list[float]] = {name: [] for name in fns}
    start = perf()
    rounds = 0
    while rounds < 3 or perf() - start < min_seconds * len(fns):
        for name, fn in fns.items():
            n = per_batch[name]
            t0 = perf()
            for _ in range(n):
                fn()
            samples[name].append((perf() - t0) / n)
        rounds += 1
    return {name: statistics.median(times) for name, times in samples.items()}


WORKLOADS: dict[str, Callable[[Bench], Awaitable[Result]]] = {
    "sequential": Bench.sequential,
    "concurrent": Bench.concurrent,
    "pipelined": Bench.pipelined,
    "payload": Bench.payload,
    "sessions": Bench.sessions,
    "codec": Bench.codec,
    "raw_sequential": Bench.raw_sequential,
    "raw_sequential_aiohttp": Bench.raw_sequential_aiohttp,
    "raw_concurrent": Bench.raw_concurrent,
    "mem_exports": Bench.mem_exports,
    "mem_sessions": Bench.mem_sessions,
}


async def run(args: argparse.Namespace) -> list[Result]:
    bench = Bench(args)
    return await run_gated(args, lambda: WORKLOADS[args.workload](bench))


async def run_gated(args: argparse.Namespace, workload: Callable[[], Awaitable[Any]]) -> list[Any]:
    """``args.warmup`` then ``args.runs`` runs of ``workload``; the results of the measured
    ones."""
    results: list[Any] = []
    loop = asyncio.get_running_loop()
    for i in range(args.warmup + args.runs):
        # --gate 1: each run starts on a line from stdin and reports as it ends, so the suite
        # can take the runs of several clients in turn (see benchmarks/run.py)
        if args.gate and not await loop.run_in_executor(None, sys.stdin.readline):
            break
        result = await workload()
        if i >= args.warmup:
            results.append(result)
        if args.gate:
            print(json.dumps({"run": result, "warmup": i < args.warmup}), flush=True)
    return results


def run_loop(main: Callable[[], Awaitable[Any]], loop: str) -> Any:
    """Run ``main()`` on the asyncio event loop, or on uvloop's."""
    if loop == "uvloop":
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(main())  # type: ignore[arg-type]
    return asyncio.run(main())  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workload", required=True, choices=sorted(WORKLOADS))
    parser.add_argument("--transport", default="ws", choices=("ws", "batch", "wt"))
    parser.add_argument("--wt-url", help="the WebTransport URL (--transport wt)")
    parser.add_argument("--wt-hash", help="SHA-256 of its certificate (hex)")
    parser.add_argument("--url")
    parser.add_argument("--echo-url")
    parser.add_argument("--stats-url")
    parser.add_argument("--params", default="{}")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--gate", type=int, default=0, help="1: one run per line read on stdin")
    parser.add_argument("--loop", default="asyncio", choices=("asyncio", "uvloop"))
    args = parser.parse_args()
    runs = run_loop(lambda: run(args), args.loop)
    print(json.dumps({"runs": runs}))


if __name__ == "__main__":
    main()
