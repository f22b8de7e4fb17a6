"""The message hand-off shared by the connections that push messages to their session (a
WebSocket, a WebTransport stream): messages that arrive before the session attaches are kept,
then delivered in order; the end of the connection is reported once."""

from __future__ import annotations

from collections.abc import Callable


class Inbox:
    """Base of a pushing connection: call ``_message(text)`` per message, ``_report_end(e)``
    once it is over; the session receives them through :meth:`attach`."""

    __slots__ = ("_deliver", "_early", "_end", "_on_end")

    def __init__(self) -> None:
        self._deliver: Callable[[str], None] | None = None
        self._on_end: Callable[[BaseException], None] | None = None
        self._early: list[str] = []  # arrived before attach()
        self._end: BaseException | None = None  # why the connection ended, once it has

    def attach(
        self, deliver: Callable[[str], None], on_end: Callable[[BaseException], None]
    ) -> None:
        """Hand every incoming message to ``deliver``; call ``on_end(error)`` once the
        connection is over (unless the session ended it)."""
        self._deliver = deliver
        self._on_end = on_end
        early, self._early = self._early, []
        for text in early:
            deliver(text)
        if self._end is not None:
            on_end(self._end)

    def _message(self, text: str) -> None:
        if self._end is not None:
            return
        if self._deliver is None:
            self._early.append(text)
        else:
            self._deliver(text)

    def _report_end(self, error: BaseException) -> bool:
        """Record why the connection ended and tell the session; False if it already had."""
        if self._end is not None:
            return False
        self._end = error
        if self._on_end is not None:
            self._on_end(error)
        return True
