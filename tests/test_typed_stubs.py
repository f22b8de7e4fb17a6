"""Generated typed stubs at run time (stubs/examples_typed_api.py against the typed example
server): wire names, conversion of awaited values, typed map(), and round trips. Then streams:
chunks of stream arguments checked and converted by the dispatcher as the implementation reads
them, stream results converted as the client reads them, writable streams, Blob, Request and
Response (the ``Feeds`` interface below, and examples/streaming's stubs)."""

from __future__ import annotations

import asyncio
import importlib.util
import itertools
import sys
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Protocol

import pytest
from helpers import SessionPair

from capnweb import (
    Blob,
    ReadableStream,
    Request,
    Response,
    RpcStub,
    RpcTarget,
    RpcTypeError,
    WritableStream,
)
from capnweb.interface import camel_case, rpc_interface, rpc_method
from capnweb.typed import TypedPromise
from capnweb_codegen import generate
from examples.streaming.server import StorageImpl, Store
from examples.typed.api import Profile
from examples.typed.server import ApiImpl, Directory
from stubs.examples_streaming_api import StorageStub
from stubs.examples_typed_api import (
    ApiStub,
    CounterStub,
    ProfilePromise,
    UserPromise,
    UserStub,
)

pytestmark = pytest.mark.timeout(10)


def typed(pair: SessionPair) -> ApiStub:
    """The pair's main stub seen through the generated stub class (a new reference)."""
    return ApiStub(pair.main)


def round_trip(pair: SessionPair, mark: int) -> tuple[list[Any], list[Any]]:
    """The frames after ``mark`` as (client frames, server frames), releases left out, after
    checking they form exactly one round trip: the client sends, then the server answers."""
    frames = [(side, f) for side, f in pair.log[mark:] if f[0] != "release"]
    turns = [side for side, _ in itertools.groupby(frames, key=lambda sf: sf[0])]
    assert turns == ["client", "server"], frames
    return [f for s, f in frames if s == "client"], [f for s, f in frames if s == "server"]


async def test_pipelined_field_through_a_returned_capability_is_one_round_trip() -> None:
    async with SessionPair(ApiImpl(Directory())) as pair:
        api = typed(pair)
        await pair.settle()
        mark = len(pair.log)
        assert await api.user("ann").profile.name == "ann"
        await pair.settle()
        client, server = round_trip(pair, mark)
        assert [f[0] for f in client] == ["push", "push", "pull"]
        pulled = client[-1][1]
        assert server == [["resolve", pulled, "ann"]]  # no intermediate result was awaited
        api.dispose()
        await pair.assert_clean(collect=True)


async def test_three_dependent_calls_are_one_round_trip() -> None:
    async with SessionPair(ApiImpl(Directory())) as pair:
        api = typed(pair)
        await pair.settle()
        mark = len(pair.log)
        assert await api.square(api.square(api.square(2))) == 256
        await pair.settle()
        client, server = round_trip(pair, mark)
        assert [f[0] for f in client] == ["push", "push", "push", "pull"]
        assert len(server) == 1 and server[0][0] == "resolve"

        mark = len(pair.log)
        assert await api.user("bob").visits().increment(3) == 3  # capability -> capability -> call
        await pair.settle()
        client, server = round_trip(pair, mark)
        assert [f[0] for f in client] == ["push", "push", "push", "pull"]
        assert [f[0] for f in server] == ["resolve"]
        api.dispose()
        await pair.assert_clean(collect=True)


async def test_wire_names_are_sent_for_snake_case_methods() -> None:
    async with SessionPair(ApiImpl(Directory())) as pair:
        api = typed(pair)
        counter = api.make_counter(5)
        assert await counter.increment() == 6
        pushes = [f for side, f in pair.log if side == "client" and f[0] == "push"]
        assert pushes[0][1][2] == ["makeCounter"]
        assert await api.user("ann").set_bio("hi") == Profile("ann", "hi", ["new"])
        assert any(f[1][2] == ["setBio"] for side, f in pair.log if f[0] == "push")


