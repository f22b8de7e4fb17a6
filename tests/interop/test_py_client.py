"""The Python client against the TypeScript reference server (``js/server.mjs``, npm capnweb).

The mirror image of ``test_ts_client.py``: every check runs this project's client over WebSocket
(``ws``) and, where the scenario fits in one request, over HTTP batch (``batch``) against the
reference ``TestTarget`` of INTEROP-CONTRACT.md section 5 (plus the server's test-only extras
``getStats``, ``callTwice``, ``callMethod``, ``getProperty``, ``throwValue`` and
``returnNestedPromise``). A batch session is one POST: every call of a batch test is issued
before the loop turns and awaited together. Calls from the server into the client need a
WebSocket (the server cannot call back during a batch).

Leaks are checked the way the reference's own suite does: ``getStats()`` on the server and
``Session.stats()`` on the client go back to their bootstrap entries, and ``getLiveCounters``
drops as Counters are released.
"""

from __future__ import annotations

import asyncio
import gc
import json
import math
import subprocess
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest

import capnweb
from capnweb import (
    BigInt,
    RpcError,
    RpcPromise,
    RpcRangeError,
    RpcStub,
    RpcTypeError,
    Session,
    Stats,
    undefined,
)
from capnweb.errors import make_error
from capnweb.transports.http_batch import BatchClientTransport

from ._py_cases import (
    BIG_BYTES_1MIB,
    BIG_STRING,
    ECHO_CASES,
    WIRE_SEQUENCES,
    ClientCounter,
    Doubler,
    EchoCase,
    FrameLog,
    WireSequence,
    assert_strict,
    eventually,
    nested_value,
)
from .conftest import JS_DIR, node_command

pytestmark = pytest.mark.timeout(20)

WS = pytest.param("ws", id="ws")
BATCH = pytest.param("batch", id="batch")
BOTH = [WS, BATCH]

CLEAN = Stats(1, 1)
SERVER_CLEAN = {"imports": 1, "exports": 1}
CLOSE_TIMEOUT_S = 5.0
TRACE_TIMEOUT_S = 15.0


# --------------------------------------------------------------------------------------------
# Sessions


@dataclass
class Client:
    """One client session against the reference server."""

    conn: capnweb.Connection[RpcStub]
    api: RpcStub
    frames: FrameLog
    transport: str

    @property
    def session(self) -> Session:
        assert self.conn.session is not None
        return self.conn.session

    @property
    def requests(self) -> int:
        """HTTP requests made so far (batch sessions only)."""
        transport = self.conn.transport
        assert isinstance(transport, BatchClientTransport)
        return transport.requests

    async def close(self) -> None:
        async with asyncio.timeout(CLOSE_TIMEOUT_S):
            await self.conn.close()


class Clients:
    """Opens client sessions for one test and closes them all afterwards."""

    def __init__(self, http_url: str) -> None:
        self.http_url = http_url
        self.ws_url = "ws" + http_url.removeprefix("http")
        self._open: list[Client] = []

    async def open(self, transport: str, main: Any = None) -> Client:
        url = self.ws_url if transport == "ws" else self.http_url
        conn = capnweb.connect(url, main=main)
        async with asyncio.timeout(CLOSE_TIMEOUT_S):
            api = await conn.open()
        # No loop turn since open(): the session's reader has not read the transport yet.
        client = Client(conn, api, FrameLog(conn.transport), transport)
        self._open.append(client)
        return client

    async def close_all(self) -> None:
        for client in reversed(self._open):
            await client.close()


@pytest.fixture
async def clients(ts_server: str) -> AsyncIterator[Clients]:
    opened = Clients(ts_server)
    try:
        yield opened
    finally:
        await opened.close_all()


async def gather(*aws: Any) -> list[Any]:
    """All results, in order (one batch when the session is an HTTP batch)."""
    return list(await asyncio.gather(*aws))


async def outcomes(*aws: Any) -> list[Any]:
    """Results or the exceptions raised, in order."""
    return list(await asyncio.gather(*aws, return_exceptions=True))


def assert_error(got: Any, cls: type[BaseException], message: str) -> None:
    """``got`` is an exception of exactly ``cls`` with ``message``."""
    assert type(got) is cls, f"expected {cls.__name__}({message!r}), got {got!r}"
    assert str(got) == message


async def assert_server_clean(client: Client) -> None:
    """The server's tables for this session hold only the bootstrap entries (and so do ours,
    once its answer arrived: everything it released before answering has been processed)."""
    assert await client.api.getStats() == SERVER_CLEAN
    assert client.session.stats() == CLEAN


# --------------------------------------------------------------------------------------------
# Calls


@pytest.mark.parametrize("transport", BOTH)
async def test_calls(clients: Clients, transport: str) -> None:
    api = (await clients.open(transport)).api
    results = await gather(
        api.square(3),
        api.square(-1.5),
        api.returnNumber(42),
        api.returnNumber(-0.5),
        api.returnNull(),
        api.returnUndefined(),
        api.generateFibonacci(10),
        api.generateFibonacci(1),
        api.generateFibonacci(0),
        api.generateFibonacci(-3),
        api.delayedEcho(20, {"x": [BigInt(1)]}),
        api.delayedEcho(0, "now"),
    )
    expected = [
        9,
        2.25,
        42,
        -0.5,
        None,
        undefined,
        [0, 1, 1, 2, 3, 5, 8, 13, 21, 34],
        [0],
        [],
        [],
        {"x": [BigInt(1)]},
        "now",
    ]
    assert_strict(results, expected, "results")


