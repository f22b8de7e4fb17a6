"""One RPC session over one transport: the import/export tables and the message rules.

Theory, once:

- Each side has an *export table* (what the peer may reference) and an *import table* (what we
  reference on the peer). Entry 0 of each is the main capability. Ids we choose for our own
  pushes are positive and sequential (1, 2, ...); ids we choose for capabilities and promises
  we introduce are negative (-1, -2, ...). No id is ever reused, and every ``export``/``promise``
  expression gets a fresh id.
- ``push`` evaluates an expression and stores its result as the next export; ``pull`` asks for
  its resolution (``resolve``/``reject``); the importer then sends ``release`` with the number
  of times the id was introduced to it. An export is dropped when its count reaches zero.
- Incoming messages are handled strictly in order, synchronously; calls whose arguments hold no
  promises start during that handling, which delivers calls in the order they were sent.
- Any protocol violation aborts the session: an ``abort`` frame is sent, every pending promise
  rejects, every ``on_broken`` callback runs and every export is released.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from contextvars import Context, ContextVar
from dataclasses import dataclass
from typing import Any, Protocol

from ._codec import DEFAULT_LIMITS, Limits, _Encoder, decode, dumps, encode_text, loads
from ._hookbase import PromiseHook
from ._hooks import (
    BrokenCallback,
    ErrorHook,
    Hook,
    Path,
    Payload,
    TargetHook,
    ValueHook,
)
from ._map import MapBudget, map_budget
from ._target import RpcTarget
from ._tasks import owner, settle_all, spawn
from ._values import Blob
from .errors import (
    RpcDisconnectedError,
    RpcError,
    RpcLimitError,
    RpcProtocolError,
    RpcTypeError,
)
from .streams import (
    READ_AHEAD,
    BatchWriter,
    ReadableStream,
    RemoteWriter,
    WritableHook,
    _Account,
    _Pipe,
    claim,
    pump,
)
from .stubs import RpcPromise, RpcStub

__all__ = ["Session", "Stats", "Transport", "current_session"]

_current: ContextVar[Session | None] = owner


def current_session() -> Session:
    """The session whose incoming call is running (from inside an RPC method)."""
    session = _current.get()
    if session is None:
        raise RuntimeError("current_session() called outside of an RPC call")
    return session


log = logging.getLogger("capnweb")

RELEASE_PER_TURN = 2048
"""Table entries an ended session releases per loop turn."""

READY_PER_TURN = 256
"""Resolved promises answered per loop turn, when a result introduces many of them."""

SendErrorHook = Callable[[BaseException], BaseException | None]


class Transport(Protocol):
    """What a session needs from a connection: queue text out, read text in, close.

    Optional, for transports that coalesce writes: ``send_lazy(text)`` (a message nobody waits
    for; it keeps its order but may wait for the next write), ``send_soon(text)`` (the same,
    sent while the session awaits no answer: worth writing early if that is cheap) and
    ``flush_before_wait()`` (the application is about to wait for an answer).
    """

    def send(self, text: str) -> None:
        """Queue one message for sending; never blocks. Failures surface via receive()."""
        ...

    async def receive(self) -> str:
        """The next message; raises (e.g. RpcDisconnectedError) once the connection is gone."""
        ...

    def abort(self, reason: BaseException) -> None:
        """The session is over: flush what is queued if possible, then close."""
        ...


@dataclass(frozen=True, slots=True)
class Stats:
    """Live table entries, the two main-capability entries included."""

    imports: int
    exports: int


class _Export:
    __slots__ = ("auto_release", "hook", "pulling", "readable", "refcount")

    def __init__(self, hook: Hook, auto_release: bool = False) -> None:
        self.hook = hook
        self.refcount = 1
        self.pulling = False
        self.auto_release = auto_release
        self.readable: ReadableStream[Any] | None = None  # a pipe's end, until referenced


class _Import:
    __slots__ = (
        "asked",
        "broken_keys",
        "id",
        "local_refs",
        "pulled",
        "remote_refs",
        "resolution",
        "session",
        "waiters",
    )

    def __init__(self, session: Session, import_id: int, pulling: bool) -> None:
        self.session: Session | None = session  # None once the session ended
        self.id = import_id
        self.local_refs = 0
        self.remote_refs = 1
        self.resolution: Hook | None = None
        self.broken_keys: list[int] | None = None
        self.pulled = pulling  # a pull went out, or the peer resolves it unasked
        self.asked = False  # our pull went out and is not answered yet
        # one future per awaiting task, woken directly: a shared future awaited through
        # asyncio.shield() would cost every await an extra loop turn
        self.waiters: list[asyncio.Future[Hook]] | None = None

    def resolve(self, hook: Hook) -> None:
        if self.local_refs == 0:
            hook.dispose()  # canceled already; the release went out when it was disposed
            return
        self.resolution = hook
        if self.broken_keys and self.session is not None:
            callbacks = self.session._broken
            for key in self.broken_keys:
                cb = callbacks.pop(key, None)
                if cb is not None:
                    hook.on_broken(cb)
            self.broken_keys = None
        self.wake()
        self.send_release()  # after: the woken code's next call can carry it along

    def wake(self) -> None:
        waiters, self.waiters = self.waiters, None
        resolution = self.resolution
        assert resolution is not None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(resolution)

    def wait(self) -> asyncio.Future[Hook]:
        """A future for this entry's resolution (pulled first if nobody has pulled it)."""
        session = self.session
        assert session is not None  # (an entry of an ended session is resolved)
        if not self.pulled:
            self.pulled = self.asked = True
            session._asked += 1
            session._send(["pull", self.id])
        waiter = asyncio.get_running_loop().create_future()
        if self.waiters is None:
            self.waiters = []
        self.waiters.append(waiter)
        if session._before_wait is not None:
            session._before_wait()
        return waiter

    async def await_resolution(self) -> Payload:
        if self.resolution is None:
            await self.wait()
        assert self.resolution is not None
        return await self.resolution.pull()

    def dispose(self) -> None:
        if self.resolution is not None:
            self.resolution.dispose()
        else:
            self.abort(RpcError("RPC was canceled because the RpcPromise was disposed."))
            self.send_release()

    def abort(self, error: BaseException) -> None:
        if self.resolution is None:
            self.resolution = ErrorHook(error)
            self.wake()  # the awaiting tasks raise ``error`` from the resolution
            self.broken_keys = None

    def end(self, error: BaseException) -> None:
        """The session ended: break the entry, and let go of the session (a stub the
        application still holds must not keep a closed session in memory)."""
        self.abort(error)
        self.remote_refs = 0
        self.session = None

    def on_broken(self, callback: BrokenCallback) -> None:
        if self.resolution is not None:
            self.resolution.on_broken(callback)
            return
        session = self.session
        assert session is not None  # (an entry of an ended session is resolved)
        key = session._broken_seq
        session._broken_seq += 1
        session._broken[key] = callback
        if self.broken_keys is None:
            self.broken_keys = []
        self.broken_keys.append(key)

    def send_release(self) -> None:
        if self.remote_refs > 0 and self.session is not None:
            self.session._send_release(self.id, self.remote_refs)
            self.remote_refs = 0


