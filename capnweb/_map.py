"""map(): recording a mapper function into instructions, and running received instructions.

Recording (``record_map``) calls the application's function once with a placeholder promise;
every call and property read made on placeholders, or on any stub, while it runs is recorded
as an instruction instead of being sent. Stubs from outside the function become *captures*.
The returned value, encoded, is the last instruction. The whole recipe travels in one
``["remap", id, path, captures, instructions]`` expression.

Running (``run_map``): in instructions, ``["pipeline", k, path?, args?]`` refers to variable
``k``: 0 is the input element, ``k > 0`` the result of instruction ``k-1``, ``-k`` capture
``k-1``. A list input runs the instructions once per element; ``None``/``undefined`` is
returned unchanged; any other value runs them once.
"""

from __future__ import annotations

import asyncio
import inspect
import weakref
from collections.abc import Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from ._codec import DEFAULT_LIMITS, Limits, _Encoder, decode
from ._hooks import ErrorHook, Hook, Path, Payload, PromiseHook, ValueHook, copy_value, follow
from ._tasks import spawn
from ._values import undefined
from .errors import RpcError, RpcLimitError

if TYPE_CHECKING:
    from .stubs import RpcPromise, RpcStub

__all__ = ["MapBudget", "map_budget", "record_map", "run_map"]

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


def _turn() -> _Turn:
    loop = asyncio.get_running_loop()
    turn = _turns.get(loop)
    if turn is None:
        turn = _turns[loop] = _Turn(loop)
    return turn


map_budget: ContextVar[MapBudget | None] = ContextVar("capnweb_map_budget", default=None)
"""The budget of the received message whose maps run in this context (None: a map the
application started itself, not bounded)."""


class _State:
    __slots__ = ("builder",)

    def __init__(self) -> None:
        self.builder: _Builder | None = None


_map_state = _State()


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
        builder = _map_state.builder
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
    """Records one mapper function; also the encoder's exporter for its values."""

    def __init__(self, subject: Hook, path: Path, parent: _Builder | None) -> None:
        self.parent = parent
        self.path = path
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

    def push_call(self, hook: Hook, path: Path, args: list[Any]) -> RpcPromise[Any]:
        from .stubs import RpcPromise

        encoded = self._encode(args)[0]
        self.instructions.append(["pipeline", self.capture(hook), path, encoded])
        return RpcPromise(_VarHook(self, len(self.instructions)))

    def push_get(self, hook: Hook, path: Path) -> Hook:
        self.instructions.append(["pipeline", self.capture(hook), path])
        return _VarHook(self, len(self.instructions))

    # Exporter
    def encode_ref(self, ref: Any) -> list[Any]:
        from .stubs import RpcPromise

        stub: RpcStub = ref
        idx = self.capture(stub._hook)
        path = list(stub._path)
        if isinstance(stub, RpcPromise):
            return ["pipeline", idx, path] if path else ["pipeline", idx]
        return ["import", idx]

    def encode_target(self, target: Any) -> list[Any]:
        raise TypeError(
            "Can't construct an RpcTarget or RPC callback inside a mapper function. Try "
            "creating a new RpcStub outside the callback first, then using it inside the callback."
        )

    def on_send_error(self, exc: BaseException) -> BaseException | None:
        return None


def record_map(
    hook: Hook,
    path: Path,
    fn: Callable[[Any], Any],
    placeholder: type[RpcPromise[Any]] | None = None,
) -> RpcPromise[Any]:
    """Record ``fn`` as a mapper over the value at ``hook``/``path`` and send it.

    ``placeholder`` is the promise class ``fn`` receives (typed stubs pass their element type).
    """
    from .stubs import RpcPromise, RpcStub

    parent = _map_state.builder
    builder = _Builder(hook, path, parent)
    _map_state.builder = builder
    try:
        result = fn((placeholder or RpcPromise)(_VarHook(builder, 0)))
        if inspect.isawaitable(result) and not isinstance(result, RpcStub):
            if inspect.iscoroutine(result):
                result.close()
            raise TypeError("RPC map() callbacks cannot be async.")
        builder.instructions.append(builder._encode(result))
    except BaseException:
        for cap in builder.captures:
            cap.dispose()
        raise
    finally:
        _map_state.builder = parent
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
        return RpcPromise(_VarHook(parent, len(parent.instructions)))
    return RpcPromise(hook.map(path, builder.captures, builder.instructions))


# --------------------------------------------------------------------------------------------
# Running


