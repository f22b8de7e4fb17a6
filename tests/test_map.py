"""map(): recording a mapper on one side and replaying it on the other (Python to Python)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from helpers import CLEAN, Counter, ScriptedPeer, SessionPair

from capnweb import (
    RpcError,
    RpcPromise,
    RpcRangeError,
    RpcStub,
    RpcTarget,
    RpcTypeError,
    undefined,
)

pytestmark = pytest.mark.timeout(10)

ASYNC_MAPPER = "RPC map() callbacks cannot be async."
TARGET_IN_MAPPER = (
    "Can't construct an RpcTarget or RPC callback inside a mapper function. Try creating a new "
    "RpcStub outside the callback first, then using it inside the callback."
)


class Api(RpcTarget):
    def __init__(self) -> None:
        self.squared: list[int] = []
        self.counters: list[Counter] = []

    def numbers(self, n: int = 3) -> list[int]:
        return list(range(1, n + 1))

    def fib(self, n: int) -> list[int]:
        out = [0, 1]
        while len(out) < n:
            out.append(out[-1] + out[-2])
        return out[:n]

    def square(self, x: int) -> int:
        self.squared.append(x)
        return x * x

    def seven(self) -> int:
        return 7

    def nothing(self) -> None:
        return None

    def missing(self) -> Any:
        return undefined

    def makeCounter(self, n: int) -> Counter:
        c = Counter(n)
        self.counters.append(c)
        return c

    def failOnTwo(self, x: int) -> int:
        if x == 2:
            raise ValueError("two")
        return x

    def records(self) -> list[dict[str, Any]]:
        return [{"name": "ann", "age": 30}, {"name": "bob", "age": 40}]


async def test_map_over_a_list_calls_per_element() -> None:
    api = Api()
    async with SessionPair(api) as pair:
        main = pair.main
        assert await main.numbers().map(lambda x: main.square(x)) == [1, 4, 9]
        assert api.squared == [1, 2, 3]
        await pair.assert_clean(collect=True)


async def test_map_over_a_number_runs_once() -> None:
    async with SessionPair(Api()) as pair:
        main = pair.main
        assert await main.seven().map(lambda x: main.square(x)) == 49
        await pair.assert_clean(collect=True)


@pytest.mark.parametrize(("method", "expected"), [("nothing", None), ("missing", undefined)])
async def test_map_over_none_or_undefined_does_not_run(method: str, expected: Any) -> None:
    api = Api()
    async with SessionPair(api) as pair:
        main = pair.main
        assert await main[method]().map(lambda x: main.square(x)) is expected
        assert api.squared == []
        await pair.assert_clean(collect=True)


async def test_map_over_an_empty_list() -> None:
    api = Api()
    async with SessionPair(api) as pair:
        main = pair.main
        assert await main.numbers(0).map(lambda x: main.square(x)) == []
        assert api.squared == []
        await pair.assert_clean(collect=True)


async def test_mapper_builds_dicts_and_lists() -> None:
    async with SessionPair(Api()) as pair:
        main = pair.main
        result = await main.numbers(2).map(
            lambda x: {"x": x, "sq": main.square(x), "pair": [x, main.square(x)], "k": "v"}
        )
        assert result == [
            {"x": 1, "sq": 1, "pair": [1, 1], "k": "v"},
            {"x": 2, "sq": 4, "pair": [2, 4], "k": "v"},
        ]
        await pair.assert_clean(collect=True)


async def test_mapper_reads_properties_of_elements() -> None:
    async with SessionPair(Api()) as pair:
        names = await pair.main.records().map(lambda r: r.name)
        assert names == ["ann", "bob"]
        assert await pair.main.records().map(lambda r: [r["age"], r.nope]) == [
            [30, undefined],
            [40, undefined],
        ]
        await pair.assert_clean(collect=True)


async def test_captured_outer_capability_is_called_per_element() -> None:
    api = Api()
    async with SessionPair(api) as pair:
        main = pair.main
        counters = await main.numbers().map(lambda x: main.makeCounter(x).increment(10))
        assert counters == [11, 12, 13]
        assert [c.disposed for c in api.counters] == [1, 1, 1]
        await pair.assert_clean(collect=True)


async def test_nested_maps() -> None:
    async with SessionPair(Api()) as pair:
        main = pair.main
        result = await main.numbers(4).map(lambda n: main.fib(n).map(lambda f: main.square(f)))
        assert result == [[0], [0, 1], [0, 1, 1], [0, 1, 1, 4]]
        await pair.assert_clean(collect=True)


async def test_map_on_the_result_of_a_map() -> None:
    api = Api()
    async with SessionPair(api) as pair:
        main = pair.main
        # the intermediate promise is dropped (and released) before anything resolves
        result = main.numbers(2).map(lambda x: main.makeCounter(x)).map(lambda c: c.increment(1))
        assert await result == [2, 3]
        del result
        await pair.assert_clean(collect=True)
        assert [c.disposed for c in api.counters] == [1, 1]


async def test_map_returning_stubs() -> None:
    api = Api()
    async with SessionPair(api) as pair:
        main = pair.main
        counters = await main.numbers(2).map(lambda x: main.makeCounter(x))
        assert [await c.increment(5) for c in counters] == [6, 7]
        for c in counters:
            c.dispose()
        await pair.assert_clean(collect=True)
        assert [c.disposed for c in api.counters] == [1, 1]


# -- recording errors (raised locally, nothing sent)


async def test_async_mapper_is_refused() -> None:
    async with SessionPair(Api()) as pair:

        async def mapper(x: Any) -> Any:
            return x

        numbers = pair.main.numbers()
        mark = pair.mark()
        with pytest.raises(TypeError) as info:
            numbers.map(mapper)
        assert str(info.value) == ASYNC_MAPPER
        del info  # its traceback holds the promise
        await pair.settle()
        assert all(f[0] != "push" for f in pair.since(mark)[0])
        del numbers
        await pair.assert_clean(collect=True)


@pytest.mark.parametrize("make", [lambda x: Counter(1), lambda x: lambda y: y])
async def test_mapper_constructing_a_capability_is_refused(make: Any) -> None:
    async with SessionPair(Api()) as pair:
        numbers = pair.main.numbers()
        with pytest.raises(TypeError) as info:
            numbers.map(make)
        assert str(info.value) == TARGET_IN_MAPPER
        del info, numbers
        await pair.assert_clean(collect=True)


async def test_mapper_raising_while_recording_propagates() -> None:
    def mapper(x: Any) -> Any:
        raise KeyError("recording failed")

    async with SessionPair(Api()) as pair:
        numbers = pair.main.numbers()
        with pytest.raises(KeyError):
            numbers.map(mapper)
        del numbers
        await pair.assert_clean(collect=True)


# -- errors while replaying reject the result; the session goes on


async def test_error_inside_the_mapper_rejects_without_aborting() -> None:
    async with SessionPair(Api()) as pair:
        main = pair.main
        with pytest.raises(RpcRangeError, match="two"):
            await main.numbers().map(lambda x: main.failOnTwo(x))
        with pytest.raises(RpcTypeError, match="'nope' is not a function"):
            await main.numbers().map(lambda x: main.nope(x))
        with pytest.raises(RpcTypeError, match=r"Cannot read properties of undefined"):
            await main.numbers().map(lambda x: x.foo.bar)
        assert await main.square(3) == 9
        await pair.assert_clean(collect=True)


async def test_bad_instructions_reject_the_map_only() -> None:
    async with ScriptedPeer(Api()) as peer:
        peer.send(
            ["push", ["pipeline", 0, ["numbers"], []]],
            ["push", ["remap", 1, [], [], [["pipeline", 9]]]],
            ["pull", 2],
            ["push", ["remap", 1, [], [], []]],
            ["pull", 3],
        )
        await peer.settle()
        received = peer.received()
        assert [f[:2] for f in received] == [["reject", 2], ["reject", 3]]
        assert received[1][2] == ["error", "Error", "Invalid empty mapper function."]
        assert peer.session.broken is None
        peer.send(["release", 1, 1], ["release", 2, 1], ["release", 3, 1])
        await peer.settle()
        assert peer.session.stats() == CLEAN


async def test_unknown_capture_reference_aborts() -> None:
    async with ScriptedPeer(Api()) as peer:
        peer.send(["push", ["remap", 0, [], [["import", 99]], [["pipeline", 0]]]])
        await peer.settle()
        assert peer.received() == [
            ["abort", ["error", "Error", "no such entry on exports table: 99"]]
        ]


# -- map on local promises


async def test_map_on_a_locally_resolved_promise() -> None:
    async def numbers() -> list[int]:
        await asyncio.sleep(0)
        return [1, 2, 3]

    promise = RpcPromise.from_awaitable(numbers())
    assert await promise.map(lambda x: {"x": x}) == [{"x": 1}, {"x": 2}, {"x": 3}]

    counter = Counter(0)

    async def make() -> Counter:
        return counter

    stub = RpcPromise.from_awaitable(make())
    assert await promise.map(lambda x: stub.increment(x)) == [1, 3, 6]
    stub.dispose()
    promise.dispose()
    await asyncio.sleep(0)
    assert counter.disposed == 1


async def test_map_on_an_already_awaited_remote_promise_runs_locally() -> None:
    api = Api()
    async with SessionPair(api) as pair:
        main = pair.main
        numbers = main.numbers()
        assert await numbers == [1, 2, 3]
        mark = pair.mark()
        assert await numbers.map(lambda x: [x]) == [[1], [2], [3]]
        client, server = pair.since(mark)
        assert client == [] and server == []  # nothing to ask: the list is here
        del numbers
        await pair.assert_clean(collect=True)


# -- exact frames (PROTOCOL-NOTES 2.8)


async def test_remap_frame_with_captured_main() -> None:
    async with SessionPair(Api()) as pair:
        main = pair.main
        assert await main.numbers().map(lambda x: main.makeCounter(x).increment(10)) == [
            11,
            12,
            13,
        ]
        assert pair.client_frames()[1] == [
            "push",
            [
                "remap",
                1,
                [],
                [["import", 0]],
                [
                    ["pipeline", -1, ["makeCounter"], [["pipeline", 0]]],
                    ["pipeline", 1, ["increment"], [10]],
                    ["pipeline", 2],
                ],
            ],
        ]
        assert pair.server_frames()[0] == [
            "resolve",
            2,
            [[["promise", -1], ["promise", -2], ["promise", -3]]],
        ]
        await pair.assert_clean(collect=True)


async def test_remap_frame_with_captured_local_stub() -> None:
    counter = Counter(100)
    async with SessionPair(Api()) as pair:
        local = RpcStub(counter)
        result = await pair.main.numbers().map(lambda x: [x, local.increment(x)])
        assert result == [[1, 101], [2, 103], [3, 106]]
        assert pair.client_frames()[1] == [
            "push",
            [
                "remap",
                1,
                [],
                [["export", -1]],
                [
                    ["pipeline", -1, ["increment"], [["pipeline", 0]]],
                    [[["pipeline", 0], ["pipeline", 1]]],
                ],
            ],
        ]
        # the server called back into the client once per element
        pushes = [f for f in pair.server_frames() if f[0] == "push"]
        assert len(pushes) == 3
        assert all(f[1][:3] == ["pipeline", -1, ["increment"]] for f in pushes)
        local.dispose()
        await pair.assert_clean(collect=True)
        assert counter.disposed == 1


async def test_remap_frame_for_nested_maps() -> None:
    async with SessionPair(Api()) as pair:
        main = pair.main
        result = await main.numbers().map(lambda n: main.fib(n).map(lambda f: main.square(f)))
        assert result == [[0], [0, 1], [0, 1, 1]]
        assert pair.client_frames()[1] == [
            "push",
            [
                "remap",
                1,
                [],
                [["import", 0], ["import", 0]],
                [
                    ["pipeline", -1, ["fib"], [["pipeline", 0]]],
                    [
                        "remap",
                        1,
                        [],
                        [["import", -2]],
                        [["pipeline", -1, ["square"], [["pipeline", 0]]], ["pipeline", 1]],
                    ],
                    ["pipeline", 2],
                ],
            ],
        ]
        await pair.assert_clean(collect=True)


async def test_remap_sent_by_hand_with_object_result() -> None:
    async with ScriptedPeer(Api()) as peer:
        peer.send(
            ["push", ["pipeline", 0, ["numbers"], [2]]],
            [
                "push",
                [
                    "remap",
                    1,
                    [],
                    [["import", 0]],
                    [["pipeline", -1, ["square"], [["pipeline", 0]]], {"v": ["pipeline", 1]}],
                ],
            ],
            ["pull", 2],
        )
        await peer.settle()
        received = peer.received()
        assert received[0][:2] == ["resolve", 2]
        # each element is answered as a promise of its own, resolved right after
        assert received[0][2] == [[{"v": ["promise", -1]}, {"v": ["promise", -2]}]]
        assert received[1:] == [["resolve", -1, 1], ["resolve", -2, 4]]
        peer.send(["release", 1, 1], ["release", 2, 1], ["release", -1, 1], ["release", -2, 1])
        await peer.settle()
        assert peer.session.stats() == CLEAN


async def test_map_of_error_value_is_rejected() -> None:
    async with SessionPair(Api()) as pair:
        with pytest.raises(RpcError):
            await pair.main.failOnTwo(2).map(lambda x: x)
        await pair.assert_clean(collect=True)