@pytest.mark.parametrize("transport", BOTH)
async def test_make_counter_default(clients: Clients, transport: str) -> None:
    api = (await clients.open(transport)).api
    counter = api.makeCounter()
    results = await gather(
        counter.increment(),
        counter.increment(),
        counter.value,
        api.makeCounter().value,
        api.makeCounter(10).increment(),
        api.incrementCounter(api.makeCounter(3)),
    )
    assert_strict(results, [1, 2, 2, 0, 11, 4], "results")


@pytest.mark.parametrize("transport", BOTH)
async def test_call_square_with_main_stub_passed_back(clients: Clients, transport: str) -> None:
    client = await clients.open(transport)
    api = client.api
    mark = client.frames.mark()
    results = await gather(
        api.callSquare(api, 3),
        api.callSquare(api, api.square(2)),
        api.callSquare(api, 4).result,
    )
    assert_strict(results, [{"result": 9}, {"result": 16}, 16], "results")
    first = client.frames.parsed_sent(mark)[0]
    assert first == ["push", ["pipeline", 0, ["callSquare"], [["import", 0], 3]]]


@pytest.mark.parametrize("transport", BOTH)
async def test_return_nested_promise(clients: Clients, transport: str) -> None:
    api = (await clients.open(transport)).api
    results = await gather(
        api.returnNestedPromise(30, {"a": [1, BigInt(2)]}),
        api.returnNestedPromise(10, 5).value,
        api.returnNestedPromise(0, undefined),
    )
    expected = [{"value": {"a": [1, BigInt(2)]}}, 5, {"value": undefined}]
    assert_strict(results, expected, "results")


@pytest.mark.parametrize("transport", BOTH)
async def test_session_ids(clients: Clients, transport: str) -> None:
    a = (await clients.open(transport)).api
    b = (await clients.open(transport)).api
    first, again, other = await gather(a.getSessionId(), a.getSessionId(), b.getSessionId())
    assert isinstance(first, str) and first
    assert again == first
    assert other != first


@pytest.mark.parametrize("transport", BOTH)
async def test_get_live_counters(clients: Clients, transport: str) -> None:
    api = (await clients.open(transport)).api
    fresh, unknown = await outcomes(api.getLiveCounters(), api.getLiveCounters("no-such-session"))
    assert fresh == 0
    assert_error(unknown, RpcError, "unknown session id: no-such-session")


async def test_live_counters_of_another_session(clients: Clients) -> None:
    a = (await clients.open("ws")).api
    b = (await clients.open("ws")).api
    a_id = await a.getSessionId()
    counter = await a.makeCounter(1)
    assert await gather(b.getLiveCounters(), b.getLiveCounters(a_id), a.getLiveCounters()) == [
        0,
        1,
        1,
    ]
    counter.dispose()


# --------------------------------------------------------------------------------------------
# Pipelining


@pytest.mark.parametrize("transport", BOTH)
async def test_pipelining_three_calls_in_one_round_trip(clients: Clients, transport: str) -> None:
    client = await clients.open(transport)
    api = client.api
    mark = client.frames.mark()
    counter = api.makeCounter(2)
    results = await gather(counter.increment(3), api.incrementCounter(counter, 4))
    assert results == [5, 9]
    events = client.frames.since(mark)
    first_answer = next(i for i, (direction, _) in enumerate(events) if direction == "in")
    before = [json.loads(text) for direction, text in events[:first_answer] if direction == "out"]
    assert before == [
        ["push", ["pipeline", 0, ["makeCounter"], [2]]],
        ["push", ["pipeline", 1, ["increment"], [3]]],
        ["push", ["pipeline", 0, ["incrementCounter"], [["pipeline", 1], 4]]],
        ["pull", 2],
        ["pull", 3],
    ], "every push and pull goes out before the first answer comes back"
    if transport == "batch":
        assert client.requests == 1


@pytest.mark.parametrize("transport", BOTH)
async def test_pipelined_property(clients: Clients, transport: str) -> None:
    client = await clients.open(transport)
    api = client.api
    mark = client.frames.mark()
    counter = api.makeCounter(6)
    counter.increment(1)
    results = await gather(api.makeCounter(5).value, counter.value)
    assert results == [5, 7]
    sent = client.frames.parsed_sent(mark)
    assert ["push", ["pipeline", 3, ["value"]]] in sent  # a property read has no args element
    if transport == "batch":
        assert client.requests == 1


@pytest.mark.parametrize("transport", BOTH)
async def test_pipelined_arguments(clients: Clients, transport: str) -> None:
    client = await clients.open(transport)
    api = client.api
    results = await gather(
        api.square(api.square(2)),
        api.square(api.square(api.square(2))),
        api.echo({"a": api.square(3), "b": [api.returnNumber(4), api.makeCounter(7).value]}),
        api.incrementCounter(api.makeCounter(2), 3),
        api.incrementCounter(api.makeCounters([4, 5]).counters[1], 10),
    )
    assert_strict(results, [16, 256, {"a": 9, "b": [4, 7]}, 5, 15], "results")
    if transport == "batch":
        assert client.requests == 1


