"""The wire codec: Python values <-> Cap'n Web expressions, and JSON text <-> messages.

Sans-IO: no sessions, sockets or event loop. References to capabilities are delegated to two
small callback objects, an :class:`Exporter` when encoding and an :class:`Importer` when
decoding, which the session provides (and a stub-free default for plain data).

Expression rules (``docs/values.md`` has the Python side of each):
- every JSON value except an array is a literal; an array is a special form named by its
  first element, and a literal array is escaped as ``[[e0, e1, ...]]``;
- receiver-side limits (message size in UTF-16 code units, nesting depth, bigint length)
  raise :class:`~capnweb.errors.RpcLimitError`; malformed expressions raise
  :class:`~capnweb.errors.RpcProtocolError`. Both abort the session that received them.

The tree walks and ``encode_text`` have a compiled form, ``capnweb/_speedups.c``, used when it
is built (``SPEEDUPS``; ``CAPNWEB_PURE_PYTHON=1`` turns it off). It handles plain data itself
and hands everything else to the methods here, so results, errors and limits are the same.
"""

from __future__ import annotations

import binascii
import dataclasses
import enum
import importlib
import inspect
import json
import math
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Protocol

from ._values import (
    TYPED_ARRAY_KINDS,
    URL,
    BigInt,
    Blob,
    Headers,
    JsDate,
    Request,
    Response,
    TypedArray,
    UndefinedType,
    datetime_to_ms,
    ms_to_date,
    undefined,
)
from .errors import (
    RpcError,
    RpcLimitError,
    RpcProtocolError,
    error_message,
    error_props,
    js_error_name,
    make_error,
)

__all__ = [
    "DEFAULT_LIMITS",
    "SPEEDUPS",
    "Exporter",
    "Importer",
    "Limits",
    "WireReadable",
    "WireRef",
    "WireTarget",
    "WireWritable",
    "decode",
    "dumps",
    "encode",
    "encode_text",
    "loads",
]

MAX_SAFE_INTEGER: Final = 2**53 - 1


@dataclass(frozen=True, slots=True)
class Limits:
    """What one peer may make this side spend; exceeding a limit costs that peer only.

    The first three are the TypeScript reference's (a message over them aborts the session);
    the others bound the work, memory and time a peer can ask of a server (docs/security.md).
    """

    max_message_size: int = 33_554_432
    """Largest accepted message, in UTF-16 code units (astral characters count 2). A
    WebSocket frame may hold at most three bytes per unit."""
    max_depth: int = 256
    """Deepest accepted nesting of arrays, objects, error props and call arguments."""
    max_bigint_digits: int = 16_384
    """Longest accepted bigint string, counting a leading ``-``."""
    max_map_work: int = 100_000
    """Instructions that the ``map()`` calls of one received message may apply, nested maps
    included (a list of n elements mapped by k instructions costs n * k). Past it, that map
    rejects with :class:`RpcLimitError`; the session goes on."""
    max_session_map_work: int = 1_000_000
    """The same, summed over the maps that one session has running at once."""
    max_refs: int = 100_000
    """Entries a peer may make in each of this side's tables at once: its pushes not yet
    released (exports), and the capabilities and promises it introduced (imports). One more
    aborts the session."""
    max_batch_size: int = 16_777_216
    """Bytes of an HTTP batch request body; a larger one is answered 413 unread."""
    batch_timeout: float = 60.0
    """Seconds an HTTP batch may run; then it is answered with its open calls rejected
    (an ``abort``) and everything it held is released."""
    orphan_timeout: float = 60.0
    """Seconds the calls of a session may still run once it has ended (their results go
    nowhere); then they are cancelled, so a peer that leaves cannot leave work behind."""
    send_high_water: int = 1_048_576
    """Unsent output bytes of one connection above which the server stops reading that
    peer (a peer that never reads costs at most about this, plus running calls' results)."""
    send_low_water: int = 262_144
    """Unsent output bytes below which a paused peer is read again."""
    max_stream_buffer: int = 16_777_216
    """Bytes of received stream chunks one session holds that its readers have not taken
    yet. A peer that writes past it without waiting for acknowledgements has that stream
    failed with :class:`RpcLimitError` (the peer's own window keeps it far below)."""
    max_blob_size: int = 134_217_728
    """Largest Blob a peer may send; its bytes are collected before delivery. A larger one
    fails the value that holds it with :class:`RpcLimitError`; the session goes on."""
    max_unacked_writes: int = 16_384
    """Stream writes one session has sent that the peer has not answered yet, over all its
    streams; past it, that session's writers wait for answers. Each costs about half a KiB
    until answered: a peer that takes streams by the hundred and never answers holds about
    8 MiB here, not half a MiB per stream. (One stream's window holds about a thousand small
    writes at most, so this binds only past about sixteen streams held unread at once.)"""
    max_batch_stream: int = 1_048_576
    """Bytes of stream writes (message text) one HTTP batch response may carry. A stream in a
    batch result goes whole in the response, close included (the client can acknowledge
    nothing before it has the response); one that would go past this is aborted there with
    :class:`RpcLimitError`."""

    def __post_init__(self) -> None:
        for name in self.__slots__:
            value = getattr(self, name)
            if not value >= 0 or (name == "batch_timeout" and not value > 0):
                raise ValueError(f"Limits.{name} cannot be {value!r}")
        if self.send_low_water > self.send_high_water:
            raise ValueError("Limits.send_low_water must not be above send_high_water")

    @property
    def max_frame_size(self) -> int:
        """Largest WebSocket message, in bytes, that can hold a message of the size limit."""
        return 3 * self.max_message_size