async def test_awaited_values_are_converted_to_the_declared_types() -> None:
    async with SessionPair(ApiImpl(Directory())) as pair:
        api = typed(pair)
        user = await api.user("ann")
        assert type(user) is UserStub
        profile = await user.profile
        assert profile == Profile(name="ann", bio="", tags=["new"])
        assert await api.find("ann") == profile
        assert await api.find("nobody") is None
        assert await api.stats() == {"users": 1, "counters": 0}
        counter = await api.make_counter(1)
        assert type(counter) is CounterStub
        assert type(counter.dup()) is CounterStub
        assert await counter.value == 1
        for stub in (user, counter):
            stub.dispose()
        api.dispose()
        await pair.assert_clean(collect=True)


async def test_typed_map_over_a_list() -> None:
    async with SessionPair(ApiImpl(Directory())) as pair:
        api = typed(pair)
        assert await api.fibonacci(6).map(lambda x: api.square(x)) == [0, 1, 1, 4, 9, 25]
        await asyncio.gather(api.user("ann"), api.user("bob"))
        placeholders: list[Any] = []

        def profile_of(name: TypedPromise[str]) -> ProfilePromise:
            placeholders.append(name)
            return api.user(name).profile

        assert await api.user_names().map(profile_of) == [
            Profile("ann", "", ["new"]),
            Profile("bob", "", ["new"]),
        ]
        assert all(isinstance(p, TypedPromise) for p in placeholders)
        users = await api.user_names("desc").map(lambda n: api.user(n))
        assert [type(u) for u in users] == [UserStub, UserStub]
        assert [await u.profile.name for u in users] == ["bob", "ann"]
        for u in users:
            u.dispose()
        names = await api.user_names().map(lambda n: {"n": n, "len": api.square(2)})
        assert names == [{"n": "ann", "len": 4}, {"n": "bob", "len": 4}]
        api.dispose()
        await pair.assert_clean(collect=True)


async def test_callbacks_and_promises_as_arguments() -> None:
    async def triple(x: int) -> int:
        return 3 * x

    async with SessionPair(ApiImpl(Directory())) as pair:
        api = typed(pair)
        assert await api.call_back(triple, 4) == 13
        assert await api.make_counter(api.square(3)).increment(api.square(2)) == 13
        assert await api.user(api.user("ann").profile.name).profile.tags == ["new"]


async def test_server_side_checks_reach_the_typed_client_as_type_errors() -> None:
    async with SessionPair(ApiImpl(Directory())) as pair:
        api = typed(pair)
        bad: Any = "x"
        with pytest.raises(RpcTypeError, match=r"ApiImpl\.square\(\) argument 'x' must be int"):
            await api.square(bad)
        with pytest.raises(RpcTypeError, match="must be one of"):
            await api.user_names(bad)
        assert await api.square(3) == 9


async def test_a_result_of_the_wrong_shape_fails_on_await() -> None:
    class LyingApi(ApiImpl):
        async def find(self, name: str) -> Any:
            return {"nickname": name}

    async with SessionPair(LyingApi(Directory())) as pair:
        api = typed(pair)
        with pytest.raises(TypeError, match=r"result must be .*Profile \| None, got dict"):
            await api.find("ann")


async def test_dynamic_access_still_works_on_typed_stubs() -> None:
    async with SessionPair(ApiImpl(Directory())) as pair:
        api = typed(pair)
        assert await api["square"](5) == 25
        dynamic: Any = api
        assert await dynamic.makeCounter(2).value == 2
        assert isinstance(api, RpcStub)
        assert isinstance(api.user("ann"), UserPromise)


async def test_the_example_client_runs(capsys: pytest.CaptureFixture[str]) -> None:
    from examples.typed.client import main

    await main([])
    printed = capsys.readouterr().out
    assert "user name: ann" in printed
    assert "users: ['ann', 'bob']" in printed


async def test_the_example_server_answers_health_beside_rpc() -> None:
    import aiohttp

    import capnweb
    from examples.typed.server import serve

    async with await serve(0) as server:
        async with capnweb.connect(server.ws_url, ApiStub) as api:
            assert await asyncio.wait_for(api.square(9), 5) == 81
        health = server.url.replace("/rpc", "/health")
        async with aiohttp.ClientSession() as http, http.get(health) as r:
            assert r.status == 200 and await r.json() == {"ok": True, "users": 0}


# -- streams


@dataclass
class Point:
    x: int
    y: int