@pytest.mark.parametrize("transport", BOTH)
async def test_pipelined_paths(clients: Clients, transport: str) -> None:
    api = (await clients.open(transport)).api
    fib = api.generateFibonacci(5)
    results = await gather(
        api.echo({"a": {"b": [1, [2]]}}).a.b,
        api.echo({"a": 1}).nope,
        api.makeCounters([4, 5]).count,
        # Python sends an int path element as a number, which the reference uses as an index;
        # a string is a property name (arrays have none), as with the TypeScript client.
        fib[3],
        fib["3"],
        fib.length,
    )
    assert_strict(results, [[1, [2]], undefined, 2, 2, undefined, undefined], "results")


# --------------------------------------------------------------------------------------------
# Capabilities: returned, structured, passed back


@pytest.mark.parametrize("transport", BOTH)
async def test_make_counters_structure(clients: Clients, transport: str) -> None:
    client = await clients.open(transport)
    api = client.api
    result, empty = await gather(api.makeCounters([1, 2, 3]), api.makeCounters([]))
    assert set(result) == {"counters", "count"}
    assert result["count"] == 3
    counters = result["counters"]
    assert isinstance(counters, list) and len(counters) == 3
    assert all(type(c) is RpcStub for c in counters)
    assert_strict(empty, {"counters": [], "count": 0}, "makeCounters([])")
    if transport == "ws":
        increments = await gather(*(c.increment(10 * i) for i, c in enumerate(counters)))
        assert increments == [1, 12, 23]
        assert await api.incrementCounter(counters[1], 5) == 17
        assert await api.getLiveCounters() == 3
        for counter in counters:
            counter.dispose()
        assert await api.getLiveCounters() == 0
        await assert_server_clean(client)


async def test_returned_counter_passed_back(clients: Clients) -> None:
    client = await clients.open("ws")
    api = client.api
    counter = await api.makeCounter(4)
    assert type(counter) is RpcStub
    assert await counter.increment(2) == 6
    assert await counter.value == 6
    mark = client.frames.mark()
    assert await api.incrementCounter(counter, 1) == 7
    push = client.frames.parsed_sent(mark)[0]
    assert push[0] == "push" and push[1][3][0][0] == "import", push  # passed back, no new id
    assert await api.incrementCounter(counter) == 8
    assert await counter.value == 8
    counter.dispose()
    await assert_server_clean(client)


async def test_unresolved_promise_passed_back(clients: Clients) -> None:
    client = await clients.open("ws")
    api = client.api
    promise = api.makeCounter(2)
    assert await api.incrementCounter(promise, 3) == 5
    assert await promise.increment(1) == 6  # the same Counter
    promise.dispose()
    assert await api.getLiveCounters() == 0
    await assert_server_clean(client)


async def test_client_object_passed_to_the_server(clients: Clients) -> None:
    client = await clients.open("ws")
    api = client.api
    local = ClientCounter(100)
    assert await api.incrementCounter(local, 5) == 105
    assert await api.incrementCounter(local) == 106  # the reference's default amount
    assert await api.callMethod(local, "increment", [2]) == 108
    assert await api.getProperty(local, "value") == 108
    assert await api.getProperty(local, "_secret") is undefined
    with pytest.raises(RpcTypeError) as caught:
        await api.getProperty(local, "amounts")  # an instance attribute
    assert str(caught.value).startswith("Attempted to access property 'amounts'")
    assert local.amounts == [5, 1, 2]
    # The server released every copy of the client object once each call was over.
    await assert_server_clean(client)


# --------------------------------------------------------------------------------------------
# Callbacks (the server calls the client: WebSocket only)


async def test_callback_function(clients: Clients) -> None:
    client = await clients.open("ws")
    api = client.api
    assert await api.callFunction(lambda i: i * 2, 3) == {"result": 6}

    async def slow(i: int) -> str:
        await asyncio.sleep(0)
        return f"got {i}"

    assert await api.callFunction(slow, 5) == {"result": "got 5"}
    received: list[Any] = []
    rich = {"big": BigInt(2**70), "u": undefined, "b": b"\x00\xff", "inf": -math.inf, "s": "\ud800"}

    def keep(x: Any) -> Any:
        received.append(x)
        return rich

    assert_strict(await api.callFunction(keep, rich), {"result": rich}, "rich result")
    assert_strict(received, [rich], "argument the callback received")
    await assert_server_clean(client)


async def test_callback_called_twice(clients: Clients) -> None:
    client = await clients.open("ws")
    seen: list[int] = []

    def record(x: int) -> int:
        seen.append(x)
        return x * 10

    assert await client.api.callTwice(record, 5) == [50, 60]
    assert seen == [5, 6]
    await assert_server_clean(client)


async def test_callback_errors_propagate(clients: Clients) -> None:
    client = await clients.open("ws")
    api = client.api

    def fails(x: int) -> int:
        raise TypeError("callback failed")

    async def fails_later(x: int) -> int:
        await asyncio.sleep(0)
        raise ValueError(f"late failure {x}")

    def fails_with_props(x: int) -> int:
        raise make_error("RangeError", "coded", {"code": "E1", "at": [x]})

    type_error, range_error, coded = await outcomes(
        api.callFunction(fails, 1),
        api.callFunction(fails_later, 2),
        api.callFunction(fails_with_props, 3),
    )
    assert_error(coded, RpcRangeError, "coded")
    assert_strict(coded.props, {"code": "E1", "at": [3]}, "props of the callback's error")
    assert_error(type_error, RpcTypeError, "callback failed")
    assert isinstance(type_error, TypeError)
    assert_error(range_error, RpcRangeError, "late failure 2")  # ValueError travels as RangeError
    assert isinstance(range_error, ValueError)
    assert await api.square(3) == 9
    await assert_server_clean(client)


