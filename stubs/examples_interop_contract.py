# generated from examples.interop.contract:CallbackHolder — do not edit
# generated from examples.interop.contract:Counter — do not edit
# generated from examples.interop.contract:TestTarget — do not edit
"""Typed capnweb client stubs for:

- ``examples.interop.contract:CallbackHolder``
- ``examples.interop.contract:Counter``
- ``examples.interop.contract:TestTarget``

Get one with ``capnweb.connect(url, <Name>Stub)``; calls return typed promises that can be
awaited or pipelined. Regenerate with ``python -m capnweb_codegen``.
"""

from __future__ import annotations

import builtins as _builtins
import collections.abc as _collections_abc
import typing as _typing

import capnweb as _capnweb
import capnweb.typed as _capnweb_typed
import examples.interop.contract as _examples_interop_contract

__all__ = [
    "AnyListPromise",
    "BlobInfoPromise",
    "CallbackHolderPromise",
    "CallbackHolderStub",
    "CounterBatchPromise",
    "CounterListPromise",
    "CounterPromise",
    "CounterStub",
    "DigestPromise",
    "IntListPromise",
    "RequestInfoPromise",
    "ResponseInfoPromise",
    "SessionStatsPromise",
    "StrListListPromise",
    "StrListPromise",
    "StreamStatusPromise",
    "TestTargetPromise",
    "TestTargetStub",
]


class CallbackHolderStub(_capnweb_typed.TypedStub):
    """Keeps a client function and calls it on ``invoke``; releases it when released."""

    __slots__ = ()
    _interface = "examples.interop.contract:CallbackHolder"

    def invoke(self, x: _typing.Any) -> _capnweb_typed.TypedPromise[_typing.Any]:
        """``await func(x)``."""
        return self._rpc_call(_capnweb_typed.TypedPromise, "invoke", x)


class CounterStub(_capnweb_typed.TypedStub):
    """A counter; alive until the client releases it."""

    __slots__ = ()
    _interface = "examples.interop.contract:Counter"

    def increment(
        self, amount: float | _capnweb.RpcPromise[float] = 1
    ) -> _capnweb_typed.TypedPromise[float]:
        """Add ``amount`` and return the new value."""
        return self._rpc_call(_capnweb_typed.TypedPromise, "increment", amount)

    @property
    def value(self) -> _capnweb_typed.TypedPromise[float]:
        """The current value."""
        return self._rpc_get(_capnweb_typed.TypedPromise, "value")