@rpc_interface(names=camel_case)
class Feeds(Protocol):
    """Stream parameters and results in each declared form."""

    @rpc_method
    async def total(self, points: AsyncIterator[Point]) -> int: ...

    @rpc_method
    async def join(self, words: AsyncIterable[str], sep: str = " ") -> str: ...

    @rpc_method
    async def add_up(self, numbers: AsyncGenerator[int, None]) -> int: ...

    @rpc_method
    async def collect(self, items: ReadableStream[int]) -> list[int]: ...

    @rpc_method
    def points(self, n: int) -> AsyncIterator[Point]: ...

    @rpc_method
    async def fill(self, n: int, sink: WritableStream[int]) -> None: ...

    @rpc_method
    async def echo_blob(self, blob: Blob) -> Blob: ...

    @rpc_method
    async def fetch(self, request: Request) -> Response: ...


class FeedsImpl(RpcTarget, Feeds):
    """Records what the implementation saw: chunk types, and the error of a bad chunk."""

    def __init__(self) -> None:
        self.seen: list[Any] = []
        self.errors: list[BaseException] = []
        self.points_closed = asyncio.Event()

    async def total(self, points: AsyncIterator[Point]) -> int:
        out = 0
        async for p in points:
            self.seen.append(p)
            out += p.x * p.y
        return out

    async def join(self, words: AsyncIterable[str], sep: str = " ") -> str:
        got: list[str] = []
        try:
            async for w in words:
                got.append(w)
        except TypeError as e:
            self.seen.append(list(got))
            self.errors.append(e)
            raise
        return sep.join(got)

    async def add_up(self, numbers: AsyncGenerator[int, None]) -> int:
        return sum([n async for n in numbers])

    async def collect(self, items: ReadableStream[int]) -> list[int]:
        self.seen.append(items)
        return await items.collect()

    async def points(self, n: int) -> AsyncIterator[Point]:
        try:
            for i in range(n):
                yield Point(i, i + 1)
        finally:
            self.points_closed.set()

    async def fill(self, n: int, sink: WritableStream[int]) -> None:
        for i in range(n):
            await sink.write(i)
        await sink.close()

    async def echo_blob(self, blob: Blob) -> Blob:
        self.seen.append(blob)
        return Blob(blob.data[::-1], blob.type)

    async def fetch(self, request: Request) -> Response:
        self.seen.append(request)
        return Response(f"{request.method} {request.url}", status=201)


class BadPoints(FeedsImpl):
    """``points`` sends a chunk without its ``y`` (where ``Point`` is declared)."""

    async def points(self, n: int) -> AsyncIterator[Any]:
        try:
            yield {"x": 0, "y": 1}
            yield {"x": 1}
            for i in range(n):
                yield {"x": i, "y": i}
        finally:
            self.points_closed.set()


