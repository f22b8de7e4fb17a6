"""Behaviour the hot-path shortcuts must keep (docs/performance.md lists the shortcuts).

- Plain dicts and lists are encoded and decoded without copying: values must still never be
  shared where a copy is due (a map() replays its recording once per element).
- An awaited remote promise wakes each awaiting task directly: cancelling one awaiter must
  not disturb the others.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from codec_impls import codec_impl  # noqa: F401 (the fixture: compiled and pure codec)
from helpers import SessionPair

from capnweb import RpcTarget, undefined
from capnweb._codec import decode, dumps, encode, loads

pytestmark = [pytest.mark.timeout(10), pytest.mark.usefixtures("codec_impl")]


class Api(RpcTarget):
    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.received: list[Any] = []

    def numbers(self, n: int) -> list[int]:
        return list(range(n))

    def keep(self, value: Any) -> int:
        self.received.append(value)
        return len(self.received)

    def square(self, i: int) -> int:
        return i * i

    async def later(self, x: Any) -> Any:
        await self.gate.wait()
        return x


async def test_a_constant_dict_in_a_mapper_is_a_new_dict_per_element() -> None:
    async with SessionPair(Api()) as pair:
        result = await pair.main.numbers(3).map(lambda x: {"kind": "row", "n": 1})
        assert result == [{"kind": "row", "n": 1}] * 3
        assert len({id(d) for d in result}) == 3
        result[0]["n"] = 99
        assert result[1] == {"kind": "row", "n": 1}


async def test_a_received_value_is_the_callee_s_own() -> None:
    api = Api()
    sent = {"a": 1, "b": "x", "c": [1, 2, {"d": None}]}
    async with SessionPair(api) as pair:
        assert await pair.main.keep(sent) == 1
        assert await pair.main.keep(sent) == 2
    first, second = api.received
    assert first == second == sent
    assert first is not sent and first is not second
    first["a"] = 2
    assert second["a"] == 1 and sent["a"] == 1


def test_encoding_leaves_the_value_alone_and_still_escapes_what_it_must() -> None:
    inner = {"big": 2**60, "nan": float("nan"), "ok": 1.5}
    value = {"plain": {"s": "x", "i": 3, "b": True, "n": None}, "inner": inner, "list": [1, "a"]}
    text = dumps(encode(value))
    assert loads(text) == {
        "plain": {"s": "x", "i": 3, "b": True, "n": None},
        "inner": {"big": ["bigint", str(2**60)], "nan": ["nan"], "ok": 1.5},
        "list": [[1, "a"]],
    }
    assert inner["big"] == 2**60 and value["list"] == [1, "a"]  # nothing rewritten in place
    with pytest.raises(TypeError, match="non-string key"):
        encode({"fine": {1: "not a wire key"}})


def test_decoding_a_parsed_message_in_place_keeps_every_rule() -> None:
    text = (
        '{"a":[[1,2.5,"s",null,true]],"big":9007199254740993,'
        '"toJSON":1,"__proto__":{"x":1},"n":{"v":["undefined"]}}'
    )
    value = decode(loads(text), fresh=True)
    assert value == {
        "a": [1, 2.5, "s", None, True],
        "big": 9007199254740992.0,
        "n": {"v": undefined},
    }
    assert type(value["big"]) is float
    assert value["n"]["v"] is undefined


async def test_cancelling_one_awaiter_leaves_the_others_waiting() -> None:
    api = Api()
    async with SessionPair(api) as pair:
        promise = pair.main.later("done")

        async def wait() -> Any:
            return await promise

        first = asyncio.ensure_future(wait())
        second = asyncio.ensure_future(wait())
        await asyncio.sleep(0)
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        api.gate.set()
        assert await asyncio.wait_for(second, 5) == "done"
        assert await promise == "done"