class TestTargetStub(_capnweb_typed.TypedStub):
    """The contract's main capability."""

    __slots__ = ()
    _interface = "examples.interop.contract:TestTarget"

    def square(self, i: float | _capnweb.RpcPromise[float]) -> _capnweb_typed.TypedPromise[float]:
        """``i * i``."""
        return self._rpc_call(_capnweb_typed.TypedPromise, "square", i)

    def call_square(
        self,
        target: _examples_interop_contract.TestTarget | TestTargetStub,
        i: float | _capnweb.RpcPromise[float],
    ) -> _capnweb_typed.TypedPromise[dict[str, _typing.Any]]:
        """``{result: target.square(i)}``, resolved before it is sent."""
        return self._rpc_call(_capnweb_typed.TypedPromise, "callSquare", target, i)

    def call_function(
        self,
        func: _collections_abc.Callable[[_typing.Any], _collections_abc.Awaitable[_typing.Any]]
        | _capnweb.RpcStub,
        i: _typing.Any,
    ) -> _capnweb_typed.TypedPromise[dict[str, _typing.Any]]:
        """``{result: await func(i)}``."""
        return self._rpc_call(_capnweb_typed.TypedPromise, "callFunction", func, i)

    def throw_error(self) -> _capnweb_typed.TypedPromise[None]:
        """Throws ``RangeError("test error")``."""
        return self._rpc_call(_capnweb_typed.TypedPromise, "throwError")

    def throw_typed_error(
        self, name: str | _capnweb.RpcPromise[str], message: str | _capnweb.RpcPromise[str]
    ) -> _capnweb_typed.TypedPromise[None]:
        """Throws an error of type ``name`` (Error, TypeError, RangeError) with ``message``."""
        return self._rpc_call(_capnweb_typed.TypedPromise, "throwTypedError", name, message)

    def make_counter(self, i: float | _capnweb.RpcPromise[float] = 0) -> CounterPromise:
        """A new Counter starting at ``i``."""
        return self._rpc_call(CounterPromise, "makeCounter", i)

    def make_counters(
        self,
        values: _collections_abc.Sequence[float | _capnweb.RpcPromise[float]]
        | _capnweb.RpcPromise[list[float]],
    ) -> CounterBatchPromise:
        """One new Counter per value."""
        return self._rpc_call(CounterBatchPromise, "makeCounters", values)

    def increment_counter(
        self,
        counter: _examples_interop_contract.Counter
        | CounterStub
        | _collections_abc.Mapping[str, _typing.Any],
        i: float | _capnweb.RpcPromise[float] = 1,
    ) -> _capnweb_typed.TypedPromise[float]:
        """``counter.increment(i)``: a Counter (or a promise of one), or an object with an
        ``increment`` function.
        """
        return self._rpc_call(_capnweb_typed.TypedPromise, "incrementCounter", counter, i)

    def generate_fibonacci(self, n: int | _capnweb.RpcPromise[int]) -> IntListPromise:
        """The first ``n`` Fibonacci numbers."""
        return self._rpc_call(IntListPromise, "generateFibonacci", n)

    def return_null(self) -> _capnweb_typed.TypedPromise[None]:
        """``null``."""
        return self._rpc_call(_capnweb_typed.TypedPromise, "returnNull")

    def return_undefined(self) -> _capnweb_typed.TypedPromise[_capnweb.UndefinedType]:
        """``undefined``."""
        return self._rpc_call(_capnweb_typed.TypedPromise, "returnUndefined")

    def return_number(
        self, i: float | _capnweb.RpcPromise[float]
    ) -> _capnweb_typed.TypedPromise[float]:
        """``i``."""
        return self._rpc_call(_capnweb_typed.TypedPromise, "returnNumber", i)

    def echo(self, x: _typing.Any) -> _capnweb_typed.TypedPromise[_typing.Any]:
        """``x``, exactly as received."""
        return self._rpc_call(_capnweb_typed.TypedPromise, "echo", x)

    def delayed_echo(
        self, ms: float | _capnweb.RpcPromise[float], x: _typing.Any
    ) -> _capnweb_typed.TypedPromise[_typing.Any]:
        """``x`` after ``ms`` milliseconds (capped at 10 s), without blocking other calls."""
        return self._rpc_call(_capnweb_typed.TypedPromise, "delayedEcho", ms, x)

    def make_callback_holder(
        self,
        func: _collections_abc.Callable[[_typing.Any], _collections_abc.Awaitable[_typing.Any]]
        | _capnweb.RpcStub,
    ) -> CallbackHolderPromise:
        """A new CallbackHolder keeping ``func``."""
        return self._rpc_call(CallbackHolderPromise, "makeCallbackHolder", func)

    def get_session_id(self) -> _capnweb_typed.TypedPromise[str]:
        """A string unique to this session."""
        return self._rpc_call(_capnweb_typed.TypedPromise, "getSessionId")

    def get_live_counters(
        self, session_id: str | _capnweb.RpcPromise[str | None] | None = None
    ) -> _capnweb_typed.TypedPromise[int]:
        """How many Counters of session ``session_id`` (default: this one) are alive."""
        return self._rpc_call(_capnweb_typed.TypedPromise, "getLiveCounters", session_id)

    def stream_numbers(
        self, n: int | _capnweb.RpcPromise[int]
    ) -> _capnweb_typed.TypedPromise[_collections_abc.AsyncIterator[float]]:
        """A stream of the numbers ``0..n-1``, generated on demand."""
        return self._rpc_call(_capnweb_typed.TypedPromise, "streamNumbers", n)

    def stream_bytes(
        self, total: int | _capnweb.RpcPromise[int], chunk: int | _capnweb.RpcPromise[int]
    ) -> _capnweb_typed.TypedPromise[_collections_abc.AsyncIterator[_builtins.bytes]]:
        """``total`` bytes in chunks of ``chunk``; byte ``i`` is ``i % 251``."""
        return self._rpc_call(_capnweb_typed.TypedPromise, "streamBytes", total, chunk)

    def stream_status(
        self, session_id: str | _capnweb.RpcPromise[str | None] | None = None
    ) -> StreamStatusPromise:
        """The latest stream of session ``session_id`` (default: this one)."""
        return self._rpc_call(StreamStatusPromise, "streamStatus", session_id)

    def failing_stream(
        self, n: int | _capnweb.RpcPromise[int], message: str | _capnweb.RpcPromise[str]
    ) -> _capnweb_typed.TypedPromise[_collections_abc.AsyncIterator[float]]:
        """``0..n-1``, then the stream fails with ``Error(message)``."""
        return self._rpc_call(_capnweb_typed.TypedPromise, "failingStream", n, message)

    def sum_stream(
        self, readable: _collections_abc.AsyncIterable[float]
    ) -> _capnweb_typed.TypedPromise[float]:
        """The sum of a stream of numbers."""
        return self._rpc_call(_capnweb_typed.TypedPromise, "sumStream", readable)

    def digest_stream(
        self,
        readable: _collections_abc.AsyncIterable[_builtins.bytes],
        delay_ms: float | _capnweb.RpcPromise[float] = 0,
    ) -> DigestPromise:
        """Length, byte sum and Adler-32 of a byte stream, read after ``delay_ms``."""
        return self._rpc_call(DigestPromise, "digestStream", readable, delay_ms)

    def echo_stream(
        self, readable: _collections_abc.AsyncIterable[_typing.Any]
    ) -> _capnweb_typed.TypedPromise[_collections_abc.AsyncIterator[_typing.Any]]:
        """The same chunks, read as the caller reads."""
        return self._rpc_call(_capnweb_typed.TypedPromise, "echoStream", readable)

    def write_numbers(
        self, writable: _capnweb.WritableStream[float], n: int | _capnweb.RpcPromise[int]
    ) -> _capnweb_typed.TypedPromise[int]:
        """Writes ``0..n-1`` into ``writable``, closes it, returns ``n``."""
        return self._rpc_call(_capnweb_typed.TypedPromise, "writeNumbers", writable, n)

    def abort_writable(
        self, writable: _capnweb.WritableStream[_typing.Any], reason: str | _capnweb.RpcPromise[str]
    ) -> _capnweb_typed.TypedPromise[None]:
        """Aborts ``writable`` with ``Error(reason)``."""
        return self._rpc_call(_capnweb_typed.TypedPromise, "abortWritable", writable, reason)

    def echo_blob(
        self, blob: _capnweb.Blob | _capnweb.RpcPromise[_capnweb.Blob]
    ) -> _capnweb_typed.TypedPromise[_capnweb.Blob]:
        """The same Blob."""
        return self._rpc_call(_capnweb_typed.TypedPromise, "echoBlob", blob)

    def blob_info(
        self, blob: _capnweb.Blob | _capnweb.RpcPromise[_capnweb.Blob]
    ) -> BlobInfoPromise:
        """Its size and type."""
        return self._rpc_call(BlobInfoPromise, "blobInfo", blob)

    def echo_request(
        self, request: _capnweb.Request | _capnweb.RpcPromise[_capnweb.Request]
    ) -> RequestInfoPromise:
        """What the request holds."""
        return self._rpc_call(RequestInfoPromise, "echoRequest", request)

    def make_request(
        self,
        method: str | _capnweb.RpcPromise[str],
        url: str | _capnweb.RpcPromise[str],
        headers: _collections_abc.Sequence[
            _collections_abc.Sequence[str | _capnweb.RpcPromise[str]]
            | _capnweb.RpcPromise[list[str]]
        ]
        | _capnweb.RpcPromise[list[list[str]]],
        body: str | _capnweb.RpcPromise[str | None] | None,
    ) -> _capnweb_typed.TypedPromise[_capnweb.Request]:
        """A Request made of these parts."""
        return self._rpc_call(
            _capnweb_typed.TypedPromise, "makeRequest", method, url, headers, body
        )

    def describe_response(
        self, response: _capnweb.Response | _capnweb.RpcPromise[_capnweb.Response]
    ) -> ResponseInfoPromise:
        """What the response holds."""
        return self._rpc_call(ResponseInfoPromise, "describeResponse", response)

    def make_response(
        self,
        status: int | _capnweb.RpcPromise[int],
        body: str | _capnweb.RpcPromise[str | None] | None,
        headers: _collections_abc.Sequence[
            _collections_abc.Sequence[str | _capnweb.RpcPromise[str]]
            | _capnweb.RpcPromise[list[str]]
        ]
        | _capnweb.RpcPromise[list[list[str]]],
    ) -> _capnweb_typed.TypedPromise[_capnweb.Response]:
        """A Response made of these parts."""
        return self._rpc_call(_capnweb_typed.TypedPromise, "makeResponse", status, body, headers)

    def get_stats(self) -> SessionStatsPromise:
        """This session's import/export table sizes."""
        return self._rpc_call(SessionStatsPromise, "getStats")

    def call_twice(
        self,
        func: _collections_abc.Callable[[_typing.Any], _collections_abc.Awaitable[_typing.Any]]
        | _capnweb.RpcStub,
        x: _typing.Any,
    ) -> AnyListPromise:
        """``[await func(x), await func(x + 1)]``."""
        return self._rpc_call(AnyListPromise, "callTwice", func, x)

    def call_method(
        self, cap: _capnweb.RpcStub, name: str | _capnweb.RpcPromise[str], args: _typing.Any = None
    ) -> _capnweb_typed.TypedPromise[_typing.Any]:
        """``await cap[name](*args)``."""
        return self._rpc_call(_capnweb_typed.TypedPromise, "callMethod", cap, name, args)

    def get_property(
        self, cap: _capnweb.RpcStub, name: str | _capnweb.RpcPromise[str]
    ) -> _capnweb_typed.TypedPromise[_typing.Any]:
        """``await cap[name]``."""
        return self._rpc_call(_capnweb_typed.TypedPromise, "getProperty", cap, name)

    def throw_value(self, v: _typing.Any) -> _capnweb_typed.TypedPromise[None]:
        """Rejects with ``v`` itself."""
        return self._rpc_call(_capnweb_typed.TypedPromise, "throwValue", v)

    def return_nested_promise(
        self, ms: float | _capnweb.RpcPromise[float], x: _typing.Any
    ) -> _capnweb_typed.TypedPromise[dict[str, _typing.Any]]:
        """``{value: <promise of x after ms>}``."""
        return self._rpc_call(_capnweb_typed.TypedPromise, "returnNestedPromise", ms, x)