@pytest.fixture(scope="module")
def feeds(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    """The stubs generated from ``Feeds`` (in this module), imported."""
    (text,) = generate([f"{__name__}:Feeds"]).values()
    path = tmp_path_factory.mktemp("feeds") / "feeds_stubs.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location("feeds_stubs", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["feeds_stubs"] = module
    spec.loader.exec_module(module)
    return module


async def words(*items: Any, closed: asyncio.Event | None = None) -> AsyncIterator[Any]:
    """``items``, then (with ``closed``) the same items again and again until the consumer
    stops the stream, which sets ``closed``."""
    try:
        while True:
            for item in items:
                yield item
            if closed is None:
                return
    finally:
        if closed is not None:
            closed.set()


async def test_stream_arguments_arrive_with_their_chunks_converted(feeds: ModuleType) -> None:
    impl = FeedsImpl()
    async with SessionPair(impl) as pair:
        api = feeds.FeedsStub(pair.main)
        assert await api.total(words({"x": 2, "y": 3}, Point(4, 5))) == 26
        assert impl.seen == [Point(2, 3), Point(4, 5)]  # a wire object became the dataclass
        assert await api.join(words("typed", "streams"), "-") == "typed-streams"
        assert await api.add_up(words(1, 2, 3)) == 6
        impl.seen.clear()
        assert await api.collect(words(7, 8)) == [7, 8]  # ReadableStream's collect()
        assert impl.seen[0].locked  # and its other members, on a stream of checked chunks
        assert isinstance(impl.seen[0], ReadableStream)  # it is one, as declared
        api.dispose()
        await pair.assert_clean(collect=True)


async def test_a_bad_chunk_fails_the_implementations_loop_and_cancels_the_stream(
    feeds: ModuleType,
) -> None:
    impl = FeedsImpl()
    closed = asyncio.Event()
    async with SessionPair(impl) as pair:
        api = feeds.FeedsStub(pair.main)
        message = "FeedsImpl.join() argument 'words' chunk 2 must be str, got int"
        with pytest.raises(RpcTypeError) as info:
            await api.join(words("a", "b", 3, "d", closed=closed))  # endless unless cancelled
        assert str(info.value) == message
        assert impl.seen == [["a", "b"]]  # the good chunks were read first
        assert [str(e) for e in impl.errors] == [message]
        assert type(impl.errors[0]) is TypeError
        await asyncio.wait_for(closed.wait(), 5)  # the client's generator was stopped
        assert await api.join(words("still", "fine")) == "still fine"  # the session goes on
        api.dispose()
        await pair.assert_clean(collect=True)


async def test_what_is_not_a_stream_is_refused_before_the_method_runs() -> None:
    impl = FeedsImpl()
    async with SessionPair(impl) as pair:
        with pytest.raises(RpcTypeError) as info:
            await pair.main.collect([1, 2])
        assert str(info.value) == (
            "FeedsImpl.collect() argument 'items' must be an async iterable of int (a stream), "
            "got list"
        )
        with pytest.raises(RpcTypeError) as info:
            await pair.main.fill(1, 5)
        assert str(info.value) == (
            "FeedsImpl.fill() argument 'sink' must be a WritableStream, got int"
        )
        assert impl.seen == []


async def test_stream_results_await_to_async_iterators_of_converted_chunks(
    feeds: ModuleType,
) -> None:
    impl = FeedsImpl()
    async with SessionPair(impl) as pair:
        api = feeds.FeedsStub(pair.main)
        stream = await api.points(3)
        assert isinstance(stream, AsyncIterator) and not stream.locked
        assert [p async for p in stream] == [Point(0, 1), Point(1, 2), Point(2, 3)]
        storage = StorageStub(RpcStub(StorageImpl(Store())))  # plain chunks: no conversion
        await storage.upload("f", words(b"ab", b"c"))
        chunks = await storage.download("f", 2)
        assert [c async for c in chunks] == [b"ab", b"c"]
        storage.dispose()
        api.dispose()
        await pair.assert_clean(collect=True)


async def test_a_bad_result_chunk_fails_the_clients_loop_and_cancels_the_stream(
    feeds: ModuleType,
) -> None:
    impl = BadPoints()
    async with SessionPair(impl) as pair:
        api = feeds.FeedsStub(pair.main)
        got: list[Point] = []
        with pytest.raises(TypeError) as info:
            async for p in await api.points(10_000):  # endless enough: stopped by the error
                got.append(p)
        assert str(info.value) == "result chunk 1 (Point) is missing field 'y'"
        assert got == [Point(0, 1)]
        await asyncio.wait_for(impl.points_closed.wait(), 5)  # the server's generator stopped
        api.dispose()
        await pair.assert_clean(collect=True)


async def test_a_writable_stream_argument_is_written_by_the_server(feeds: ModuleType) -> None:
    received: list[int] = []

    class Sink(WritableStream[int]):
        async def write(self, chunk: int) -> None:
            received.append(chunk)

        async def close(self) -> None:
            received.append(-1)

    async with SessionPair(FeedsImpl()) as pair:
        api = feeds.FeedsStub(pair.main)
        await api.fill(4, Sink())
        assert received == [0, 1, 2, 3, -1]  # every write taken before fill() returned
        api.dispose()
        await pair.assert_clean(collect=True)


async def test_blob_request_and_response_are_values_of_their_own(feeds: ModuleType) -> None:
    impl = FeedsImpl()
    async with SessionPair(impl) as pair:
        api = feeds.FeedsStub(pair.main)
        blob = await api.echo_blob(Blob(b"abc", "text/plain"))
        assert blob == Blob(b"cba", "text/plain") and type(impl.seen[0]) is Blob
        response = await api.fetch(Request("https://example.com/x", "POST"))
        assert type(response) is Response and type(impl.seen[1]) is Request
        assert response.status == 201 and await response.text() == "POST https://example.com/x"
        api.dispose()
        await pair.assert_clean(collect=True)
