"""Python types for the wire values that have no exact Python built-in.

Everything here is plain data: no sessions, no I/O. The mapping between these types and the
wire is described in ``docs/values.md``.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal, TypeAlias, final

__all__ = [
    "INVALID_DATE",
    "TYPED_ARRAY_KINDS",
    "URL",
    "BigInt",
    "Blob",
    "Headers",
    "JsDate",
    "Request",
    "Response",
    "TypedArray",
    "UndefinedType",
    "undefined",
]


@final
class UndefinedType:
    """The type of :data:`undefined`, JavaScript's ``undefined`` (distinct from ``None``/null)."""

    _instance: UndefinedType | None = None

    def __new__(cls) -> UndefinedType:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "undefined"

    def __bool__(self) -> bool:
        return False

    def __reduce__(self) -> str:
        return "undefined"


undefined: Final = UndefinedType()
"""JavaScript ``undefined``: sent as ``["undefined"]``; an absent value that still has a key."""


class BigInt(int):
    """An ``int`` that travels as a JavaScript ``bigint`` whatever its size.

    Plain ``int`` values within +/-(2**53 - 1) are sent as JSON numbers and larger ones as
    bigint; wrap a small value in ``BigInt`` to send it as a bigint. Received bigints decode
    to ``BigInt`` so that echoing one keeps its type.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return f"BigInt({int(self)})"


_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_JS_DATE_MS: Final = 8.64e15


@dataclass(frozen=True, slots=True)
class JsDate:
    """A JavaScript ``Date`` that ``datetime`` cannot hold.

    ``ms`` is milliseconds since the Unix epoch, or ``None`` for an Invalid Date (see
    :data:`INVALID_DATE`). Dates that fit a ``datetime`` decode to an aware ``datetime``
    in UTC instead.
    """

    ms: float | None

    @property
    def valid(self) -> bool:
        """Whether this is a real point in time (not an Invalid Date)."""
        return self.ms is not None


INVALID_DATE: Final = JsDate(None)
"""JavaScript's Invalid Date, sent as ``["date", null]``."""


def datetime_to_ms(value: datetime) -> float:
    """Milliseconds since the epoch for an aware ``datetime``; ints when exact."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise TypeError(
            f"cannot send naive datetime {value!r}: attach a timezone (e.g. tzinfo=UTC) "
            "so the instant is unambiguous"
        )
    delta = value - _EPOCH
    micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    if micros % 1000 == 0:
        return micros // 1000
    return micros / 1000


def ms_to_date(ms: float | None) -> datetime | JsDate:
    """Decode a wire date: an aware UTC ``datetime`` when it fits, else a :class:`JsDate`."""
    if ms is None or math.isnan(ms) or abs(ms) > _MAX_JS_DATE_MS:
        return INVALID_DATE
    try:
        return _EPOCH + timedelta(milliseconds=ms)
    except OverflowError:
        return JsDate(ms)


TypedArrayKind: TypeAlias = Literal[
    "ArrayBuffer",
    "DataView",
    "Int8Array",
    "Uint8Array",
    "Uint8ClampedArray",
    "Int16Array",
    "Uint16Array",
    "Int32Array",
    "Uint32Array",
    "BigInt64Array",
    "BigUint64Array",
    "Float32Array",
    "Float64Array",
]

TYPED_ARRAY_KINDS: Final[Mapping[str, int]] = {
    "ArrayBuffer": 1,
    "DataView": 1,
    "Int8Array": 1,
    "Uint8Array": 1,
    "Uint8ClampedArray": 1,
    "Int16Array": 2,
    "Uint16Array": 2,
    "Int32Array": 4,
    "Uint32Array": 4,
    "BigInt64Array": 8,
    "BigUint64Array": 8,
    "Float32Array": 4,
    "Float64Array": 8,
}
"""Byte-container markers the wire knows, with their element size in bytes."""


@dataclass(frozen=True, slots=True)
class TypedArray:
    """Bytes that a JavaScript peer sees as a specific typed array (little-endian elements).

    ``bytes`` values travel as ``Uint8Array``; use ``TypedArray("Float64Array", data)`` (or
    receive one) to keep another container type across the wire.
    """

    kind: TypedArrayKind
    data: bytes

    def __post_init__(self) -> None:
        size = TYPED_ARRAY_KINDS.get(self.kind)
        if size is None:
            raise ValueError(f"Unknown bytes type marker: {str(self.kind)[:64]}")
        if len(self.data) % size:
            raise ValueError(
                f"Invalid byte length {len(self.data)} for {self.kind}; "
                f"expected a multiple of {size}"
            )


class URL(str):
    """A string that travels as a JavaScript ``URL`` (``["url", href]``)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"URL({str(self)!r})"