async def test_callback_reentrant(clients: Clients) -> None:
    client = await clients.open("ws")
    api = client.api

    async def func(i: int) -> int:  # calls the server while the server waits for it
        return int(await api.square(i)) + 1

    assert await api.callFunction(func, 4) == {"result": 17}
    await assert_server_clean(client)


class Scaler(capnweb.RpcTarget):
    def scale(self, x: int) -> int:
        return x * 3


async def test_callback_holder_invokes_in_order(clients: Clients) -> None:
    client = await clients.open("ws")
    api = client.api
    calls: list[int] = []

    async def func(x: int) -> int:
        calls.append(x)
        for _ in range(4 - x):  # later calls finish first
            await asyncio.sleep(0)
        if x < 0:
            raise ValueError(f"negative: {x}")
        return x * 10

    holder = await api.makeCallbackHolder(func)
    assert await api.square(2) == 4  # the holder keeps func after makeCallbackHolder returned
    assert await gather(holder.invoke(1), holder.invoke(2), holder.invoke(3)) == [10, 20, 30]
    assert calls == [1, 2, 3]
    with pytest.raises(RpcRangeError, match=r"^negative: -1$"):
        await holder.invoke(-1)
    assert await holder.invoke(4) == 40
    assert calls == [1, 2, 3, -1, 4]
    assert client.session.stats().exports == CLEAN.exports + 1  # func, held by the server
    holder.dispose()  # the server releases the holder, and with it func
    await assert_server_clean(client)


async def test_callback_holder_pipelined(clients: Clients) -> None:
    client = await clients.open("ws")
    holder = client.api.makeCallbackHolder(lambda x: [x, x])
    assert await holder.invoke("a") == ["a", "a"]
    holder.dispose()
    await assert_server_clean(client)


async def test_callback_stub_of_a_target(clients: Clients) -> None:
    client = await clients.open("ws")
    api = client.api
    scaler = RpcStub(Scaler())
    with pytest.raises(TypeError):
        RpcStub(42)  # only capabilities have local stubs
    assert await api.callMethod(scaler, "scale", [4]) == 12
    assert await api.incrementCounter(ClientCounter(1), 1) == 2
    scaler.dispose()
    await assert_server_clean(client)


async def test_not_a_function_errors_match_the_reference(clients: Clients) -> None:
    """Calling something that is not a function fails with the same TypeError whichever side
    the target lives on: the reference names the whole path ('' for the target itself)."""
    client = await clients.open("ws")
    api = client.api
    local = ClientCounter(1)
    results = await outcomes(
        api(1),  # the server's main object itself
        api.echo({"a": {"b": 1}}).a.b(2),
        api.callFunction(local, 3),  # our RpcTarget called as a function
        api.callMethod(local, "nope", []),
        api.callMethod(local, "value", []),
    )
    messages = ["''", "'a.b'", "''", "'nope'", "'value'"]
    for got, name in zip(results, messages, strict=True):
        assert_error(got, RpcTypeError, f"{name} is not a function.")
    await assert_server_clean(client)


class Child(capnweb.RpcTarget):
    def __init__(self) -> None:
        self.disposed = asyncio.Event()

    def hello(self, x: int) -> str:
        return f"hello {x}"

    def on_dispose(self) -> None:
        self.disposed.set()


class Parent(capnweb.RpcTarget):
    def __init__(self) -> None:
        self.kid = Child()

    def child(self) -> Child:
        return self.kid


async def test_python_capability_returned_by_the_server(clients: Clients) -> None:
    """The server returns a capability that lives here: it comes back as ["import", id] and is
    the local object again (calls on it stay local), released like any other."""
    client = await clients.open("ws")
    api = client.api
    parent = Parent()
    mark = client.frames.mark()
    kid = await api.callMethod(parent, "child", [])
    resolves = [json.loads(t) for d, t in client.frames.since(mark) if d == "in"]
    assert ["resolve", 1, ["import", -2]] in resolves
    sent_before = len(client.frames.sent_since(mark))
    assert await kid.hello(1) == "hello 1"
    assert len(client.frames.sent_since(mark)) == sent_before  # no frame: a local call
    kid.dispose()
    async with asyncio.timeout(5):
        await parent.kid.disposed.wait()
    await assert_server_clean(client)


async def test_reference_echo_rejects_received_capabilities(clients: Clients) -> None:
    """Not in the contract: the reference's ``echo`` cannot return a capability it received
    (its copies of argument stubs are disposed when the call returns, before the result is
    sent). The call rejects; nothing leaks on either side."""
    client = await clients.open("ws")
    api = client.api
    counter = await api.makeCounter(3)
    function_error, counter_error = await outcomes(
        api.echo([lambda x: x]), api.echo({"c": counter})
    )
    assert_error(function_error, RpcError, "This RpcImportHook was already disposed.")
    assert_error(counter_error, RpcError, "Attempted to use an RPC StubHook after it was disposed.")
    assert await counter.increment(1) == 4  # our own reference is unaffected
    counter.dispose()
    await assert_server_clean(client)


