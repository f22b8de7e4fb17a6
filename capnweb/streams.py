"""Streams: ``ReadableStream``, ``WritableStream`` and local pipes, with flow control.

Theory, once:

- Any async iterable passed or returned goes out as a ``ReadableStream``: the sender opens a
  *pipe* on the peer (``["pipe"]``), names its reading end in the message (``["readable", id]``)
  and pumps the chunks into it as ``["stream", ...]`` writes, then a close (or an abort with
  the error the source raised). The receiver acknowledges each write once its reader has taken
  the chunk (or while at most :data:`READ_AHEAD` bytes wait to be read), so the sender, which
  keeps at most one window of writes unacknowledged (``capnweb._flow``), never runs far ahead
  of a slow reader; a reader that cancels fails the writes, which stops the sender.
- A ``WritableStream`` is passed by reference (``["writable", id]``): the receiver's writes,
  close and abort travel as ``["stream", ...]`` calls on it, flow-controlled the same way.
  Released without close or abort, it is aborted.
- A received stream is read once. Dropping a ``ReadableStream`` unread cancels it; dropping a
  received ``WritableStream`` releases it (which aborts it).
"""

from __future__ import annotations

import asyncio
import weakref
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, Final, Generic, TypeVar

from ._codec import WireWritable
from ._flow import FlowController, SendToken, estimate_size
from ._hookbase import ErrorHook, Hook, Path, PromiseHook
from ._hooks import Payload, RpcStub, ValueHook
from ._readable import _CANCELLED, _CLOSED, _ERRORED, _OPEN, ReadableStream, _error_of
from ._tasks import settle, settle_all, spawn
from ._values import undefined
from .errors import RpcError, RpcLimitError

if TYPE_CHECKING:
    from .session import Session

__all__ = ["READ_AHEAD", "ReadableStream", "WritableStream", "pipe"]

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)
T_contra = TypeVar("T_contra", contravariant=True)

READ_AHEAD: Final = 1_048_576
"""Bytes of received chunks acknowledged before the reader has taken them (so a fast reader
is never starved by a round trip); past it, a write is acknowledged when its chunk is read or
when the reader has taken enough for it to fit again."""

READ_AHEAD_CHUNKS: Final = 256
"""Most chunks acknowledged ahead of the reader: small chunks each count READ_AHEAD divided by
this in the read-ahead (a stream of numbers is read about as the reference reads it, not
thousands of chunks ahead)."""

WRITE_COST: Final = 256
"""What a write counts at least against the window (its message text otherwise): a window
holds at most about a thousand small writes (256 at the smallest window), each of which costs
this side more than its text while it waits for its acknowledgement. Measured: 100,000 small
object chunks go faster so (counted at 64 or 128 bytes, or at their text, they go slower)."""


