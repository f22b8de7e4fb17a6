# ruff: noqa: E501, F841
"""Wrong uses of the stubs generated from ``server.ts``: the line after each ``# E:`` comment
must fail ``mypy --strict`` with exactly that message, and no other line may."""

from __future__ import annotations

from tsapi.server_stubs import ApiStub

import capnweb


async def wrong(api: ApiStub) -> None:
    # E: Argument 1 to "get" of "UsersStub" has incompatible type "str"; expected "float | RpcPromise[float]"  [arg-type]
    api.users.get("1")
    # E: "UserPromise" has no attribute "nmae"  [attr-defined]
    await api.users.get(1).nmae
    # E: Argument 1 to "double" of "ApiStub" has incompatible type "int"; expected "BigInt | RpcPromise[BigInt]"  [arg-type]
    api.double(2)
    # E: Argument 2 to "add" of "UsersStub" has incompatible type "Literal['owner']"; expected "Literal['admin', 'member'] | RpcPromise[Literal['admin', 'member']]"  [arg-type]
    api.users.add("dan", "owner")
    # E: Incompatible types in assignment (expression has type "float", variable has type "int")  [assignment]
    n: int = await api.add(1, 2)
    # E: Too many arguments for "greet" of "UserStub"  [call-arg]
    api.users.get(1).greet(capnweb.undefined, "extra")
    # E: "ProfilePromise" has no attribute "agee"  [attr-defined]
    await api.users.list().items.map(lambda p: p.agee)