class Headers:
    """HTTP headers as an ordered list of ``(name, value)`` pairs, like the Fetch ``Headers``."""

    __slots__ = ("_pairs",)

    def __init__(self, pairs: Iterable[tuple[str, str]] | Mapping[str, str] | None = None) -> None:
        items = pairs.items() if isinstance(pairs, Mapping) else (pairs or ())
        self._pairs: list[tuple[str, str]] = []
        for name, value in items:
            if not isinstance(name, str) or not isinstance(value, str):
                raise TypeError("header names and values must be strings")
            self._pairs.append((name, value))

    def get(self, name: str) -> str | None:
        """The values of ``name`` (case-insensitive) joined by ', ', or ``None``."""
        lower = name.lower()
        found = [v for k, v in self._pairs if k.lower() == lower]
        return ", ".join(found) if found else None

    def items(self) -> list[tuple[str, str]]:
        """The pairs in order."""
        return list(self._pairs)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._pairs)

    def __len__(self) -> int:
        return len(self._pairs)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Headers) and self._pairs == other._pairs

    def __hash__(self) -> int:
        return hash(tuple(self._pairs))

    def __repr__(self) -> str:
        return f"Headers({self._pairs!r})"


Body: TypeAlias = "str | bytes | AsyncIterable[bytes] | None"
"""A Request or Response body: text, bytes, a stream of byte chunks (a received one is a
``capnweb.ReadableStream``; any async iterable of bytes may be sent), or none."""

BLOB_CHUNK: Final = 65_536
"""Bytes per chunk when a Blob is sent (it always travels through a pipe)."""


async def read_body(body: Body) -> bytes:
    """All the bytes of ``body``: the stream read to its end (str and text chunks as UTF-8)."""
    if body is None:
        return b""
    if isinstance(body, str):
        return body.encode()
    if isinstance(body, bytes | bytearray | memoryview):
        return bytes(body)
    parts: list[bytes] = []
    async for chunk in body:
        if isinstance(chunk, str):
            parts.append(chunk.encode())
        elif isinstance(chunk, bytes | bytearray | memoryview):
            parts.append(bytes(chunk))
        else:
            raise TypeError(f"a body chunk must be bytes, not {type(chunk).__name__}")
    return b"".join(parts)


class _HasBody:
    """``read()``/``text()`` for the two Fetch types (a streamed body can be read once)."""

    __slots__ = ()
    body: Body

    async def read(self) -> bytes:
        """The whole body as bytes (reads a streamed body to its end)."""
        return await read_body(self.body)

    async def text(self) -> str:
        """The whole body decoded as UTF-8."""
        return (await read_body(self.body)).decode()


@final
@dataclass(frozen=True, slots=True)
class Blob:
    """A JavaScript ``Blob``: immutable bytes and a MIME type (``""`` when unknown).

    It travels through a pipe, as the reference sends it; the receiver gets it whole.
    """

    data: bytes = b""
    type: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.data, bytes):
            object.__setattr__(self, "data", bytes(self.data))

    @property
    def size(self) -> int:
        """Length in bytes."""
        return len(self.data)

    async def chunks(self) -> AsyncIterator[bytes]:
        """The bytes in chunks of at most BLOB_CHUNK (how a Blob goes out)."""
        view = memoryview(self.data)
        for i in range(0, len(view), BLOB_CHUNK):
            yield bytes(view[i : i + BLOB_CHUNK])

    async def text(self) -> str:
        """The bytes decoded as UTF-8 (an awaitable, like the JavaScript method)."""
        return self.data.decode()


@dataclass(slots=True)
class Request(_HasBody):
    """A Fetch API ``Request`` by value: URL, method, headers, an optional body.

    ``extra`` keeps any other ``RequestInit`` fields a peer sent (e.g. ``redirect``).
    """

    url: str
    method: str = "GET"
    headers: Headers = field(default_factory=Headers)
    body: Body = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Response(_HasBody):
    """A Fetch API ``Response`` by value: body, status, status text and headers."""

    body: Body = None
    status: int = 200
    status_text: str = ""
    headers: Headers = field(default_factory=Headers)
    extra: dict[str, Any] = field(default_factory=dict)
