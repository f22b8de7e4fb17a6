"""The interop contract's interfaces (INTEROP-CONTRACT.md, section 5) as Protocols.

Python names are snake_case; ``names=camel_case`` gives the contract's wire names
(``call_square`` is ``callSquare``). Annotations are as loose as the contract: where it accepts
any value (``echo``, ``delayedEcho``...), the parameter is ``Any``. Methods an implementation
runs synchronously are declared with ``def``, the others with ``async def``.

``examples/interop/server.py`` implements them; ``stubs/examples_interop_contract.py`` and
``stubs/ts/examples_interop_contract.d.ts`` are generated from them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, Protocol, TypedDict

from capnweb import Blob, ReadableStream, Request, Response, RpcStub, UndefinedType, WritableStream
from capnweb.interface import camel_case, rpc_interface, rpc_method, rpc_property


class CounterBatch(TypedDict):
    """What ``makeCounters`` returns: capabilities inside a structure."""

    counters: list[Counter]
    count: int


class StreamStatus(TypedDict):
    """What ``streamStatus`` tells of the latest stream a session made."""

    produced: int
    state: str
    reason: str | None


class Digest(TypedDict):
    """``digestStream``'s summary of a byte stream."""

    bytes: int
    sum: int
    adler32: int


class BlobInfo(TypedDict):
    """``blobInfo``'s answer."""

    size: int
    type: str


class RequestInfo(TypedDict):
    """``echoRequest``'s answer: headers sorted, body as text."""

    method: str
    url: str
    headers: list[list[str]]
    body: str | None


class ResponseInfo(TypedDict):
    """``describeResponse``'s answer: headers sorted, body as text."""

    status: int
    statusText: str
    headers: list[list[str]]
    body: str | None


class SessionStats(TypedDict):
    """The sizes of a session's import and export tables."""

    imports: int
    exports: int


@rpc_interface(names=camel_case)
class Counter(Protocol):
    """A counter; alive until the client releases it."""

    @rpc_method
    def increment(self, amount: float = 1) -> float:
        """Add ``amount`` and return the new value."""

    @property
    @rpc_property
    def value(self) -> float:
        """The current value."""


@rpc_interface(names=camel_case)
class CallbackHolder(Protocol):
    """Keeps a client function and calls it on ``invoke``; releases it when released."""

    @rpc_method
    async def invoke(self, x: Any) -> Any:
        """``await func(x)``."""


