"""Session behaviour at the protocol level: exact frames, tables, e-order, abort, errors."""

from __future__ import annotations

import asyncio
import gc
import json
from typing import Any

import pytest
from helpers import CLEAN, ScriptedPeer, SessionPair

from capnweb import (
    RpcDisconnectedError,
    RpcError,
    RpcRangeError,
    RpcStub,
    RpcTarget,
    RpcTypeError,
    Session,
    current_session,
    memory_pair,
)

pytestmark = pytest.mark.timeout(10)


class Counter(RpcTarget):
    def __init__(self, n: int) -> None:
        self.n = n
        self.disposed = 0
        self.events: list[str] = []

    def increment(self, k: int = 1) -> int:
        self.events.append(f"increment {k}")
        self.n += k
        return self.n

    @property
    def value(self) -> int:
        return self.n

    def read(self) -> int:
        return self.n

    def on_dispose(self) -> None:
        self.events.append("dispose")
        self.disposed += 1


class Api(RpcTarget):
    def __init__(self) -> None:
        self.counters: list[Counter] = []
        self.calls: list[Any] = []
        self.kept: list[RpcStub] = []
        self.gate = asyncio.Event()

    def square(self, x: int) -> int:
        return x * x

    @property
    def version(self) -> str:
        return "1.0"

    def makeCounter(self, n: int) -> Counter:
        c = Counter(n)
        self.counters.append(c)
        return c

    def incrementCounter(self, c: RpcStub, k: int) -> Any:
        return c.increment(k)

    async def callFunction(self, f: RpcStub, x: int) -> dict[str, Any]:
        return {"result": await f(x)}

    def take(self, *args: Any) -> int:
        return len(args)

    def record(self, x: Any) -> None:
        self.calls.append(x)

    async def slowCounter(self, n: int) -> Counter:
        await self.gate.wait()
        return self.makeCounter(n)

    def hold(self, stub: RpcStub) -> None:
        self.kept.append(stub)

    async def waitGate(self) -> str:
        await self.gate.wait()
        return "opened"

    def fail(self) -> None:
        e = ValueError("boom")
        e.code = "E1"  # type: ignore[attr-defined]
        raise e

    def whoami(self) -> bool:
        return current_session() is not None

    async def askClient(self, name: str) -> Any:
        return await current_session().main.greet(name)


class Recorder(RpcTarget):
    def __init__(self) -> None:
        self.seen: list[Any] = []
        self.disposed = 0

    def greet(self, name: str) -> str:
        self.seen.append(name)
        return f"hello {name}"

    def on_dispose(self) -> None:
        self.disposed += 1


# -- exact frames (PROTOCOL-NOTES 2.2)


async def test_call_and_await_is_push_pull_resolve_release() -> None:
    async with SessionPair(Api()) as pair:
        assert await pair.main.square(3) == 9
        await pair.settle()
        assert pair.log == [
            ("client", ["push", ["pipeline", 0, ["square"], [3]]]),
            ("client", ["pull", 1]),
            ("server", ["resolve", 1, 9]),
            ("client", ["release", 1, 1]),
        ]
        await pair.assert_clean()


async def test_property_get_has_no_args_element() -> None:
    async with SessionPair(Api()) as pair:
        assert await pair.main.version == "1.0"
        counter = await pair.main.makeCounter(5)
        mark = pair.mark()
        assert await counter.value == 5
        client, _ = pair.since(mark)
        assert client[0] == ["push", ["pipeline", -1, ["value"]]]
        assert pair.client_frames()[0] == ["push", ["pipeline", 0, ["version"]]]
        counter.dispose()
        await pair.assert_clean()


