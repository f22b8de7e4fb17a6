"""An interface full of awkward cases for the code generator, and an implementation of it
(used by tests/test_codegen.py and the typing tests)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, NewType, Protocol, TypedDict

from capnweb import BigInt, RpcStub, RpcTarget, UndefinedType, undefined
from capnweb.interface import camel_case, rpc_interface, rpc_method, rpc_property

UserId = NewType("UserId", str)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class Node:
    """A tree node (a recursive data type)."""

    label: str
    children: list[Node] = field(default_factory=list)
    when: datetime | None = None


class _Required(TypedDict):
    verbose: bool


class Options(_Required, total=False):
    level: int


Weird = TypedDict("Weird", {"not-an-id": int, "map": str, "class": int, "ok": str})


@dataclass
class Chunk:
    """Fields named like builtins."""

    bytes: bytes
    list: list[int]


@rpc_interface(names=camel_case)
class Sample(Protocol):
    """Awkward cases.

    A docstring with "quotes", a backslash \\ and ``code``; and */ for TypeScript."""

    @rpc_method
    def map(self, x: int) -> int:
        """Named like RpcPromise.map: reachable only as stub["map"]."""

    @rpc_method
    def dispose(self) -> None: ...

    @rpc_method
    def tree(self, depth: int = 2) -> Node: ...

    @rpc_method
    def forest(self) -> list[Node]: ...

    @rpc_method
    def grid(self) -> list[list[int]]: ...

    @rpc_method
    def by_name(self) -> dict[str, Sample]: ...

    @rpc_method
    def maybe_child(self, exists: bool) -> Sample | None: ...

    @rpc_method
    def children(self) -> Sequence[Sample]: ...

    @rpc_method
    def pair(self, p: tuple[int, str]) -> tuple[int, str]: ...

    @rpc_method
    def options(self, o: Options, extra: Mapping[str, Sequence[int]] | None = None) -> Options: ...

    @rpc_method
    def weird(self) -> Weird: ...

    @rpc_method
    def lookup(self, uid: UserId, tag: Annotated[str, "meta"] = "x") -> UserId: ...

    @rpc_method
    def big(self, n: BigInt) -> BigInt: ...

    @rpc_method
    def blob(self, data: bytes = b"\x00") -> bytes: ...

    @rpc_method
    def nothing(self) -> UndefinedType: ...

    @rpc_method
    def mode(self, m: Literal["a", "b", 1, True] = "a") -> Literal["a", "b", 1, True]: ...

    @rpc_method
    def subscribe(
        self, cb: Callable[[int, str], None], raw: RpcStub
    ) -> Callable[[], Awaitable[None]]: ...

    @rpc_method
    def log(self, first: str, *rest: Any) -> list[Any]: ...

    @rpc_method
    def defaults(
        self, when: datetime = EPOCH, items: tuple[int, ...] = (1, 2), ratio: float = float("inf")
    ) -> list[Any]: ...

    @rpc_method(name="delete")
    def remove(self, new: int, function: str = "f") -> str: ...

    @property
    @rpc_property
    def self_ref(self) -> Sample: ...

    # members named like builtins that generated code uses
    @rpc_method
    def list(self, limit: int = 2) -> list[str]: ...

    @rpc_method
    def property(self, name: str) -> Chunk: ...  # last: it shadows `property` in this body


class SampleImpl(RpcTarget, Sample):
    def __init__(self, name: str = "root") -> None:
        self.name = name

    def map(self, x: int) -> int:
        return x + 1

    def dispose(self) -> None:
        return None

    def tree(self, depth: int = 2) -> Node:
        if depth <= 0:
            return Node("leaf")
        return Node(f"depth {depth}", [self.tree(depth - 1), self.tree(depth - 1)])

    def forest(self) -> list[Node]:
        return [Node("a"), Node("b", [Node("c")])]

    def grid(self) -> list[list[int]]:
        return [[1, 2], [3]]

    def by_name(self) -> dict[str, Sample]:
        return {"x": SampleImpl("x"), "y": SampleImpl("y")}

    def maybe_child(self, exists: bool) -> Sample | None:
        return SampleImpl("child") if exists else None

    def children(self) -> Sequence[Sample]:
        return [SampleImpl("c1"), SampleImpl("c2")]

    def pair(self, p: tuple[int, str]) -> tuple[int, str]:
        return (p[0] + 1, p[1] * 2)

    def options(self, o: Options, extra: Mapping[str, Sequence[int]] | None = None) -> Options:
        return {"verbose": not o["verbose"], "level": sum(len(v) for v in (extra or {}).values())}

    def weird(self) -> Weird:
        return {"not-an-id": 1, "map": "m", "class": 2, "ok": "fine"}

    def lookup(self, uid: UserId, tag: str = "x") -> UserId:
        return UserId(f"{uid}:{tag}")

    def big(self, n: BigInt) -> BigInt:
        return BigInt(n * 2)

    def blob(self, data: bytes = b"\x00") -> bytes:
        return data * 2

    def nothing(self) -> UndefinedType:
        return undefined

    def mode(self, m: Literal["a", "b", 1, True] = "a") -> Literal["a", "b", 1, True]:
        return m

    def subscribe(
        self, cb: Callable[[int, str], None], raw: RpcStub
    ) -> Callable[[], Awaitable[None]]:
        async def unsubscribe() -> None:
            return None

        return unsubscribe

    def log(self, first: str, *rest: Any) -> list[Any]:
        return [first, *rest]

    def defaults(
        self, when: datetime = EPOCH, items: tuple[int, ...] = (1, 2), ratio: float = float("inf")
    ) -> list[Any]:
        return [when, list(items), ratio]

    def remove(self, new: int, function: str = "f") -> str:
        return f"{new}{function}"

    @property
    def self_ref(self) -> Sample:
        return self

    def list(self, limit: int = 2) -> list[str]:
        return ["a", "b", "c"][:limit]

    def property(self, name: str) -> Chunk:
        return Chunk(name.encode(), [len(name)])