class ImportHook(Hook):
    """A reference to an entry of a session's import table (something on the peer)."""

    __slots__ = ("entry", "is_promise")

    def __init__(self, entry: _Import, is_promise: bool) -> None:
        entry.local_refs += 1
        self.entry: _Import | None = entry
        self.is_promise = is_promise

    def _live(self) -> _Import:
        if self.entry is None:
            raise RpcError("Attempted to use RPC stub after it has been disposed.")
        return self.entry

    def call(self, path: Path, args: Payload) -> Hook:
        e = self._live()
        if e.resolution is not None:
            return e.resolution.call(path, args)
        assert e.session is not None  # (an entry of an ended session is resolved)
        return e.session._send_call(e.id, path, args)

    def get(self, path: Path) -> Hook:
        e = self._live()
        if e.resolution is not None:
            return e.resolution.get(path)
        assert e.session is not None
        return e.session._send_call(e.id, path, None)

    def map(self, path: Path, captures: list[Hook], instructions: list[Any]) -> Hook:
        e = self._live()
        if e.resolution is not None:
            return e.resolution.map(path, captures, instructions)
        assert e.session is not None
        return e.session._send_map(e.id, path, captures, instructions)

    async def pull(self) -> Payload:
        e = self._live()
        if e.resolution is not None:
            return await e.resolution.pull()
        if not self.is_promise:
            stub = RpcStub(self.dup())
            return Payload(stub, owned=[stub])
        return await e.await_resolution()

    def ready(self) -> asyncio.Future[Hook] | None:
        e = self._live()
        return e.wait() if e.resolution is None and self.is_promise else None

    def pulled(self) -> Payload | None:
        resolution = self._live().resolution
        return resolution.pulled() if resolution is not None else None

    def dup(self) -> Hook:
        return ImportHook(self._live(), self.is_promise)

    def dispose(self) -> None:
        entry, self.entry = self.entry, None
        if entry is not None:
            entry.local_refs -= 1
            if entry.local_refs == 0:
                entry.dispose()

    def on_broken(self, callback: BrokenCallback) -> None:
        if self.entry is not None:
            self.entry.on_broken(callback)


class _MainHook(ImportHook):
    """The peer's main capability: disposing it explicitly shuts the session down."""

    __slots__ = ()

    def dispose(self) -> None:
        entry = self.entry
        if entry is not None:
            self.entry = None
            if entry.session is not None:
                entry.session.shutdown()

    def gc_dispose(self) -> None:
        pass

    def dup(self) -> Hook:
        return ImportHook(self._live(), False)


def _main_hook(main: Any) -> Hook:
    if main is None:
        return ErrorHook(RpcError("This connection has no main object."))
    if isinstance(main, RpcStub):
        return main._take_hook()
    if isinstance(main, RpcTarget) or (callable(main) and not isinstance(main, type)):
        return TargetHook(main)
    return ValueHook(Payload.returned(main))