async def test_three_pipelined_calls_take_one_round_trip() -> None:
    api = Api()
    async with SessionPair(api) as pair:
        counter = pair.main.makeCounter(2)
        a = counter.increment(3)
        b = pair.main.incrementCounter(counter, 4)
        assert list(await asyncio.gather(a, b)) == [5, 9]
        first_server = next(i for i, (side, _) in enumerate(pair.log) if side == "server")
        assert [f for _, f in pair.log[:first_server]] == [
            ["push", ["pipeline", 0, ["makeCounter"], [2]]],
            ["push", ["pipeline", 1, ["increment"], [3]]],
            ["push", ["pipeline", 0, ["incrementCounter"], [["pipeline", 1], 4]]],
            ["pull", 2],
            ["pull", 3],
        ]
        del a, b
        counter.dispose()
        await pair.assert_clean(collect=True)
        assert api.counters[0].disposed == 1


async def test_returned_target_is_exported_and_release_runs_on_dispose() -> None:
    api = Api()
    async with SessionPair(api) as pair:
        counter = await pair.main.makeCounter(1)
        assert ["resolve", 1, ["export", -1]] in pair.server_frames()
        assert api.counters[0].disposed == 0
        mark = pair.mark()
        counter.dispose()
        await pair.settle()
        assert pair.since(mark) == ([["release", -1, 1]], [])
        assert api.counters[0].disposed == 1
        await pair.assert_clean()


async def test_passing_an_imported_stub_back_is_import_without_new_id() -> None:
    async with SessionPair(Api()) as pair:
        counter = await pair.main.makeCounter(1)
        mark = pair.mark()
        assert await pair.main.incrementCounter(counter, 2) == 3
        client, server = pair.since(mark)
        assert client[0] == ["push", ["pipeline", 0, ["incrementCounter"], [["import", -1], 2]]]
        assert server == [["resolve", 2, 3]]
        counter.dispose()
        await pair.assert_clean()


async def test_callback_argument_released_by_callee_before_resolve() -> None:
    async with SessionPair(Api()) as pair:
        assert await pair.main.callFunction(lambda x: x + 1, 5) == {"result": 6}
        await pair.settle()
        assert pair.client_frames()[0] == [
            "push",
            ["pipeline", 0, ["callFunction"], [["export", -1], 5]],
        ]
        server = pair.server_frames()
        assert server[0] == ["push", ["pipeline", -1, [], [5]]]
        assert server.index(["release", -1, 1]) < server.index(["resolve", 1, {"result": 6}])
        await pair.assert_clean()


async def test_dropped_promise_is_pushed_then_released_without_pull() -> None:
    async with SessionPair(Api()) as pair:
        promise = pair.main.square(4)
        del promise
        await pair.collect()
        assert pair.client_frames() == [
            ["push", ["pipeline", 0, ["square"], [4]]],
            ["release", 1, 1],
        ]
        assert pair.server_frames() == []
        await pair.assert_clean()


async def test_thrown_error_is_rejected_with_name_and_props() -> None:
    async with SessionPair(Api()) as pair:
        with pytest.raises(RpcRangeError) as info:
            await pair.main.fail()
        assert info.value.message == "boom"
        assert info.value.props == {"code": "E1"}
        await pair.settle()
        assert pair.server_frames() == [
            ["reject", 1, ["error", "RangeError", "boom", None, {"code": "E1"}]]
        ]
        assert pair.client_frames()[-1] == ["release", 1, 1]
        await pair.assert_clean()


async def test_same_target_twice_gets_two_export_ids() -> None:
    target = Recorder()
    async with SessionPair(Api()) as pair:
        assert await pair.main.take(target, target) == 2
        await pair.settle()
        assert pair.client_frames()[0] == [
            "push",
            ["pipeline", 0, ["take"], [["export", -1], ["export", -2]]],
        ]
        server = pair.server_frames()
        assert ["release", -1, 1] in server
        assert ["release", -2, 1] in server
        assert target.disposed == 2
        await pair.assert_clean()


async def test_method_read_as_property_is_a_function_stub() -> None:
    async with SessionPair(Api()) as pair:
        square = await pair.main.square
        assert isinstance(square, RpcStub)
        assert pair.server_frames()[0] == ["resolve", 1, ["export", -1]]
        assert await square(7) == 49
        square.dispose()
        await pair.assert_clean()