async def test_client_promise_argument(clients: Clients) -> None:
    client = await clients.open("ws")
    api = client.api
    ready = asyncio.Event()

    async def six() -> int:
        await ready.wait()
        return 6

    async def refuse() -> int:
        await ready.wait()
        raise TypeError("client says no")

    squared = api.square(RpcPromise.from_awaitable(six()))
    refused = api.echo(RpcPromise.from_awaitable(refuse()))
    assert await api.square(2) == 4  # the server keeps serving while it waits for our promises
    ready.set()
    got, error = await outcomes(squared, refused)
    assert got == 36
    assert_error(error, RpcTypeError, "client says no")
    await assert_server_clean(client)


async def test_session_closed_while_the_server_awaits_a_callback(clients: Clients) -> None:
    first = await clients.open("ws")
    entered = asyncio.Event()

    async def never(x: int) -> int:
        entered.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    pending = asyncio.ensure_future(first.api.callFunction(never, 1))
    async with asyncio.timeout(5):
        await entered.wait()
    await first.close()
    [error] = await outcomes(pending)
    assert isinstance(error, capnweb.RpcDisconnectedError), repr(error)
    assert await (await clients.open("ws")).api.square(4) == 16


# --------------------------------------------------------------------------------------------
# Errors


@pytest.mark.parametrize("transport", BOTH)
async def test_throw_error(clients: Clients, transport: str) -> None:
    api = (await clients.open(transport)).api
    [error] = await outcomes(api.throwError())
    assert_error(error, RpcRangeError, "test error")
    assert error.name == "RangeError"
    assert isinstance(error, ValueError)  # a RangeError is caught by `except ValueError`


@pytest.mark.parametrize("transport", BOTH)
async def test_throw_typed_error(clients: Clients, transport: str) -> None:
    api = (await clients.open(transport)).api
    errors = await outcomes(
        api.throwTypedError("Error", "plain"),
        api.throwTypedError("TypeError", "a type"),
        api.throwTypedError("RangeError", "a range"),
        api.throwTypedError("TypeError", 'ü 😀 \u2028 "q"'),
    )
    assert_error(errors[0], RpcError, "plain")
    assert_error(errors[1], RpcTypeError, "a type")
    assert_error(errors[2], RpcRangeError, "a range")
    assert_error(errors[3], RpcTypeError, 'ü 😀 \u2028 "q"')
    assert [e.name for e in errors] == ["Error", "TypeError", "RangeError", "TypeError"]


@pytest.mark.parametrize("transport", BOTH)
async def test_unknown_method(clients: Clients, transport: str) -> None:
    api = (await clients.open(transport)).api
    bad, good = await outcomes(api.noSuchMethod(1), api.square(5))
    assert_error(bad, RpcTypeError, "'noSuchMethod' is not a function.")
    assert good == 25
    if transport == "ws":
        assert await api.square(6) == 36


@pytest.mark.parametrize("transport", BOTH)
async def test_throw_value(clients: Clients, transport: str) -> None:
    api = (await clients.open(transport)).api
    with_props, number, text, python_error = await outcomes(
        api.throwValue(make_error("RangeError", "boom", {"code": "E1", "n": [1]})),
        api.throwValue(42),
        api.throwValue("just a string"),
        api.throwValue(KeyError("k")),
    )
    assert_error(with_props, RpcRangeError, "boom")
    assert_strict(with_props.props, {"code": "E1", "n": [1]}, "props")
    # A rejection with a non-error value reaches Python as an RpcError carrying the value.
    assert_error(number, RpcError, "rejected with a non-error value: 42")
    assert number.props == {"value": 42}
    assert_error(text, RpcError, "rejected with a non-error value: 'just a string'")
    assert_error(python_error, RpcError, "'k'")


@pytest.mark.parametrize("transport", BOTH)
async def test_rejections_propagate_to_pipelined_calls(clients: Clients, transport: str) -> None:
    api = (await clients.open(transport)).api
    results = await outcomes(
        api.throwError().someMethod(1),
        api.throwError().someProperty,
        api.square(api.throwError()),
        api.echo({"a": [api.throwTypedError("TypeError", "inner")]}),
        api.incrementCounter(api.throwTypedError("Error", "no counter")),
        api.noSuchMethod().value,
        api.generateFibonacci(3).map(lambda _: api.throwError()),
    )
    assert_error(results[0], RpcRangeError, "test error")
    assert_error(results[1], RpcRangeError, "test error")
    assert_error(results[2], RpcRangeError, "test error")
    assert_error(results[3], RpcTypeError, "inner")
    assert_error(results[4], RpcError, "no counter")
    assert_error(results[5], RpcTypeError, "'noSuchMethod' is not a function.")
    assert_error(results[6], RpcRangeError, "test error")


async def test_abort_from_the_server_breaks_the_session(clients: Clients) -> None:
    client = await clients.open("ws")
    api = client.api
    counter = await api.makeCounter(1)
    broken: list[BaseException] = []
    counter.on_broken(broken.append)
    pending = api.delayedEcho(2000, "never answered")
    transport = client.conn.transport
    assert transport is not None
    transport.send("this is not json")  # the server aborts the session
    [error] = await outcomes(pending)
    # The abort frame's error arrives as the reason, with its JavaScript type.
    assert type(error) is capnweb.RpcSyntaxError, repr(error)
    assert error.name == "SyntaxError"
    assert client.session.broken is error
    assert broken == [error]
    with pytest.raises(capnweb.RpcSyntaxError):
        await api.square(2)
    assert await (await clients.open("ws")).api.square(3) == 9


