"""``ReadableStream``, the reading end of a pipe: below the session and the dispatcher, so
that the checked streams of typed interfaces are ReadableStreams too (``capnweb.streams`` has
the pipe itself)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generic, TypeVar

from ._codec import WireReadable
from ._values import undefined
from .errors import RpcError

if TYPE_CHECKING:
    from .streams import _Pipe

T_co = TypeVar("T_co", covariant=True)

_OPEN, _CLOSED, _ERRORED, _CANCELLED = 0, 1, 2, 3  # a pipe's states


def _error_of(reason: Any, default: str) -> BaseException:
    if isinstance(reason, BaseException):
        return reason
    if reason is None or reason is undefined:
        return RpcError(default)
    return RpcError(str(reason))


class ReadableStream(WireReadable, Generic[T_co]):
    """A stream of chunks from the peer (or a local pipe): ``async for chunk in stream``.

    It can be read once. ``cancel()`` stops it and tells the producer; a stream dropped unread
    is cancelled. Passing it on (as an argument or a result) forwards its chunks.
    """

    __slots__ = ("__weakref__", "_pipe", "_taken")

    def __init__(self, _pipe: _Pipe) -> None:
        self._pipe = _pipe
        self._taken = False  # handed to a reader of its own (sent on, or iterated)

    def __aiter__(self) -> ReadableStream[T_co]:
        return self

    async def __anext__(self) -> T_co:
        self._taken = True
        return await self._pipe.take()  # type: ignore[no-any-return]

    def cancel(self, reason: BaseException | str | None = None) -> None:
        """Stop reading: unread chunks are dropped and the producer's writes fail."""
        self._taken = True
        self._pipe.cancel(_error_of(reason, "The stream was cancelled."))

    async def aclose(self) -> None:
        """Cancel the stream (what ``async with contextlib.aclosing(stream)`` calls)."""
        self.cancel()

    async def collect(self) -> list[T_co]:
        """Every chunk to the end, in a list (only for streams known to be short)."""
        return [chunk async for chunk in self]

    @property
    def locked(self) -> bool:
        """Whether a reader has started on this stream (it can be read only once)."""
        return self._taken

    def __del__(self) -> None:
        pipe = getattr(self, "_pipe", None)
        if pipe is None or pipe.state in (_ERRORED, _CANCELLED):
            return
        if pipe.state == _CLOSED and not pipe.items:
            return
        pipe.cancel(RpcError("ReadableStream RPC stub was disposed without being consumed"))

    def __repr__(self) -> str:
        return f"<ReadableStream {['open', 'closed', 'errored', 'cancelled'][self._pipe.state]}>"