class _Pipe:
    """The buffer between a writer (the peer, or local code) and one reader."""

    __slots__ = (
        "account",
        "acked",
        "buffered",
        "error",
        "floor",
        "items",
        "limit",
        "read_ahead",
        "state",
        "waiter",
        "waiting",
    )

    def __init__(
        self, read_ahead: int = READ_AHEAD, limit: int = 0, account: _Account | None = None
    ) -> None:
        # (chunk, size, the write's acknowledgement if it waits for the reader, payload)
        self.items: deque[tuple[Any, int, asyncio.Future[Hook] | None, Payload | None]] = deque()
        self.buffered = 0
        self.read_ahead = read_ahead
        # what a chunk counts at least in the read-ahead: at most READ_AHEAD_CHUNKS chunks
        # are acknowledged ahead of the reader, however small
        self.floor = read_ahead // READ_AHEAD_CHUNKS
        self.acked = 0  # read-ahead taken by queued chunks acknowledged before being read
        # the acknowledgements held back, oldest first: each goes once its chunk is read, or
        # earlier, as soon as the read-ahead has room for it again
        self.waiting: deque[tuple[int, asyncio.Future[Hook]]] = deque()
        self.limit = limit  # 0: no hard limit (a local writer waits for the reader instead)
        self.account = account
        self.state = _OPEN
        self.error: BaseException | None = None
        self.waiter: asyncio.Future[None] | None = None

    def _wake(self) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _refuse(self) -> BaseException:
        if self.state == _CLOSED:
            return RpcError("Cannot write to a closed stream.")
        assert self.error is not None
        return _bare(self.error)

    def offer(self, chunk: Any, size: int, payload: Payload | None) -> asyncio.Future[Hook] | None:
        """Queue a chunk: None if it is acknowledged now, else a future for when it is read."""
        if self.state != _OPEN:
            if payload is not None:
                payload.dispose()
            raise self._refuse()
        if self.limit and self.account is not None and self.account.total + size > self.limit:
            error = RpcLimitError(
                f"The peer wrote more than max_stream_buffer ({self.limit}) bytes of stream "
                "chunks that were not read yet."
            )
            if payload is not None:
                payload.dispose()
            self.fail(error)
            raise _bare(error)
        self.buffered += size
        if self.account is not None:
            self.account.total += size
        ack: asyncio.Future[Hook] | None = None
        counted = size if size > self.floor else self.floor
        if not self.waiting and self.acked + counted <= self.read_ahead:
            self.acked += counted
        else:
            ack = asyncio.get_running_loop().create_future()
            self.waiting.append((counted, ack))
        self.items.append((chunk, size, ack, payload))
        self._wake()
        return ack

    def finish(self) -> None:
        """The writer closed: the reader ends after the queued chunks."""
        if self.state != _OPEN:
            raise self._refuse()
        self.state = _CLOSED
        self._wake()

    def fail(self, error: BaseException) -> None:
        """The writer aborted: the reader's next read raises ``error`` (unread chunks go)."""
        if self.state in (_ERRORED, _CANCELLED):
            return
        self.state = _ERRORED
        self.error = error
        self._drop(error)
        self._wake()

    def cancel(self, error: BaseException) -> None:
        """The reader gave up: pending and later writes fail with ``error``."""
        if self.state in (_ERRORED, _CANCELLED):
            return
        was_closed = self.state == _CLOSED
        self.state = _CANCELLED
        self.error = error
        self._drop(error)
        if was_closed:
            self.error = RpcError("Cannot write to a closed stream.")
        self._wake()

    def _drop(self, error: BaseException) -> None:
        items, self.items = self.items, deque()
        self.acked = 0
        self.waiting.clear()
        for _, size, ack, payload in items:
            self._account(size)
            if ack is not None and not ack.done():
                ack.set_exception(error)
                ack.exception()  # nobody may be waiting on it: no "never retrieved" warning
            if payload is not None:
                payload.dispose()

    def _account(self, size: int) -> None:
        self.buffered -= size
        if self.account is not None:
            self.account.total -= size

    async def take(self) -> Any:
        """The next chunk; StopAsyncIteration at the end, the writer's error if it aborted."""
        while True:
            if self.state == _ERRORED or self.state == _CANCELLED:
                if self.state == _CANCELLED:
                    raise StopAsyncIteration
                assert self.error is not None
                raise _bare(self.error)
            if self.items:
                break
            if self.state == _CLOSED:
                raise StopAsyncIteration
            if self.waiter is not None and not self.waiter.done():
                # one reader at a time (a second one would take the first one's wake-up)
                raise RuntimeError("This stream is already being read by another task.")
            waiter = self.waiter = asyncio.get_running_loop().create_future()
            await waiter
        chunk, size, ack, payload = self.items.popleft()
        self._account(size)
        waiting = self.waiting
        if ack is not None and waiting and waiting[0][1] is ack:  # held back until now
            waiting.popleft()
            if not ack.done():
                ack.set_result(_acked())
        else:
            self.acked -= size if size > self.floor else self.floor
        # the read-ahead has room again: acknowledge the writes held back that fit in it, so
        # the writer goes on while the reader takes what was acknowledged
        while waiting and self.acked + waiting[0][0] <= self.read_ahead:
            size, ack = waiting.popleft()
            self.acked += size
            if not ack.done():
                ack.set_result(_acked())
        if payload is not None:
            if payload.has_promises:
                await payload.substitute()
            value = payload.value
            chunk = value[0] if type(value) is list and value else undefined
            payload.hand_over()
        return chunk