DEFAULT_LIMITS: Final = Limits()

# Keys that JavaScript's Object.prototype owns, plus toJSON: dropped from received objects.
PROTO_KEYS: Final = frozenset(
    (
        "__proto__",
        "constructor",
        "hasOwnProperty",
        "isPrototypeOf",
        "propertyIsEnumerable",
        "toLocaleString",
        "toString",
        "valueOf",
        "__defineGetter__",
        "__defineSetter__",
        "__lookupGetter__",
        "__lookupSetter__",
        "toJSON",
    )
)

_SEND_DEPTH: Final = 256
_BIGINT_RE: Final = re.compile(r"-?[0-9]+")


class WireRef:
    """Base of values that encode as references to what a session already tracks (stubs and
    promises): the exporter's ``encode_ref`` names them."""

    __slots__ = ()


class WireTarget:
    """Base of objects passed by reference and exported anew (``RpcTarget``): the exporter's
    ``encode_target`` names them. Plain functions are exported the same way.

    The codec knows what travels by reference only through these two bases, never through the
    runtime's classes, which live above it.
    """

    __slots__ = ()


class WireReadable:
    """Base of the stream values the codec knows without importing the runtime: a received
    ``ReadableStream`` (it may be sent on, like any async iterable)."""

    __slots__ = ()


class WireWritable:
    """Base of ``WritableStream``: passed by reference as ``["writable", id]``."""

    __slots__ = ()


class Exporter(Protocol):
    """What the encoder asks of a session: ids for capabilities, and error redaction."""

    def encode_ref(self, ref: Any) -> list[Any]:
        """Expression for a stub or promise (``import``/``pipeline``/``export``/``promise``)."""
        ...

    def encode_target(self, target: Any) -> list[Any]:
        """Expression (``["export", id]``) for an RpcTarget or a callable, exported anew."""
        ...

    def on_send_error(self, exc: BaseException) -> BaseException | None:
        """Substitute for an outgoing error; a returned error's traceback is sent as stack."""
        ...

    def encode_readable(self, source: Any) -> list[Any]:
        """``["readable", id]`` for an async iterable, after a ``["pipe"]`` its chunks go to."""
        ...

    def encode_writable(self, sink: Any) -> list[Any]:
        """``["writable", id]`` for a WritableStream, exported anew."""
        ...


class Importer(Protocol):
    """What the decoder asks of a session: values for the reference forms."""

    def import_ref(
        self,
        promise: bool,
        ref_id: int,
        path: list[str | int] | None,
        args: Callable[[], list[Any]] | None,
    ) -> Any:
        """Value for ``["import", ...]`` (promise=False) or ``["pipeline", ...]`` (True).

        ``args``, when given, decodes the call arguments: call it while collecting them.
        """
        ...

    def export_ref(self, ref_id: int, promise: bool) -> Any:
        """Value for ``["export", id]`` (a stub) or ``["promise", id]`` (promise=True)."""
        ...

    def remap_ref(
        self, ref_id: int, path: list[str | int], captures: list[Any], instructions: list[Any]
    ) -> Any:
        """Value for ``["remap", ...]``: the result of a map() the peer recorded."""
        ...

    def unsupported(self, what: str) -> Any:
        """Value standing for a form this implementation does not support yet."""
        ...

    def readable_ref(self, pipe_id: int) -> Any:
        """Value for ``["readable", id]``: the reading end of the peer's pipe ``id``."""
        ...

    def writable_ref(self, ref_id: int) -> Any:
        """Value for ``["writable", id]``: a WritableStream whose writes go to the peer."""
        ...

    def blob_ref(self, mime: str, content: Any) -> Any:
        """Value for ``["blob", type, readable]``: a promise of the Blob, once all read."""
        ...


# --------------------------------------------------------------------------------------------
# JSON text


try:  # pragma: no cover - exercised whichever way the environment is
    import orjson as _orjson
except ImportError:  # pragma: no cover
    _orjson = None  # type: ignore[assignment]

# The compiled walks (capnweb/_speedups.c, built when a C compiler is at hand) unless
# CAPNWEB_PURE_PYTHON is set; SPEEDUPS (at the end) tells which is in use.
try:  # pragma: no cover - exercised whichever way the environment is
    if os.environ.get("CAPNWEB_PURE_PYTHON", "") not in ("", "0"):
        raise ImportError("CAPNWEB_PURE_PYTHON is set")
    from . import _speedups as _c
except ImportError:  # pragma: no cover
    _c = None  # type: ignore[assignment]

COMPILED: Final = _c
"""``capnweb._speedups`` if it is built and not turned off, else None (the WebSocket framing
uses it too)."""

_json_dumps = json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, separators=(",", ":"), check_circular=False
).encode
_LONE_SURROGATE: Final = re.compile("[\ud800-\udfff]")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _parse_int(digits: str) -> Any:
    # Long literals are doubles anyway (see _Decoder.value); this also avoids int()'s limit.
    return int(digits) if len(digits) <= 17 else float(digits)


