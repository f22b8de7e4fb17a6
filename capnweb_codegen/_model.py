"""What one output file declares: the requested interfaces, everything they reach, and how
annotations are classified.

Interfaces are read only through :func:`capnweb.interface.describe` (the description the
dispatcher uses too); data types (dataclasses, TypedDicts, pydantic models) are read field by
field.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import importlib
import inspect
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, NewType, TypeVar, get_args, get_origin

from typing_extensions import is_typeddict

from capnweb.interface import (
    Interface,
    describe,
    is_capability_type,
    is_data_class,
    is_interface,
    is_model_class,
    union_args,
)
from capnweb.stubs import RpcStub

__all__ = [
    "CodegenError",
    "Field",
    "Unit",
    "components",
    "contains",
    "data_doc",
    "data_fields",
    "element_type",
    "is_callable",
    "is_capability",
    "is_stub_class",
    "mapping_types",
    "optional_of",
    "resolve",
    "strip",
]

NoneType = type(None)


class CodegenError(Exception):
    """A target that cannot be generated (bad name, not an interface, unsupported type)."""


@dataclass(frozen=True)
class Unit:
    """One output file: the interfaces requested from one module and all they reach."""

    module: str
    refs: tuple[str, ...]
    interfaces: tuple[Interface, ...]
    data_types: tuple[type, ...]

    @property
    def file_stem(self) -> str:
        """The output file's name without its extension (``examples.api`` -> ``examples_api``)."""
        return self.module.replace(".", "_")


# --------------------------------------------------------------------------------------------
# Targets


def resolve(targets: list[str]) -> list[Unit]:
    """The output units for ``module:Interface`` and ``module`` targets, one per module."""
    roots: dict[str, dict[str, type]] = {}
    for target in targets:
        module_name, _, attr = target.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as e:
            raise CodegenError(f"cannot import {module_name!r}: {e}") from e
        found = roots.setdefault(module_name, {})
        if attr:
            obj: Any = module
            for part in attr.split("."):
                obj = getattr(obj, part, None)
            if not is_interface(obj):
                raise CodegenError(
                    f"{target} is not an RPC interface (a Protocol with @rpc_method)"
                )
            found[f"{module_name}:{attr}"] = obj
        else:
            classes = [
                v
                for v in vars(module).values()
                if is_interface(v) and getattr(v, "__module__", None) == module_name
            ]
            if not classes:
                raise CodegenError(f"module {module_name!r} defines no RPC interface")
            for cls in classes:
                found[f"{module_name}:{cls.__qualname__}"] = cls
    units = []
    for module_name in sorted(roots):
        refs = dict(sorted(roots[module_name].items()))
        interfaces, data_types = _reach(list(refs.values()))
        units.append(Unit(module_name, tuple(refs), interfaces, data_types))
    return units


def _key(cls: type) -> tuple[str, str]:
    return (cls.__module__, cls.__qualname__)


def _reach(roots: list[type]) -> tuple[tuple[Interface, ...], tuple[type, ...]]:
    """Every interface and data type reachable from ``roots`` through member types."""
    interfaces: dict[type, Interface] = {}
    data: dict[type, None] = {}
    pending = list(roots)
    while pending:
        cls = pending.pop()
        if cls in interfaces:
            continue
        try:
            iface = describe(cls)
        except TypeError as e:
            raise CodegenError(str(e)) from e
        interfaces[cls] = iface
        for member in iface.members.values():
            for tp in [*(p.annotation for p in member.params), member.returns]:
                for part in components(tp, data):
                    if is_interface(part) and part not in interfaces:
                        pending.append(part)
    return (
        tuple(sorted(interfaces.values(), key=lambda i: _key(i.cls))),
        tuple(sorted(data, key=_key)),
    )


def components(tp: Any, data: dict[type, None]) -> Iterator[Any]:
    """``tp`` and every type inside it, through unions, generics and data type fields (data
    types found are added to ``data``)."""
    tp = strip(tp)
    yield tp
    if is_data_class(tp):
        if tp in data:
            return
        data[tp] = None
        for f in data_fields(tp):
            yield from components(f.annotation, data)
        return
    if get_origin(tp) is typing.Literal:
        return
    for arg in get_args(tp):
        if isinstance(arg, list):  # Callable[[A, B], R]
            for a in arg:
                yield from components(a, data)
        elif arg is not Ellipsis:
            yield from components(arg, data)


# --------------------------------------------------------------------------------------------
# Classifying annotations


def strip(tp: Any) -> Any:
    """``tp`` without ``Annotated`` metadata, ``NewType`` names, TypeVars and string refs."""
    while True:
        if get_origin(tp) is typing.Annotated:
            tp = get_args(tp)[0]
        elif isinstance(tp, NewType):
            tp = tp.__supertype__
        elif isinstance(tp, TypeVar | str | typing.ForwardRef):
            return Any
        else:
            return tp


