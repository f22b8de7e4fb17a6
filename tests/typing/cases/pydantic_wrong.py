# ruff: noqa: E501
"""Wrong uses of the stubs generated for ``tests/pydantic_sample.py``: the line after each
``# E:`` comment must fail ``mypy --strict`` with exactly that message, and no other line may."""

from __future__ import annotations

from pydantic_sample import Role
from pydantic_sample_stubs import DirectoryStub


async def wrong(api: DirectoryStub) -> None:
    # E: "ProfilePromise" has no attribute "zipCode"  [attr-defined]
    await api.user("ann").profile.zipCode
    # E: Argument 1 to "register" of "DirectoryStub" has incompatible type "dict[str, str]"; expected "Profile | RpcPromise[Profile]"  [arg-type]
    api.register({"name": "bob"})
    # E: Incompatible types in assignment (expression has type "str", variable has type "Role")  [assignment]
    role: Role = await api.user("ann").profile.name
    print(role)
