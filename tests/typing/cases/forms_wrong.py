# ruff: noqa: E501, F841
"""What the declaration forms of ``forms.py`` do not allow: the line after each ``# E:``
comment must fail ``mypy --strict`` with that message, and no other line may."""

from __future__ import annotations

from forms import AsyncForm, AwaitableForm, SyncForm
from forms_stubs import AsyncFormStub, SyncFormStub

from capnweb import RpcTarget


class SyncImplOfAsync(RpcTarget, AsyncForm):
    # E: Return type "int" of "add" incompatible with return type "Coroutine[Any, Any, int]" in supertype "forms.AsyncForm"  [override]
    def add(self, a: int, b: int) -> int:
        return a + b


class SyncImplOfAwaitable(RpcTarget, AwaitableForm):
    # E: Return type "int" of "add" incompatible with return type "Awaitable[int]" in supertype "forms.AwaitableForm"  [override]
    def add(self, a: int, b: int) -> int:
        return a + b


class AsyncImplOfSync(RpcTarget, SyncForm):
    # E: Return type "Coroutine[Any, Any, int]" of "add" incompatible with return type "int" in supertype "forms.SyncForm"  [override]
    async def add(self, a: int, b: int) -> int:
        return a + b


def as_protocol(a: AsyncFormStub, s: SyncFormStub) -> None:
    # E: Incompatible types in assignment (expression has type "AsyncFormStub", variable has type "AsyncForm")  [assignment]
    x: AsyncForm = a
    # E: Incompatible types in assignment (expression has type "SyncFormStub", variable has type "SyncForm")  [assignment]
    y: SyncForm = s