_json_loads = json.JSONDecoder(parse_constant=_reject_constant, parse_int=_parse_int).decode


def dumps(message: Any) -> str:
    """Serialize an encoded message (a JSON tree) to text.

    As ``JSON.stringify``: characters beyond ASCII go as they are, and only lone surrogates
    (which UTF-8 cannot carry) are escaped, as ``\\udXXX``.
    """
    if _orjson is not None:
        try:
            return _orjson.dumps(message).decode()
        except TypeError:
            pass  # lone surrogates, nesting deeper than orjson's limit: the stdlib writes them
    return _dumps_std(message)


def _dumps_std(message: Any) -> str:
    """``dumps`` with the stdlib encoder (without orjson, or for what orjson refuses)."""
    text = _json_dumps(message)
    if not text.isascii():  # a raw surrogate can only be in a string: escape it there
        text = _LONE_SURROGATE.sub(lambda m: f"\\u{ord(m[0]):04x}", text)
    return text


def utf16_length(text: str) -> int:
    """Length of ``text`` in UTF-16 code units (what JavaScript's ``length`` counts)."""
    if text.isascii():
        return len(text)
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def loads(text: str | bytes, limits: Limits = DEFAULT_LIMITS) -> Any:
    """Parse one message's text, enforcing the size limit before parsing."""
    if isinstance(text, bytes | bytearray | memoryview):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as e:
            raise RpcProtocolError(f"message is not valid UTF-8: {e}") from None
    limit = limits.max_message_size
    if len(text) * 2 > limit and utf16_length(text) > limit:
        raise RpcLimitError(f"Incoming message exceeds maximum size of {limit} UTF-16 code units.")
    try:
        if _orjson is not None:
            try:
                return _orjson.loads(text)
            except _orjson.JSONDecodeError:
                pass  # lone surrogates and huge integers: the stdlib parser takes them
        return _json_loads(text)
    except (ValueError, RecursionError) as e:
        raise RpcProtocolError(f"message is not valid JSON: {e}") from None


# --------------------------------------------------------------------------------------------
# Encoding: Python value -> expression


# Python refuses int <-> str conversions beyond sys.get_int_max_str_digits() (4300 by default,
# 640 at the least), well below the bigints the wire allows: convert in chunks below that.
_CHUNK: Final = 600
_CHUNK_POW: Final = 10**_CHUNK


def _decimal(n: int) -> str:
    """``str(n)`` for any size of int."""
    if -_CHUNK_POW < n < _CHUNK_POW:
        return str(n)
    sign, n = ("-", -n) if n < 0 else ("", n)
    parts: list[str] = []
    while n >= _CHUNK_POW:
        n, low = divmod(n, _CHUNK_POW)
        parts.append(str(low).zfill(_CHUNK))
    parts.append(str(n))
    return sign + "".join(reversed(parts))


def _from_decimal(text: str) -> int:
    """``int(text)`` for a ``-?[0-9]+`` string of any length."""
    if len(text) <= _CHUNK:
        return int(text)
    digits = text.lstrip("-")
    n = 0
    for i in range(0, len(digits), _CHUNK):
        chunk = digits[i : i + _CHUNK]
        n = n * 10 ** len(chunk) + int(chunk)
    return -n if text[0] == "-" else n


def _base64_module() -> Any:
    """pybase64 (SIMD base64, the "fast" extra: some forty times the standard library's speed,
    which is most of the cost of a stream of bytes) when installed, else ``base64``."""
    try:
        return importlib.import_module("pybase64")
    except ImportError:  # pragma: no cover - exercised whichever way the environment is
        return importlib.import_module("base64")


_b64decode: Final[Callable[..., bytes]] = _base64_module().b64decode
_b64encode: Final[Callable[..., bytes]] = _base64_module().b64encode


def _b64(data: bytes) -> str:
    return _b64encode(data).rstrip(b"=").decode("ascii")


def encode(value: Any, exporter: Exporter | None = None) -> Any:
    """Encode a Python value as an expression (a JSON-compatible tree).

    Raises TypeError for values that cannot be sent, and for trees deeper than 256 levels
    (which is also how cycles are caught).
    """
    return _Encoder(exporter).value(value, 0)


def encode_text(value: Any, exporter: Exporter | None = None) -> str:
    """``dumps(encode(value, exporter))``; the compiled codec writes it without the tree.

    The text is ``dumps``'s; the compiled writer spells numbers as orjson does also where
    ``dumps`` falls back to the stdlib encoder (``0.00001`` for its ``1e-05``).
    """
    return dumps(encode(value, exporter))