class _Account:
    """Bytes of received chunks a session's readers have not taken yet (max_stream_buffer)."""

    __slots__ = ("total",)

    def __init__(self) -> None:
        self.total = 0


CHUNK_OVERHEAD: Final = 128
"""Bytes a queued chunk costs beyond its own estimated size (its Python objects): what the
read-ahead and ``max_stream_buffer`` count, so many tiny chunks are bounded too."""

WRITES_PER_TURN: Final = 64
"""Writes a stream sends before letting the event loop run other work (a source that never
waits could otherwise send a whole window of small chunks in one turn)."""


def _held_size(chunk: Any) -> int:
    return estimate_size(chunk) + CHUNK_OVERHEAD


def _bare(error: BaseException) -> BaseException:
    """``error`` without the frames of its earlier raises: a stream's error is raised again
    for every later write and read, and each raise would keep the frames (and the chunks in
    them) of all the ones before."""
    return error.with_traceback(None)


def _acked() -> Hook:
    return ValueHook(Payload(undefined))


class WritableStream(WireWritable, Generic[T_contra]):
    """Where chunks go: ``write(chunk)``, then ``close()`` (or ``abort(reason)``).

    Subclass it to let a peer write into an object of yours (it is passed by reference); one
    received from a peer sends each call to it, with flow control: ``write`` returns as soon
    as the window has room, and a failure shows in a later ``write`` or in ``close``.
    """

    __slots__ = ()

    async def write(self, chunk: T_contra) -> None:
        """Take one chunk."""
        raise NotImplementedError

    async def close(self) -> None:
        """No more chunks: finish cleanly."""

    async def abort(self, reason: BaseException | None = None) -> None:
        """No more chunks: the stream failed with ``reason``."""


class _PipeWriter(WritableStream[Any]):
    """The writing end of a local :func:`pipe`: a write waits while the reader is behind."""

    __slots__ = ("_pipe",)

    def __init__(self, pipe: _Pipe) -> None:
        self._pipe = pipe

    async def write(self, chunk: Any) -> None:
        ack = self._pipe.offer(chunk, _held_size(chunk), None)
        if ack is not None:
            (await ack).dispose()

    async def close(self) -> None:
        self._pipe.finish()

    async def abort(self, reason: BaseException | None = None) -> None:
        self._pipe.fail(_error_of(reason, "The stream was aborted."))


def pipe(read_ahead: int = 65_536) -> tuple[ReadableStream[Any], WritableStream[Any]]:
    """A local pipe: what is written to the writer is read from the stream.

    Return the stream (the peer reads it) and write from a task of your own; ``write`` waits
    while more than ``read_ahead`` bytes are unread, so the writer keeps pace with the reader.
    """
    p = _Pipe(read_ahead)
    return ReadableStream(p), _PipeWriter(p)


# --------------------------------------------------------------------------------------------
# A writable stream as an export: the peer's ["stream", ...] calls on it


class _SinkState:
    __slots__ = ("closed", "failed", "pipe", "queue", "refs", "runner", "sink")

    def __init__(self, sink: WritableStream[Any] | None, pipe: _Pipe | None) -> None:
        self.sink = sink
        self.pipe = pipe
        self.refs = 1
        self.closed = False
        # why later calls fail: a call failed, or the stream was closed or aborted (kept
        # here, not in a runner: a runner ends whenever the queue is empty)
        self.failed: BaseException | None = None
        self.queue: deque[tuple[str, Payload, asyncio.Future[Hook]]] = deque()
        self.runner: asyncio.Task[None] | None = None


