"""A hostile WebSocket peer against ``serve()``'s own frame reader, over real sockets.

- close frames (RFC 6455 sections 5.5.1 and 7.4): a code that may not be sent, or a 1-byte
  payload, fails the connection with 1002; a reason that is not UTF-8 with 1007; the codes
  that may be sent are echoed;
- a frame header announcing more than the frame limit is refused with 1009 at once, before
  any of its payload is sent (a whole frame, or a fragment taking its message over the limit);
- a fragment flood (millions of empty continuation frames, then of 1-byte ones) costs the
  server about the size of the message, not a Python object per fragment, and a well-behaved
  client on another connection keeps getting its answers meanwhile.

Every test runs with the compiled frame scan and with the pure-Python reader (``framing_impl``).
"""

from __future__ import annotations

import asyncio
import gc
import json
import resource
import struct
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from codec_impls import framing_impl  # noqa: F401 (the fixture: compiled and pure framing)
from helpers import eventually
from test_ws import RawClient as WsRawClient

import capnweb
from capnweb import RpcTarget
from capnweb.transports._ws import WsConnection

pytestmark = [pytest.mark.usefixtures("framing_impl")]

WAIT = 5.0
"""Seconds any single network step may take before the test fails."""

CALL_TIMEOUT = 2.0
"""Seconds the well-behaved client gives each call during a flood."""

KEY = b"\x37\xfa\x21\x3d"
"""The masking key of the frames built here (a client's frames must be masked)."""

OP_CONTINUATION, OP_TEXT, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x8, 0x9, 0xA

MiB = 1 << 20


# -- frames built by hand (RFC 6455 section 5.2)


def mask(data: bytes) -> bytes:
    n = len(data)
    repeated = (KEY * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(repeated, "big")).to_bytes(n, "big")


def header(opcode: int, length: int, *, fin: bool = True) -> bytes:
    """A masked frame's header, masking key included, announcing ``length`` bytes."""
    b0 = (0x80 if fin else 0) | opcode
    if length < 126:
        head = bytes((b0, 0x80 | length))
    elif length < 1 << 16:
        head = bytes((b0, 0x80 | 126)) + length.to_bytes(2, "big")
    else:
        head = bytes((b0, 0x80 | 127)) + length.to_bytes(8, "big")
    return head + KEY


def client_frame(opcode: int, payload: bytes = b"", *, fin: bool = True) -> bytes:
    return header(opcode, len(payload), fin=fin) + mask(payload)


def close_frame(code: int, reason: bytes = b"") -> bytes:
    return client_frame(OP_CLOSE, struct.pack("!H", code) + reason)


class Api(RpcTarget):
    def square(self, x: int) -> int:
        return x * x


@asynccontextmanager
async def served() -> AsyncIterator[capnweb.Server]:
    server = await capnweb.serve(Api, "127.0.0.1", 0)
    try:
        yield server
    finally:
        await asyncio.wait_for(server.close(), WAIT)


class RawClient(WsRawClient):
    """tests/test_ws.py's hand-written WebSocket client, with what these tests add."""

    async def close_code(self) -> int:
        """The code of the server's next frame, which must be a close frame."""
        opcode, payload = await self.read_frame()
        assert opcode == OP_CLOSE, (opcode, payload)
        assert len(payload) >= 2, payload
        code: int = struct.unpack_from("!H", payload)[0]
        return code

    async def sync(self, tag: bytes) -> None:
        """Wait until the server has read everything sent so far (a ping's pong comes back)."""
        await self.send(client_frame(OP_PING, tag))
        assert await self.read_frame() == (OP_PONG, tag)


async def expect_failed_with(raw: RawClient, code: int) -> None:
    """The server closes with ``code``, then the TCP connection once we answer."""
    assert await raw.close_code() == code
    await raw.send(close_frame(code))
    assert await raw.at_eof()


def call(export: int, method: str, *args: object) -> bytes:
    push = json.dumps(["push", ["pipeline", 0, [method], list(args)]]).encode()
    return client_frame(OP_TEXT, push) + client_frame(
        OP_TEXT, json.dumps(["pull", export]).encode()
    )


# -- close codes


INVALID_CODES = [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535]
"""Codes no close frame may carry (RFC 6455 section 7.4): reserved, or for local use only."""

VALID_CODES = [1000, 1001, 1003, 1011, 1014, 3000, 4000, 4999]


@pytest.mark.timeout(10)
@pytest.mark.parametrize("code", INVALID_CODES)
async def test_a_close_frame_with_an_invalid_code_fails_with_1002(code: int) -> None:
    async with served() as server, RawClient.open(server.port, server.path) as raw:
        await raw.send(call(1, "square", 3))
        assert await raw.read_frame() == (OP_TEXT, b'["resolve",1,9]')
        await raw.send(close_frame(code, b"bye"))
        await expect_failed_with(raw, 1002)
        await eventually(lambda: not server.endpoint.sessions)


@pytest.mark.timeout(10)
async def test_a_one_byte_close_payload_fails_with_1002() -> None:
    async with served() as server, RawClient.open(server.port, server.path) as raw:
        await raw.send(client_frame(OP_CLOSE, b"\x03"))
        await expect_failed_with(raw, 1002)
        await eventually(lambda: not server.endpoint.sessions)


@pytest.mark.timeout(10)
@pytest.mark.parametrize("reason", [b"\xff", b"ok \xc3", b"\xed\xa0\x80"], ids=repr)
async def test_a_close_reason_that_is_not_utf8_fails_with_1007(reason: bytes) -> None:
    async with served() as server, RawClient.open(server.port, server.path) as raw:
        await raw.send(close_frame(1000, reason))
        await expect_failed_with(raw, 1007)
        await eventually(lambda: not server.endpoint.sessions)


