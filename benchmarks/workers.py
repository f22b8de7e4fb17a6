"""Calls per second with 1 and 2 worker processes (``capnweb serve --workers N``), over HTTP
batch and WebSocket, on this machine.

Usage: .venv/bin/python benchmarks/workers.py [--workers 1,2] [--seconds 5] [--loaders 2]
       [--connections 64] [--window 16] [--out FILE]

The server is ``capnweb serve benchmarks.server:BenchTarget --workers N`` on a free port of
127.0.0.1. The load comes from ``--loaders`` processes of this script (``--load``), each with
``--connections`` connections that send pre-encoded requests, so a client costs a fraction of
what the server spends on a call:

- batch: one ``square(7)`` per POST (a push and a pull), keep-alive, one request in flight
  per connection;
- ws: ``--window`` ``square(7)`` calls in flight per WebSocket session, each answer's import
  released as the next call goes out.

Each figure is the calls answered in ``--seconds`` after one second of warm-up. On a machine
with two cores the load processes share them with the workers: the table says how much CPU
each side used, so the reader sees what bounded the figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httptools

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from capnweb.transports._ws import open_client  # noqa: E402

PUSH = '["push",["pipeline",0,["square"],[7]]]'
BODY = f'{PUSH}\n["pull",1]'.encode()
REQUEST = (
    b"POST /rpc HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain;charset=UTF-8\r\n"
    b"Content-Length: %d\r\n\r\n%s" % (len(BODY), BODY)
)


# -- the load (one process)


class BatchLoad(asyncio.Protocol):
    """One keep-alive connection posting one-call batches, one at a time."""

    def __init__(self, counts: list[int]) -> None:
        self.counts = counts
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.lost = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.transport.write(REQUEST)

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_message_complete(self) -> None:
        assert self.parser.get_status_code() == 200, self.parser.get_status_code()
        self.counts[0] += 1
        assert self.transport is not None
        self.transport.write(REQUEST)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(None)


async def batch_load(port: int, connections: int, seconds: float, cpu: list[float]) -> int:
    loop = asyncio.get_running_loop()
    counts = [0]
    made = [
        await loop.create_connection(lambda: BatchLoad(counts), "127.0.0.1", port)
        for _ in range(connections)
    ]
    return await measure(counts, seconds, [t for t, _ in made], cpu)


async def ws_load(
    port: int, connections: int, window: int, seconds: float, cpu: list[float]
) -> int:
    counts = [0]
    conns = []
    for _ in range(connections):
        conn = await open_client(f"ws://127.0.0.1:{port}/rpc", None, 1 << 24, 10.0)
        state = {"next": 1}

        def answered(text: str | bytes, conn: Any = conn, state: dict[str, int] = state) -> None:
            if isinstance(text, bytes):
                text = text.decode()
            if not text.startswith('["resolve",'):
                raise AssertionError(text)
            done = text[11 : text.index(",", 11)]
            counts[0] += 1
            call(conn, state, f'["release",{done},1]')

        conn.attach(answered, lambda error: None)
        for _ in range(window):
            call(conn, state, None)
        conns.append(conn)
    return await measure(counts, seconds, [c._socket for c in conns], cpu)


def call(conn: Any, state: dict[str, int], release: str | None) -> None:
    n = state["next"]
    state["next"] = n + 1
    if release is not None:
        conn.send(release)
    conn.send(PUSH)
    conn.send(f'["pull",{n}]')


async def measure(
    counts: list[int], seconds: float, transports: list[Any], cpu: list[float]
) -> int:
    """Count the calls answered in ``seconds`` after a second of warm-up; ``cpu`` gets the
    CPU seconds this process used meanwhile."""
    await asyncio.sleep(1.0)  # warm-up: not counted
    start, used = counts[0], time.process_time()
    print("measuring", flush=True)  # the driver samples the server's CPU now
    await asyncio.sleep(seconds)
    done = counts[0] - start
    cpu.append(time.process_time() - used)
    print("measured", flush=True)
    for transport in transports:
        if transport is not None:
            transport.abort()
    return done


def load_main(args: argparse.Namespace) -> None:
    cpu: list[float] = []
    if args.load == "batch":
        calls = asyncio.run(batch_load(args.port, args.connections, args.seconds, cpu))
    else:
        calls = asyncio.run(ws_load(args.port, args.connections, args.window, args.seconds, cpu))
    print(json.dumps({"calls": calls, "cpu_s": cpu[0]}))


# -- the driver


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until_serving(proc: subprocess.Popen[bytes]) -> None:
    """Wait for the line ``capnweb serve`` prints once every worker listens."""
    assert proc.stderr is not None
    for line in proc.stderr:
        if b"serving" in line:
            threading.Thread(target=proc.stderr.read, daemon=True).start()  # never blocks it
            return
    raise SystemExit("the server did not start")


def process_tree_cpu(pid: int) -> float:
    """CPU seconds used so far by ``pid`` and its children (Linux /proc)."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry.name) == pid or int(fields[1]) == pid:  # fields[1]: the parent's pid
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def run_point(workers: int, kind: str, args: argparse.Namespace) -> dict[str, float]:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "capnweb", "serve", "benchmarks.server:BenchTarget",
         "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)],
        cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        wait_until_serving(server)
        loaders = [
            subprocess.Popen(
                [
                    sys.executable,
                    __file__,
                    "--load",
                    kind,
                    "--port",
                    str(port),
                    "--seconds",
                    str(args.seconds),
                    "--connections",
                    str(args.connections),
                    "--window",
                    str(args.window),
                ],
                stdout=subprocess.PIPE,
            )
            for _ in range(args.loaders)
        ]
        for loader in loaders:  # every loader past its warm-up
            assert loader.stdout is not None and loader.stdout.readline() == b"measuring\n"
        before, start = process_tree_cpu(server.pid), time.monotonic()
        for loader in loaders:
            assert loader.stdout is not None and loader.stdout.readline() == b"measured\n"
        server_cpu = (process_tree_cpu(server.pid) - before) / (time.monotonic() - start)
        results = [json.loads(p.stdout.readline()) for p in loaders if p.stdout is not None]
        for loader in loaders:
            loader.wait(timeout=60)
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    calls = sum(r["calls"] for r in results)
    return {
        "calls_per_s": calls / args.seconds,
        "server_cpu": server_cpu,
        "load_cpu": sum(r["cpu_s"] for r in results) / args.seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--loaders", type=int, default=2)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--window", type=int, default=16)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--load", choices=["batch", "ws"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load:
        return load_main(args)
    rows = []
    print(f"{os.cpu_count()} CPUs; {args.loaders} load processes x {args.connections} conns")
    print("| workers | transport | calls/s | server CPU (cores) | load CPU (cores) |")
    print("|---|---|---|---|---|")
    for workers in [int(w) for w in args.workers.split(",")]:
        for kind in ("batch", "ws"):
            point = run_point(workers, kind, args)
            rows.append({"workers": workers, "transport": kind, **point})
            print(
                f"| {workers} | {kind} | {point['calls_per_s']:,.0f} | "
                f"{point['server_cpu']:.2f} | {point['load_cpu']:.2f} |",
                flush=True,
            )
    if args.out:
        args.out.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
