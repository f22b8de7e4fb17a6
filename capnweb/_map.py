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

import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._codec import DEFAULT_LIMITS, _Encoder, decode
from ._hooks import ErrorHook, Hook, Path, Payload, PromiseHook, ValueHook, copy_value, follow
from ._tasks import spawn
from ._values import undefined
from .errors import RpcError

if TYPE_CHECKING:
    from .stubs import RpcPromise, RpcStub

__all__ = ["record_map", "run_map"]


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
    """Run received map instructions over the value at ``hook``/``path``; the result hook."""
    hook = hook.dup()  # our own reference: the caller may release its own before we run

    async def go() -> Hook:
        handed_over = False
        try:
            payload = await hook.pull()
            reached = follow(payload.value, path)
            if reached.hook_owner is not None:
                handed_over = True
                return reached.hook_owner._hook.map(reached.rest, captures, instructions)  # type: ignore[no-any-return]
            value = reached.value
            if value is None or value is undefined:
                return ValueHook(Payload(value))
            if type(value) is list:
                out = Payload([])
                for elem in value:
                    one = _apply_one(elem, payload, captures, instructions)
                    out.value.append(one.value)
                    out.owned.extend(one.owned)
                    out.has_promises = out.has_promises or one.has_promises
                return ValueHook(out)
            return ValueHook(_apply_one(value, payload, captures, instructions))
        except Exception as e:
            return ErrorHook(e)
        finally:
            hook.dispose()
            if not handed_over:
                for cap in captures:
                    cap.dispose()

    return PromiseHook(spawn(go()))