@pytest.mark.timeout(10)
@pytest.mark.parametrize("code", VALID_CODES)
async def test_a_close_frame_with_a_valid_code_is_echoed(code: int) -> None:
    async with served() as server, RawClient.open(server.port, server.path) as raw:
        await raw.send(close_frame(code, "au revoir, élan".encode()))
        assert await raw.close_code() == code
        assert await raw.at_eof()  # both close frames are out: the server closes TCP
        await eventually(lambda: not server.endpoint.sessions)


# -- frames announcing more than the limit


async def frame_limit(server: capnweb.Server) -> int:
    """The frame limit of the server's only WebSocket connection."""
    await eventually(lambda: len(server.endpoint.sessions) == 1)
    (session,) = server.endpoint.sessions
    conn = session._transport
    assert isinstance(conn, WsConnection)
    return conn._reader.max_size


@pytest.mark.timeout(10)
@pytest.mark.parametrize("over", [1, 1 << 40], ids=["limit+1", "2**40"])
async def test_a_frame_header_announcing_more_than_the_limit_is_refused_at_once(
    over: int,
) -> None:
    async with served() as server, RawClient.open(server.port, server.path) as raw:
        limit = await frame_limit(server)
        await raw.send(header(OP_TEXT, limit + over))  # the header only: no payload follows
        await expect_failed_with(raw, 1009)


@pytest.mark.timeout(10)
async def test_a_fragment_taking_its_message_over_the_limit_is_refused_at_once() -> None:
    async with served() as server, RawClient.open(server.port, server.path) as raw:
        limit = await frame_limit(server)
        first = b'["push", '
        await raw.send(client_frame(OP_TEXT, first, fin=False))
        await raw.sync(b"first fragment read")
        await raw.send(header(OP_CONTINUATION, limit - len(first) + 1, fin=False))
        await expect_failed_with(raw, 1009)


# -- fragment flood


def rss() -> int:
    """This process's resident memory, in bytes (Linux)."""
    statm = Path("/proc/self/statm")
    if not statm.exists():
        pytest.skip("needs /proc/self/statm")
    return int(statm.read_text().split()[1]) * resource.getpagesize()


EMPTY_FLOOD = 40 * MiB
"""Bytes of empty continuation frames sent (6 bytes each: about 7 million frames)."""

BYTE_FLOOD = 20 * MiB
"""Bytes of 1-byte continuation frames sent (7 bytes each: about 3 million frames)."""

EMPTY_FLOOD_GROWTH = 24 * MiB
"""What the empty frames may add to the process's memory: they carry nothing (the old reader
kept a list entry per frame: about 55 MiB here)."""

BYTE_FLOOD_GROWTH = 32 * MiB
"""What the whole flood may add: about 3 MB of message (one Python object per fragment was about
210 MiB here)."""

BYTE_FLOOD_BLOCKS = 200_000
"""Python memory blocks the whole flood may add (one per fragment was 3 million here)."""


async def flood(raw: RawClient, unit: bytes, total: int) -> int:
    """Send ``unit`` repeated to about ``total`` bytes, in 256 KiB writes; how many units."""
    chunk = unit * (256 * 1024 // len(unit))
    writes = total // len(chunk)
    for _ in range(writes):
        await raw.send(chunk)
    return writes * (len(chunk) // len(unit))


@pytest.mark.timeout(30)
async def test_a_fragment_flood_costs_the_message_size_and_others_keep_being_served() -> None:
    async with served() as server, RawClient.open(server.port, server.path) as raw:
        gc.collect()
        rss_before = rss()
        blocks_before = sys.getallocatedblocks()

        # a well-behaved client on another connection calls all along
        flooding = True
        latencies: list[float] = []

        async def well_behaved() -> None:
            async with capnweb.connect(server.ws_url) as api:
                i = 0
                while flooding:
                    i += 1
                    start = time.perf_counter()
                    assert await asyncio.wait_for(api.square(i), CALL_TIMEOUT) == i * i
                    latencies.append(time.perf_counter() - start)

        neighbour = asyncio.create_task(well_behaved())
        try:
            # a call whose push comes in millions of fragments: JSON that spaces may pad
            await raw.send(client_frame(OP_TEXT, b'["push",["pipeline",0,["square"],[7', fin=False))
            await flood(raw, client_frame(OP_CONTINUATION, fin=False), EMPTY_FLOOD)
            await raw.sync(b"empty frames read")
            empty_growth = rss() - rss_before
            spaces = await flood(raw, client_frame(OP_CONTINUATION, b" ", fin=False), BYTE_FLOOD)
            await raw.sync(b"1-byte frames read")
            growth = rss() - rss_before
            blocks = sys.getallocatedblocks() - blocks_before
            calls_during_flood = len(latencies)
            await raw.send(
                client_frame(OP_CONTINUATION, b"]]]") + client_frame(OP_TEXT, b'["pull",1]')
            )
            assert await raw.read_frame() == (OP_TEXT, b'["resolve",1,49]')
        finally:
            flooding = False
            await asyncio.wait_for(neighbour, WAIT)

        assert spaces > 2_000_000
        assert empty_growth < EMPTY_FLOOD_GROWTH, f"empty fragments grew RSS by {empty_growth}"
        assert growth < BYTE_FLOOD_GROWTH, f"the flood grew RSS by {growth}"
        assert blocks < BYTE_FLOOD_BLOCKS, f"the flood added {blocks} memory blocks"
        assert calls_during_flood >= 3, latencies
        assert max(latencies) < CALL_TIMEOUT
