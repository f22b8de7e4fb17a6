"""map(): recording a mapper function into instructions, and the budget of running them.

Recording (``record_map``) calls the application's function once with a placeholder promise;
every call and property read made on placeholders, or on any stub, while it runs is recorded
as an instruction instead of being sent. Stubs from outside the function become *captures*.
The returned value, encoded, is the last instruction. The whole recipe travels in one
``["remap", id, path, captures, instructions]`` expression.

Running (``capnweb._hooks.run_map``, beside the local hooks that run them): in instructions,
``["pipeline", k, path?, args?]`` refers to variable ``k``: 0 is the input element, ``k > 0``
the result of instruction ``k-1``, ``-k`` capture ``k-1``. A list input runs the instructions
once per element; ``None``/``undefined`` is returned unchanged; any other value runs them
once. The work is bounded per message, per session (:class:`MapBudget`) and per loop turn.

Recording deals in hooks only: the stub classes that wrap them are its caller's, passed in.
"""

from __future__ import annotations

import asyncio
import inspect
import weakref
from collections.abc import Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from ._codec import Limits, WireRef, _Encoder
from ._hookbase import Hook, Path
from .errors import RpcError, RpcLimitError

if TYPE_CHECKING:
    from ._hooks import Payload

__all__ = [
    "MAP_COST",
    "TURN_WORK",
    "MapBudget",
    "map_budget",
    "map_turn",
    "record_map",
    "recording",
]

TURN_WORK = 512
"""Instructions that the maps of one event loop apply in one turn of it: past this, they wait
for the next turn, so other connections are served in between however many maps run."""

MAP_COST = 100
"""What running one map costs beside its instructions (its task and its result), counted
in applied instructions: nested maps are paid for even over short lists."""


class MapBudget:
    """The map work that one received message may cause (``Limits.max_map_work``), drawn
    also from its session's work in progress (``Limits.max_session_map_work``).

    ``owner`` is the session: it has ``limits`` and ``map_work``, the work of its running
    maps, given back when the maps of this message have all ended.
    """

    __slots__ = ("active", "held", "limits", "owner", "spent")

    def __init__(self, owner: Any, limits: Limits) -> None:
        self.owner = owner
        self.limits = limits
        self.spent = 0
        self.held = 0  # the part of ``spent`` counted in the owner's work in progress
        self.active = 0  # maps of this message still running

    def charge(self, n: int) -> None:
        """Count ``n`` instruction applications; raises RpcLimitError past a limit."""
        self.spent += n
        self.held += n
        self.owner.map_work += n
        limits = self.limits
        if self.spent > limits.max_map_work:
            raise RpcLimitError(
                f"map() would apply more than max_map_work ({limits.max_map_work}) "
                "instructions for one message"
            )
        if self.owner.map_work > limits.max_session_map_work:
            raise RpcLimitError(
                f"map() would apply more than max_session_map_work "
                f"({limits.max_session_map_work}) instructions at once in this session"
            )

    def start(self) -> None:
        self.active += 1

    def end(self) -> None:
        self.active -= 1
        if self.active == 0:
            self.owner.map_work -= self.held
            self.held = 0


class _Turn:
    """The map work done in the current turn of one event loop."""

    __slots__ = ("loop", "work")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.work = 0

    def charge(self, n: int) -> None:
        if not self.work:
            self.loop.call_soon(self._reset)  # runs once the callbacks ready now have run
        self.work += n

    def _reset(self) -> None:
        self.work = 0

    async def wait(self) -> None:
        """Wait until this turn's work is below :data:`TURN_WORK`."""
        while self.work >= TURN_WORK:
            await asyncio.sleep(0)


_turns: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Turn] = weakref.WeakKeyDictionary()


def map_turn() -> _Turn:
    """The map work done in the current turn of the running event loop."""
    loop = asyncio.get_running_loop()
    turn = _turns.get(loop)
    if turn is None:
        turn = _turns[loop] = _Turn(loop)
    return turn


map_budget: ContextVar[MapBudget | None] = ContextVar("capnweb_map_budget", default=None)
"""The budget of the received message whose maps run in this context (None: a map the
application started itself, not bounded)."""


class _State:
    """The mapper function being recorded, if any (calls on stubs are recorded, not sent)."""

    __slots__ = ("builder",)

    def __init__(self) -> None:
        self.builder: _Builder | None = None


recording = _State()


