"""Checking received values against annotations, built once per type and per method.

A *converter* takes a received value and returns it as the annotation wants it (a dict becomes
the annotated dataclass, a list the annotated tuple) or raises ``TypeError`` saying where and
what was expected. Arguments are checked before any application code runs.

A pydantic model (or a ``pydantic.TypeAdapter``, which generated stubs use for model fields)
is validated by pydantic itself; its errors become one ``TypeError`` naming each field.

A stream (``AsyncIterator[T]``, ``AsyncIterable[T]``, ``AsyncGenerator[T, None]``,
``ReadableStream[T]``) must be an async iterable; its chunks are converted as they are read
(:class:`CheckedStream`). A ``WritableStream[T]`` must be a writable stream.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import sys
import typing
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any, Final, Literal, TypeVar, get_args, get_origin

from typing_extensions import is_typeddict

from ._codec import WireRef, WireTarget, WireWritable
from ._readable import ReadableStream
from ._tasks import spawn
from ._values import (
    URL,
    BigInt,
    Blob,
    Headers,
    Request,
    Response,
    TypedArray,
    UndefinedType,
    undefined,
)
from .interface import (
    Member,
    is_capability_type,
    is_model_class,
    stream_chunk,
    union_args,
    writable_chunk,
)

__all__ = ["CheckedStream", "Converter", "args_checker", "converter"]

Converter = Callable[[Any, str], Any]

_cache: dict[Any, Converter] = {}


class _Mismatch(TypeError):
    pass


def _name(tp: Any) -> str:
    if tp is type(None) or tp is None:
        return "None"
    if isinstance(tp, type):
        return tp.__name__
    return str(tp).replace("typing.", "")


def _fail(where: str, tp: Any, value: Any) -> _Mismatch:
    return _Mismatch(f"{where} must be {_name(tp)}, got {type(value).__name__}")


def converter(tp: Any) -> Converter:
    """The converter for annotation ``tp`` (cached)."""
    try:
        return _cache[tp]
    except (KeyError, TypeError):
        pass
    conv = _build(tp)
    try:
        _cache[tp] = conv
    except TypeError:
        pass
    return conv


def _identity(v: Any, where: str) -> Any:
    return v


def _instance(*types_: type, exclude: type | None = None, show: Any = None) -> Converter:
    def check(v: Any, where: str) -> Any:
        if isinstance(v, types_) and not (exclude is not None and isinstance(v, exclude)):
            return v
        raise _fail(where, show if show is not None else types_[0], v)

    return check


_SIMPLE: Final[dict[Any, Converter]] = {
    bool: _instance(bool),
    int: _instance(int, exclude=bool),
    BigInt: _instance(int, exclude=bool, show=BigInt),
    float: _instance(int, float, exclude=bool, show=float),
    str: _instance(str),
    bytes: _instance(bytes, bytearray, memoryview, show=bytes),
    datetime: _instance(datetime),
    URL: _instance(URL),
    Headers: _instance(Headers),
    TypedArray: _instance(TypedArray),
    Blob: _instance(Blob),
    Request: _instance(Request),
    Response: _instance(Response),
}


def _none(v: Any, where: str) -> Any:
    if v is None or v is undefined:
        return None
    raise _fail(where, None, v)


def _build(tp: Any) -> Converter:
    if tp is Any or tp is object or isinstance(tp, TypeVar):
        return _identity
    if tp is None or tp is type(None):
        return _none
    if tp is UndefinedType:
        return _instance(UndefinedType)
    simple = _SIMPLE.get(tp)
    if simple is not None:
        return simple
    origin = get_origin(tp)
    if origin is typing.Annotated:
        return converter(get_args(tp)[0])
    members = union_args(tp)
    if members is not None:
        return _union(tp, [converter(m) for m in members])
    if origin is Literal:
        return _literal(tp, get_args(tp))
    chunk = stream_chunk(tp)
    if chunk is not None:
        return _readable(chunk, converter(chunk))
    if writable_chunk(tp) is not None:
        return _writable
    if is_capability_type(tp):
        return _capability(tp)
    if origin in (list, collections.abc.Sequence, collections.abc.Iterable, set, frozenset):
        args = get_args(tp)
        return _sequence(tp, converter(args[0]) if args else _identity)
    if origin is tuple:
        return _tuple(tp, get_args(tp))
    if origin in (dict, collections.abc.Mapping):
        args = get_args(tp)
        return _mapping(tp, converter(args[1]) if len(args) == 2 else _identity)
    if isinstance(tp, type):
        if is_model_class(tp):
            return _model(tp)
        if is_typeddict(tp):
            return _typeddict(tp)
        if dataclasses.is_dataclass(tp):
            return _dataclass(tp)
        if tp is list:
            return _sequence(tp, _identity)
        if tp is dict:
            return _mapping(tp, _identity)
        if tp is tuple:
            return _tuple(tp, (Any, ...))
        return _instance(tp)
    adapters = sys.modules.get("pydantic.type_adapter")
    if adapters is not None and isinstance(tp, adapters.TypeAdapter):
        return _adapted(tp)
    return _identity  # an annotation we cannot check (e.g. a forward reference left as str)


def _union(tp: Any, convs: list[Converter]) -> Converter:
    def check(v: Any, where: str) -> Any:
        for conv in convs:
            try:
                return conv(v, where)
            except _Mismatch:
                continue
        raise _fail(where, tp, v)

    return check


def _literal(tp: Any, values: tuple[Any, ...]) -> Converter:
    allowed = [(type(x), x) for x in values]

    def check(v: Any, where: str) -> Any:
        if (type(v), v) in allowed:
            return v
        raise _Mismatch(f"{where} must be one of {list(values)!r}, got {v!r:.60}")

    return check


def _capability(tp: Any) -> Converter:
    # A received stub annotated with a (generated) stub class is handed over as that class.
    typed = tp if isinstance(tp, type) and issubclass(tp, WireRef) else None

    def check(v: Any, where: str) -> Any:
        if isinstance(v, WireRef):
            if typed is not None and not isinstance(v, typed):
                return v._cast(typed)  # type: ignore[attr-defined]
            return v
        if isinstance(v, WireTarget) or (callable(v) and not isinstance(v, type)):
            return v
        raise _Mismatch(f"{where} must be a capability ({_name(tp)}), got {type(v).__name__}")

    return check


def _readable(chunk: Any, item: Converter) -> Converter:
    """A stream (any async iterable): its chunks are converted by ``item`` as they are read."""

    def check(v: Any, where: str) -> Any:
        if isinstance(v, type) or not hasattr(type(v), "__aiter__"):
            raise _Mismatch(
                f"{where} must be an async iterable of {_name(chunk)} (a stream), "
                f"got {type(v).__name__}"
            )
        if item is _identity:
            return v if hasattr(type(v), "__anext__") else aiter(v)
        return CheckedStream(aiter(v), item, where)

    return check


class CheckedStream(ReadableStream[Any]):
    """A stream whose chunks are converted (and checked) against the declared chunk type as
    they are read: a chunk that does not fit raises ``TypeError`` naming it (``... argument
    'lines' chunk 3 must be str, got int``, counted from 0) and cancels the source.

    What a parameter or a result declared ``AsyncIterator[T]`` (``AsyncIterable[T]``,
    ``ReadableStream[T]``...) holds when ``T``'s values are checked. It has the methods of a
    received ``ReadableStream`` (it is one: ``cancel``, ``aclose``, ``collect``, ``locked``), is
    read once, and is sent on like any stream.
    """

    __slots__ = ("_check", "_error", "_index", "_source", "_where")

    def __init__(
        self,
        source: AsyncIterator[Any],
        check: Converter,
        where: str,
        error: type[TypeError] = TypeError,
    ) -> None:
        self._source = source
        self._check = check
        self._where = where
        self._index = 0
        self._taken = False
        self._error = error
        """What a bad chunk raises (validated results: ``RpcTypeError``)."""

    def __aiter__(self) -> CheckedStream:
        return self

    async def __anext__(self) -> Any:
        self._taken = True
        chunk = await anext(self._source)
        index = self._index
        self._index = index + 1
        try:
            return self._check(chunk, f"{self._where} chunk {index}")
        except TypeError as e:
            error = self._error(str(e))
        del chunk
        self.cancel(error)
        raise error

    def cancel(self, reason: BaseException | str | None = None) -> None:
        """Stop reading: the source is cancelled (a local async generator is closed)."""
        self._taken = True
        cancel = getattr(self._source, "cancel", None)
        if callable(cancel):  # a ReadableStream: the producer is told
            cancel(reason)
            return
        close = getattr(self._source, "aclose", None)
        if close is not None:
            spawn(close())

    async def aclose(self) -> None:
        """Cancel the stream (a local async generator is closed before this returns)."""
        self._taken = True
        source = self._source
        if callable(getattr(source, "cancel", None)):
            source.cancel()  # type: ignore[attr-defined]
            return
        close = getattr(source, "aclose", None)
        if close is not None:
            await close()

    async def collect(self) -> list[Any]:
        """Every chunk to the end, in a list (only for streams known to be short)."""
        return [chunk async for chunk in self]

    @property
    def locked(self) -> bool:
        """Whether a reader has started on this stream (it can be read only once)."""
        return self._taken or bool(getattr(self._source, "locked", False))

    def __repr__(self) -> str:
        return f"<stream of {self._where}, chunks checked>"


def _writable(v: Any, where: str) -> Any:
    if isinstance(v, WireWritable):
        return v
    raise _Mismatch(f"{where} must be a WritableStream, got {type(v).__name__}")


def _sequence(tp: Any, item: Converter) -> Converter:
    def check(v: Any, where: str) -> Any:
        if type(v) is not list and not isinstance(v, list | tuple):
            raise _fail(where, tp, v)
        if item is _identity:
            return list(v)
        return [item(x, f"{where}[{i}]") for i, x in enumerate(v)]

    return check


def _tuple(tp: Any, args: tuple[Any, ...]) -> Converter:
    if len(args) == 2 and args[1] is Ellipsis:
        each = converter(args[0])

        def check_var(v: Any, where: str) -> Any:
            if not isinstance(v, list | tuple):
                raise _fail(where, tp, v)
            return tuple(each(x, f"{where}[{i}]") for i, x in enumerate(v))

        return check_var
    convs = [converter(a) for a in args]

    def check(v: Any, where: str) -> Any:
        if not isinstance(v, list | tuple) or len(v) != len(convs):
            raise _Mismatch(f"{where} must be {_name(tp)}, got {v!r:.60}")
        return tuple(c(x, f"{where}[{i}]") for i, (c, x) in enumerate(zip(convs, v, strict=True)))

    return check


def _mapping(tp: Any, value: Converter) -> Converter:
    def check(v: Any, where: str) -> Any:
        if not isinstance(v, dict):
            raise _fail(where, tp, v)
        out = {}
        for k, x in v.items():
            if not isinstance(k, str):
                raise _Mismatch(f"{where} keys must be str, got {type(k).__name__}")
            out[k] = value(x, f"{where}[{k!r}]")
        return out

    return check


def _fields(tp: Any) -> dict[str, Converter]:
    hints = typing.get_type_hints(tp, include_extras=True)
    return {k: converter(h) for k, h in hints.items()}


def _typeddict(tp: Any) -> Converter:
    state: dict[str, Any] = {}

    def check(v: Any, where: str) -> Any:
        if not isinstance(v, dict):
            raise _fail(where, tp, v)
        if "fields" not in state:
            state["fields"] = _fields(tp)
        fields: dict[str, Converter] = state["fields"]
        required: frozenset[str] = getattr(tp, "__required_keys__", frozenset(fields))
        missing = [k for k in required if k not in v]
        if missing:
            raise _Mismatch(f"{where} ({tp.__name__}) is missing key(s) {sorted(missing)}")
        out = dict(v)
        for k, conv in fields.items():
            if k in v:
                out[k] = conv(v[k], f"{where}[{k!r}]")
        return out

    return check


def _dataclass(tp: Any) -> Converter:
    state: dict[str, Any] = {}

    def check(v: Any, where: str) -> Any:
        if isinstance(v, tp):
            return v
        if not isinstance(v, dict):
            raise _fail(where, tp, v)
        if "fields" not in state:
            hints = _fields(tp)
            state["fields"] = [
                (f.name, hints.get(f.name, _identity), _has_default(f))
                for f in dataclasses.fields(tp)
                if f.init
            ]
        kwargs = {}
        for name, conv, optional in state["fields"]:
            if name in v and v[name] is not undefined:
                kwargs[name] = conv(v[name], f"{where}.{name}")
            elif not optional:
                raise _Mismatch(f"{where} ({tp.__name__}) is missing field {name!r}")
        return tp(**kwargs)

    return check


def _has_default(f: dataclasses.Field[Any]) -> bool:
    return f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING


def _model(tp: Any) -> Converter:
    from pydantic import RootModel, ValidationError  # loaded: tp is a model

    objects_only = not issubclass(tp, RootModel)

    def check(v: Any, where: str) -> Any:
        if isinstance(v, tp):
            return v
        if v is undefined or (objects_only and not isinstance(v, dict)):
            raise _fail(where, tp, v)
        try:
            return tp.model_validate(_defined(v))
        except ValidationError as e:
            raise _Mismatch(_pydantic_errors(where, e)) from None

    return check


def _adapted(adapter: Any) -> Converter:
    from pydantic import ValidationError

    def check(v: Any, where: str) -> Any:
        try:
            return adapter.validate_python(_defined(v))
        except ValidationError as e:
            raise _Mismatch(_pydantic_errors(where, e)) from None

    return check


def _defined(v: Any) -> Any:
    """``v`` with the keys holding ``undefined`` left out (absent, as in JavaScript)."""
    if type(v) is dict:
        return {k: _defined(x) for k, x in v.items() if x is not undefined}
    if type(v) is list:
        return [_defined(x) for x in v]
    return v


_MAX_ERRORS: Final = 5


def _pydantic_errors(where: str, error: Any) -> str:
    """pydantic's errors, naming each field: ``where.address.zip: Field required`` for one,
    ``where: 2 errors: name: Field required; age: Input should be ...`` for several."""
    errors = error.errors(include_url=False, include_context=False, include_input=False)
    parts = []
    for e in errors[:_MAX_ERRORS]:
        loc = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in e["loc"])
        parts.append((loc, e["msg"]))
    if len(errors) == 1:
        loc, msg = parts[0]
        return f"{where}{loc}: {msg}"
    listed = "; ".join(f"{loc.removeprefix('.')}: {msg}" if loc else msg for loc, msg in parts)
    more = f"; and {len(errors) - _MAX_ERRORS} more" if len(errors) > _MAX_ERRORS else ""
    return f"{where}: {len(errors)} errors: {listed}{more}"


def convert(value: Any, tp: Any, where: str = "value") -> Any:
    """``value`` checked against (and converted to) annotation ``tp``; TypeError if it isn't."""
    return converter(tp)(value, where)


