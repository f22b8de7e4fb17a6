"""Blobs, Request/Response bodies, and what a peer may not send: floods past
``max_stream_buffer``, Blobs past ``max_blob_size``, malformed stream forms.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from helpers import ScriptedPeer, SessionPair, assert_exact

from capnweb import (
    Blob,
    Headers,
    Limits,
    ReadableStream,
    Request,
    Response,
    RpcError,
    RpcLimitError,
    RpcTypeError,
)

from .common import (
    Api,
    MiB,
    agen,
    answers,
    writes_to,
)

pytestmark = pytest.mark.timeout(20)


# -- Blob

BIG = bytes(range(256)) * (3 * MiB // 256) + b"tail"


@pytest.mark.parametrize("mime", ["", "text/plain"], ids=["no type", "type"])
@pytest.mark.parametrize("data", [b"", b"hello", BIG], ids=["empty", "small", "3 MiB"])
async def test_a_blob_arrives_whole_both_ways(data: bytes, mime: str) -> None:
    async with SessionPair(Api()) as pair:
        assert await pair.main.blob_info(Blob(data, mime)) == [len(data), mime]
        back = await pair.main.echo(Blob(data, mime))
        assert type(back) is Blob and back == Blob(data, mime) and back.size == len(data)
        await pair.assert_clean()


async def test_blobs_inside_a_structure() -> None:
    value = {"files": [Blob(b"a", "x/y"), Blob(b"")], "note": "n", "one": Blob(BIG)}
    async with SessionPair(Api()) as pair:
        assert_exact(await pair.main.echo(value), value)
        await pair.assert_clean()


async def test_a_blob_over_the_receiver_s_limit_fails_that_call_only() -> None:
    api = Api()
    small = Limits(max_blob_size=1000)
    async with SessionPair(api, server_options={"limits": small}) as pair:
        # the server's RpcLimitError reaches the client as a TypeError (its JavaScript name)
        with pytest.raises(RpcTypeError, match=r"max_blob_size \(1000 bytes\)"):
            await pair.main.blob_info(Blob(b"x" * 1001))
        assert api.ran == []  # the method never ran
        assert await pair.main.blob_info(Blob(b"x" * 1000)) == [1000, ""]
        await pair.assert_clean()
    async with SessionPair(api, client_options={"limits": small}) as pair:
        with pytest.raises(RpcLimitError, match=r"max_blob_size \(1000 bytes\)"):
            await pair.main.echo(Blob(b"x" * 1001))
        assert await pair.main.echo({"b": Blob(b"ok")}) == {"b": Blob(b"ok")}
        await pair.assert_clean()


# -- limits and malformed frames


async def test_a_peer_flooding_a_pipe_past_max_stream_buffer_loses_that_stream() -> None:
    api = Api()
    chunk = ["bytes", "A" * 8000]  # 6000 bytes each
    async with ScriptedPeer(api, limits=Limits(max_stream_buffer=50_000)) as peer:
        peer.send(["pipe"], ["push", ["pipeline", 0, ["hold"], [["readable", 1]]]], ["pull", 2])
        peer.send(*writes_to(1, *[chunk] * 10))  # ids 3..12, without waiting for answers
        await peer.settle()
        got = {f[1]: answers([f])[0] for f in peer.received() if f[0] != "resolve" or f[1] > 2}
        limit = "The peer wrote more than max_stream_buffer (50000) bytes"
        assert [got[i] for i in range(3, 11)] == ["resolve"] * 8  # 8 chunks fit in 50,000
        assert all(got[i].startswith(limit) for i in (11, 12))
        with pytest.raises(RpcLimitError, match="max_stream_buffer"):
            await api.held[0].collect()
        # the session goes on, and so does another stream
        peer.send(["pipe"], ["push", ["pipeline", 0, ["collect"], [["readable", 13]]]])
        peer.send(["pull", 14], *writes_to(13, 1, 2), ["stream", ["pipeline", 13, ["close"], []]])
        await peer.settle()
        assert ["resolve", 14, [[1, 2]]] in peer.received()
        assert peer.session.broken is None


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        pytest.param(["readable", 5], "Export 5 is not a pipe", id="readable-unknown-id"),
        pytest.param(["readable", 0], "Export 0 is not a pipe", id="readable-of-no-pipe"),
        pytest.param(["readable"], 'invalid readable: ["readable"]', id="readable-no-id"),
        pytest.param(["blob", 1, ["readable", 1]], "invalid blob", id="blob-bad-type"),
        pytest.param(["blob", "t", "x"], "must be serialized as a ReadableStream", id="blob-body"),
        pytest.param(["writable", "x"], 'invalid writable: ["writable","x"]', id="writable"),
    ],
)
async def test_a_bad_stream_form_aborts_the_session(expr: Any, message: str) -> None:
    async with ScriptedPeer(Api()) as peer:
        peer.send(["pipe"], ["push", ["pipeline", 0, ["hold"], [expr]]])
        await peer.settle()
        assert isinstance(peer.session.broken, RpcError)
        ((tag, error),) = peer.received()
        assert tag == "abort" and message in error[2]


async def test_a_pipe_read_twice_aborts_the_session() -> None:
    async with ScriptedPeer(Api()) as peer:
        hold = ["push", ["pipeline", 0, ["hold"], [["readable", 1]]]]
        peer.send(["pipe"], hold, hold)
        await peer.settle()
        message = "Export 1 is not a pipe or its readable end was already consumed."
        assert peer.received() == [["abort", ["error", "Error", message]]]


# -- Request and Response bodies

BODIES: dict[str, Callable[[], Any]] = {
    "stream": lambda: agen([b"he", b"llo"]),
    "bytes": lambda: b"hello",
    "str": lambda: "hello",
    "none": lambda: None,
}


@pytest.mark.parametrize("kind", BODIES)
async def test_request_bodies_both_ways(kind: str) -> None:
    headers = Headers([("content-type", "text/plain")])
    text = None if kind == "none" else "hello"
    async with SessionPair(Api()) as pair:
        sent = Request("https://example.com/a", "POST", headers, BODIES[kind]())
        described = await pair.main.describe(sent)
        assert described == [
            "POST",
            "https://example.com/a",
            [["content-type", "text/plain"]],
            text,
        ]
        back = await pair.main.relay(Request("https://example.com/b", "PUT", body=BODIES[kind]()))
        assert (back.method, back.url) == ("PUT", "https://example.com/b")
        assert await back.read() == (b"" if text is None else text.encode())
        await pair.assert_clean()


@pytest.mark.parametrize("kind", BODIES)
async def test_response_bodies_both_ways(kind: str) -> None:
    text = None if kind == "none" else "hello"
    async with SessionPair(Api()) as pair:
        sent = Response(BODIES[kind](), 404, headers=Headers([("x-a", "1")]))
        assert await pair.main.describe(sent) == [404, [["x-a", "1"]], text]
        back = await pair.main.relay(Response(BODIES[kind](), 202, "Accepted"))
        assert (back.status, back.status_text) == (202, "Accepted")
        assert await back.text() == (text or "")
        await pair.assert_clean()


async def test_a_method_returns_streamed_bodies() -> None:
    async with SessionPair(Api()) as pair:
        response = await pair.main.make_response([b"a", b"b", b"c"])
        assert isinstance(response.body, ReadableStream)
        assert (response.status, response.headers.get("content-type")) == (201, "a/b")
        assert await response.text() == "abc"
        request = await pair.main.make_request([b"x" * 100_000, b"y"])
        assert isinstance(request.body, ReadableStream)
        assert await request.read() == b"x" * 100_000 + b"y"
        await pair.assert_clean()