class AnyListPromise(
    _capnweb_typed.TypedListPromise[list[_typing.Any], _capnweb_typed.TypedPromise[_typing.Any]]
):
    """A pending ``list[Any]``: await it, or ``map()`` over it."""

    __slots__ = ()
    _result_type = list[_typing.Any]
    _element_type = _capnweb_typed.TypedPromise


class BlobInfoPromise(_capnweb_typed.TypedPromise[_examples_interop_contract.BlobInfo]):
    """A pending ``BlobInfo``: await it, or read its fields pipelined.

    ``blobInfo``'s answer.
    """

    __slots__ = ()
    _result_type = _examples_interop_contract.BlobInfo

    @property
    def size(self) -> _capnweb_typed.TypedPromise[int]:
        return self._rpc_get(_capnweb_typed.TypedPromise, "size")

    @property
    def type(self) -> _capnweb_typed.TypedPromise[str]:
        return self._rpc_get(_capnweb_typed.TypedPromise, "type")


class CallbackHolderPromise(_capnweb_typed.TypedPromise[CallbackHolderStub], CallbackHolderStub):
    """A pending ``CallbackHolderStub``: await it for the stub, or call its methods pipelined.

    Keeps a client function and calls it on ``invoke``; releases it when released.
    """

    __slots__ = ()
    _result_type = CallbackHolderStub