def args_checker(member: Member, owner: str) -> Callable[[list[Any]], list[Any]]:
    """A function checking a call's positional arguments against ``member``'s parameters.

    Trailing or explicit ``undefined`` arguments take the parameter's default; a required
    parameter whose annotation admits ``undefined`` (``Any``, ``X | None``...) receives it as
    a value, as in JavaScript (``echo(undefined)``).
    """
    params = member.params
    convs = [converter(p.annotation) for p in params]
    label = f"{owner}.{member.name}()"
    n_params = len(params)
    lenient = [p.required and _admits_undefined(c) for p, c in zip(params, convs, strict=True)]

    def check(args: list[Any]) -> list[Any]:
        n = len(args)
        if n > n_params and not member.variadic:
            raise TypeError(f"{label} takes {n_params} argument(s) but {n} were given")
        out: list[Any] = []
        for i in range(n_params):
            p = params[i]
            if i < n and args[i] is not undefined:
                out.append(convs[i](args[i], f"{label} argument '{p.name}'"))
            elif lenient[i]:
                out.append(convs[i](undefined, f"{label} argument '{p.name}'"))
            elif p.required:
                raise TypeError(f"{label} missing required argument '{p.name}'")
            elif i < n or any(a is not undefined for a in args[i + 1 :]):
                out.append(p.default)
            else:
                break
        if n > n_params:
            out.extend(args[n_params:])
        return out

    return check


def _admits_undefined(conv: Converter) -> bool:
    try:
        conv(undefined, "")
    except TypeError:
        return False
    return True