# -- protocol violations abort the session


async def _expect_abort(frames: list[Any], message: str, name: str = "Error") -> ScriptedPeer:
    peer = ScriptedPeer(Api())
    peer.send(*frames)
    await peer.settle()
    assert peer.received()[-1] == ["abort", ["error", name, message]]
    assert isinstance(peer.session.broken, RpcError)
    assert peer.session.broken.message == message
    return peer


async def test_release_beyond_refcount_aborts() -> None:
    peer = await _expect_abort(
        [["push", ["pipeline", 0, ["square"], [3]]], ["release", 1, 2]],
        "refcount would go negative: 1 < 2",
    )
    await peer.close()


async def test_pull_of_unknown_export_aborts() -> None:
    peer = await _expect_abort([["pull", 5]], "no such export ID: 5")
    await peer.close()


async def test_release_of_unknown_export_aborts() -> None:
    peer = await _expect_abort([["release", 9, 1]], "no such export ID: 9")
    await peer.close()


async def test_import_of_unknown_export_aborts() -> None:
    peer = await _expect_abort([["push", ["import", 7]]], "no such entry on exports table: 7")
    await peer.close()


async def test_bad_message_aborts() -> None:
    peer = await _expect_abort([["foo"]], 'bad RPC message: ["foo"]')
    assert peer.transport.sent[-1] == '["abort",["error","Error","bad RPC message: [\\"foo\\"]"]]'
    await peer.close()


async def test_bad_message_text_keeps_non_ascii_as_is() -> None:
    peer = await _expect_abort([["héllo"]], 'bad RPC message: ["héllo"]')
    await peer.close()


async def test_non_array_message_aborts() -> None:
    peer = await _expect_abort(['{"push": 1}'], 'bad RPC message: {"push":1}')
    await peer.close()


async def test_promise_reusing_an_existing_id_rejects() -> None:
    async with ScriptedPeer(Api()) as peer:
        peer.send(["push", ["pipeline", 0, ["take"], [["promise", 0]]]], ["pull", 1])
        await peer.settle()
        assert peer.received() == [
            [
                "reject",
                1,
                [
                    "error",
                    "Error",
                    "Bug in RPC system: The peer sent a promise reusing an existing export ID.",
                ],
            ]
        ]
        assert peer.session.broken is None


async def test_push_need_not_contain_a_call() -> None:
    async with ScriptedPeer(Api()) as peer:
        peer.send(
            ["push", {"a": {"b": 5}}],
            ["push", ["pipeline", 1, ["a", "b"]]],
            ["pull", 2],
            ["release", 2, 1],
            ["release", 1, 1],
        )
        await peer.settle()
        assert peer.received() == [["resolve", 2, 5]]
        assert peer.session.stats() == CLEAN


# -- e-order


async def test_four_concurrent_calls_arrive_in_order() -> None:
    api = Api()
    async with SessionPair(api) as pair:
        await asyncio.gather(*(pair.main.record(i) for i in range(1, 5)))
        assert api.calls == [1, 2, 3, 4]
        await pair.assert_clean(collect=True)


async def test_calls_pipelined_on_a_pending_promise_keep_order() -> None:
    api = Api()
    async with SessionPair(api) as pair:
        counter = pair.main.slowCounter(0)
        results = [counter.increment(1), counter.read(), counter.increment(10), counter.read()]
        await pair.settle()
        assert api.counters == []  # still waiting: the calls are queued on the server
        api.gate.set()
        assert list(await asyncio.gather(*results)) == [1, 1, 11, 11]
        del results
        counter.dispose()
        await pair.assert_clean(collect=True)
        assert api.counters[0].disposed == 1