class WritableHook(Hook):
    """The export behind ``["pipe"]`` (a pipe's writing end) or ``["writable", id]`` (a local
    WritableStream): it takes ``write``/``close``/``abort`` calls, in order."""

    __slots__ = ("_state",)

    def __init__(self, state: _SinkState) -> None:
        self._state: _SinkState | None = state

    @staticmethod
    def for_pipe(pipe: _Pipe) -> WritableHook:
        return WritableHook(_SinkState(None, pipe))

    @staticmethod
    def for_sink(sink: WritableStream[Any]) -> WritableHook:
        return WritableHook(_SinkState(sink, None))

    def _live(self) -> _SinkState:
        if self._state is None:
            raise RpcError("Attempted to use a WritableStream stub after it was disposed.")
        return self._state

    def call(self, path: Path, args: Payload) -> Hook:
        try:
            state = self._live()
            if len(path) != 1 or type(path[0]) is not str:
                raise RpcError("WritableStream stub only supports direct method calls")
            method = path[0]
            if method not in ("write", "close", "abort"):
                raise RpcError(f"Unknown WritableStream method: {method}")
        except RpcError as e:
            args.dispose()
            return ErrorHook(e)
        if method != "write":
            state.closed = True
        pipe = state.pipe
        if pipe is not None:
            return _pipe_call(pipe, method, args)
        fut: asyncio.Future[Hook] = asyncio.get_running_loop().create_future()
        state.queue.append((method, args, fut))
        if state.runner is None:
            state.runner = spawn(_run_sink(state))
        return PromiseHook(fut)

    def get(self, path: Path) -> Hook:
        return ErrorHook(RpcError("Cannot access properties on a WritableStream stub"))

    def map(self, path: Path, captures: list[Hook], instructions: list[Any]) -> Hook:
        for cap in captures:
            cap.dispose()
        return ErrorHook(RpcError("Cannot use map() on a WritableStream"))

    async def pull(self) -> Payload:
        raise RpcError("Cannot pull a WritableStream stub")

    def dup(self) -> Hook:
        state = self._live()
        state.refs += 1
        return WritableHook(state)

    def dispose(self, reason: BaseException | None = None) -> None:
        """Drop this reference; the last one aborts the stream unless it was closed, with
        ``reason`` (the end of the session) or the reference's message."""
        state, self._state = self._state, None
        if state is None:
            return
        state.refs -= 1
        if state.refs or state.closed:
            return
        error = reason or RpcError("WritableStream RPC stub was disposed without calling close()")
        state.closed = True
        if state.pipe is not None:
            state.pipe.fail(error)
        else:
            fut: asyncio.Future[Hook] = asyncio.get_running_loop().create_future()
            state.queue.append(("abort", Payload([error]), fut))
            fut.add_done_callback(_discard_hook)
            if state.runner is None:
                state.runner = spawn(_run_sink(state))


def _discard_hook(fut: asyncio.Future[Hook]) -> None:
    if not fut.cancelled() and fut.exception() is None:
        fut.result().dispose()


def _first_arg(args: Payload) -> Any:
    value = args.value
    return value[0] if type(value) is list and value else undefined


def _pipe_call(pipe: _Pipe, method: str, args: Payload) -> Hook:
    try:
        if method == "write":
            chunk = _first_arg(args)
            ack = pipe.offer(chunk, _held_size(chunk), args)
            return _acked() if ack is None else PromiseHook(ack)
        reason = _first_arg(args)
        args.dispose()
        if method == "close":
            pipe.finish()
        else:
            pipe.fail(_error_of(reason, "The stream was aborted."))
        return _acked()
    except Exception as e:
        return ErrorHook(_bare(e))