class CounterBatchPromise(_capnweb_typed.TypedPromise[_examples_interop_contract.CounterBatch]):
    """A pending ``CounterBatch``: await it, or read its fields pipelined.

    What ``makeCounters`` returns: capabilities inside a structure.
    """

    __slots__ = ()
    _result_type = _examples_interop_contract.CounterBatch

    @property
    def counters(self) -> CounterListPromise:
        return self._rpc_get(CounterListPromise, "counters")

    @property
    def count(self) -> _capnweb_typed.TypedPromise[int]:
        return self._rpc_get(_capnweb_typed.TypedPromise, "count")


class CounterPromise(_capnweb_typed.TypedPromise[CounterStub], CounterStub):
    """A pending ``CounterStub``: await it for the stub, or call its methods pipelined.

    A counter; alive until the client releases it.
    """

    __slots__ = ()
    _result_type = CounterStub


class CounterListPromise(_capnweb_typed.TypedListPromise[list[CounterStub], CounterPromise]):
    """A pending ``list[Counter]``: await it, or ``map()`` over it."""

    __slots__ = ()
    _result_type = list[CounterStub]
    _element_type = CounterPromise


class DigestPromise(_capnweb_typed.TypedPromise[_examples_interop_contract.Digest]):
    """A pending ``Digest``: await it, or read its fields pipelined.

    ``digestStream``'s summary of a byte stream.
    """

    __slots__ = ()
    _result_type = _examples_interop_contract.Digest

    @property
    def bytes(self) -> _capnweb_typed.TypedPromise[int]:
        return self._rpc_get(_capnweb_typed.TypedPromise, "bytes")

    @property
    def sum(self) -> _capnweb_typed.TypedPromise[int]:
        return self._rpc_get(_capnweb_typed.TypedPromise, "sum")

    @property
    def adler32(self) -> _capnweb_typed.TypedPromise[int]:
        return self._rpc_get(_capnweb_typed.TypedPromise, "adler32")