@pytest.mark.parametrize("transport", BOTH)
async def test_unpulled_rejection_is_harmless(clients: Clients, transport: str) -> None:
    api = (await clients.open(transport)).api
    dropped = [api.throwError(), api.throwTypedError("TypeError", "ignored")]
    assert await api.square(7) == 49
    for promise in dropped:
        promise.dispose()


@pytest.mark.parametrize("transport", BOTH)
async def test_unencodable_arguments_fail_locally(clients: Clients, transport: str) -> None:
    client = await clients.open(transport)
    api = client.api
    mark = client.frames.mark()
    int_keys, naive, good = await outcomes(
        api.echo({1: "int key"}), api.echo(datetime(2020, 1, 1)), api.square(4)
    )
    assert isinstance(int_keys, TypeError)
    assert isinstance(naive, TypeError)
    assert good == 16
    assert [f[1][2] for f in client.frames.parsed_sent(mark) if f[0] == "push"] == [["square"]]


# --------------------------------------------------------------------------------------------
# Values


@pytest.mark.parametrize("transport", BOTH)
@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in ECHO_CASES])
async def test_echo(clients: Clients, transport: str, case: EchoCase) -> None:
    api = (await clients.open(transport)).api
    [got] = await gather(api.echo(case.value))
    assert_strict(got, case.expected, f"echo({case.id})")


@pytest.mark.parametrize("transport", BOTH)
async def test_echo_big_values(clients: Clients, transport: str) -> None:
    api = (await clients.open(transport)).api
    deep = nested_value(60)
    results = await gather(api.echo(BIG_STRING), api.echo(BIG_BYTES_1MIB), api.echo(deep))
    assert results[0] == BIG_STRING
    assert results[1] == BIG_BYTES_1MIB
    assert_strict(results[2], deep, "60 levels of nesting")


@pytest.mark.parametrize("transport", BOTH)
async def test_echo_as_call_argument_wire_form(clients: Clients, transport: str) -> None:
    """The contract's section 7 example, as sent: arrays escaped at every depth."""
    client = await clients.open(transport)
    mark = client.frames.mark()
    value = {"a": [1, [2]], "u": undefined, "n": BigInt(5), "i": math.inf, "e": TypeError("x")}
    await gather(client.api.echo(value))
    assert client.frames.sent_since(mark)[0] == (
        '["push",["pipeline",0,["echo"],[{"a":[[1,[[2]]]],"u":["undefined"],'
        '"n":["bigint","5"],"i":["inf"],"e":["error","TypeError","x"]}]]]'
    )


# --------------------------------------------------------------------------------------------
# map()


MAP_CASES: list[tuple[str, Callable[[RpcStub], RpcPromise[Any]], Any]] = [
    ("fibonacci_square", lambda api: api.generateFibonacci(6).map(api.square), [0, 1, 1, 4, 9, 25]),
    (
        "fibonacci_square_lambda",
        lambda api: api.generateFibonacci(6).map(lambda i: api.square(i)),
        [0, 1, 1, 4, 9, 25],
    ),
    ("identity", lambda api: api.generateFibonacci(5).map(lambda i: i), [0, 1, 1, 2, 3]),
    ("on_empty_list", lambda api: api.generateFibonacci(0).map(lambda i: api.square(i)), []),
    ("on_number", lambda api: api.returnNumber(7).map(lambda x: api.square(x)), 49),
    ("on_dict", lambda api: api.echo({"a": 3, "b": [4]}).map(lambda o: api.square(o.a)), 9),
    # The mapper would reject if it ran: null/undefined come back without running it.
    ("on_null", lambda api: api.returnNull().map(lambda _: api.throwError()), None),
    ("on_undefined", lambda api: api.returnUndefined().map(lambda _: api.throwError()), undefined),
    (
        "nested",
        lambda api: api.generateFibonacci(6).map(
            lambda i: api.generateFibonacci(i).map(lambda j: api.square(j))
        ),
        [[], [0], [0], [0, 1], [0, 1, 1], [0, 1, 1, 4, 9]],
    ),
    (
        "chained_calls",
        lambda api: api.generateFibonacci(5).map(lambda i: api.square(api.square(i))),
        [0, 1, 1, 16, 81],
    ),
    (
        "build_dicts_with_lists",
        lambda api: api.generateFibonacci(4).map(
            lambda i: {
                "n": i,
                "sq": api.square(i),
                "pair": [i, api.square(i)],
                "empty": [],
                "nested": {"list": [[i]]},
                "u": undefined,
            }
        ),
        [
            {"n": i, "sq": i * i, "pair": [i, i * i], "empty": [], "nested": {"list": [[i]]}}
            | {"u": undefined}
            for i in (0, 1, 1, 2)
        ],
    ),
    (
        "make_counters",
        lambda api: api.generateFibonacci(4).map(lambda i: api.makeCounter(i).increment(10)),
        [10, 11, 11, 12],
    ),
    (
        "counter_property",
        lambda api: api.generateFibonacci(4).map(lambda i: api.makeCounter(i).value),
        [0, 1, 1, 2],
    ),
    (
        "over_stubs_at_a_path",
        lambda api: api.makeCounters([1, 2, 3]).counters.map(lambda c: c.increment(5)),
        [6, 7, 8],
    ),
]


