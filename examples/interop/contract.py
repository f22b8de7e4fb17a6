"""The interop contract's interfaces (INTEROP-CONTRACT.md, section 5) as Protocols.

Python names are snake_case; ``names=camel_case`` gives the contract's wire names
(``call_square`` is ``callSquare``). Annotations are as loose as the contract: where it accepts
any value (``echo``, ``delayedEcho``...), the parameter is ``Any``. Methods an implementation
runs synchronously are declared with ``def``, the others with ``async def``.

``examples/interop/server.py`` implements them; ``stubs/examples_interop_contract.py`` and
``stubs/ts/examples_interop_contract.d.ts`` are generated from them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol, TypedDict

from capnweb import RpcStub, UndefinedType
from capnweb.interface import camel_case, rpc_interface, rpc_method, rpc_property


class CounterBatch(TypedDict):
    """What ``makeCounters`` returns: capabilities inside a structure."""

    counters: list[Counter]
    count: int


class SessionStats(TypedDict):
    """The sizes of a session's import and export tables."""

    imports: int
    exports: int


@rpc_interface(names=camel_case)
class Counter(Protocol):
    """A counter; alive until the client releases it."""

    @rpc_method
    def increment(self, amount: float = 1) -> float:
        """Add ``amount`` and return the new value."""

    @property
    @rpc_property
    def value(self) -> float:
        """The current value."""


@rpc_interface(names=camel_case)
class CallbackHolder(Protocol):
    """Keeps a client function and calls it on ``invoke``; releases it when released."""

    @rpc_method
    async def invoke(self, x: Any) -> Any:
        """``await func(x)``."""


@rpc_interface(names=camel_case)
class TestTarget(Protocol):
    """The contract's main capability."""

    @rpc_method
    def square(self, i: float) -> float:
        """``i * i``."""

    @rpc_method
    def call_square(self, target: TestTarget, i: float) -> dict[str, Any]:
        """``{result: target.square(i)}``, resolved before it is sent."""

    @rpc_method
    async def call_function(self, func: Callable[[Any], Awaitable[Any]], i: Any) -> dict[str, Any]:
        """``{result: await func(i)}``."""

    @rpc_method
    def throw_error(self) -> None:
        """Throws ``RangeError("test error")``."""

    @rpc_method
    def throw_typed_error(self, name: str, message: str) -> None:
        """Throws an error of type ``name`` (Error, TypeError, RangeError) with ``message``."""

    @rpc_method
    def make_counter(self, i: float = 0) -> Counter:
        """A new Counter starting at ``i``."""

    @rpc_method
    def make_counters(self, values: list[float]) -> CounterBatch:
        """One new Counter per value."""

    @rpc_method
    async def increment_counter(self, counter: Counter | Mapping[str, Any], i: float = 1) -> float:
        """``counter.increment(i)``: a Counter (or a promise of one), or an object with an
        ``increment`` function."""

    @rpc_method
    def generate_fibonacci(self, n: int) -> list[int]:
        """The first ``n`` Fibonacci numbers."""

    @rpc_method
    def return_null(self) -> None:
        """``null``."""

    @rpc_method
    def return_undefined(self) -> UndefinedType:
        """``undefined``."""

    @rpc_method
    def return_number(self, i: float) -> float:
        """``i``."""

    @rpc_method
    def echo(self, x: Any) -> Any:
        """``x``, exactly as received."""

    @rpc_method
    async def delayed_echo(self, ms: float, x: Any) -> Any:
        """``x`` after ``ms`` milliseconds (capped at 10 s), without blocking other calls."""

    @rpc_method
    def make_callback_holder(self, func: Callable[[Any], Awaitable[Any]]) -> CallbackHolder:
        """A new CallbackHolder keeping ``func``."""

    @rpc_method
    def get_session_id(self) -> str:
        """A string unique to this session."""

    @rpc_method
    def get_live_counters(self, session_id: str | None = None) -> int:
        """How many Counters of session ``session_id`` (default: this one) are alive."""

    # -- test-only extras (not in the contract), mirrored by the TypeScript test server

    @rpc_method
    def get_stats(self) -> SessionStats:
        """This session's import/export table sizes."""

    @rpc_method
    async def call_twice(self, func: Callable[[Any], Awaitable[Any]], x: Any) -> list[Any]:
        """``[await func(x), await func(x + 1)]``."""

    @rpc_method
    async def call_method(self, cap: RpcStub, name: str, args: Any = None) -> Any:
        """``await cap[name](*args)``."""

    @rpc_method
    async def get_property(self, cap: RpcStub, name: str) -> Any:
        """``await cap[name]``."""

    @rpc_method
    def throw_value(self, v: Any) -> None:
        """Rejects with ``v`` itself."""

    @rpc_method
    def return_nested_promise(self, ms: float, x: Any) -> dict[str, Any]:
        """``{value: <promise of x after ms>}``."""