class _Applicator:
    """Importer for decoding instructions: references name variables and captures."""

    def __init__(self, captures: list[Hook], variables: list[Hook]) -> None:
        self.captures = captures
        self.variables = variables
        self.building: Payload | None = None

    def _var(self, idx: int) -> Hook:
        if idx < 0 and -idx <= len(self.captures):
            return self.captures[-idx - 1]
        if 0 <= idx < len(self.variables):
            return self.variables[idx]
        raise RpcError(f"mapper refers to an unknown variable: {idx}")

    def _record(self, stub: RpcStub, promise: bool) -> RpcStub:
        assert self.building is not None
        self.building.owned.append(stub)
        if promise:
            self.building.has_promises = True
        return stub

    def decode(self, expr: Any) -> Payload:
        prev = self.building
        payload = self.building = Payload(None)
        try:
            payload.value = decode(expr, self, DEFAULT_LIMITS)
        except BaseException:
            payload.dispose()
            raise
        finally:
            self.building = prev
        return payload

    def import_ref(
        self, promise: bool, ref_id: int, path: list[str | int] | None, args: Any
    ) -> Any:
        from .stubs import RpcPromise, RpcStub

        hook = self._var(ref_id)
        if args is not None:
            prev = self.building
            payload = self.building = Payload(None)
            try:
                payload.value = args()
            finally:
                self.building = prev
            result = hook.call(path or [], payload)
        elif path:
            result = hook.get(path)
        else:
            result = hook.dup()
        return self._record(RpcPromise(result) if promise else RpcStub(result), promise)

    def export_ref(self, ref_id: int, promise: bool) -> Any:
        raise RpcError("A mapper function cannot refer to exports.")

    def remap_ref(
        self, ref_id: int, path: list[str | int], captures: list[Any], instructions: list[Any]
    ) -> Any:
        from .stubs import RpcPromise

        hooks: list[Hook] = []
        for cap in captures:
            if type(cap) is not list or len(cap) != 2 or cap[0] != "import":
                raise RpcError("unknown map capture")
            hooks.append(self._var(cap[1]).dup())
        return self._record(RpcPromise(self._var(ref_id).map(path, hooks, instructions)), True)

    def unsupported(self, what: str) -> Any:
        raise RpcError(f"{what} cannot be used inside a mapper function.")


def _apply_one(
    elem: Any, owner: Payload | None, captures: list[Hook], instructions: list[Any]
) -> Payload:
    from .stubs import RpcStub

    if not instructions:
        raise RpcError("Invalid empty mapper function.")
    variables: list[Hook] = [ValueHook(copy_value(elem, owner))]
    app = _Applicator(captures, variables)
    try:
        for instr in instructions[:-1]:
            payload = app.decode(instr)
            value = payload.value
            if isinstance(value, RpcStub) and not value._path and payload.owned == [value]:
                variables.append(value._take_hook_and_forget())
            else:
                variables.append(ValueHook(payload))
        return app.decode(instructions[-1])
    finally:
        for v in variables:
            v.dispose()


def run_map(hook: Hook, path: Path, captures: list[Hook], instructions: list[Any]) -> Hook:
    """Run received map instructions over the value at ``hook``/``path``; the result hook.

    The work counts against the :data:`map_budget` of the context it is started in."""
    hook = hook.dup()  # our own reference: the caller may release its own before we run
    budget = map_budget.get()
    if budget is not None:
        budget.start()

    async def go() -> Hook:
        handed_over = False
        try:
            if budget is not None:
                budget.charge(MAP_COST)
            payload = await hook.pull()
            reached = follow(payload.value, path)
            if reached.hook_owner is not None:
                handed_over = True
                return reached.hook_owner._hook.map(reached.rest, captures, instructions)  # type: ignore[no-any-return]
            value = reached.value
            if value is None or value is undefined:
                return ValueHook(Payload(value))
            cost = len(instructions) or 1
            turn = _turn()
            if type(value) is not list:
                if budget is not None:
                    budget.charge(cost)
                await turn.wait()
                turn.charge(cost)
                return ValueHook(_apply_one(value, payload, captures, instructions))
            if budget is not None:
                budget.charge(len(value) * cost)
            out = Payload([])
            try:
                for elem in value:
                    if turn.work >= TURN_WORK:
                        await turn.wait()  # let other connections in
                    turn.charge(cost)
                    one = _apply_one(elem, payload, captures, instructions)
                    out.value.append(one.value)
                    out.owned.extend(one.owned)
                    out.has_promises = out.has_promises or one.has_promises
            except BaseException:
                out.dispose()
                raise
            return ValueHook(out)
        except Exception as e:
            return ErrorHook(e)
        finally:
            hook.dispose()
            if not handed_over:
                for cap in captures:
                    cap.dispose()
            if budget is not None:
                budget.end()

    return PromiseHook(spawn(go()))
