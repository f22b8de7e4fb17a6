"""The stream-write window (capnweb._flow): how much a writer may have in flight over a simulated
link, and the size estimate used when a transport reports none."""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime

from capnweb import BigInt, JsDate, TypedArray, undefined
from capnweb._flow import (
    INITIAL_WINDOW,
    MAX_WINDOW,
    MIN_WINDOW,
    FlowController,
    SendToken,
    estimate_size,
)

KIB = 1024
MS = 0.001
# Uneven chunk sizes, repeated, so that a saturating writer does not send in neat multiples.
CHUNKS = (32 * KIB, 4 * KIB, 16000, 12345, 16, 9999, 4321, 8)


class Link:
    """A fake-clocked path of a fixed bandwidth (bytes/s) and RTT (s) in front of a controller.

    A write occupies the link for ``size / bandwidth`` after the previous one finishes; its ack
    arrives one RTT after it has gone out. Acks come back in send order.
    """

    def __init__(self, rtt: float = 100 * MS, bandwidth: float = 10 * KIB / MS) -> None:
        self.rtt = rtt
        self.bandwidth = bandwidth
        self.clock = 0.0
        self.busy_until = 0.0
        self.blocked = False
        self.fc = FlowController(lambda: self.clock)
        self.pending: deque[tuple[float, SendToken]] = deque()
        self._sizes = itertools.cycle(CHUNKS)

    @property
    def bdp(self) -> float:
        return self.rtt * self.bandwidth

    def send(self, size: int) -> None:
        self.busy_until = max(self.busy_until, self.clock) + size / self.bandwidth
        token, self.blocked = self.fc.on_send(size)
        self.pending.append((self.busy_until + self.rtt, token))

    def ack_next(self) -> None:
        if self.pending:
            self.clock, token = self.pending.popleft()
            if self.fc.on_ack(token):
                self.blocked = False

    def fill(self, size: int) -> int:
        """Send ``size``-byte writes until the controller says wait; how many were sent."""
        sent = 0
        while not self.blocked:
            self.send(size)
            sent += 1
        return sent

    def drain(self) -> None:
        while self.pending:
            self.ack_next()

    def saturate(self, duration: float) -> None:
        """Write as fast as the window allows for ``duration`` seconds, then take every ack."""
        end = self.clock + duration
        while self.clock < end:
            if self.blocked:
                self.ack_next()
            else:
                self.send(next(self._sizes))
        self.drain()


def test_writer_blocks_once_the_initial_window_is_full() -> None:
    link = Link()
    assert link.fc.window == INITIAL_WINDOW == 256 * KIB
    assert link.fill(64 * KIB) == 4
    assert link.fc.bytes_in_flight == INITIAL_WINDOW


def test_an_ack_frees_its_bytes_and_unblocks() -> None:
    link = Link()
    for i in range(3):
        link.clock = i * MS
        link.send(64 * KIB)
        assert not link.blocked
    link.clock = 3 * MS
    link.send(64 * KIB)
    assert link.blocked
    link.ack_next()
    assert link.fc.bytes_in_flight == 192 * KIB
    assert not link.blocked


def test_startup_grows_past_the_bdp_within_five_rtts() -> None:
    link = Link()  # 100 ms at 10 KiB/ms: a BDP of 1,024,000 bytes, four times the first window
    link.saturate(5 * link.rtt)
    assert link.fc.window > INITIAL_WINDOW
    assert link.fc.window > link.bdp


def test_startup_ends_when_growth_stops() -> None:
    link = Link()
    assert link.fc.in_startup
    link.saturate(50 * link.rtt)
    assert not link.fc.in_startup


def test_steady_window_settles_a_quarter_above_the_bdp() -> None:
    link = Link()
    link.saturate(50 * link.rtt)
    assert not link.fc.in_startup
    assert 1.2 * link.bdp < link.fc.window < 1.3 * link.bdp
    link.saturate(20 * link.rtt)
    assert 1.2 * link.bdp < link.fc.window < 1.3 * link.bdp


def test_an_app_limited_writer_keeps_its_window() -> None:
    link = Link()
    link.saturate(50 * link.rtt)
    settled = link.fc.window
    for _ in range(50):
        link.send(KIB)
        assert not link.blocked
        link.ack_next()
    assert link.fc.window == settled


def test_window_follows_the_bandwidth_down() -> None:
    link = Link()
    link.saturate(50 * link.rtt)
    assert not link.fc.in_startup
    assert link.fc.window > link.bdp
    before = link.fc.window
    link.bandwidth /= 4
    link.saturate(200 * link.rtt)
    assert link.fc.window < 2 * link.bdp
    assert link.fc.window < before / 2


