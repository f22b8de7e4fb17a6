"""Base classes for generated typed stubs (``python -m capnweb_codegen``).

Generated code only adds names and types on top of these; all behaviour is the runtime's:

- :class:`TypedStub`: a stub whose remote members are the methods and properties a generated
  subclass declares. To a type checker it has no dynamic attributes and is not callable, so a
  misspelt method is an error; at run time it is an ordinary :class:`~capnweb.RpcStub`
  (``stub["name"]`` still reaches any remote name).
- :class:`TypedPromise` ``[T]``: a pending result that awaits to ``T``. A generated subclass
  sets ``_result_type`` when the received value must be converted (a dataclass from the wire
  object, typed stubs for received capabilities) and adds typed pipelined members.
- :class:`TypedListPromise` ``[T, E]``: a pending list; ``map(fn)`` hands ``fn`` a placeholder
  typed ``E`` (the element's promise class) and is typed by what ``fn`` returns.
- :func:`validated` ``(StubClass)``: the same stub class checking every result against the
  interface's return annotations (``connect(url, StubClass, validate=True)`` uses it).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar, overload

from ._checked import validated
from .stubs import RpcPromise, RpcStub

__all__ = ["PlainValue", "TypedListPromise", "TypedPromise", "TypedStub", "validated"]

T_co = TypeVar("T_co", covariant=True)
E_co = TypeVar("E_co", bound=RpcPromise[Any], covariant=True)
U = TypeVar("U")

PlainValue = Mapping[str, object] | Sequence[object] | datetime | float | str | bytes | None
"""What a ``map()`` function may return besides a promise: values (possibly holding promises)."""


class TypedStub(RpcStub):
    """Base of generated stub classes: only the declared remote members are typed."""

    __slots__ = ()

    _interface: ClassVar[str | None] = None
    """``module:Name`` of the interface a generated class stands for (what :func:`validated`
    checks results against)."""

    if TYPE_CHECKING:
        # Not functions to a type checker: no attribute falls back to __getattr__, and calling
        # a stub is an error. At run time RpcStub's dynamic access still works.
        __getattr__: None  # type: ignore[misc, assignment]
        __call__: None  # type: ignore[assignment]


class TypedPromise(RpcPromise[T_co], TypedStub):
    """A pending result that awaits to ``T``; generated subclasses add pipelined members."""

    __slots__ = ()


class TypedListPromise(TypedPromise[T_co], Generic[T_co, E_co]):
    """A pending list (awaits to ``T``) whose elements are promised as ``E`` inside ``map()``."""

    __slots__ = ()

    @overload
    def map(self, fn: Callable[[E_co], RpcPromise[U]]) -> TypedPromise[list[U]]: ...
    @overload
    def map(self, fn: Callable[[E_co], PlainValue]) -> TypedPromise[list[Any]]: ...
    def map(self, fn: Callable[[Any], Any]) -> TypedPromise[list[Any]]:
        """Apply ``fn`` remotely to each element, in one round trip (see ``RpcPromise.map``).

        ``fn`` gets a typed placeholder for one element; when it returns a typed promise, the
        awaited list holds that promise's type (e.g. typed stubs for returned capabilities).
        """
        produced: list[Any] = []

        def record(element: Any) -> Any:
            out = fn(element)
            produced.append(out)
            return out

        mapped = RpcPromise.map(self, record)
        result_type = getattr(produced[-1], "_result_type", None) if produced else None
        return mapped._cast(_list_of(result_type))


_list_classes: dict[Any, type[TypedPromise[list[Any]]]] = {}


def _list_of(result_type: Any) -> type[TypedPromise[list[Any]]]:
    """A promise class converting each element of an awaited list to ``result_type``."""
    if result_type is None:
        return TypedPromise
    try:
        return _list_classes[result_type]
    except (KeyError, TypeError):
        pass
    name = f"TypedPromise[list[{getattr(result_type, '__name__', result_type)}]]"
    attrs = {"__slots__": (), "_result_type": list[result_type]}
    cls: type[TypedPromise[list[Any]]] = type(name, (TypedPromise,), attrs)
    try:
        _list_classes[result_type] = cls
    except TypeError:
        pass
    return cls