@pytest.mark.parametrize("transport", BOTH)
@pytest.mark.parametrize(
    ("mapper", "expected"), [pytest.param(fn, want, id=name) for name, fn, want in MAP_CASES]
)
async def test_map(
    clients: Clients,
    transport: str,
    mapper: Callable[[RpcStub], RpcPromise[Any]],
    expected: Any,
) -> None:
    client = await clients.open(transport)
    [got] = await gather(mapper(client.api))
    assert_strict(got, expected, "map result")
    if transport == "batch":
        assert client.requests == 1


async def test_map_wire_form(clients: Clients) -> None:
    client = await clients.open("ws")
    api = client.api
    mark = client.frames.mark()
    assert await api.generateFibonacci(3).map(lambda i: api.square(i)) == [0, 1, 1]
    assert client.frames.sent_since(mark)[:3] == [
        '["push",["pipeline",0,["generateFibonacci"],[3]]]',
        '["push",["remap",1,[],[["import",0]],'
        '[["pipeline",-1,["square"],[["pipeline",0]]],["pipeline",1]]]]',
        '["pull",2]',
    ]


async def test_map_capturing_python_stubs(clients: Clients) -> None:
    client = await clients.open("ws")
    api = client.api
    doubler = Doubler()
    stub = RpcStub(doubler)
    add_one = RpcStub(lambda x: x + 1)
    mark = client.frames.mark()
    result = await api.generateFibonacci(5).map(lambda i: [i, stub.double(i), add_one(i)])
    assert result == [[0, 0, 1], [1, 2, 2], [1, 2, 2], [2, 4, 3], [3, 6, 4]]
    assert sorted(doubler.seen) == [0, 1, 1, 2, 3]
    remap = client.frames.parsed_sent(mark)[1][1]
    assert remap[0] == "remap" and remap[3] == [["export", -1], ["export", -2]], remap
    stub.dispose()
    add_one.dispose()
    async with asyncio.timeout(5):
        await doubler.disposed.wait()  # the server released its capture, we released ours
    await assert_server_clean(client)


async def test_map_returning_counters(clients: Clients) -> None:
    client = await clients.open("ws")
    api = client.api
    counters = await api.generateFibonacci(4).map(lambda i: api.makeCounter(i))
    assert len(counters) == 4 and all(type(c) is RpcStub for c in counters)
    assert await gather(*(c.increment(1) for c in counters)) == [1, 2, 2, 3]
    assert await api.getLiveCounters() == 4
    for counter in counters:
        counter.dispose()
    assert await api.getLiveCounters() == 0
    await assert_server_clean(client)


async def test_map_intermediate_counters_released(clients: Clients) -> None:
    client = await clients.open("ws")
    api = client.api
    values = await api.generateFibonacci(3).map(lambda i: api.makeCounter(i).increment(1))
    assert values == [1, 2, 2]
    assert await api.getLiveCounters() == 0  # the Counters only lived inside the mapper
    await assert_server_clean(client)


# --------------------------------------------------------------------------------------------
# Disposal, seen from the server


async def test_dispose_counter_stub(clients: Clients) -> None:
    client = await clients.open("ws")
    api = client.api
    assert await api.getStats() == SERVER_CLEAN
    counter = await api.makeCounter(1)
    assert await api.getLiveCounters() == 1
    assert await api.getStats() == {"imports": 1, "exports": 2}
    assert client.session.stats() == Stats(2, 1)
    counter.dispose()
    assert await api.getLiveCounters() == 0
    await assert_server_clean(client)
    counter.dispose()  # idempotent


async def test_dispose_never_awaited_promise(clients: Clients) -> None:
    client = await clients.open("ws")
    api = client.api
    mark = client.frames.mark()
    promise = api.makeCounter(5)
    assert await api.getLiveCounters() == 1  # the push ran although nobody pulled it
    promise.dispose()
    assert await api.getLiveCounters() == 0
    sent = client.frames.parsed_sent(mark)
    assert ["release", 1, 1] in sent
    assert ["pull", 1] not in sent
    await assert_server_clean(client)


async def test_dispose_by_garbage_collection(clients: Clients) -> None:
    client = await clients.open("ws")
    api = client.api
    counter = await api.makeCounter(1)
    promise = api.makeCounter(2)  # never awaited
    assert await counter.increment(1) == 2
    assert await api.getLiveCounters() == 2
    del counter, promise
    gc.collect()
    await asyncio.sleep(0)  # the releases are queued for the next loop turn
    assert await api.getLiveCounters() == 0
    await assert_server_clean(client)


async def test_dispose_pipelined_argument(clients: Clients) -> None:
    client = await clients.open("ws")
    api = client.api
    promise = api.makeCounter(2)
    assert await api.incrementCounter(promise, 3) == 5
    assert await api.getLiveCounters() == 1
    promise.dispose()
    assert await api.getLiveCounters() == 0
    await assert_server_clean(client)


async def test_dispose_make_counters(clients: Clients) -> None:
    client = await clients.open("ws")
    api = client.api
    result = await api.makeCounters([1, 2, 3])
    assert await api.getLiveCounters() == 3
    result["counters"][1].dispose()
    assert await api.getLiveCounters() == 2
    for counter in result["counters"]:
        counter.dispose()
    assert await api.getLiveCounters() == 0
    await assert_server_clean(client)