class _Encoder:
    __slots__ = ("exporter",)

    def __init__(self, exporter: Exporter | None) -> None:
        self.exporter = exporter

    def value(self, v: Any, depth: int) -> Any:
        if depth >= _SEND_DEPTH:  # before the scalars: receivers count them too
            raise TypeError(
                "Serialization exceeded maximum allowed depth. (Does the message contain cycles?)"
            )
        t = type(v)
        if t is str or t is bool or v is None:
            return v
        if t is int:
            if -MAX_SAFE_INTEGER <= v <= MAX_SAFE_INTEGER:
                return v
            return ["bigint", _decimal(v)]
        if t is float:
            if math.isfinite(v):
                return v
            return ["nan"] if v != v else (["inf"] if v > 0 else ["-inf"])
        if t is list or t is tuple:
            return [self.seq(v, depth + 1)]
        if t is dict:
            return self.obj(v, depth)
        return self.other(v, depth)

    # The fast paths below leave plain scalars (and dicts of nothing else) as they are, inline:
    # the tree they build may share those dicts with the value, as it is dumped at once.

    def seq(self, v: list[Any] | tuple[Any, ...], d: int) -> list[Any]:
        if d >= _SEND_DEPTH:
            return [self.value(x, d) for x in v]  # raises
        out: list[Any] = []
        append = out.append
        for x in v:
            t = type(x)
            if (
                t is str
                or t is bool
                or x is None
                or (t is int and -MAX_SAFE_INTEGER <= x <= MAX_SAFE_INTEGER)
                or (t is float and math.isfinite(x))
            ):
                append(x)
            elif t is dict:
                append(self.obj(x, d))
            else:
                append(self.value(x, d))
        return out

    def obj(self, v: dict[Any, Any], depth: int) -> dict[str, Any]:
        if depth + 1 < _SEND_DEPTH and type(v) is dict:
            for k, x in v.items():
                t = type(x)
                if type(k) is not str or not (
                    t is str
                    or t is bool
                    or x is None
                    or (t is int and -MAX_SAFE_INTEGER <= x <= MAX_SAFE_INTEGER)
                    or (t is float and math.isfinite(x))
                ):
                    break
            else:
                return v
        out: dict[str, Any] = {}
        for k, x in v.items():
            if type(k) is not str:
                k = _wire_key(k)  # before the value, which may raise too
            out[k] = self.value(x, depth + 1)
        return out

    def other(self, v: Any, depth: int) -> Any:
        if v is undefined:
            return ["undefined"]
        if isinstance(v, WireRef):
            return self._exporter(v).encode_ref(v)
        if isinstance(v, WireWritable):
            return self._exporter(v).encode_writable(v)
        if isinstance(v, BigInt | int):
            if isinstance(v, bool):
                return bool(v)
            if type(v) is BigInt or not -MAX_SAFE_INTEGER <= v <= MAX_SAFE_INTEGER:
                return ["bigint", _decimal(int(v))]
            return int(v)
        if isinstance(v, URL):
            return ["url", str(v)]
        if isinstance(v, str):
            return str(v)
        if isinstance(v, float):
            return self.value(float(v), depth)
        if isinstance(v, bytes | bytearray | memoryview):
            return ["bytes", _b64(bytes(v))]
        if isinstance(v, TypedArray):
            return ["bytes", _b64(v.data), v.kind]
        if isinstance(v, datetime):
            return ["date", datetime_to_ms(v)]
        if isinstance(v, JsDate):
            return ["date", v.ms]
        if isinstance(v, BaseException):
            return self.error(v, depth)
        if isinstance(v, WireTarget):
            return self._exporter(v).encode_target(v)
        if isinstance(v, list | tuple):
            return [[self.value(x, depth + 1) for x in v]]
        if isinstance(v, dict):
            return self.obj(v, depth)
        if isinstance(v, Headers):
            return ["headers", [list(p) for p in v]]
        if isinstance(v, Request):
            return ["request", v.url, self.request_init(v, depth)]
        if isinstance(v, Response):
            return ["response", self.body(v.body, depth), self.response_init(v)]
        if isinstance(v, Blob):
            return ["blob", v.type, self._exporter(v).encode_readable(v.chunks())]
        if dataclasses.is_dataclass(v) and not isinstance(v, type):  # after Request/Response
            return self.obj({f.name: getattr(v, f.name) for f in dataclasses.fields(v)}, depth)
        if is_model(v):
            return self.value(model_wire(v), depth)
        if hasattr(type(v), "__aiter__") and not isinstance(v, type):
            return self._exporter(v).encode_readable(v)
        if _is_writable(v):
            return self._exporter(v).encode_writable(v)
        if callable(v) and not isinstance(v, type):
            return self._exporter(v).encode_target(v)
        raise TypeError(f"Cannot serialize value of type {type(v).__name__}: {v!r:.80}")

    def _exporter(self, v: Any) -> Exporter:
        if self.exporter is None:
            raise TypeError(
                f"cannot serialize {type(v).__name__} without an RPC session "
                "(capabilities need a session to be passed)"
            )
        return self.exporter

    def body(self, body: Any, depth: int) -> Any:
        if body is None or isinstance(body, str):
            return body
        if isinstance(body, bytes | bytearray | memoryview):
            return ["bytes", _b64(bytes(body))]
        if hasattr(type(body), "__aiter__"):
            return self._exporter(body).encode_readable(body)
        raise TypeError(
            f"A body must be str, bytes or an async iterable of bytes, not {body!r:.80}"
        )

    def request_init(self, r: Request, depth: int) -> dict[str, Any]:
        init: dict[str, Any] = dict(r.extra)
        if r.method != "GET":
            init["method"] = r.method
        if len(r.headers):
            init["headers"] = [list(p) for p in r.headers]
        if r.body is not None:
            init["body"] = self.body(r.body, depth)
            if type(init["body"]) is list and init["body"][0] == "readable":
                init.setdefault("duplex", "half")
        return init

    def response_init(self, r: Response) -> dict[str, Any]:
        init: dict[str, Any] = dict(r.extra)
        if r.status != 200:
            init["status"] = r.status
        if r.status_text:
            init["statusText"] = r.status_text
        if len(r.headers):
            init["headers"] = [list(p) for p in r.headers]
        return init

    def error(self, exc: BaseException, depth: int) -> list[Any]:
        stack: str | None = None
        if self.exporter is not None:
            replaced = self.exporter.on_send_error(exc)
            if replaced is not None:
                exc = replaced
                stack = _stack_of(exc)
        name = js_error_name(exc)
        message = error_message(exc)
        props: dict[str, Any] = {}
        for k, x in error_props(exc).items():
            if not isinstance(k, str) or k in ("name", "message", "stack"):
                continue
            try:
                props[k] = self.value(x, depth + 1)
            except (TypeError, RecursionError):
                continue  # an unencodable prop is dropped; the error itself always goes
        if props:
            return ["error", name, message, stack, props]
        if stack is not None:
            return ["error", name, message, stack]
        return ["error", name, message]