async def test_calls_pipelined_on_a_released_promise_still_run_before_dispose() -> None:
    api = Api()
    async with SessionPair(api) as pair:
        counter = pair.main.slowCounter(0)
        result = counter.increment(5)
        counter.dispose()  # released while the server is still computing it
        await pair.settle()
        assert ["release", 1, 1] in pair.client_frames()
        api.gate.set()
        assert await result == 5
        await pair.settle()
        assert api.counters[0].events == ["increment 5", "dispose"]
        del result
        await pair.assert_clean(collect=True)


# -- both directions


async def test_server_calls_the_clients_main() -> None:
    recorder = Recorder()
    async with SessionPair(Api(), recorder) as pair:
        assert await pair.main.askClient("ann") == "hello ann"
        assert await pair.server.main.greet("bob") == "hello bob"
        assert recorder.seen == ["ann", "bob"]
        await pair.assert_clean()


async def test_current_session_is_the_serving_session() -> None:
    async with SessionPair(Api()) as pair:
        assert await pair.main.whoami() is True
        with pytest.raises(RuntimeError):
            current_session()
        await pair.assert_clean()


async def test_no_main_object() -> None:
    async with SessionPair(None) as pair:
        with pytest.raises(RpcError, match="This connection has no main object"):
            await pair.main.anything()
        await pair.assert_clean()


# -- abort and shutdown


async def test_receiving_abort_breaks_everything_with_the_decoded_error() -> None:
    api = Api()
    callback = Recorder()
    async with SessionPair(api) as pair:
        await pair.main.hold(callback)  # the server keeps a stub of a client export
        counter = await pair.main.makeCounter(1)
        pending = asyncio.ensure_future(pair.main.waitGate())
        unpulled = pair.main.waitGate()
        await pair.settle()
        order: list[str] = []
        pair.main.on_broken(lambda e: order.append(f"main:{e}"))
        unpulled.on_broken(lambda e: order.append(f"unpulled:{e}"))
        counter.on_broken(lambda e: order.append(f"counter:{e}"))
        pair.main.on_broken(lambda e: order.append(f"main again:{type(e).__name__}"))

        mark = pair.mark()
        pair.server.abort(ValueError("going away"))
        await pair.settle()
        client, server = pair.since(mark)
        assert client == []  # no reply to an abort
        assert server == [["abort", ["error", "RangeError", "going away"]]]

        reason = pair.client.broken
        assert isinstance(reason, RpcRangeError) and reason.message == "going away"
        with pytest.raises(RpcRangeError, match="going away"):
            await pending
        with pytest.raises(RpcRangeError, match="going away"):
            await unpulled
        assert order == [
            "main:going away",
            "unpulled:going away",
            "counter:going away",
            "main again:RpcRangeError",
        ]
        assert callback.disposed == 1  # the client's exports were released
        assert api.counters[0].disposed == 1  # and the server's
        with pytest.raises(RpcRangeError):
            await pair.main.square(2)
        api.gate.set()


async def test_many_awaiters_of_a_broken_session_each_get_a_short_traceback() -> None:
    import traceback

    async with SessionPair(Api()) as pair:
        calls = [pair.main.waitGate() for _ in range(200)]
        await pair.settle()
        pair.server.abort(RpcTypeError("going away"))
        results = await asyncio.gather(*calls, return_exceptions=True)
        assert all(isinstance(r, RpcTypeError) for r in results)
        # the error is shared; its traceback must not grow with every task it is raised in
        depth = [len(traceback.extract_tb(r.__traceback__)) for r in results[-3:]]
        assert max(depth) < 10, depth


async def test_on_broken_after_the_break_fires_immediately() -> None:
    async with SessionPair(Api()) as pair:
        pair.server.abort(RpcTypeError("nope"))
        await pair.settle()
        seen: list[BaseException] = []
        pair.main.on_broken(seen.append)
        assert len(seen) == 1 and isinstance(seen[0], RpcTypeError)