@pytest.mark.parametrize("transport", BOTH)
async def test_session_end_releases_everything(clients: Clients, transport: str) -> None:
    first = await clients.open(transport)
    api = first.api
    held = [api.makeCounter(1), api.makeCounters([2, 3])]
    session_id, live = await gather(api.getSessionId(), api.getLiveCounters())
    assert live == 3
    if transport == "ws":
        observer = (await clients.open("ws")).api
        assert await observer.getLiveCounters(session_id) == 3
        await first.close()  # the Counters are still held here: closing releases them

        async def released() -> None:
            assert await observer.getLiveCounters(session_id) == 0

    else:  # the batch session ended with its response; look from fresh sessions

        async def released() -> None:
            fresh = await clients.open("batch")
            assert await fresh.api.getLiveCounters(session_id) == 0

    await eventually(released)
    del held


# --------------------------------------------------------------------------------------------
# E-order and concurrency


@pytest.mark.parametrize("transport", BOTH)
async def test_eorder_on_a_pipelined_counter(clients: Clients, transport: str) -> None:
    api = (await clients.open(transport)).api
    counter = api.makeCounter(0)
    assert await gather(*(counter.increment(1) for _ in range(5))) == [1, 2, 3, 4, 5]


async def test_eorder_on_a_resolved_counter(clients: Clients) -> None:
    client = await clients.open("ws")
    counter = await client.api.makeCounter(100)
    results = await gather(*(counter.increment(1) for _ in range(20)))
    assert results == list(range(101, 121))
    counter.dispose()


async def test_delayed_echo_does_not_block(clients: Clients) -> None:
    api = (await clients.open("ws")).api
    assert await api.square(1) == 1  # connected
    slow = asyncio.ensure_future(api.delayedEcho(500, "slow"))
    assert await api.square(3) == 9
    assert not slow.done(), "square(3) waited for delayedEcho(500)"
    assert await slow == "slow"


@pytest.mark.parametrize("transport", BOTH)
async def test_parallel_delays(clients: Clients, transport: str) -> None:
    api = (await clients.open(transport)).api
    loop = asyncio.get_running_loop()
    start = loop.time()
    results = await gather(*(api.delayedEcho(400, i) for i in range(5)), api.square(2))
    elapsed = loop.time() - start
    assert results == [0, 1, 2, 3, 4, 4]
    assert elapsed < 1.5, f"five 400 ms delayedEcho calls took {elapsed:.2f} s: not concurrent"


async def test_batch_call_awaited_in_a_task(clients: Clients) -> None:
    """A lone call awaited through a task (wait_for, ensure_future) still gets its pull into
    the batch: the request goes out only after a whole quiet loop turn."""
    client = await clients.open("batch")
    assert await asyncio.wait_for(client.api.square(3), 5) == 9
    assert client.requests == 1


@pytest.mark.parametrize("transport", BOTH)
async def test_a_thousand_messages(clients: Clients, transport: str) -> None:
    client = await clients.open(transport)
    results = await gather(*(client.api.square(i) for i in range(500)))  # 500 pushes, 500 pulls
    assert results == [i * i for i in range(500)]
    if transport == "batch":
        assert client.requests == 1


async def test_many_concurrent_sessions(clients: Clients) -> None:
    async def one(i: int, transport: str) -> list[Any]:
        api = (await clients.open(transport)).api
        counter = api.makeCounter(i)
        return await gather(counter.increment(1), api.square(i), api.getLiveCounters())

    runs = [one(i, "ws" if i % 2 else "batch") for i in range(12)]
    assert await gather(*runs) == [[i + 1, i * i, 1] for i in range(12)]


# --------------------------------------------------------------------------------------------
# Wire bytes: the same frames as the TypeScript client


async def _run_sequence(name: str, api: RpcStub) -> None:
    if name == "square":
        assert await api.square(3) == 9
    elif name == "pipelined_increment":
        counter = api.makeCounter(2)
        assert await counter.increment(3) == 5
        counter.dispose()
    elif name == "pipelined_three_calls":
        counter = api.makeCounter(2)
        assert await gather(counter.increment(3), api.incrementCounter(counter, 4)) == [5, 9]
        counter.dispose()
    elif name == "callback":
        assert await api.callFunction(lambda i: i * 2, 3) == {"result": 6}
    else:
        raise AssertionError(f"unknown sequence {name}")


@pytest.mark.parametrize("sequence", [pytest.param(s, id=s.name) for s in WIRE_SEQUENCES])
async def test_wire_frames_match_the_typescript_client(
    clients: Clients, sequence: WireSequence
) -> None:
    client = await clients.open("ws")
    await _run_sequence(sequence.name, client.api)
    assert client.frames.sent_since() == sequence.frames


@pytest.mark.timeout(30)
def test_typescript_client_sends_the_recorded_frames(ts_server: str) -> None:
    """The recorded frames are what npm capnweb really sends (run by js/trace_client.mjs)."""
    ws_url = "ws" + ts_server.removeprefix("http")
    proc = subprocess.run(
        node_command("trace_client.mjs", "--url", ws_url),
        cwd=JS_DIR,
        capture_output=True,
        text=True,
        timeout=TRACE_TIMEOUT_S,
    )
    assert proc.returncode == 0, proc.stderr
    traced = json.loads(proc.stdout)
    assert traced == {s.name: s.frames for s in WIRE_SEQUENCES}