@rpc_interface(names=camel_case)
class TestTarget(Protocol):
    """The contract's main capability."""

    @rpc_method
    def square(self, i: float) -> float:
        """``i * i``."""

    @rpc_method
    def call_square(self, target: TestTarget, i: float) -> dict[str, Any]:
        """``{result: target.square(i)}``, resolved before it is sent."""

    @rpc_method
    async def call_function(self, func: Callable[[Any], Awaitable[Any]], i: Any) -> dict[str, Any]:
        """``{result: await func(i)}``."""

    @rpc_method
    def throw_error(self) -> None:
        """Throws ``RangeError("test error")``."""

    @rpc_method
    def throw_typed_error(self, name: str, message: str) -> None:
        """Throws an error of type ``name`` (Error, TypeError, RangeError) with ``message``."""

    @rpc_method
    def make_counter(self, i: float = 0) -> Counter:
        """A new Counter starting at ``i``."""

    @rpc_method
    def make_counters(self, values: list[float]) -> CounterBatch:
        """One new Counter per value."""

    @rpc_method
    async def increment_counter(self, counter: Counter | Mapping[str, Any], i: float = 1) -> float:
        """``counter.increment(i)``: a Counter (or a promise of one), or an object with an
        ``increment`` function."""

    @rpc_method
    def generate_fibonacci(self, n: int) -> list[int]:
        """The first ``n`` Fibonacci numbers."""

    @rpc_method
    def return_null(self) -> None:
        """``null``."""

    @rpc_method
    def return_undefined(self) -> UndefinedType:
        """``undefined``."""

    @rpc_method
    def return_number(self, i: float) -> float:
        """``i``."""

    @rpc_method
    def echo(self, x: Any) -> Any:
        """``x``, exactly as received."""

    @rpc_method
    async def delayed_echo(self, ms: float, x: Any) -> Any:
        """``x`` after ``ms`` milliseconds (capped at 10 s), without blocking other calls."""

    @rpc_method
    def make_callback_holder(self, func: Callable[[Any], Awaitable[Any]]) -> CallbackHolder:
        """A new CallbackHolder keeping ``func``."""

    @rpc_method
    def get_session_id(self) -> str:
        """A string unique to this session."""

    @rpc_method
    def get_live_counters(self, session_id: str | None = None) -> int:
        """How many Counters of session ``session_id`` (default: this one) are alive."""

    # -- streams, blobs, Request/Response (section 6)

    @rpc_method
    def stream_numbers(self, n: int) -> AsyncIterator[float]:
        """A stream of the numbers ``0..n-1``, generated on demand."""

    @rpc_method
    def stream_bytes(self, total: int, chunk: int) -> AsyncIterator[bytes]:
        """``total`` bytes in chunks of ``chunk``; byte ``i`` is ``i % 251``."""

    @rpc_method
    def stream_status(self, session_id: str | None = None) -> StreamStatus:
        """The latest stream of session ``session_id`` (default: this one)."""

    @rpc_method
    def failing_stream(self, n: int, message: str) -> AsyncIterator[float]:
        """``0..n-1``, then the stream fails with ``Error(message)``."""

    @rpc_method
    async def sum_stream(self, readable: ReadableStream[float]) -> float:
        """The sum of a stream of numbers."""

    @rpc_method
    async def digest_stream(self, readable: ReadableStream[bytes], delay_ms: float = 0) -> Digest:
        """Length, byte sum and Adler-32 of a byte stream, read after ``delay_ms``."""

    @rpc_method
    def echo_stream(self, readable: ReadableStream[Any]) -> AsyncIterator[Any]:
        """The same chunks, read as the caller reads."""

    @rpc_method
    async def write_numbers(self, writable: WritableStream[float], n: int) -> int:
        """Writes ``0..n-1`` into ``writable``, closes it, returns ``n``."""

    @rpc_method
    async def abort_writable(self, writable: WritableStream[Any], reason: str) -> None:
        """Aborts ``writable`` with ``Error(reason)``."""

    @rpc_method
    def echo_blob(self, blob: Blob) -> Blob:
        """The same Blob."""

    @rpc_method
    def blob_info(self, blob: Blob) -> BlobInfo:
        """Its size and type."""

    @rpc_method
    async def echo_request(self, request: Request) -> RequestInfo:
        """What the request holds."""

    @rpc_method
    def make_request(
        self, method: str, url: str, headers: list[list[str]], body: str | None
    ) -> Request:
        """A Request made of these parts."""

    @rpc_method
    async def describe_response(self, response: Response) -> ResponseInfo:
        """What the response holds."""

    @rpc_method
    def make_response(self, status: int, body: str | None, headers: list[list[str]]) -> Response:
        """A Response made of these parts."""

    # -- test-only extras (not in the contract), mirrored by the TypeScript test server

    @rpc_method
    def get_stats(self) -> SessionStats:
        """This session's import/export table sizes."""

    @rpc_method
    async def call_twice(self, func: Callable[[Any], Awaitable[Any]], x: Any) -> list[Any]:
        """``[await func(x), await func(x + 1)]``."""

    @rpc_method
    async def call_method(self, cap: RpcStub, name: str, args: Any = None) -> Any:
        """``await cap[name](*args)``."""

    @rpc_method
    async def get_property(self, cap: RpcStub, name: str) -> Any:
        """``await cap[name]``."""

    @rpc_method
    def throw_value(self, v: Any) -> None:
        """Rejects with ``v`` itself."""

    @rpc_method
    def return_nested_promise(self, ms: float, x: Any) -> dict[str, Any]:
        """``{value: <promise of x after ms>}``."""