def test_a_failed_write_gives_back_its_bytes_only() -> None:
    fc = FlowController(lambda: 0.0)
    token, blocked = fc.on_send(64 * KIB)
    assert not blocked
    assert fc.bytes_in_flight == 64 * KIB
    fc.on_error(token)
    assert fc.bytes_in_flight == 0
    assert fc.window == INITIAL_WINDOW
    assert fc.in_startup


def test_startup_at_most_doubles_the_window_per_rtt() -> None:
    link = Link()
    link.fill(64 * KIB)
    link.ack_next()  # the first ack only starts the rate clock
    before = link.fc.window
    link.fill(64 * KIB)
    seen = []
    while link.pending:  # the rate measured between these acks is the link's: 1 MB per RTT
        link.ack_next()
        seen.append(link.fc.window)
    assert max(seen) > before  # it did grow: the path is four windows wide
    assert max(seen) <= 2 * before + 1


def test_window_never_drops_below_the_minimum() -> None:
    link = Link(rtt=1 * MS, bandwidth=1 / MS)  # one byte per millisecond: a BDP of one byte
    link.saturate(10_000)
    assert link.fc.window == MIN_WINDOW == 65_536


def test_window_never_exceeds_the_maximum() -> None:
    link = Link(rtt=100 * MS, bandwidth=1e12)  # a 100 GB BDP
    for _ in range(20):  # whole windows in 64 MiB writes: doubling needs 12 rounds to 1 GiB
        link.fill(64 * KIB * KIB)
        link.drain()
    assert link.fc.window == MAX_WINDOW
    assert not link.fc.in_startup


def test_acks_at_the_same_instant_leave_the_window_alone() -> None:
    fc = FlowController(lambda: 0.0)  # a clock that never moves, starting at zero
    tokens = [fc.on_send(64 * KIB)[0] for _ in range(4)]
    assert [fc.on_ack(t) for t in tokens] == [True] * 4
    assert fc.window == INITIAL_WINDOW
    assert fc.bytes_in_flight == 0


def test_default_clock_is_monotonic_seconds() -> None:
    fc = FlowController()
    token, _ = fc.on_send(100)
    assert fc.on_ack(token)
    assert fc.bytes_in_flight == 0


# ----- estimate_size -----------------------------------------------------------------------------


def test_estimate_of_scalars() -> None:
    assert estimate_size("") == 2
    assert estimate_size("héllo") == 17
    assert estimate_size(0) == 16
    assert estimate_size(1.5) == 16
    assert estimate_size(BigInt(2**80)) == 16
    assert estimate_size(True) == 8
    assert estimate_size(None) == 8
    assert estimate_size(undefined) == 16
    assert estimate_size(datetime(2024, 1, 1, tzinfo=UTC)) == 16
    assert estimate_size(JsDate(None)) == 16


def test_estimate_of_binary_counts_its_bytes() -> None:
    assert estimate_size(b"") == 16
    assert estimate_size(b"x" * 1000) == 1016
    assert estimate_size(bytearray(10)) == 26
    assert estimate_size(memoryview(bytes(40)).cast("I")) == 56
    assert estimate_size(TypedArray("Float64Array", bytes(16))) == 32


def test_estimate_of_containers() -> None:
    assert estimate_size([]) == 16
    assert estimate_size({}) == 16
    assert estimate_size([1, "ab"]) == 16 + (8 + 16) + (8 + 8)
    assert estimate_size((1, "ab")) == estimate_size([1, "ab"])
    assert estimate_size({"k": None}) == 16 + 8 + 5 + 8
    assert estimate_size({"a": [b"xyz"]}) == 16 + 8 + 5 + (16 + 8 + 19)


def test_estimate_of_a_record_and_an_error() -> None:
    @dataclass
    class Point:
        x: int
        label: str

    assert estimate_size(Point(1, "p")) == 16 + (8 + 5 + 16) + (8 + 17 + 5)

    err = ValueError("bad")
    assert estimate_size(err) == 16 + (2 + 30) + (2 + 9) + 2
    err.code = 7  # type: ignore[attr-defined]
    assert estimate_size(err) == 16 + (2 + 30) + (2 + 9) + 2 + (8 + 14 + 16)


def test_estimate_grows_with_the_payload() -> None:
    small = estimate_size({"chunk": "x" * 100})
    big = estimate_size({"chunk": "x" * 40_000})
    assert big - small == 3 * 39_900


def test_estimate_survives_cycles_and_deep_nesting() -> None:
    loop: list[object] = [1]
    loop.append(loop)
    assert estimate_size(loop) == 16 + (8 + 16) + (8 + 8)

    shared = ["abc"]
    twice = [shared, shared, shared]
    assert estimate_size(twice) == 16 + (8 + 16 + 8 + 11) + 2 * (8 + 8)

    deep: object = "leaf"
    for _ in range(1000):
        deep = [deep]
    # 64 levels of one-entry lists, then the rest counts as a single entry
    assert estimate_size(deep) == 64 * (16 + 8) + 8