async def test_disposing_the_main_stub_shuts_down_without_abort_frame() -> None:
    api = Api()
    async with SessionPair(api) as pair:
        counter = await pair.main.makeCounter(1)
        pending = asyncio.ensure_future(pair.main.waitGate())
        await pair.settle()
        broken: list[BaseException] = []
        counter.on_broken(broken.append)
        mark = pair.mark()
        pair.main.dispose()
        await pair.settle()
        client, server = pair.since(mark)
        assert all(f[0] != "abort" for f in client + server)
        message = "RPC session was shut down by disposing the main stub"
        assert isinstance(pair.client.broken, RpcDisconnectedError)
        assert str(pair.client.broken) == message
        with pytest.raises(RpcError, match=message):
            await pending
        assert [str(e) for e in broken] == [message]
        with pytest.raises(RpcError, match=message):
            await counter.increment(1)
        assert pair.server.broken is not None  # the server saw the connection go
        assert api.counters[0].disposed == 1
        api.gate.set()


async def test_transport_disconnect_rejects_pending_calls() -> None:
    api = Api()
    async with SessionPair(api) as pair:
        pending = asyncio.ensure_future(pair.main.waitGate())
        await pair.settle()
        await pair.server.close()
        with pytest.raises(RpcDisconnectedError):
            await pending
        api.gate.set()


# -- on_send_error


async def test_errors_are_sent_without_stack_by_default() -> None:
    async with SessionPair(Api()) as pair:
        with pytest.raises(RpcError):
            await pair.main.fail()
        error = pair.server_frames()[0][2]
        assert error[3] is None  # the props form keeps a null stack
        with pytest.raises(RpcTypeError):
            await pair.main.nope()
        assert pair.server_frames()[1][2] == ["error", "TypeError", "'nope' is not a function."]
        await pair.assert_clean()


async def test_on_send_error_returning_the_error_sends_its_stack() -> None:
    seen: list[BaseException] = []

    def reveal(e: BaseException) -> BaseException:
        seen.append(e)
        return e

    async with SessionPair(Api(), server_options={"on_send_error": reveal}) as pair:
        with pytest.raises(RpcRangeError) as info:
            await pair.main.fail()
        assert isinstance(seen[0], ValueError)
        stack = pair.server_frames()[0][2][3]
        assert isinstance(stack, str) and "fail" in stack
        assert info.value.stack == stack
        await pair.assert_clean()


async def test_on_send_error_can_substitute_another_error() -> None:
    def rewrite(e: BaseException) -> BaseException:
        return RpcError("redacted", name="Error")

    async with SessionPair(Api(), server_options={"on_send_error": rewrite}) as pair:
        with pytest.raises(RpcError) as info:
            await pair.main.fail()
        assert type(info.value) is RpcError
        assert info.value.message == "redacted"
        reject = pair.server_frames()[0]
        assert reject[2][:3] == ["error", "Error", "redacted"]
        await pair.assert_clean()


async def test_on_send_error_sees_abort_reasons() -> None:
    seen: list[BaseException] = []

    def hook(e: BaseException) -> None:
        seen.append(e)

    async with ScriptedPeer(Api(), on_send_error=hook) as peer:
        peer.send(["foo"])
        await peer.settle()
        assert peer.received() == [["abort", ["error", "Error", 'bad RPC message: ["foo"]']]]
        assert len(seen) == 1 and str(seen[0]) == 'bad RPC message: ["foo"]'


# -- drain() and stats()


async def test_drain_waits_for_pulled_results() -> None:
    api = Api()
    async with SessionPair(api) as pair:
        await pair.server.drain()  # nothing owed: returns at once
        pending = asyncio.ensure_future(pair.main.waitGate())
        await pair.settle()
        drained = asyncio.ensure_future(pair.server.drain())
        await pair.settle()
        assert not drained.done()
        api.gate.set()
        await drained
        assert ["resolve", 1, "opened"] in pair.server_frames()
        assert await pending == "opened"
        await pair.assert_clean()


