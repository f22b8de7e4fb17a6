"""Rules of the protocol (PROTOCOL-NOTES.md, the reference's protocol.md), each tested from the
wire: a hand-driven peer sends frames, the session under test answers.

- An import id the peer introduces again, while the first is still held, adds to the count
  the importer releases later (``["release", id, count]``: the number of times it was
  introduced), so the exporter frees it exactly when every introduction is released.
- Ids are integers, never booleans (JSON ``true`` is not ``1``), in every message and
  expression that carries one.
- A pipelined reference keeps its path: ``["pipeline", id, path]`` is the member ``path``
  reaches on the result ``id``, for a property read and for a call alike.
"""

from __future__ import annotations

from typing import Any

import pytest
from helpers import ScriptedPeer, SessionPair

from capnweb import RpcProtocolError, RpcStub, RpcTarget

pytestmark = pytest.mark.timeout(10)


class Counter(RpcTarget):
    def __init__(self, n: int) -> None:
        self.n = n

    def increment(self, k: int = 1) -> int:
        self.n += k
        return self.n

    @property
    def value(self) -> int:
        return self.n


class Api(RpcTarget):
    def __init__(self) -> None:
        self.kept: list[RpcStub] = []

    def square(self, i: int) -> int:
        return i * i

    def counter(self, n: int) -> Counter:
        return Counter(n)

    def keep(self, cap: RpcStub) -> None:
        self.kept.append(cap)

    def ignore(self, cap: object) -> None:
        pass


def releases(frames: list[Any], import_id: int) -> int:
    """The count released for ``import_id``, summed over the ``release`` frames."""
    return sum(f[2] for f in frames if f[0] == "release" and f[1] == import_id)


async def test_an_id_introduced_twice_is_released_with_count_two() -> None:
    api = Api()
    async with ScriptedPeer(api) as peer:
        keep = ["pipeline", 0, ["keep"], [["export", -1]]]
        peer.send(["push", keep], ["push", keep], ["pull", 1], ["pull", 2])
        await peer.settle()
        assert len(api.kept) == 2  # both calls ran, each kept a stub of the peer's export -1
        assert releases(peer.received(), -1) == 0  # still held
        api.kept.pop().dispose()
        await peer.settle()
        assert releases(peer.received(), -1) == 0  # one stub still holds the import
        api.kept.pop().dispose()
        await peer.settle()
        assert releases(peer.received(), -1) == 2  # as many as the peer introduced it
        assert peer.session.broken is None


async def test_an_id_introduced_again_after_its_release_starts_over() -> None:
    async with ScriptedPeer(Api()) as peer:
        ignore = ["pipeline", 0, ["ignore"], [["export", -1]]]
        peer.send(["push", ignore], ["pull", 1])
        await peer.settle()
        assert releases(peer.received(), -1) == 1
        peer.send(["push", ignore], ["pull", 2])
        await peer.settle()
        assert releases(peer.received(), -1) == 2  # one release per introduction


BOOLEAN_IDS = {
    "pull": ["pull", True],
    "release id": ["release", True, 1],
    "release count": ["release", 1, True],
    "resolve": ["resolve", True, 1],
    "reject": ["reject", True, ["error", "Error", "no"]],
    "pipeline": ["push", ["pipeline", True, ["increment"], [1]]],
    "import": ["push", ["import", True]],
    "export": ["push", ["pipeline", 0, ["ignore"], [["export", True]]]],
    "promise": ["push", ["pipeline", 0, ["ignore"], [["promise", True]]]],
}


@pytest.mark.parametrize("frame", BOOLEAN_IDS.values(), ids=BOOLEAN_IDS.keys())
async def test_true_is_not_the_id_1(frame: list[Any]) -> None:
    async with ScriptedPeer(Api()) as peer:
        peer.send(["push", ["pipeline", 0, ["counter"], [5]]])  # export 1: a counter
        await peer.settle()
        peer.send(frame)
        await peer.settle()
        assert isinstance(peer.session.broken, RpcProtocolError), peer.received()
        sent = peer.received()
        assert [f[0] for f in sent] == ["abort"], sent  # nothing was done with export 1


async def test_a_pipelined_path_reaches_the_member_for_a_read_and_a_call() -> None:
    async with ScriptedPeer(Api()) as peer:
        peer.send(
            ["push", ["pipeline", 0, ["counter"], [5]]],  # 1: a Counter
            ["push", ["pipeline", 1, ["value"]]],  # 2: its value (a property read)
            ["push", ["pipeline", 1, ["increment"], [2]]],  # 3: a call on it
            ["push", ["pipeline", 1, ["value"]]],  # 4: the value again
            ["pull", 2],
            ["pull", 3],
            ["pull", 4],
        )
        await peer.settle()
        resolved = {f[1]: f[2] for f in peer.received() if f[0] == "resolve"}
        assert resolved == {2: 5, 3: 7, 4: 7}


async def test_stubs_send_the_path_they_were_reached_by() -> None:
    async with SessionPair(Api()) as pair:
        mark = pair.mark()
        counter = pair.main.counter(5)
        assert await counter.increment(2) == 7
        assert await counter.value == 7
        pushes = [f[1] for f in pair.since(mark)[0] if f[0] == "push"]
        assert pushes == [
            ["pipeline", 0, ["counter"], [5]],
            ["pipeline", 1, ["increment"], [2]],
            ["pipeline", 1, ["value"]],
        ]