async def _run_sink(state: _SinkState) -> None:
    """Apply the queued calls to a local WritableStream one at a time, in order; after a
    failure, the later calls fail with the same error, and after a close or an abort, with
    "closed"."""
    sink = state.sink
    assert sink is not None
    try:
        while state.queue:
            method, args, fut = state.queue.popleft()
            failed = state.failed
            if failed is not None:
                args.dispose()
                if not fut.done():
                    fut.set_exception(_bare(failed))
                continue
            try:
                if args.has_promises:
                    await args.substitute()
                arg = _first_arg(args)
                if method == "write":
                    await sink.write(arg)
                elif method == "close":
                    await sink.close()
                else:
                    await sink.abort(_error_of(arg, "The stream was aborted."))
            except Exception as e:
                state.failed = e
                if not fut.done():
                    fut.set_exception(e)
            except asyncio.CancelledError:
                state.failed = state.failed or RpcError("The stream was cancelled.")
                if not fut.done():
                    fut.set_exception(state.failed)
                raise
            else:
                if method != "write":
                    state.failed = RpcError("Cannot write to a closed stream.")
                if not fut.done():
                    fut.set_result(_acked())
            finally:
                args.hand_over()
    finally:
        state.runner = None
        if state.queue:  # cancelled: fail what is left
            failed = state.failed = state.failed or RpcError("The stream was cancelled.")
            for _, args, fut in state.queue:
                args.dispose()
                if not fut.done():
                    fut.set_exception(_bare(failed))
            state.queue.clear()


# --------------------------------------------------------------------------------------------
# Writing to the peer: a received WritableStream, or the pipe behind a stream being sent


class RemoteWriter(WritableStream[Any]):
    """A WritableStream on the peer; calls go out as ``["stream", ...]`` messages, with at
    most one flow-control window of writes unacknowledged."""

    __slots__ = (
        "_blocked",
        "_drained",
        "_error",
        "_flow",
        "_released",
        "_session",
        "_stub",
        "_unacked",
    )

    def __init__(self, session: Session, hook: Hook) -> None:
        self._session = session
        self._stub: RpcStub = RpcStub(hook)  # releases the import if this is dropped
        self._flow = FlowController()
        self._error: BaseException | None = None
        self._blocked: list[asyncio.Future[None]] = []
        self._unacked = 0  # writes sent and not yet answered
        self._drained: list[asyncio.Future[None]] = []
        self._released = False

    def _release(self) -> None:
        if not self._released:
            self._released = True
            self._stub.dispose()

    def _fail(self, error: BaseException) -> None:
        if self._error is None:
            self._error = error
            self._release()
        blocked, self._blocked = self._blocked, []
        settle_all(blocked, error)
        self._wake_drained()

    def _wake_drained(self) -> None:
        drained, self._drained = self._drained, []
        settle_all(drained)

    async def drain(self) -> None:
        """Wait until every write sent so far is answered (or the stream failed): the reader
        has taken them, so an abort that follows cannot overtake them."""
        if self._unacked and self._error is None:
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._drained.append(fut)
            await fut

    def _send(self, method: str, arg: Any, done: Callable[[BaseException | None], None]) -> int:
        return self._session._send_stream(self._stub._hook, method, arg, done)

    async def write(self, chunk: Any) -> None:
        if self._error is not None:
            raise _bare(self._error)
        if self._released:
            raise RpcError("Cannot write to a closed stream.")
        flow = self._flow
        token: SendToken | None = None

        def done(error: BaseException | None) -> None:
            assert token is not None
            self._unacked -= 1
            if not self._unacked and self._drained:
                self._wake_drained()
            if error is None:
                if flow.on_ack(token) and self._blocked:
                    blocked, self._blocked = self._blocked, []
                    settle_all(blocked)
            else:
                flow.on_error(token)
                self._fail(error)

        size = self._send("write", chunk, done)
        self._unacked += 1
        token, block = flow.on_send(size if size > WRITE_COST else WRITE_COST)
        if block and self._error is None:
            fut = asyncio.get_running_loop().create_future()
            self._blocked.append(fut)
            await fut
        session = self._session
        if len(session._acks) >= session.limits.max_unacked_writes and self._error is None:
            await session.ack_room()  # the session's streams together wait for answers

    async def close(self) -> None:
        if self._error is not None:
            self._release()
            raise _bare(self._error)
        if self._released:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._send("close", None, lambda e: settle(fut, e))
        try:
            await fut
        except Exception as e:
            raise _bare(self._error or e) from None
        finally:
            self._release()

    async def abort(self, reason: BaseException | None = None) -> None:
        self.abort_now(reason)

    def abort_now(self, reason: BaseException | None = None) -> None:
        """``abort`` without waiting (the abort goes out now, the release once answered)."""
        if self._error is not None or self._released:
            return
        error = reason if reason is not None else RpcError("WritableStream was aborted")
        blocked, self._blocked = self._blocked, []
        self._error = error
        settle_all(blocked, error)
        try:
            self._send("abort", error, lambda e: self._release())
        except Exception:
            self._release()