class _VarHook(Hook):
    """A placeholder for a value inside a mapper function being recorded."""

    __slots__ = ("builder", "idx")

    def __init__(self, builder: _Builder, idx: int) -> None:
        self.builder = builder
        self.idx = idx

    def _misuse(self) -> RpcError:
        return RpcError(
            "Attempted to use an abstract placeholder from a mapper function. Please make "
            "sure your map function has no side effects."
        )

    def call(self, path: Path, args: Payload) -> Hook:
        raise self._misuse()

    def get(self, path: Path) -> Hook:
        if not path:
            return self
        builder = recording.builder
        if builder is None:
            raise self._misuse()
        return builder.push_get(self, path)

    def map(self, path: Path, captures: list[Hook], instructions: list[Any]) -> Hook:
        raise self._misuse()

    async def pull(self) -> Payload:
        raise self._misuse()

    def dup(self) -> Hook:
        return self

    def dispose(self) -> None:
        pass

    def gc_dispose(self) -> None:
        pass


class _Builder:
    """Records one mapper function; also the encoder's exporter for its values.

    ``promise_type`` is the class of promises (stubs are the other references it meets).
    """

    def __init__(
        self, subject: Hook, path: Path, parent: _Builder | None, promise_type: type[Any]
    ) -> None:
        self.parent = parent
        self.path = path
        self.promise_type = promise_type
        self.instructions: list[Any] = []
        self.captures: list[Hook] = []  # top level: hooks; nested: indexes in the parent
        self.parent_caps: list[int] = []
        self.subject_hook = subject
        self.subject_idx = parent.capture(subject) if parent is not None else 0

    def capture(self, hook: Hook) -> int:
        if isinstance(hook, _VarHook) and hook.builder is self:
            return hook.idx
        if self.parent is not None:
            self.parent_caps.append(self.parent.capture(hook))
            return -len(self.parent_caps)
        self.captures.append(hook.dup())
        return -len(self.captures)

    def _encode(self, value: Any) -> Any:
        return _Encoder(self).value(value, 0)

    def push_call(self, hook: Hook, path: Path, args: list[Any]) -> Hook:
        """Record a call; the placeholder hook for its result."""
        encoded = self._encode(args)[0]
        self.instructions.append(["pipeline", self.capture(hook), path, encoded])
        return _VarHook(self, len(self.instructions))

    def push_get(self, hook: Hook, path: Path) -> Hook:
        self.instructions.append(["pipeline", self.capture(hook), path])
        return _VarHook(self, len(self.instructions))

    # Exporter
    def encode_ref(self, ref: Any) -> list[Any]:
        idx = self.capture(ref._hook)
        path = list(ref._path)
        if isinstance(ref, self.promise_type):
            return ["pipeline", idx, path] if path else ["pipeline", idx]
        return ["import", idx]

    def encode_target(self, target: Any) -> list[Any]:
        raise TypeError(
            "Can't construct an RpcTarget or RPC callback inside a mapper function. Try "
            "creating a new RpcStub outside the callback first, then using it inside the callback."
        )

    def on_send_error(self, exc: BaseException) -> BaseException | None:
        return None

    def encode_readable(self, source: Any) -> list[Any]:
        raise TypeError("Can't send a stream from inside a mapper function.")

    def encode_writable(self, sink: Any) -> list[Any]:
        raise TypeError("Can't send a WritableStream from inside a mapper function.")


def record_map(
    hook: Hook,
    path: Path,
    fn: Callable[[Any], Any],
    placeholder: type[Any],
    promise_type: type[Any],
) -> Hook:
    """Record ``fn`` as a mapper over the value at ``hook``/``path`` and send it; the hook for
    its result.

    ``fn`` receives a ``placeholder(hook)`` (a promise class; typed stubs pass their element
    type); ``promise_type`` is the class of promises, told apart from stubs when encoding.
    """
    parent = recording.builder
    builder = _Builder(hook, path, parent, promise_type)
    recording.builder = builder
    try:
        result = fn(placeholder(_VarHook(builder, 0)))
        if inspect.isawaitable(result) and not isinstance(result, WireRef):
            if inspect.iscoroutine(result):
                result.close()
            raise TypeError("RPC map() callbacks cannot be async.")
        builder.instructions.append(builder._encode(result))
    except BaseException:
        for cap in builder.captures:
            cap.dispose()
        raise
    finally:
        recording.builder = parent
    if parent is not None:
        parent.instructions.append(
            [
                "remap",
                builder.subject_idx,
                path,
                [["import", i] for i in builder.parent_caps],
                builder.instructions,
            ]
        )
        return _VarHook(parent, len(parent.instructions))
    return hook.map(path, builder.captures, builder.instructions)