async def test_drain_raises_once_aborted() -> None:
    api = Api()
    async with SessionPair(api) as pair:
        pending = asyncio.ensure_future(pair.main.waitGate())
        await pair.settle()
        drained = asyncio.ensure_future(pair.server.drain())
        await pair.settle()
        pair.server.abort(RpcError("stop"))
        with pytest.raises(RpcError, match="stop"):
            await drained
        with pytest.raises(RpcError, match="stop"):
            await pending
        api.gate.set()


async def test_stats_count_live_entries() -> None:
    async with SessionPair(Api()) as pair:
        assert pair.stats() == (CLEAN, CLEAN)
        counter = await pair.main.makeCounter(1)
        await pair.settle()
        # the push was released after its resolve; the counter stays as one import/export
        assert pair.client.stats().imports == 2
        assert pair.server.stats().exports == 2
        promise = pair.main.square(2)
        await pair.settle()
        assert pair.client.stats().imports == 3
        assert pair.server.stats().exports == 3
        assert await promise == 4
        counter.dispose()
        del promise
        gc.collect()
        await pair.assert_clean()


async def test_session_without_reader_is_fed_by_hand() -> None:
    ours, _theirs = memory_pair()
    session = Session(ours, Api(), start=False)
    session.feed('["push",["pipeline",0,["square"],[6]]]')
    session.feed('["pull",1]')
    await session.drain()
    assert ours.sent == ['["resolve",1,36]']
    session.feed('["release",1,1]')
    assert session.stats() == CLEAN
    await session.close()


async def test_releases_wait_while_answers_are_awaited_and_are_sent_soon_otherwise() -> None:
    """A transport that coalesces writes gets a ``release`` as ``send_lazy`` while other pulls
    are out (it rides along with later traffic) and as ``send_soon`` once none is."""
    async with ScriptedPeer() as peer:
        kinds: list[tuple[str, Any]] = []
        transport = peer.transport

        def recorder(kind: str) -> Any:
            def send(text: str) -> None:
                kinds.append((kind, json.loads(text)))
                transport.send(text)

            return send

        transport.send_lazy = recorder("lazy")  # type: ignore[attr-defined]
        transport.send_soon = recorder("soon")  # type: ignore[attr-defined]
        main = peer.session.main
        first = asyncio.ensure_future(main.square(1))
        second = asyncio.ensure_future(main.square(2))
        dropped = main.square(3)
        waiting = asyncio.ensure_future(dropped)
        await peer.settle()  # three pulls are out
        peer.send(["resolve", 1, 1])
        assert await first == 1
        dropped.dispose()  # answered never: its release too waits for other traffic
        with pytest.raises(RpcError, match="canceled"):
            await waiting
        peer.send(["resolve", 2, 4], ["resolve", 3, 9])  # the late answer is dropped
        assert await second == 4
        fourth = asyncio.ensure_future(main.square(4))
        await peer.settle()
        peer.send(["resolve", 4, 16])
        assert await fourth == 16
        await peer.settle()
        assert kinds == [
            ("lazy", ["release", 1, 1]),
            ("lazy", ["release", 3, 1]),
            ("soon", ["release", 2, 1]),
            ("soon", ["release", 4, 1]),
        ]


async def test_a_stub_kept_after_its_session_ended_does_not_keep_the_session() -> None:
    """The application may hold a stub of a session that ended (here in an object that
    outlives it): calls on it fail, and the session itself is not kept in memory."""
    import weakref

    class Holder(RpcTarget):
        def __init__(self) -> None:
            self.kept: list[RpcStub] = []

        def keep(self, stub: RpcStub) -> None:
            self.kept.append(stub.dup())

    holder = Holder()
    pair = SessionPair(holder)
    await pair.main.keep(Counter(1))  # the server keeps a stub of the client's counter
    assert await holder.kept[0].increment(1) == 2
    ended = weakref.ref(pair.server)
    await pair.close()
    del pair
    for _ in range(3):
        gc.collect()
        await asyncio.sleep(0)  # a collected stub releases on the next loop turn
    assert ended() is None, "an ended session is kept in memory by a stub the app holds"
    with pytest.raises(RpcError):
        await holder.kept[0].increment(1)