class BatchWriter(RemoteWriter):
    """The writer of a stream in an HTTP batch response. The client reads the response only
    once it is whole, so nothing can acknowledge the writes: every write and the close go in
    the response unanswered, up to ``Limits.max_batch_stream`` (past it, the write raises
    :class:`RpcLimitError`, and the stream is aborted)."""

    __slots__ = ()

    def _send(
        self, method: str, arg: Any, done: Callable[[BaseException | None], None] | None
    ) -> int:
        size = self._session._send_stream(self._stub._hook, method, arg, None)
        if done is not None:
            done(None)  # taken as far as this side can know
        return size

    async def write(self, chunk: Any) -> None:
        if self._error is not None:
            raise _bare(self._error)
        if self._released:
            raise RpcError("Cannot write to a closed stream.")
        self._send("write", chunk, None)


_sent: weakref.WeakSet[Any] = weakref.WeakSet()


def claim(source: Any) -> AsyncIterator[Any]:
    """The iterator to pump ``source`` from; a stream is sent at most once."""
    if isinstance(source, ReadableStream):
        if source._taken:
            raise TypeError("This ReadableStream was already read or sent; it can be read once.")
        source._taken = True
        return source
    try:
        seen = source in _sent
        if not seen:
            _sent.add(source)
    except TypeError:  # not weakly referenceable: not tracked
        seen = False
    if seen:
        raise TypeError("This async iterable was already sent; a stream can be read once.")
    return aiter(source)


async def pump(it: AsyncIterator[Any], writer: RemoteWriter) -> None:
    """Write ``it``'s chunks into ``writer``, then close it; a source error aborts it, and a
    failed write (the reader cancelled, the session ended) stops the source."""
    turn = 0
    try:
        while True:
            try:
                chunk = await anext(it)
            except StopAsyncIteration:
                break
            except Exception as e:
                # The chunks before the error reach a reader that keeps reading: the
                # reference's reader drops the chunks it holds when the abort arrives.
                await writer.drain()
                await writer.abort(e)
                return
            try:
                await writer.write(chunk)
            except Exception as e:
                if writer._error is None:  # not refused by the peer: the chunk cannot be sent
                    writer.abort_now(e)
                await _close_source(it)
                return
            del chunk
            turn += 1
            if turn == WRITES_PER_TURN:
                turn = 0
                await asyncio.sleep(0)
        try:
            await writer.close()
        except Exception:
            pass
    except asyncio.CancelledError:
        await writer.abort(RpcError("The stream was cancelled."))
        await _close_source(it)
        raise


async def _close_source(it: AsyncIterator[Any]) -> None:
    close = getattr(it, "aclose", None)
    if close is not None:
        try:
            await close()
        except Exception:
            pass


def is_stream_source(value: Any) -> bool:
    """Whether ``value`` goes out as a ReadableStream (an async iterable, not a type)."""
    return hasattr(type(value), "__aiter__") and not isinstance(value, type)