class IntListPromise(_capnweb_typed.TypedListPromise[list[int], _capnweb_typed.TypedPromise[int]]):
    """A pending ``list[int]``: await it, or ``map()`` over it."""

    __slots__ = ()
    _result_type = list[int]
    _element_type = _capnweb_typed.TypedPromise


class RequestInfoPromise(_capnweb_typed.TypedPromise[_examples_interop_contract.RequestInfo]):
    """A pending ``RequestInfo``: await it, or read its fields pipelined.

    ``echoRequest``'s answer: headers sorted, body as text.
    """

    __slots__ = ()
    _result_type = _examples_interop_contract.RequestInfo

    @property
    def method(self) -> _capnweb_typed.TypedPromise[str]:
        return self._rpc_get(_capnweb_typed.TypedPromise, "method")

    @property
    def url(self) -> _capnweb_typed.TypedPromise[str]:
        return self._rpc_get(_capnweb_typed.TypedPromise, "url")

    @property
    def headers(self) -> StrListListPromise:
        return self._rpc_get(StrListListPromise, "headers")

    @property
    def body(self) -> _capnweb_typed.TypedPromise[str | None]:
        return self._rpc_get(_capnweb_typed.TypedPromise, "body")


class ResponseInfoPromise(_capnweb_typed.TypedPromise[_examples_interop_contract.ResponseInfo]):
    """A pending ``ResponseInfo``: await it, or read its fields pipelined.

    ``describeResponse``'s answer: headers sorted, body as text.
    """

    __slots__ = ()
    _result_type = _examples_interop_contract.ResponseInfo

    @property
    def status(self) -> _capnweb_typed.TypedPromise[int]:
        return self._rpc_get(_capnweb_typed.TypedPromise, "status")

    @property
    def statusText(self) -> _capnweb_typed.TypedPromise[str]:
        return self._rpc_get(_capnweb_typed.TypedPromise, "statusText")

    @property
    def headers(self) -> StrListListPromise:
        return self._rpc_get(StrListListPromise, "headers")

    @property
    def body(self) -> _capnweb_typed.TypedPromise[str | None]:
        return self._rpc_get(_capnweb_typed.TypedPromise, "body")


class SessionStatsPromise(_capnweb_typed.TypedPromise[_examples_interop_contract.SessionStats]):
    """A pending ``SessionStats``: await it, or read its fields pipelined.

    The sizes of a session's import and export tables.
    """

    __slots__ = ()
    _result_type = _examples_interop_contract.SessionStats

    @property
    def imports(self) -> _capnweb_typed.TypedPromise[int]:
        return self._rpc_get(_capnweb_typed.TypedPromise, "imports")

    @property
    def exports(self) -> _capnweb_typed.TypedPromise[int]:
        return self._rpc_get(_capnweb_typed.TypedPromise, "exports")


class StrListPromise(_capnweb_typed.TypedListPromise[list[str], _capnweb_typed.TypedPromise[str]]):
    """A pending ``list[str]``: await it, or ``map()`` over it."""

    __slots__ = ()
    _result_type = list[str]
    _element_type = _capnweb_typed.TypedPromise


class StrListListPromise(_capnweb_typed.TypedListPromise[list[list[str]], StrListPromise]):
    """A pending ``list[list[str]]``: await it, or ``map()`` over it."""

    __slots__ = ()
    _result_type = list[list[str]]
    _element_type = StrListPromise


class StreamStatusPromise(_capnweb_typed.TypedPromise[_examples_interop_contract.StreamStatus]):
    """A pending ``StreamStatus``: await it, or read its fields pipelined.

    What ``streamStatus`` tells of the latest stream a session made.
    """

    __slots__ = ()
    _result_type = _examples_interop_contract.StreamStatus

    @property
    def produced(self) -> _capnweb_typed.TypedPromise[int]:
        return self._rpc_get(_capnweb_typed.TypedPromise, "produced")

    @property
    def state(self) -> _capnweb_typed.TypedPromise[str]:
        return self._rpc_get(_capnweb_typed.TypedPromise, "state")

    @property
    def reason(self) -> _capnweb_typed.TypedPromise[str | None]:
        return self._rpc_get(_capnweb_typed.TypedPromise, "reason")


class TestTargetPromise(_capnweb_typed.TypedPromise[TestTargetStub], TestTargetStub):
    """A pending ``TestTargetStub``: await it for the stub, or call its methods pipelined.

    The contract's main capability.
    """

    __slots__ = ()
    _result_type = TestTargetStub
