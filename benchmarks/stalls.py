"""How long the server's event loop is held while a peer attacks it (docs/security.md).

Runs ``capnweb.serve()`` in this process with a probe that wakes every millisecond and records
how late it woke: the longest lateness is the longest step the loop took, during which no other
connection was served. Each attack runs in a thread with plain blocking sockets (its payload
built before the probe starts), then the probe's figures are printed.

    .venv/bin/python benchmarks/stalls.py            # every attack
    .venv/bin/python benchmarks/stalls.py --attack map
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import socket
import time
from collections.abc import Callable
from typing import Any

import capnweb
from capnweb.transports._ws import OP_CONTINUATION, OP_TEXT, frame


class Api(capnweb.RpcTarget):
    def square(self, i: int) -> int:
        return i * i


class Probe:
    """Wakes every ``PERIOD`` seconds; ``worst`` is the longest it overslept."""

    PERIOD = 0.001

    def __init__(self) -> None:
        self.worst = 0.0
        self.steps = 0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            start = loop.time()
            await asyncio.sleep(self.PERIOD)
            self.worst = max(self.worst, loop.time() - start - self.PERIOD)
            self.steps += 1

    def __enter__(self) -> Probe:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()


def lines(*messages: Any) -> bytes:
    return "\n".join(json.dumps(m, separators=(",", ":")) for m in messages).encode()


def post(body: bytes) -> bytes:
    head = f"POST /rpc HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


def upgrade() -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        "GET /rpc HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


def read_response(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
    while len(body) < length:
        body += sock.recv(1 << 20)
    return body


Attack = Callable[[int], str]
"""Runs one attack on the port, in a thread; says what it did."""


def big_batch() -> Attack:
    """A batch body at max_batch_size of tiny calls, and its answer read."""
    calls: list[bytes] = []
    size = 0
    while True:
        call = lines(["push", ["pipeline", 0, ["square"], [3]]], ["pull", len(calls) + 1])
        if size + len(call) + 1 > capnweb.Limits().max_batch_size:
            break
        calls.append(call)
        size += len(call) + 1
    count = len(calls)
    request = post(b"\n".join(calls))

    def run(port: int) -> str:
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(request)
            answer = read_response(sock)
        return (
            f"{len(request) / 2**20:.1f} MiB, {count:,} calls, {answer.count(b'resolve'):,} answers"
        )

    return run


def map_amplification() -> Attack:
    """60 zeros mapped by three nested remaps (216,000 applications asked for)."""
    inner = ["remap", -1, [], [], [["pipeline", 0]]]
    mid = ["remap", -1, [], [["import", -1]], [inner]]
    body = lines(
        ["push", [[0] * 60]], ["push", ["remap", 1, [], [["import", 1]], [mid]]], ["pull", 2]
    )

    def run(port: int) -> str:
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(post(body))
            answer = read_response(sock)
        return f"{len(body)} bytes sent, rejected: {b'max_map_work' in answer}"

    return run


def fragment_flood() -> Attack:
    """20 MB of 1-byte continuation frames of one message."""
    first = bytearray(frame(OP_TEXT, b"[", True))
    first[0] &= 0x7F  # not final
    piece = bytearray(frame(OP_CONTINUATION, b" ", True))
    piece[0] &= 0x7F
    flood = bytes(first) + bytes(piece) * (20_000_000 // len(piece))

    def run(port: int) -> str:
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(upgrade())
            sock.recv(4096)
            sock.sendall(flood)
        return f"{len(flood) / 1e6:.0f} MB of 1-byte fragments"

    return run


def connection_burst() -> Attack:
    """1,000 connections opened at once, each sending one batch."""
    body = post(lines(["push", ["pipeline", 0, ["square"], [3]]], ["pull", 1]))

    def run(port: int) -> str:
        socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(1000)]
        for sock in socks:
            sock.sendall(body)
        answered = sum(b"resolve" in read_response(sock) for sock in socks)
        for sock in socks:
            sock.close()
        return f"{answered} of 1000 answered"

    return run


ATTACKS: dict[str, Callable[[], Attack]] = {
    "batch": big_batch,
    "map": map_amplification,
    "fragments": fragment_flood,
    "connections": connection_burst,
}


async def measure(name: str, prepare: Callable[[], Attack]) -> None:
    attack = prepare()  # before the probe: building the payload takes the GIL
    async with capnweb.serve(Api, port=0) as server:
        with Probe() as probe:
            start = time.perf_counter()
            what = await asyncio.to_thread(attack, server.port)
            took = time.perf_counter() - start
        print(
            f"{name:12} longest step {probe.worst * 1000:6.1f} ms  "
            f"({probe.steps} probes in {took:.1f} s; {what})"
        )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--attack", choices=sorted(ATTACKS), action="append")
    args = parser.parse_args()
    for name in args.attack or list(ATTACKS):
        await measure(name, ATTACKS[name])


if __name__ == "__main__":
    asyncio.run(main())