def _is_writable(v: Any) -> bool:
    """Whether ``v`` is a writable stream by its shape: async ``write``, ``close``, ``abort``."""
    t = type(v)
    return all(
        inspect.iscoroutinefunction(getattr(t, m, None)) for m in ("write", "close", "abort")
    )


def _wire_key(k: Any) -> str:
    """The wire key for a dict key that is not exactly a ``str``."""
    if not isinstance(k, str):
        raise TypeError(
            f"cannot send a dict with a non-string key {k!r}: wire objects have string keys only"
        )
    return str(k)


# --------------------------------------------------------------------------------------------
# pydantic models (an optional extra): pydantic is never imported here. A model can only exist
# once pydantic.main is loaded, so looking there costs nothing to those who do not use it.


def is_model(v: Any) -> bool:
    """Whether ``v`` is a pydantic (v2) model instance."""
    main = sys.modules.get("pydantic.main")
    return main is not None and isinstance(v, main.BaseModel)


def model_wire(model: Any) -> Any:
    """The value a pydantic model is sent as: ``model_dump(by_alias=True)`` (keys are the
    fields' serialization aliases, else their names; nested models become objects), with what
    the wire has no form for (UUID, Decimal, Enum, date, set...) as pydantic's JSON mode
    writes it. Dates, bytes and capabilities stay what they are."""
    return _wire_leaves(model.model_dump(by_alias=True), 0)


# What model_dump leaves that the encoder sends as it is.
_WIRE_TYPES: Final = (
    datetime,
    bytes,
    bytearray,
    memoryview,
    BigInt,
    UndefinedType,
    URL,
    Headers,
    JsDate,
    TypedArray,
    Request,
    Response,
    BaseException,
    WireRef,
    WireTarget,
)
_PLAIN_TYPES: Final = frozenset((str, int, float, bool, type(None), bytes, datetime))


def _wire_leaves(x: Any, depth: int) -> Any:
    t = type(x)
    if t in _PLAIN_TYPES or depth > _SEND_DEPTH:  # (the encoder reports the depth itself)
        return x
    if t is dict:
        return {
            k if type(k) is str else _jsonable({k: None}, k, key=True): _wire_leaves(v, depth + 1)
            for k, v in x.items()
        }
    if t is list or t is tuple or isinstance(x, set | frozenset):
        return [_wire_leaves(v, depth + 1) for v in x]
    if is_model(x):
        return model_wire(x)
    if not isinstance(x, enum.Enum) and (
        isinstance(x, _WIRE_TYPES)
        or callable(x)
        or (dataclasses.is_dataclass(x) and not isinstance(x, type))
    ):
        return x
    return _jsonable(x, x)


def _jsonable(x: Any, default: Any, key: bool = False) -> Any:
    """``x`` as pydantic's JSON mode writes it (``key``: the key of dict ``x``, as ``5`` ->
    ``"5"``); ``default`` when pydantic cannot."""
    from pydantic_core import PydanticSerializationError, to_jsonable_python

    try:
        out = to_jsonable_python(x)
    except PydanticSerializationError:
        return default  # the encoder says what it cannot send
    return next(iter(out)) if key else out


def _stack_of(exc: BaseException) -> str | None:
    if isinstance(exc, RpcError) and exc.stack is not None:
        return exc.stack
    if exc.__traceback__ is None:
        return None
    import traceback

    return "".join(traceback.format_exception(exc))


# --------------------------------------------------------------------------------------------
# Decoding: expression -> Python value


class PlainImporter:
    """Importer for session-less decoding: every reference form is an error."""

    def _refuse(self) -> Any:
        raise RpcProtocolError("Cannot decode capabilities without an RPC session.")

    def import_ref(
        self,
        promise: bool,
        ref_id: int,
        path: list[str | int] | None,
        args: Callable[[], list[Any]] | None,
    ) -> Any:
        return self._refuse()

    def export_ref(self, ref_id: int, promise: bool) -> Any:
        return self._refuse()

    def remap_ref(
        self, ref_id: int, path: list[str | int], captures: list[Any], instructions: list[Any]
    ) -> Any:
        return self._refuse()

    def unsupported(self, what: str) -> Any:
        raise RpcProtocolError(f"{what} is not supported yet by this implementation.")

    def readable_ref(self, pipe_id: int) -> Any:
        return self._refuse()

    def writable_ref(self, ref_id: int) -> Any:
        return self._refuse()

    def blob_ref(self, mime: str, content: Any) -> Any:
        return self._refuse()


