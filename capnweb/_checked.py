"""Results checked against the interface: the classes behind ``capnweb.typed.validated``.

A generated stub class names its interface (``_interface = "module:Name"``). ``validated(C)``
is a subclass of stub class ``C`` whose ``_rpc_call``/``_rpc_get`` hand out *checked*
subclasses of the generated promise classes: each knows the annotation declared for what it
will resolve to (the member's return annotation, or a field of a data type for a pipelined
field) and a label for errors (``Api.stats() result``, ``User.profile``). Awaiting one converts
the value exactly as the generated class would, checking it all the way down, and raises
:class:`~capnweb.RpcTypeError` naming the interface, the member and what was wrong.

Checking spreads: a checked promise of an interface is itself a checked stub (its pipelined
calls are checked), and capabilities in an awaited result arrive as validated stub classes.
The classes are made once per (generated class, label, annotation) and cached; stubs and
promises of the generated classes themselves are untouched, so code that does not ask for
checking runs exactly as before.

A stream result (declared ``AsyncIterator[T]``...) cannot be checked when it arrives: it
awaits to a ``CheckedStream`` that checks each chunk as it is read, raising ``RpcTypeError``.
"""

from __future__ import annotations

import collections.abc
import importlib
import operator
import types
import typing
from collections.abc import Callable, Generator
from functools import reduce
from typing import Any, ClassVar, TypeVar, cast, get_args, get_origin

from typing_extensions import is_typeddict

from ._hooks import RpcPromise, RpcStub
from ._validate import CheckedStream, Converter, converter
from .errors import RpcTypeError
from .interface import Interface, Member, describe, union_args

__all__ = ["validated"]

S = TypeVar("S", bound=RpcStub)
P = TypeVar("P", bound=RpcStub)

_validated: dict[type, type] = {}
_promises: dict[Any, type] = {}
_interfaces: dict[str, Interface] = {}


class _Checked(RpcStub):
    """A stub whose typed calls and pipelined reads give checked promises."""

    __slots__ = ()

    _iface: ClassVar[Interface | None] = None
    _by_wire: ClassVar[dict[str, Member]] = {}
    _declared: ClassVar[Any] = Any
    _where: ClassVar[str] = ""
    _children: ClassVar[dict[tuple[type, str, bool], type]]

    def _rpc_call(self, cls: type[P], name: str, *args: Any) -> P:
        return super()._rpc_call(_child(type(self), cls, name, True), name, *args)

    def _rpc_get(self, cls: type[P], name: str) -> P:
        return super()._rpc_get(_child(type(self), cls, name, False), name)


class _CheckedPromise(_Checked, RpcPromise[Any]):
    """A pending result checked against its declared annotation when awaited."""

    __slots__ = ()

    _result_type = None  # converting is part of the check
    _expected: ClassVar[Any] = Any
    _check: ClassVar[Converter]

    def __await__(self) -> Generator[Any, Any, Any]:
        value = yield from RpcPromise.__await__(self)
        check, where = type(self)._check, self._where
        del self  # the error's traceback keeps this frame: it must not keep the promise
        try:
            result = check(value, where)
            if isinstance(result, CheckedStream):
                result._error = RpcTypeError  # a bad chunk is the peer's fault, as a bad result
            return result
        except TypeError as e:
            message = str(e)
        del value  # nor the result's capabilities
        raise RpcTypeError(message)

    def map(self, fn: Callable[[Any], Any]) -> RpcPromise[Any]:
        """As the generated class's ``map()``; a list of checked promises is checked too."""
        produced: list[Any] = []

        def record(element: Any) -> Any:
            out = fn(element)
            produced.append(out)
            return out

        mapped = super().map(record)
        last = produced[-1] if produced else None
        if not isinstance(last, _CheckedPromise) or not _is_list(self._expected):
            return mapped
        each = type(last)
        expected = types.GenericAlias(list, (each._expected,))
        declared = types.GenericAlias(list, (each._declared,))
        return mapped._cast(_promise_class(_CheckedPromise, expected, declared, each._where))


def validated(cls: type[S]) -> type[S]:
    """Stub class ``cls`` (generated) with every result checked against the interface.

    Awaited results of its calls and properties, pipelined or not, are checked against the
    interface's return annotations (and converted as usual); a mismatch raises
    ``RpcTypeError`` naming the member. Capabilities in results arrive validated too.
    """
    if issubclass(cls, _Checked):
        return cls
    try:
        return cast(type[S], _validated[cls])
    except KeyError:
        pass
    if issubclass(cls, RpcPromise):
        raise TypeError(f"validated() takes a stub class, not the promise class {cls.__name__}")
    iface = _interface_of(cls)
    if iface is None:
        raise TypeError(
            f"validated() needs a generated stub class that names its interface, not "
            f"{cls.__qualname__} (regenerate old stubs with python -m capnweb_codegen)"
        )
    out = type(cls.__name__, (_Checked, cls), _namespace(cls, iface))
    _validated[cls] = out
    return cast(type[S], out)