_LIST_ORIGINS = (
    list,
    collections.abc.Sequence,
    collections.abc.MutableSequence,
    collections.abc.Iterable,
    collections.abc.Collection,
)
_MAP_ORIGINS = (dict, collections.abc.Mapping, collections.abc.MutableMapping)


def element_type(tp: Any) -> Any | None:
    """The element type when ``tp`` is a list on the wire (list, Sequence, ``tuple[X, ...]``)."""
    if tp is list or tp is tuple:
        return Any
    origin = get_origin(tp)
    args = get_args(tp)
    if origin in _LIST_ORIGINS:
        return strip(args[0]) if args else Any
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return strip(args[0])
    return None


def mapping_types(tp: Any) -> tuple[Any, Any] | None:
    """(key, value) types when ``tp`` is a dict/Mapping."""
    if tp is dict:
        return (str, Any)
    if get_origin(tp) in _MAP_ORIGINS:
        args = get_args(tp)
        return (strip(args[0]), strip(args[1])) if len(args) == 2 else (str, Any)
    return None


def is_callable(tp: Any) -> bool:
    """Whether ``tp`` is a ``Callable[...]`` annotation (a function capability)."""
    return tp is collections.abc.Callable or get_origin(tp) is collections.abc.Callable


def is_stub_class(tp: Any) -> bool:
    """Whether ``tp`` is RpcStub or a subclass (an already-typed or dynamic capability)."""
    return isinstance(tp, type) and issubclass(tp, RpcStub)


def contains(tp: Any, pred: Callable[[Any], bool]) -> bool:
    """Whether ``tp`` or a type inside it (not looking into data types' fields) matches."""
    tp = strip(tp)
    if pred(tp):
        return True
    if is_data_class(tp) or get_origin(tp) is typing.Literal:
        return False
    for arg in get_args(tp):
        if isinstance(arg, list):
            if any(contains(a, pred) for a in arg):
                return True
        elif arg is not Ellipsis and contains(arg, pred):
            return True
    return False


def is_capability(tp: Any) -> bool:
    """Whether values of ``tp`` travel by reference."""
    return is_capability_type(tp) or is_callable(tp)


def optional_of(tp: Any) -> Any | None:
    """``X`` when ``tp`` is ``X | None``."""
    members = union_args(tp)
    if members is not None and len(members) == 2 and NoneType in members:
        return next(m for m in members if m is not NoneType)
    return None


# --------------------------------------------------------------------------------------------
# Data types


@dataclass(frozen=True)
class Field:
    """One field of a data type: its Python name, and its wire key when that differs (a
    pydantic model's serialization alias)."""

    name: str
    annotation: Any
    required: bool
    alias: str | None = None

    @property
    def wire_name(self) -> str:
        """The key of the field in the wire object."""
        return self.alias if self.alias is not None else self.name


def data_fields(cls: type) -> list[Field]:
    """The fields of a dataclass, TypedDict or pydantic model, in declaration order."""
    if is_model_class(cls):
        return _model_fields(cls)
    try:
        hints = typing.get_type_hints(cls)
    except Exception as e:
        raise CodegenError(f"cannot resolve the annotations of {cls.__qualname__}: {e}") from e
    if is_typeddict(cls):
        required = getattr(cls, "__required_keys__", frozenset(hints))
        return [Field(k, strip(v), k in required) for k, v in hints.items()]
    out = []
    for f in dataclasses.fields(cls):
        has_default = (
            f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        )
        out.append(Field(f.name, strip(hints.get(f.name, Any)), not has_default))
    return out


def _model_fields(cls: Any) -> list[Field]:
    """The fields a pydantic model is sent with (``model_dump(by_alias=True)``): its fields
    under their serialization aliases, then its computed fields. A ``RootModel`` is sent as its
    root value: it has none."""
    try:
        cls.model_rebuild(raise_errors=True)  # resolves forward references, if any are left
    except Exception as e:
        raise CodegenError(f"cannot resolve the annotations of {cls.__qualname__}: {e}") from e
    if getattr(cls, "__pydantic_root_model__", False):
        return []
    out = []
    for name, info in cls.model_fields.items():
        if info.exclude is True:
            continue  # never sent
        wire = info.serialization_alias or info.alias or name
        annotation = info.annotation if info.annotation is not None else Any
        out.append(Field(name, strip(annotation), info.is_required(), _alias(name, wire)))
    for name, info in cls.model_computed_fields.items():
        wire = info.alias or name
        out.append(Field(name, strip(info.return_type), True, _alias(name, wire)))
    return out


def _alias(name: str, wire: str) -> str | None:
    return wire if wire != name else None


def data_doc(cls: type) -> str | None:
    """The docstring a data type declares itself (not dataclass's generated signature)."""
    doc = cls.__dict__.get("__doc__")
    if not isinstance(doc, str):
        return None
    if dataclasses.is_dataclass(cls) and doc.startswith(f"{cls.__name__}("):
        return None
    return inspect.cleandoc(doc)