def decode(
    expr: Any,
    importer: Importer | None = None,
    limits: Limits = DEFAULT_LIMITS,
    *,
    fresh: bool = False,
) -> Any:
    """Decode an expression into a Python value; reference forms go to ``importer``.

    ``fresh``: ``expr`` was just parsed and is decoded once (a received message), so the value
    may reuse its objects instead of copying them, and the decoding may rewrite them.
    """
    try:
        return _Decoder(importer or PlainImporter(), limits, fresh).value(expr, 0)
    except RecursionError:
        # Nested call arguments cost Python several frames per level: its recursion limit
        # can stop them before max_depth does. Report it as the depth limit it stands for.
        raise _too_deep(limits.max_depth) from None


def _too_deep(max_depth: int) -> RpcLimitError:
    return RpcLimitError(f"Deserialization exceeded maximum allowed message depth of {max_depth}.")


def _make_decoder(importer: Importer | None, limits: Limits, fresh: bool) -> _Decoder:
    """The decoder ``decode`` uses (the compiled walk makes one when it needs the methods)."""
    return _Decoder(importer or PlainImporter(), limits, fresh)


def _bad(what: str, expr: Any) -> RpcProtocolError:
    text = json.dumps(expr, default=repr, ensure_ascii=False, separators=(",", ":"))
    if len(text) > 200:
        text = text[:200] + "..."
    return RpcProtocolError(f"{what}: {text}", name="TypeError")  # the reference's TypeError


def _js_typeof(x: Any) -> str:
    if type(x) is bool:
        return "boolean"
    return "number" if type(x) in (int, float) else "object"  # JSON: null, arrays, objects


def _escapes_array(e: list[Any]) -> bool:
    """Whether ``e`` is an escaped array, ``[[...]]``."""
    return len(e) == 1 and type(e[0]) is list


def _is_id(x: Any) -> bool:
    return type(x) is int