def _namespace(base: type, iface: Interface | None) -> dict[str, Any]:
    return {
        "__slots__": (),
        "__module__": base.__module__,
        "__qualname__": base.__qualname__,
        "__doc__": base.__doc__,
        "_iface": iface,
        "_by_wire": iface.by_wire_name if iface is not None else {},
        "_children": {},
    }


def _interface_of(cls: type) -> Interface | None:
    """The interface a generated stub class names (imported on first use), or None."""
    ref = getattr(cls, "_interface", None)
    if not isinstance(ref, str):
        return None
    found = _interfaces.get(ref)
    if found is not None:
        return found
    module_name, _, qualname = ref.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
        found = describe(obj)
    except (ImportError, AttributeError, TypeError) as e:
        raise TypeError(f"{cls.__qualname__}: cannot load its interface {ref!r}: {e}") from e
    _interfaces[ref] = found
    return found


def _child(owner: type[_Checked], cls: type[P], name: str, call: bool) -> type[P]:
    """The checked promise class for ``owner``'s member or field ``name`` typed ``cls``."""
    key = (cls, name, call)
    try:
        return cast(type[P], owner._children[key])
    except KeyError:
        pass
    declared, where = _declared_of(owner, name, call)
    result_type = getattr(cls, "_result_type", None)
    # The generated class's own result type says how values convert (capabilities to stub
    # classes); the declared annotation is the fallback for plain values.
    expected = result_type if result_type is not None else declared
    child = _promise_class(cls, expected, declared, where)
    owner._children[key] = child
    return cast(type[P], child)


def _declared_of(owner: type[_Checked], name: str, call: bool) -> tuple[Any, str]:
    """(annotation, label) of member or field ``name`` of what ``owner`` refers to."""
    member = owner._by_wire.get(name)
    if member is not None and owner._iface is not None:
        label = f"{owner._iface.name}.{member.name}"
        if member.kind == "method":
            return member.returns, f"{label}() result"
        return member.returns, label
    data = _strip(owner._declared)
    hints = _field_hints(data)
    base = owner._where or owner.__name__
    if name in hints:
        where = f"{base}[{name!r}]" if is_typeddict(data) else f"{base}.{name}"
        return hints[name], where
    return Any, f"{base}.{name}" + ("()" if call else "")


def _field_hints(tp: Any) -> dict[str, Any]:
    if not isinstance(tp, type) or tp is Any:
        return {}
    if issubclass(tp, RpcStub):
        return {}
    try:
        return typing.get_type_hints(tp, include_extras=True)
    except Exception:  # not a data type, or annotations that cannot be resolved
        return {}


def _promise_class(base: type, expected: Any, declared: Any, where: str) -> type:
    """A checked subclass of promise class ``base``: awaits to ``expected``, checked."""
    try:
        key: Any = (base, where, expected, declared)
        return _promises[key]
    except KeyError:
        pass
    except TypeError:
        key = None
    check_type = _checking(expected)
    ns = _namespace(base, _interface_of(base))
    ns.update(
        _expected=check_type,
        _declared=declared,
        _where=where,
        _check=staticmethod(converter(check_type)),
    )
    element = getattr(base, "_element_type", None)
    if element is not None and _is_list(check_type):
        item, item_declared = _item(check_type), _item(declared)
        ns["_element_type"] = _promise_class(element, item, item_declared, f"{where}[]")
    bases = (base,) if issubclass(base, _CheckedPromise) else (_CheckedPromise, base)
    cls = type(base.__name__, bases, ns)
    if key is not None:
        _promises[key] = cls
    return cls


def _checking(tp: Any) -> Any:
    """Annotation ``tp`` with every generated stub class replaced by its validated class."""
    if isinstance(tp, type):
        if issubclass(tp, RpcStub) and not issubclass(tp, RpcPromise | _Checked):
            return validated(tp) if _interface_of(tp) is not None else tp
        return tp
    args = get_args(tp)
    origin = get_origin(tp)
    if not args or origin is typing.Literal or origin is Callable:
        return tp
    new = tuple(_checking(a) for a in args)
    if new == args:
        return tp
    if union_args(tp) is not None:
        if isinstance(tp, types.UnionType):
            return reduce(operator.or_, new)
        return typing.Union[new]  # noqa: UP007
    if isinstance(tp, types.GenericAlias):
        return types.GenericAlias(origin, new)
    copy_with = getattr(tp, "copy_with", None)
    return copy_with(new) if copy_with is not None else tp


def _strip(tp: Any) -> Any:
    while get_origin(tp) is typing.Annotated:
        tp = get_args(tp)[0]
    return tp


def _is_list(tp: Any) -> bool:
    """Whether values of ``tp`` are arrays on the wire (what ``map()`` runs over each of)."""
    tp = _strip(tp)
    return tp in (list, tuple) or get_origin(tp) in _ARRAYS


def _item(tp: Any) -> Any:
    """The element annotation of a list-like ``tp`` (``Any`` when not one annotation)."""
    tp = _strip(tp)
    args = get_args(tp)
    if get_origin(tp) is tuple and not (len(args) == 2 and args[1] is Ellipsis):
        return Any
    return args[0] if args else Any


_ARRAYS = (list, tuple, set, frozenset, collections.abc.Sequence, collections.abc.Iterable)