def _no_callbacks() -> RpcError:
    return RpcError("Cannot call back into the client during an HTTP batch; use a WebSocket.")


def _cancel_later(tasks: list[asyncio.Task[Any]], delay: float) -> None:
    """Cancel ``tasks`` that are still running ``delay`` seconds from now (the timer goes as
    soon as they have all ended; it holds the tasks only, not what started them)."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # no loop: they cannot run again anyway
        return

    def cancel() -> None:
        for task in tasks:
            task.cancel()

    timer = loop.call_later(delay, cancel, context=Context())
    left = len(tasks)

    def ended(_: asyncio.Task[Any]) -> None:
        nonlocal left
        left -= 1
        if left == 0:
            timer.cancel()

    for task in tasks:
        task.add_done_callback(ended)


def _safe_repr(value: Any) -> str:
    """``repr(value)`` cut to 200 characters; the type's name when repr fails (a peer's
    bigint of more digits than Python prints, say)."""
    try:
        text = repr(value)
    except Exception:
        return f"<{type(value).__name__}>"
    return text if len(text) <= 200 else text[:200] + "..."


def _compact(value: Any) -> str:
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=repr)
    return text if len(text) <= 500 else text[:500] + "..."


class Session:
    """A Cap'n Web session over a transport; serves ``main`` and reaches the peer's main.

    Args:
        transport: the connection (see :class:`Transport`).
        main: what the peer's calls to id 0 reach (an RpcTarget, a function, a stub), or None.
        limits: receiver-side limits; violating one aborts the session.
        on_send_error: called with every error about to be sent; return an exception to send
            instead, and its traceback goes along as ``stack`` (by default stacks are never sent).
        start: begin reading the transport at once (False for transports fed by hand).
    """

    # Slots keep an idle session small; "__dict__" (made only when used) lets a test or a tool
    # set attributes of its own.
    __slots__ = (
        "__dict__",
        "__weakref__",
        "_aborted",
        "_ack_waiters",
        "_acks",
        "_asked",
        "_batch_stream_left",
        "_before_wait",
        "_broken",
        "_broken_seq",
        "_building",
        "_can_call",
        "_drain_waiters",
        "_encoding",
        "_exports",
        "_imports",
        "_map_budget",
        "_next_export",
        "_next_import",
        "_next_in",
        "_on_send_error",
        "_pull_count",
        "_pumps",
        "_reader",
        "_ready",
        "_stream_account",
        "_transport",
        "limits",
        "main",
        "map_work",
        "tasks",
    )

    def __init__(
        self,
        transport: Transport,
        main: Any = None,
        *,
        limits: Limits | None = None,
        on_send_error: SendErrorHook | None = None,
        start: bool = True,
    ) -> None:
        self._transport = transport
        self.limits = limits or DEFAULT_LIMITS
        self._on_send_error = on_send_error
        self._exports: dict[int, _Export] = {0: _Export(_main_hook(main))}
        self._imports: dict[int, _Import] = {}
        self._imports[0] = _Import(self, 0, False)
        self._next_import = 1  # ids of our pushes
        self._next_in = 1  # ids of the peer's pushes
        self._next_export = -1
        self._aborted: BaseException | None = None
        self._pull_count = 0
        self._asked = 0  # our pulls not answered yet: while there are, releases are lazy
        self._drain_waiters: list[asyncio.Future[None]] = []
        self._broken: dict[int, BrokenCallback] = {}
        self._broken_seq = 0
        self._acks: dict[int, Callable[[BaseException | None], None]] = {}  # our stream calls
        self._ack_waiters: list[asyncio.Future[None]] = []  # writers past max_unacked_writes
        self._pumps: set[asyncio.Task[None]] | None = None  # the streams this session sends
        self._stream_account: _Account | None = None
        self._building: Payload | None = None
        self._encoding: _Encoding | None = None
        # settled exports to answer: (id, entry, value or error)
        self._ready: list[tuple[int, _Export, Payload | BaseException]] | None = None
        self.tasks: set[asyncio.Task[Any]] | None = None  # started for the peer (_tasks.py)
        self.map_work = 0  # instructions the running maps of received messages may apply
        self._map_budget: MapBudget | None = None  # that of the message being handled
        self.main: RpcStub = RpcStub(_MainHook(self._imports[0], False))
        """The peer's main capability. Disposing it shuts the session down."""
        # A server answering one HTTP batch can never hear back from the client.
        self._can_call = bool(getattr(transport, "can_call_peer", True))
        self._batch_stream_left = self.limits.max_batch_stream  # (only without _can_call)
        # optional: the transport coalesces writes; write them now, we are about to wait
        self._before_wait: Callable[[], None] | None = getattr(transport, "flush_before_wait", None)
        self._reader: asyncio.Task[None] | None = None
        if start:
            self._reader = spawn(self._read_loop())

    # -- public

    def stats(self) -> Stats:
        """Live import and export entries (a fresh session has one of each: the mains)."""
        return Stats(len(self._imports), len(self._exports))

    @property
    def answering(self) -> bool:
        """Whether results the peer pulled are still being computed (see :meth:`drain`)."""
        return self._pull_count > 0

    @property
    def broken(self) -> BaseException | None:
        """Why the session ended, or None while it is alive."""
        return self._aborted

    async def drain(self) -> None:
        """Wait until every result the peer pulled has been sent; raises if the session broke."""
        while True:
            if self._aborted is not None:
                raise self._aborted
            if self._pull_count == 0:
                return
            fut = asyncio.get_running_loop().create_future()
            self._drain_waiters.append(fut)
            await fut

    def shutdown(self) -> None:
        """End the session without an ``abort`` frame (what disposing the main stub does)."""
        self.abort(
            RpcDisconnectedError("RPC session was shut down by disposing the main stub"), False
        )

    @property
    def transport(self) -> Transport:
        """The connection this session runs over."""
        return self._transport

    async def close(self) -> None:
        """Shut the session down and wait for its reader to stop."""
        self.shutdown()
        if self._reader is not None and self._reader is not asyncio.current_task():
            await asyncio.gather(self._reader, return_exceptions=True)

    async def wait_closed(self) -> BaseException:
        """Wait until the session ends; returns the reason."""
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)
        while self._aborted is None:  # pragma: no cover - readerless sessions
            fut = asyncio.get_running_loop().create_future()
            self._drain_waiters.append(fut)
            await asyncio.gather(fut, return_exceptions=True)
        return self._aborted

    def disconnected(self, error: BaseException) -> None:
        """The transport lost the connection (for transports that feed messages in)."""
        self.abort(error, False)

    def abort(self, error: BaseException, send: bool = True) -> None:
        """End the session with ``error``: tell the peer (if ``send``), break everything."""
        if self._aborted is not None:
            return
        if send:
            try:
                self._transport.send(dumps(["abort", self._encode(error, None)]))
            except Exception:
                pass  # the transport is probably why we are aborting
        self._aborted = error
        try:
            self._transport.abort(error)
        except Exception:
            log.exception("transport abort failed")
        waiters, self._drain_waiters = self._drain_waiters, []
        settle_all(waiters)
        acks, self._acks = self._acks, {}
        for done in acks.values():
            try:
                done(error)
            except Exception:
                log.exception("error failing a stream write")
        ack_waiters, self._ack_waiters = self._ack_waiters, []
        settle_all(ack_waiters)
        pumps, self._pumps = self._pumps, None
        for task in pumps or ():  # a source waiting for its next chunk is closed now too
            task.cancel()
        broken, self._broken = self._broken, {}
        for cb in broken.values():
            try:
                cb(error)
            except Exception:
                log.exception("error in on_broken callback")
        imports, self._imports = self._imports, {}
        exports, self._exports = self._exports, {}
        self._release_all(list(imports.values()), [e.hook for e in exports.values()], error)
        pending = [task for task in self.tasks or () if not task.done()]
        if pending:  # calls still running: a grace period, then they are cancelled
            _cancel_later(pending, self.limits.orphan_timeout)

    def _release_all(self, imports: list[_Import], hooks: list[Hook], error: BaseException) -> None:
        """Reject what waits on ``imports`` and dispose ``hooks``, a bounded number per loop
        turn (a session may end with up to ``max_refs`` of each)."""
        imports_now, hooks_now = imports[:RELEASE_PER_TURN], hooks[:RELEASE_PER_TURN]
        for imp in imports_now:
            imp.end(error)
        for hook in hooks_now:
            try:
                if type(hook) is WritableHook:  # its reader learns why the writer went away
                    hook.dispose(error)
                else:
                    hook.dispose()
            except Exception:
                log.exception("error disposing an export")
        if len(imports) > RELEASE_PER_TURN or len(hooks) > RELEASE_PER_TURN:
            rest = (imports[RELEASE_PER_TURN:], hooks[RELEASE_PER_TURN:], error)
            try:
                asyncio.get_running_loop().call_soon(self._release_all, *rest)
            except RuntimeError:  # no loop running: all at once
                self._release_all(*rest)

    # -- reading

    async def _read_loop(self) -> None:
        transport = self._transport
        while self._aborted is None:
            try:
                text = await transport.receive()
            except asyncio.CancelledError:
                self.abort(RpcDisconnectedError("the session was cancelled"), False)
                raise
            except Exception as e:
                if not isinstance(e, RpcError):
                    e = RpcDisconnectedError(str(e) or type(e).__name__)
                # The reason outlives the session (broken stubs keep it): without its
                # traceback, it does not keep this frame, and the session, in memory.
                self.abort(e.with_traceback(None), False)
                return
            if self._aborted is not None:
                return
            self.feed(text)

    def feed(self, text: str | bytes) -> None:
        """Handle one incoming message; a bad one aborts the session (never raises)."""
        if self._aborted is not None:
            return
        token = _current.set(self)
        self._map_budget = None
        try:
            self._handle(loads(text, self.limits))
        except Exception as e:
            self.abort(e)
        finally:
            _current.reset(token)

    def _handle(self, msg: Any) -> None:
        if type(msg) is list and msg:
            tag = msg[0]
            n = len(msg)
            if tag == "push" and n > 1:
                if len(self._exports) >= self.limits.max_refs:
                    self._too_many_refs()
                hook = self._evaluate_push(msg[1])
                self._exports[self._next_in] = _Export(hook)
                self._next_in += 1
                return
            if tag == "pull" and n > 1 and type(msg[1]) is int:
                self._ensure_resolving(msg[1], now=True)
                return
            if (tag == "resolve" or tag == "reject") and n > 2 and type(msg[1]) is int:
                self._on_resolve(msg[1], msg[2], tag == "reject")
                return
            if tag == "release" and n > 2 and type(msg[1]) is int and type(msg[2]) is int:
                self._release_export(msg[1], msg[2])
                return
            if tag == "abort":
                reason = self._decode(msg[1] if n > 1 else None)
                reason.dispose()
                error = reason.value
                if not isinstance(error, BaseException):
                    error = RpcError(f"peer aborted the session: {_safe_repr(error)}")
                self.abort(error, False)
                return
            if tag == "stream" and n > 1:
                if len(self._exports) >= self.limits.max_refs:
                    self._too_many_refs()
                hook = self._evaluate_push(msg[1])
                export_id = self._next_in
                self._exports[export_id] = _Export(hook, auto_release=True)
                self._next_in += 1
                self._ensure_resolving(export_id)
                return
            if tag == "pipe":
                if len(self._exports) >= self.limits.max_refs:
                    self._too_many_refs()
                account = self._stream_account
                if account is None:
                    account = self._stream_account = _Account()
                pipe = _Pipe(READ_AHEAD, self.limits.max_stream_buffer, account)
                entry = _Export(WritableHook.for_pipe(pipe))
                entry.readable = ReadableStream(pipe)
                self._exports[self._next_in] = entry
                self._next_in += 1
                return
        raise RpcProtocolError(f"bad RPC message: {_compact(msg)}")

    def _too_many_refs(self) -> None:
        raise RpcLimitError(
            f"The peer holds more than max_refs ({self.limits.max_refs}) references in one "
            "of this session's tables."
        )

    def _evaluate_push(self, expr: Any) -> Hook:
        payload = self._decode(expr)
        value = payload.value
        if isinstance(value, RpcPromise) and len(payload.owned) == 1 and not value._path:
            payload.owned.clear()
            return value._take_hook_and_forget()
        return ValueHook(payload)

    def _decode(self, expr: Any) -> Payload:
        prev = self._building
        payload = self._building = Payload(None)
        try:
            payload.value = decode(expr, self, self.limits, fresh=True)
        except BaseException:
            payload.dispose()
            raise
        finally:
            self._building = prev
        return payload

    def _on_resolve(self, import_id: int, expr: Any, reject: bool) -> None:
        imp = self._imports.get(import_id)
        if imp is None and import_id in self._acks:
            self._on_ack(import_id, expr, reject)
            return
        if imp is not None and imp.asked:
            imp.asked = False
            self._asked -= 1
        payload = self._decode(expr)
        if imp is None:
            payload.dispose()  # released already: drop the stubs it carried
            return
        if reject:
            payload.dispose()
            error = payload.value
            if not isinstance(error, BaseException):
                error = RpcError(
                    f"rejected with a non-error value: {_safe_repr(error)}",
                    props={"value": error},
                )
            imp.resolve(ErrorHook(error))
        else:
            imp.resolve(ValueHook(payload))

    def _on_ack(self, ack_id: int, expr: Any, reject: bool) -> None:
        """The answer to one of our ``stream`` calls (nobody releases those)."""
        done = self._acks.pop(ack_id)
        if self._ack_waiters and len(self._acks) < self.limits.max_unacked_writes:
            waiters, self._ack_waiters = self._ack_waiters, []
            settle_all(waiters)
        payload = self._decode(expr)
        payload.dispose()
        error: BaseException | None = None
        if reject:
            error = payload.value
            if not isinstance(error, BaseException):
                error = RpcError(f"rejected with a non-error value: {_safe_repr(error)}")
        done(error)

    # -- Importer (decoding references)

    def _record(self, stub: RpcStub, promise: bool) -> RpcStub:
        building = self._building
        assert building is not None
        building.owned.append(stub)
        if promise:
            building.has_promises = True
        return stub

    def import_ref(
        self, promise: bool, ref_id: int, path: list[str | int] | None, args: Any
    ) -> Any:
        entry = self._exports.get(ref_id)
        if entry is None:
            raise RpcProtocolError(f"no such entry on exports table: {ref_id}")
        hook = entry.hook
        if args is not None:
            prev = self._building
            payload = self._building = Payload(None)
            try:
                payload.value = args()
            except BaseException:
                payload.dispose()
                raise
            finally:
                self._building = prev
            result = hook.call(path or [], payload)
        elif path:
            result = hook.get(path)
        else:
            result = hook.dup()
        stub = RpcPromise(result) if promise else RpcStub(result)
        return self._record(stub, promise)

    def export_ref(self, ref_id: int, promise: bool) -> Any:
        if promise:
            if ref_id in self._imports:
                error = RpcError(
                    "Bug in RPC system: The peer sent a promise reusing an existing export ID."
                )
                return self._record(RpcPromise(ErrorHook(error)), True)
            if len(self._imports) >= self.limits.max_refs:
                self._too_many_refs()
            entry = self._imports[ref_id] = _Import(self, ref_id, True)
            return self._record(RpcPromise(ImportHook(entry, True)), True)
        return self._record(RpcStub(self._import_stub(ref_id)), False)

    def _import_stub(self, ref_id: int) -> ImportHook:
        known = self._imports.get(ref_id)
        if known is None:
            if len(self._imports) >= self.limits.max_refs:
                self._too_many_refs()
            known = self._imports[ref_id] = _Import(self, ref_id, False)
        else:
            known.remote_refs += 1
        return ImportHook(known, False)

    def readable_ref(self, pipe_id: int) -> Any:
        entry = self._exports.get(pipe_id)
        readable = entry.readable if entry is not None else None
        if entry is None or readable is None:
            raise RpcProtocolError(
                f"Export {pipe_id} is not a pipe or its readable end was already consumed."
            )
        entry.readable = None
        return readable

    def writable_ref(self, ref_id: int) -> Any:
        # not owned by the payload: the writer releases it when done, or when dropped
        return RemoteWriter(self, self._import_stub(ref_id))

    def blob_ref(self, mime: str, content: Any) -> Any:
        limit = self.limits.max_blob_size
        stream: ReadableStream[Any] = content

        async def collect() -> Hook:
            parts: list[bytes] = []
            size = 0
            async for chunk in stream:
                if not isinstance(chunk, bytes):
                    error = RpcTypeError(
                        f"A Blob's chunks must be bytes, not {type(chunk).__name__}."
                    )
                    stream.cancel(error)
                    raise error
                size += len(chunk)
                if size > limit:
                    error = RpcLimitError(f"A Blob is larger than max_blob_size ({limit} bytes).")
                    stream.cancel(error)
                    raise error
                parts.append(chunk)
            return ValueHook(Payload(Blob(b"".join(parts), mime)))

        return self._record(RpcPromise(PromiseHook(spawn(collect()))), True)

    def remap_ref(
        self, ref_id: int, path: list[str | int], captures: list[Any], instructions: list[Any]
    ) -> Any:
        entry = self._exports.get(ref_id)
        if entry is None:
            raise RpcProtocolError(f"no such entry on exports table: {ref_id}")
        hooks: list[Hook] = []
        try:
            for cap in captures:
                if type(cap) is not list or len(cap) != 2 or type(cap[1]) is not int:
                    raise RpcProtocolError(f"unknown map capture: {_compact(cap)}")
                if cap[0] == "import":
                    exp = self._exports.get(cap[1])
                    if exp is None:
                        raise RpcProtocolError(f"no such entry on exports table: {cap[1]}")
                    hooks.append(exp.hook.dup())
                elif cap[0] == "export":
                    stub = self.export_ref(cap[1], False)
                    self._building.owned.remove(stub)  # type: ignore[union-attr]
                    hooks.append(stub._take_hook_and_forget())
                else:
                    raise RpcProtocolError(f"unknown map capture: {_compact(cap)}")
        except BaseException:
            for h in hooks:
                h.dispose()
            raise
        budget = self._map_budget
        if budget is None:
            budget = self._map_budget = MapBudget(self, self.limits)
        token = map_budget.set(budget)
        try:
            result = entry.hook.map(path, hooks, instructions)
        finally:
            map_budget.reset(token)
        return self._record(RpcPromise(result), True)

    def unsupported(self, what: str) -> Any:
        error = RpcTypeError(f"{what} is not supported yet by this peer.")
        return self._record(RpcPromise(ErrorHook(error)), True)

    # -- Exporter (encoding references)

    def _encode(self, value: Any, source: Payload | None, text: bool = False) -> Any:
        """``value`` as an expression, or (``text``) as the JSON text of one."""
        prev = self._encoding
        enc = self._encoding = _Encoding(source)
        try:
            return encode_text(value, self) if text else _Encoder(self).value(value, 0)
        except BaseException as e:
            for export_id in enc.created:  # roll back what this message exported
                exp = self._exports.pop(export_id, None)
                if exp is not None:
                    exp.hook.dispose()
            for task, writer in enc.pipes:  # and fail the pipes it opened (they were sent)
                task.cancel()
                writer.abort_now(e if isinstance(e, Exception) else None)
            raise
        finally:
            self._encoding = prev

    def _pending_import(self, hook: Hook) -> int | None:
        """The id of the import ``hook`` refers to, when it is one of this session's, still
        on the peer's export table (not resolved: its release may have gone out)."""
        if isinstance(hook, ImportHook):
            entry = hook.entry
            if entry is not None and entry.session is self and entry.resolution is None:
                return entry.id
        return None

    def encode_ref(self, ref: Any) -> list[Any]:
        stub: RpcStub = ref
        hook = stub._hook
        path = list(stub._path)
        promise = isinstance(stub, RpcPromise)
        import_id = self._pending_import(hook)
        if import_id is not None:
            if promise:
                return ["pipeline", import_id, path] if path else ["pipeline", import_id]
            return ["import", import_id]
        if promise:
            return ["promise", self._export(hook.get(path) if path else hook.dup(), True)]
        return ["export", self._export(hook.dup(), False)]

    def encode_target(self, target: Any) -> list[Any]:
        enc = self._encoding
        source = enc.source if enc is not None else None
        hook = source.target_hook(target) if source is not None else TargetHook(target)
        return ["export", self._export(hook, False)]

    def encode_readable(self, source: Any) -> list[Any]:
        if self._aborted is not None:
            raise self._aborted
        it = claim(source)
        self._send(["pipe"])
        pipe_id = self._next_import
        self._next_import += 1
        entry = self._imports[pipe_id] = _Import(self, pipe_id, False)
        hook = ImportHook(entry, False)
        writer = RemoteWriter(self, hook) if self._can_call else BatchWriter(self, hook)
        task = spawn(pump(it, writer))
        pumps = self._pumps
        if pumps is None:
            pumps = self._pumps = set()
        pumps.add(task)
        task.add_done_callback(pumps.discard)
        if not self._can_call:  # the batch response waits for the whole stream
            self._pull_count += 1
            task.add_done_callback(self._batch_pump_done)
        if self._encoding is not None:
            self._encoding.pipes.append((task, writer))
        return ["readable", pipe_id]

    def encode_writable(self, sink: Any) -> list[Any]:
        return ["writable", self._export(WritableHook.for_sink(sink), False)]

    async def ack_room(self) -> None:
        """Wait while ``limits.max_unacked_writes`` stream writes wait for the peer's answers
        (or until the session ends)."""
        while len(self._acks) >= self.limits.max_unacked_writes and self._aborted is None:
            fut = asyncio.get_running_loop().create_future()
            self._ack_waiters.append(fut)
            await fut

    def _send_stream(
        self,
        hook: Hook,
        method: str,
        arg: Any,
        done: Callable[[BaseException | None], None] | None,
    ) -> int:
        """Send ``write``/``close``/``abort`` to the peer's writable that ``hook`` imports;
        ``done`` gets its answer (None, or the error). Returns the message's size.

        ``done=None``: into a pipe of an HTTP batch response, unanswered; its writes count
        against ``Limits.max_batch_stream``."""
        if self._aborted is not None:
            raise self._aborted
        if not self._can_call and done is not None:
            raise _no_callbacks()
        target = self._pending_import(hook)
        if target is None:
            raise RpcError("The WritableStream's session has ended.")
        args = "[]" if method == "close" else self._encode([arg], None, text=True)[1:-1]
        text = f'["stream",["pipeline",{target},["{method}"],{args}]]'
        if done is not None:
            self._acks[self._next_import] = done
        elif method == "write":
            left = self._batch_stream_left - len(text)
            if left < 0:
                raise RpcLimitError(
                    "The streams of an HTTP batch response are limited to "
                    f"{self.limits.max_batch_stream} bytes (Limits.max_batch_stream); "
                    "use a WebSocket."
                )
            self._batch_stream_left = left
        self._next_import += 1
        self._send_text(text)
        return len(text)

    def on_send_error(self, exc: BaseException) -> BaseException | None:
        if self._on_send_error is None:
            return None
        try:
            return self._on_send_error(exc)
        except Exception:
            log.exception("error in on_send_error")
            return None

    def _export(self, hook: Hook, promise: bool) -> int:
        if self._aborted is not None:
            hook.dispose()
            raise self._aborted
        export_id = self._next_export
        self._next_export -= 1
        self._exports[export_id] = _Export(hook)
        if self._encoding is not None:
            self._encoding.created.append(export_id)
        if promise:
            self._ensure_resolving(export_id)
        return export_id

    # -- sending

    def _send(self, msg: list[Any]) -> None:
        self._send_text(dumps(msg))

    def _send_text(self, text: str, lazy: bool = False, soon: bool = False) -> None:
        """Hand ``text`` to the transport; ``lazy``: nobody waits for it, ``soon``: but the
        session awaits nothing either (see Transport)."""
        if self._aborted is not None:
            return
        transport = self._transport
        try:
            send = None
            if soon:
                send = getattr(transport, "send_soon", None)
            if lazy and send is None:
                send = getattr(transport, "send_lazy", None)
            (send or transport.send)(text)
        except Exception as e:
            asyncio.get_running_loop().call_soon(self.abort, e, False)

    def _send_call(self, target_id: int, path: Path, args: Payload | None) -> Hook:
        if self._aborted is not None or not self._can_call:
            if args is not None:
                args.dispose()
            return ErrorHook(self._aborted or _no_callbacks())
        if args is None:
            self._send(["push", ["pipeline", target_id, path]])
        else:
            try:
                # the argument array's text: the encoded list is escaped as [[...]]
                wire_args = self._encode(args.value, args, text=True)[1:-1]
            except Exception as e:
                args.dispose()
                return ErrorHook(e)
            if args.source == "owned":
                args.dispose()  # the wire now holds dups of what it carried
            self._send_text(f'["push",["pipeline",{target_id},{dumps(path)},{wire_args}]]')
        entry = self._imports[self._next_import] = _Import(self, self._next_import, False)
        self._next_import += 1
        return ImportHook(entry, True)

    def _send_map(
        self, target_id: int, path: Path, captures: list[Hook], instructions: list[Any]
    ) -> Hook:
        if self._aborted is not None or not self._can_call:
            for c in captures:
                c.dispose()
            return ErrorHook(self._aborted or _no_callbacks())
        ids = [self._pending_import(cap) for cap in captures]
        wire_caps = [
            ["import", i] if i is not None else ["export", self._export(cap, False)]
            for cap, i in zip(captures, ids, strict=True)
        ]
        self._send(["push", ["remap", target_id, path, wire_caps, instructions]])
        for cap, i in zip(captures, ids, strict=True):
            if i is not None:
                cap.dispose()
        entry = self._imports[self._next_import] = _Import(self, self._next_import, False)
        self._next_import += 1
        return ImportHook(entry, True)

    def _send_release(self, import_id: int, count: int) -> None:
        if self._aborted is not None:
            return
        entry = self._imports.pop(import_id, None)
        if entry is not None and entry.asked:
            entry.asked = False
            self._asked -= 1
        self._send_text(f'["release",{import_id},{count}]', lazy=True, soon=not self._asked)

    # -- exports

    def _ensure_resolving(self, export_id: int, now: bool = False) -> None:
        entry = self._exports.get(export_id)
        if entry is None:
            raise RpcProtocolError(f"no such export ID: {export_id}")
        if entry.pulling:
            return
        entry.pulling = True
        hook = entry.hook
        t = type(hook)
        if t is ValueHook or t is ErrorHook:
            # settled already (a sync method's result or error, a stream write answered)
            answer: Payload | BaseException = (
                hook.payload if t is ValueHook else hook.error  # type: ignore[attr-defined]
            )
            if now:
                # Pulled and resolved already (a sync method's result): answer before the
                # next message is read, as the reference does, without a task and a loop turn.
                self._answer(export_id, entry, answer)
                return
            # Resolved already, but introduced by a message being encoded (or a stream write):
            # answered after it, in order, a bounded number per loop turn.
            self._pull_count += 1
            ready = self._ready
            if ready is None:
                ready = self._ready = []
            ready.append((export_id, entry, answer))
            if len(ready) == 1:
                asyncio.get_running_loop().call_soon(self._answer_ready)
            return
        self._pull_count += 1
        spawn(self._resolve_export(export_id, entry))

    def _answer_ready(self) -> None:
        ready = self._ready
        assert ready is not None  # it is what scheduled this
        batch = ready[:READY_PER_TURN]
        del ready[:READY_PER_TURN]
        try:
            for export_id, entry, answer in batch:
                if self._aborted is None:
                    self._answer(export_id, entry, answer)
                self._pull_count -= 1
        finally:
            if ready:
                asyncio.get_running_loop().call_soon(self._answer_ready)
            elif self._pull_count == 0:
                self._drained()

    def _answer(self, export_id: int, entry: _Export, payload: Payload | BaseException) -> None:
        try:
            if isinstance(payload, BaseException):
                text = f'["reject",{export_id},{self._encode(payload, None, True)}]'
            else:
                try:
                    text = f'["resolve",{export_id},{self._encode(payload.value, payload, True)}]'
                except Exception as e:
                    text = f'["reject",{export_id},{self._encode(e, None, True)}]'
            self._send_text(text)
            if entry.auto_release and export_id in self._exports:
                self._release_export(export_id, 1)
        except Exception as e:
            self.abort(e)

    async def _resolve_export(self, export_id: int, entry: _Export) -> None:
        try:
            try:
                payload: Payload | BaseException = await entry.hook.pull()
            except Exception as e:
                payload = e
            self._answer(export_id, entry, payload)
        finally:
            self._pull_count -= 1
            if self._pull_count == 0:
                self._drained()

    def _batch_pump_done(self, task: asyncio.Task[None]) -> None:
        self._pull_count -= 1
        if self._pull_count == 0:
            self._drained()

    def _drained(self) -> None:
        waiters, self._drain_waiters = self._drain_waiters, []
        settle_all(waiters)

    def _release_export(self, export_id: int, count: int) -> None:
        entry = self._exports.get(export_id)
        if entry is None:
            raise RpcProtocolError(f"no such export ID: {export_id}")
        if count <= 0:
            raise RpcProtocolError(f"release count must be positive: {count}")
        if entry.refcount < count:
            raise RpcProtocolError(f"refcount would go negative: {entry.refcount} < {count}")
        entry.refcount -= count
        if entry.refcount == 0:
            del self._exports[export_id]
            entry.hook.dispose()


class _Encoding:
    __slots__ = ("created", "pipes", "source")

    def __init__(self, source: Payload | None) -> None:
        self.source = source
        self.created: list[int] = []
        self.pipes: list[tuple[asyncio.Task[None], RemoteWriter]] = []