class _Decoder:
    __slots__ = ("fresh", "importer", "max_bigint", "max_depth")

    def __init__(self, importer: Importer, limits: Limits, fresh: bool = False) -> None:
        self.importer = importer
        self.max_depth = limits.max_depth
        self.max_bigint = limits.max_bigint_digits
        self.fresh = fresh

    def value(self, e: Any, depth: int) -> Any:
        if depth >= self.max_depth:  # scalars count too, as in the reference
            raise _too_deep(self.max_depth)
        t = type(e)
        if t is str or t is bool or e is None:
            return e
        if t is int:
            if -MAX_SAFE_INTEGER <= e <= MAX_SAFE_INTEGER:
                return e
            try:
                return float(e)  # a JSON number beyond 2**53 is a double, never a bigint
            except OverflowError:
                return math.inf if e > 0 else -math.inf
        if t is float:
            return e
        if t is dict:
            return self.obj(e, depth)
        if t is list:
            return self.special(e, depth)
        raise _bad("unknown value", e)

    def obj(self, e: dict[str, Any], depth: int) -> dict[str, Any]:
        if self.fresh and depth + 1 < self.max_depth:
            for x in e.values():
                t = type(x)
                if not (
                    t is str
                    or t is bool
                    or x is None
                    or t is float
                    or (t is int and -MAX_SAFE_INTEGER <= x <= MAX_SAFE_INTEGER)
                ):
                    break
            else:  # plain scalars only: the parsed dict is the value
                if not PROTO_KEYS.isdisjoint(e):
                    for k in PROTO_KEYS.intersection(e):
                        del e[k]
                return e
        out = {k: self.value(x, depth + 1) for k, x in e.items()}
        if not PROTO_KEYS.isdisjoint(out):
            for k in PROTO_KEYS.intersection(out):
                del out[k]
        return out

    def special(self, e: list[Any], depth: int) -> Any:
        n = len(e)
        if n == 0:
            raise _bad("unknown special value", e)
        tag = e[0]
        if type(tag) is list:
            if n != 1:
                raise _bad("unknown special value", e)
            return self.seq(tag, depth + 1)
        handler = _SPECIAL.get(tag) if type(tag) is str else None
        if handler is None:
            raise _bad("unknown special value", e)
        return handler(self, e, depth)

    def seq(self, items: list[Any], d: int) -> list[Any]:
        if d >= self.max_depth:
            return [self.value(x, d) for x in items]  # raises
        out: list[Any] = []
        append = out.append
        for x in items:
            t = type(x)
            if (
                t is str
                or t is bool
                or x is None
                or t is float
                or (t is int and -MAX_SAFE_INTEGER <= x <= MAX_SAFE_INTEGER)
            ):
                append(x)
            elif t is dict:
                append(self.obj(x, d))
            else:
                append(self.value(x, d))
        return out

    # -- simple forms

    def s_undefined(self, e: list[Any], depth: int) -> Any:
        if len(e) != 1:
            raise _bad("unknown special value", e)
        return undefined

    def s_inf(self, e: list[Any], depth: int) -> Any:
        if len(e) != 1:
            raise _bad("unknown special value", e)
        return {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}[e[0]]

    def s_bigint(self, e: list[Any], depth: int) -> Any:
        if len(e) != 2 or type(e[1]) is not str:
            raise _bad("invalid bigint", e)
        s = e[1]
        if len(s) > self.max_bigint:
            raise RpcLimitError(
                f"Deserialized bigint exceeds maximum length of {self.max_bigint} digits."
            )
        if not _BIGINT_RE.fullmatch(s):
            raise _bad("invalid bigint", e)
        return BigInt(_from_decimal(s))

    def s_date(self, e: list[Any], depth: int) -> Any:
        if len(e) != 2:
            raise _bad("invalid date", e)
        ms = e[1]
        if ms is None:
            return ms_to_date(None)
        if type(ms) not in (int, float):
            raise _bad("invalid date", e)
        return ms_to_date(ms)

    def s_bytes(self, e: list[Any], depth: int) -> Any:
        if len(e) not in (2, 3) or type(e[1]) is not str:
            raise _bad("invalid bytes", e)
        text = e[1]
        try:
            data = _b64decode(text + "=" * (-len(text) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise _bad("invalid base64 in bytes", e) from None
        if len(e) == 2:
            return data
        marker = e[2]
        if type(marker) is not str:
            raise RpcProtocolError(
                f"Unknown bytes type marker type: {_js_typeof(marker)}", name="TypeError"
            )
        size = TYPED_ARRAY_KINDS.get(marker)
        if size is None:
            raise RpcProtocolError(f"Unknown bytes type marker: {marker[:64]}", name="TypeError")
        if len(data) % size:
            raise RpcProtocolError(
                f"Invalid byte length {len(data)} for {marker}; expected a multiple of {size}",
                name="TypeError",
            )
        if marker == "Uint8Array":
            return data
        return TypedArray(marker, data)  # type: ignore[arg-type]

    def s_error(self, e: list[Any], depth: int) -> Any:
        n = len(e)
        if n < 3 or type(e[1]) is not str or type(e[2]) is not str:
            raise _bad("invalid error", e)
        stack = e[3] if n > 3 and type(e[3]) is str else None
        props: dict[str, Any] | None = None
        if n >= 5:
            if type(e[4]) is not dict:
                raise _bad("invalid error props", e)
            props = self.obj(e[4], depth)
            for k in ("name", "message", "stack"):
                props.pop(k, None)
        return make_error(e[1], e[2], props, stack)

    def s_url(self, e: list[Any], depth: int) -> Any:
        if len(e) != 2 or type(e[1]) is not str:
            raise _bad("invalid url", e)
        return URL(e[1])

    def headers(self, raw: Any, e: list[Any]) -> Headers:
        if type(raw) is not list or not all(
            type(p) is list and len(p) == 2 and type(p[0]) is str and type(p[1]) is str for p in raw
        ):
            raise _bad("invalid headers", e)
        return Headers((p[0], p[1]) for p in raw)

    def s_headers(self, e: list[Any], depth: int) -> Any:
        if len(e) != 2:
            raise _bad("invalid headers", e)
        return self.headers(e[1], e)

    def body(self, raw: Any, e: list[Any], depth: int) -> Any:
        """The body, or (for a stream) a promise that rejects, to stand for the whole value."""
        invalid: RpcProtocolError | None = None
        if self.fresh and (type(raw) is dict or (type(raw) is list and _escapes_array(raw))):
            # never a body; and decoding a fresh expression may rewrite it: word the error now
            invalid = _bad("invalid body", e)
        body = self.value(raw, depth + 1)
        if body is None or isinstance(body, str | bytes | WireReadable):
            return body
        raise invalid or _bad("invalid body", e)

    def s_request(self, e: list[Any], depth: int) -> Any:
        if len(e) != 3 or type(e[1]) is not str or type(e[2]) is not dict:
            raise _bad("invalid request", e)
        init = dict(e[2])
        if "signal" in init:
            raise _bad("a request cannot carry a signal", e)
        req = Request(e[1])
        if "method" in init:
            req.method = str(init.pop("method"))
        if "headers" in init:
            req.headers = self.headers(init.pop("headers"), e)
        if "body" in init:
            req.body = self.body(init.pop("body"), e, depth)
        init.pop("duplex", None)
        req.extra = init
        return req

    def s_response(self, e: list[Any], depth: int) -> Any:
        if len(e) != 3 or type(e[2]) is not dict:
            raise _bad("invalid response", e)
        init = dict(e[2])
        if "webSocket" in init:
            raise RpcProtocolError("Can't deserialize a Response containing a webSocket.")
        resp = Response(self.body(e[1], e, depth))
        if "status" in init:
            status = init.pop("status")
            if type(status) is not int:
                raise _bad("invalid response status", e)
            resp.status = status
        if "statusText" in init:
            resp.status_text = str(init.pop("statusText"))
        if "headers" in init:
            resp.headers = self.headers(init.pop("headers"), e)
        resp.extra = init
        return resp

    # -- references

    def s_ref(self, e: list[Any], depth: int) -> Any:
        n = len(e)
        if n < 2 or n > 4 or not _is_id(e[1]):
            raise _bad("invalid reference", e)
        path: list[str | int] | None = None
        args: Callable[[], list[Any]] | None = None
        if n > 2:
            path = self.path(e[2], e)
        if n > 3:
            raw = e[3]
            if type(raw) is not list:
                raise _bad("invalid call arguments", e)
            args = lambda: [self.value(x, depth + 1) for x in raw]  # noqa: E731
        return self.importer.import_ref(e[0] == "pipeline", e[1], path, args)

    def path(self, raw: Any, e: list[Any]) -> list[str | int]:
        if type(raw) is not list or not all(type(p) is str or type(p) is int for p in raw):
            raise _bad("invalid property path", e)
        return raw

    def s_export(self, e: list[Any], depth: int) -> Any:
        if len(e) != 2 or not _is_id(e[1]):
            raise _bad("invalid export", e)
        return self.importer.export_ref(e[1], e[0] == "promise")

    def s_remap(self, e: list[Any], depth: int) -> Any:
        if len(e) != 5 or not _is_id(e[1]) or type(e[3]) is not list or type(e[4]) is not list:
            raise _bad("invalid remap", e)
        return self.importer.remap_ref(e[1], self.path(e[2], e), e[3], e[4])

    def s_readable(self, e: list[Any], depth: int) -> Any:
        if len(e) != 2 or not _is_id(e[1]):
            raise _bad("invalid readable", e)
        return self.importer.readable_ref(e[1])

    def s_writable(self, e: list[Any], depth: int) -> Any:
        if len(e) != 2 or not _is_id(e[1]):
            raise _bad("invalid writable", e)
        return self.importer.writable_ref(e[1])

    def s_blob(self, e: list[Any], depth: int) -> Any:
        if len(e) != 3 or type(e[1]) is not str:
            raise _bad("invalid blob", e)
        content = self.value(e[2], depth + 1)
        if not isinstance(content, WireReadable):
            raise RpcProtocolError(
                "Blob content must be serialized as a ReadableStream.", name="TypeError"
            )
        return self.importer.blob_ref(e[1], content)


_SPECIAL: Final[dict[str, Callable[[_Decoder, list[Any], int], Any]]] = {
    "undefined": _Decoder.s_undefined,
    "inf": _Decoder.s_inf,
    "-inf": _Decoder.s_inf,
    "nan": _Decoder.s_inf,
    "bigint": _Decoder.s_bigint,
    "date": _Decoder.s_date,
    "bytes": _Decoder.s_bytes,
    "error": _Decoder.s_error,
    "url": _Decoder.s_url,
    "headers": _Decoder.s_headers,
    "request": _Decoder.s_request,
    "response": _Decoder.s_response,
    "import": _Decoder.s_ref,
    "pipeline": _Decoder.s_ref,
    "export": _Decoder.s_export,
    "promise": _Decoder.s_export,
    "remap": _Decoder.s_remap,
    "readable": _Decoder.s_readable,
    "writable": _Decoder.s_writable,
    "blob": _Decoder.s_blob,
}


# --------------------------------------------------------------------------------------------
# The compiled walks: the entry points above become the C ones, which hand every node they do
# not handle themselves to the methods above (and call the functions above when turned off).

_PY_VALUE_METHODS: Final = (_Encoder.value, _Decoder.value)
_C_VALUE_METHODS: tuple[Any, Any] | None = None
SPEEDUPS: bool = False
"""Whether the compiled walks (``capnweb._speedups``) are in use."""

if _c is not None:
    _C_VALUE_METHODS = _c.setup(
        {
            "encode": encode,
            "decode": decode,
            "dumps": dumps,
            "loads": loads,
            "encode_text": encode_text,
            "dumps_fallback": _dumps_std,
            "orjson_dumps": None if _orjson is None else _orjson.dumps,
            "orjson_loads": None if _orjson is None else _orjson.loads,
            "orjson_decode_error": None if _orjson is None else _orjson.JSONDecodeError,
            "encoder": _Encoder,
            "encoder_value": _Encoder.value,
            "encoder_seq": _Encoder.seq,
            "wire_key": _wire_key,
            "decoder": _Decoder,
            "make_decoder": _make_decoder,
            "decoder_value": _Decoder.value,
            "decoder_special": _Decoder.special,
            "decoder_seq": _Decoder.seq,
            "too_deep": lambda limits: _too_deep(limits.max_depth),
            "default_limits": DEFAULT_LIMITS,
            "proto_keys": PROTO_KEYS,
            "send_depth": _SEND_DEPTH,
        }
    )
    encode = _c.encode
    decode = _c.decode
    dumps = _c.dumps
    loads = _c.loads
    encode_text = _c.encode_text


def _use_speedups(on: bool) -> None:
    """Switch between the compiled walks and the pure-Python ones (the tests run both)."""
    global SPEEDUPS
    if _c is None or _C_VALUE_METHODS is None:
        if on:
            raise RuntimeError("capnweb._speedups is not available")
        return
    _c.enable(on)
    methods = _C_VALUE_METHODS if on else _PY_VALUE_METHODS
    _Encoder.value = methods[0]  # type: ignore[method-assign]
    _Decoder.value = methods[1]  # type: ignore[method-assign]
    SPEEDUPS = on


_use_speedups(_c is not None)
