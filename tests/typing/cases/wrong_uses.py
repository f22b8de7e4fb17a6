# ruff: noqa: E501, F841
"""Wrong uses of the generated stubs: the line after each ``# E:`` comment must fail
``mypy --strict`` with exactly that message, and no other line may."""

from __future__ import annotations

from examples.typed.api import Profile
from stubs.examples_typed_api import ApiStub


async def wrong(api: ApiStub) -> None:
    # E: Argument 1 to "square" of "ApiStub" has incompatible type "str"; expected "int | RpcPromise[int]"  [arg-type]
    api.square("3")
    # E: "ApiStub" has no attribute "sqare"; maybe "square"?  [attr-defined]
    api.sqare(3)
    # E: Too many arguments for "make_counter" of "ApiStub"  [call-arg]
    api.make_counter(1, 2)
    # E: Incompatible types in assignment (expression has type "UserStub", variable has type "Profile")  [assignment]
    profile: Profile = await api.user("ann")
    # E: "UserPromise" has no attribute "name"  [attr-defined]
    await api.user("ann").name
    # E: "ProfilePromise" has no attribute "nmae"  [attr-defined]
    await api.user("ann").profile.nmae
    # E: Argument 1 to "user" of "ApiStub" has incompatible type "TypedPromise[int]"; expected "str | RpcPromise[str]"  [arg-type]
    await api.user(api.square(2))
    # E: Incompatible types in assignment (expression has type "TypedPromise[int]", variable has type "int")  [assignment]
    squared: int = api.square(2)
    # E: Argument 1 to "user" of "ApiStub" has incompatible type "TypedPromise[int]"; expected "str | RpcPromise[str]"  [arg-type]
    api.fibonacci(3).map(lambda x: api.user(x))
    # E: "None" not callable  [misc]
    api()
