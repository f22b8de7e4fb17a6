"""Flow control for writes to a remote stream: a window sized to the path's bandwidth-delay product.

A writer may have up to ``window`` bytes sent but not yet acknowledged; once a write brings the
bytes in flight to the window or beyond, the writer waits for acks. The window follows an
estimate of the bandwidth-delay product (BDP), measured from the acks themselves, much as BBR
does for TCP:

- Every send records a snapshot (:class:`SendToken`): the clock, the bytes delivered so far and
  when the last of them was acked, the window, and whether the window was full after this send.
- Every ack is an RTT sample (now minus the send time; the minimum is kept) and a delivery-rate
  sample: the bytes acked since the send's snapshot divided by the time since that snapshot's
  ack. Writes sent before any ack measure from the first ack instead; the first ack itself only
  starts the clock.
- The new window is ``rate * min_rtt * growth``, so the writer keeps pushing a little more than
  the estimate and finds bandwidth the window was hiding. It may grow by at most ``growth`` over
  the window at send time (one RTT ago). If the window was full at send, it may shrink to
  ``DECAY_FACTOR`` of that window but no further; if it was not full the writer was
  app-limited, the sample says nothing about the path, and the window does not shrink at all.
  The result is clamped to ``[MIN_WINDOW, MAX_WINDOW]``.
- ``growth`` is ``STARTUP_GROWTH`` (doubling per RTT) until ``STARTUP_EXIT_ROUNDS`` rounds in a
  row (a round: the acks of writes sent after the previous round ended) fail to grow the window
  by more than ``STEADY_GROWTH``; from then on it is ``STEADY_GROWTH``.

The clock is in seconds (any unit works: rate times RTT is bytes either way). A failed write
gives its bytes back and teaches nothing. The controller allocates only the token per send: it
runs once per chunk.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, Final

from ._values import JsDate, TypedArray

__all__ = [
    "DECAY_FACTOR",
    "INITIAL_WINDOW",
    "MAX_WINDOW",
    "MIN_WINDOW",
    "STARTUP_EXIT_ROUNDS",
    "STARTUP_GROWTH",
    "STEADY_GROWTH",
    "FlowController",
    "SendToken",
    "estimate_size",
]

INITIAL_WINDOW: Final = 256 * 1024
"""Window in bytes before the first bandwidth estimate."""
MIN_WINDOW: Final = 64 * 1024
"""The window never drops below this many bytes."""
MAX_WINDOW: Final = 1024 * 1024 * 1024
"""The window never grows beyond this many bytes."""
STARTUP_GROWTH: Final = 2.0
"""Largest growth of the window per RTT during startup."""
STEADY_GROWTH: Final = 1.25
"""Largest growth of the window per RTT after startup; also the bar a startup round must pass."""
DECAY_FACTOR: Final = 0.90
"""Largest shrink of the window per RTT (a fraction of the window one RTT ago)."""
STARTUP_EXIT_ROUNDS: Final = 3
"""Rounds in a row without enough growth that end startup."""


class SendToken:
    """What :meth:`FlowController.on_send` remembers about one write, for its ack or error."""

    __slots__ = (
        "delivered_at_send",
        "delivered_time_at_send",
        "sent_time",
        "size",
        "window_at_send",
        "window_full_at_send",
    )

    def __init__(
        self,
        sent_time: float,
        size: int,
        delivered_at_send: float,
        delivered_time_at_send: float | None,
        window_at_send: float,
        window_full_at_send: bool,
    ) -> None:
        self.sent_time = sent_time
        self.size = size
        self.delivered_at_send = delivered_at_send
        self.delivered_time_at_send = delivered_time_at_send  # None: no ack had arrived yet
        self.window_at_send = window_at_send
        self.window_full_at_send = window_full_at_send

    def __repr__(self) -> str:
        return f"SendToken(size={self.size}, sent_time={self.sent_time})"


class FlowController:
    """Decides when a stream writer must wait, from the acks of its earlier writes.

    Call :meth:`on_send` as each write goes out (block the writer if it says so), then
    :meth:`on_ack` or :meth:`on_error` with its token when the write settles.
    """

    __slots__ = (
        "_delivered",
        "_delivered_time",
        "_first_ack_delivered",
        "_first_ack_time",
        "_last_round_window",
        "_min_rtt",
        "_now",
        "_round_start",
        "_rounds_without_growth",
        "bytes_in_flight",
        "in_startup",
        "window",
    )

    window: float
    bytes_in_flight: float
    in_startup: bool

    def __init__(self, now: Callable[[], float] = time.monotonic) -> None:
        self._now = now
        self.window = INITIAL_WINDOW
        self.bytes_in_flight = 0
        self.in_startup = True
        self._delivered: float = 0
        self._delivered_time: float | None = None  # None until the first ack
        self._first_ack_time = 0.0
        self._first_ack_delivered: float = 0
        self._min_rtt = float("inf")
        self._rounds_without_growth = 0
        self._last_round_window: float = 0
        self._round_start = float("-inf")

    def on_send(self, size: int) -> tuple[SendToken, bool]:
        """Count a write of ``size`` bytes as in flight.

        Returns:
            The token to pass to :meth:`on_ack` or :meth:`on_error`, and whether the writer must
            wait for acks before its next write (the window is now full).
        """
        in_flight = self.bytes_in_flight + size
        self.bytes_in_flight = in_flight
        window = self.window
        full = in_flight >= window
        token = SendToken(self._now(), size, self._delivered, self._delivered_time, window, full)
        return token, full

    def on_error(self, token: SendToken) -> None:
        """Give back the bytes of a write that failed; the estimates are left alone."""
        self.bytes_in_flight -= token.size

    def on_ack(self, token: SendToken) -> bool:
        """Learn from the ack of a write and resize the window.

        Returns:
            Whether a writer waiting for room may go on (bytes in flight are below the window).
        """
        now = self._now()
        size = token.size
        delivered = self._delivered + size
        self._delivered = delivered
        self.bytes_in_flight -= size
        rtt = now - token.sent_time
        if rtt < self._min_rtt:
            self._min_rtt = rtt

        if self._delivered_time is None:
            # The first ack: a rate needs two points in time, so this one only sets the origin.
            self._delivered_time = now
            self._first_ack_time = now
            self._first_ack_delivered = delivered
            return self.bytes_in_flight < self.window
        self._delivered_time = now

        base_time = token.delivered_time_at_send
        if base_time is None:  # sent before any ack: measure from the first one
            base_time = self._first_ack_time
            base_delivered = self._first_ack_delivered
        else:
            base_delivered = token.delivered_at_send
        interval = now - base_time
        if interval <= 0:
            # Acked at the same instant as its base: no elapsed time, no rate sample.
            return self.bytes_in_flight < self.window

        growth = STARTUP_GROWTH if self.in_startup else STEADY_GROWTH
        window_at_send = token.window_at_send
        target = (delivered - base_delivered) / interval * self._min_rtt * growth
        ceiling = window_at_send * growth
        if target > ceiling:
            target = ceiling
        # Not full at send means app-limited: the low rate is the writer's, not the path's.
        floor = window_at_send * DECAY_FACTOR if token.window_full_at_send else self.window
        if target < floor:
            target = floor
        if target > MAX_WINDOW:
            target = MAX_WINDOW
        elif target < MIN_WINDOW:
            target = MIN_WINDOW
        self.window = target

        if self.in_startup and token.sent_time >= self._round_start:
            # The first ack of a write sent in this round closes the round.
            if target > self._last_round_window * STEADY_GROWTH:
                self._rounds_without_growth = 0
            else:
                self._rounds_without_growth += 1
                if self._rounds_without_growth >= STARTUP_EXIT_ROUNDS:
                    self.in_startup = False
            self._round_start = now
            self._last_round_window = target
        return self.bytes_in_flight < target


_OBJECT_OVERHEAD: Final = 16
_ENTRY_OVERHEAD: Final = 8
_BINARY_OVERHEAD: Final = 16
_SCALAR: Final = 16
_MAX_DEPTH: Final = 64


def estimate_size(value: object) -> int:
    """A high-biased guess at the encoded size of ``value`` in bytes, for flow control.

    Used when a transport cannot say how many bytes a message took. Strings count three bytes
    per character (the most UTF-8 needs for the Basic Multilingual Plane) plus quotes; binary
    data counts its bytes; containers add a fixed overhead per object and per entry. Nesting
    deeper than 64 levels, and containers seen before (shared or cyclic), count as one entry.
    """
    return _estimate(value, None, 0)


def _estimate(value: object, seen: set[int] | None, depth: int) -> int:
    if depth >= _MAX_DEPTH:
        return _ENTRY_OVERHEAD
    if isinstance(value, str):
        return 2 + 3 * len(value)
    if value is None or isinstance(value, bool):
        return 8
    if isinstance(value, int | float):
        return _SCALAR
    if isinstance(value, bytes | bytearray):
        return _BINARY_OVERHEAD + len(value)
    if isinstance(value, memoryview):
        return _BINARY_OVERHEAD + value.nbytes
    if isinstance(value, TypedArray):
        return _BINARY_OVERHEAD + len(value.data)
    if isinstance(value, datetime | JsDate):
        return _SCALAR

    if not isinstance(value, list | tuple | dict | BaseException) and not (
        dataclasses.is_dataclass(value) and not isinstance(value, type)
    ):
        return _SCALAR  # undefined, stubs, functions and anything else the codec knows

    # Count a container once, however many times it is reached: cycles end, sharing
    # under-counts a little, which is fine for an estimate.
    if seen is None:
        seen = set()
    elif id(value) in seen:
        return _ENTRY_OVERHEAD
    seen.add(id(value))
    inner = depth + 1
    size = _OBJECT_OVERHEAD
    if isinstance(value, list | tuple):
        for item in value:
            size += _ENTRY_OVERHEAD + _estimate(item, seen, inner)
    elif isinstance(value, dict):
        for key, item in value.items():
            size += _ENTRY_OVERHEAD + _key_size(key) + _estimate(item, seen, inner)
    elif isinstance(value, BaseException):
        try:
            message = str(value)
        except Exception:
            message = ""
        # name, message and an empty stack, then any attributes set on the error
        size += 2 + 3 * len(type(value).__name__) + 2 + 3 * len(message) + 2
        for key, item in getattr(value, "__dict__", {}).items():
            size += _ENTRY_OVERHEAD + _key_size(key) + _estimate(item, seen, inner)
    else:
        record: Any = value
        for f in dataclasses.fields(record):
            item = getattr(record, f.name, None)
            size += _ENTRY_OVERHEAD + 2 + 3 * len(f.name) + _estimate(item, seen, inner)
    return size


def _key_size(key: object) -> int:
    return 2 + 3 * len(key) if isinstance(key, str) else 2 + 3 * len(str(key))
