"""Python stubs: one stub class per interface, one promise class per interesting result type.

For every annotation the renderer answers three questions:

- *awaited*: what ``await`` gives (interfaces become their stub class, callables ``RpcStub``);
- *param*: what a stub method accepts (the value, or a promise of it; read-only
  ``Sequence``/``Mapping`` for containers; for a capability, a local implementation or a stub);
- *promise*: which promise class a call or a pipelined read returns. Interfaces, data types and
  lists get named classes (pipelined members, typed ``map()``, conversion on ``await``); other
  types that need conversion get a named class too; plain values use ``TypedPromise[T]``.

Every name a stub module uses is a generated class (``...Stub``/``...Promise``) or goes through
a module alias starting with ``_``, so nothing shadows a builtin or a name of ``typing``.
"""

from __future__ import annotations

import builtins
import collections.abc
import enum
import keyword
import math
import sys
import typing
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, get_args, get_origin

import capnweb
from capnweb.interface import (
    Interface,
    Member,
    is_data_class,
    is_interface,
    is_model_class,
    stream_chunk,
    union_args,
    writable_chunk,
)
from capnweb.typed import TypedListPromise

from ._model import (
    NoneType,
    Unit,
    contains,
    data_doc,
    data_fields,
    element_type,
    is_callable,
    is_capability,
    is_stub_class,
    mapping_types,
    optional_of,
    strip,
)

__all__ = ["python_context"]

RESERVED = frozenset(n for n in dir(TypedListPromise) if not n.startswith("_"))
"""Names a generated member cannot take: the stubs' own local methods (``map``, ``dup``...)."""

_CAPNWEB = "capnweb"
_TYPED = "capnweb.typed"


@dataclass
class Method:
    """A stub method or property, ready for the template."""

    name: str
    wire_name: str
    kind: str
    params: list[str]
    args: list[str]
    returns: str
    runtime: str
    doc: str | None


@dataclass
class StubClass:
    """A stub class (and the name of its promise class) for one interface."""

    name: str
    promise: str
    doc: str | None
    methods: list[Method]
    skipped: list[str]
    ref: str


@dataclass
class PromiseClass:
    """A named promise class for one result type."""

    name: str
    bases: str
    result_type: str
    element_type: str | None
    doc: str
    fields: list[Method] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    depends: list[str] = field(default_factory=list)


def is_identifier(name: str) -> bool:
    """Whether ``name`` can be a generated attribute."""
    return name.isidentifier() and not keyword.iskeyword(name) and not name.startswith("_")


class _Renderer:
    def __init__(self, unit: Unit) -> None:
        self.unit = unit
        self.aliases: dict[str, str] = {}
        self.taken: set[str] = set()
        self.stub_names: dict[type, tuple[str, str]] = {}
        self.promises: dict[Any, PromiseClass] = {}
        self.promise_names: dict[Any, str] = {}
        # Attribute names the generated classes define: builtins they would shadow in class
        # bodies (a remote method called `list`...) are written through the `builtins` module.
        attributes = {m.name for i in unit.interfaces for m in i.members.values()}
        attributes |= {f.name for cls in unit.data_types for f in data_fields(cls)}
        self.shadowed = attributes & set(dir(builtins))
        for iface in unit.interfaces:
            base = iface.cls.__qualname__.replace(".", "")
            stub = self._claim(f"{base}Stub")
            promise = self._claim(f"{base}Promise")
            self.stub_names[iface.cls] = (stub, promise)

    # -- names

    def _claim(self, name: str) -> str:
        candidate, n = name, 2
        while candidate in self.taken:
            candidate = f"{name.removesuffix('Promise').removesuffix('Stub')}{n}" + (
                "Promise" if name.endswith("Promise") else "Stub"
            )
            n += 1
        self.taken.add(candidate)
        return candidate

    def alias(self, module: str) -> str:
        """The alias under which ``module`` is imported."""
        alias = self.aliases.get(module)
        if alias is None:
            alias = "_" + module.replace(".", "_")
            while alias in self.aliases.values():
                alias += "_"
            self.aliases[module] = alias
        return alias

    def ref_typing(self, name: str) -> str:
        return f"{self.alias('typing')}.{name}"

    def ref_abc(self, name: str) -> str:
        return f"{self.alias('collections.abc')}.{name}"

    def ref_capnweb(self, name: str) -> str:
        return f"{self.alias(_CAPNWEB)}.{name}"

    def ref_typed(self, name: str) -> str:
        return f"{self.alias(_TYPED)}.{name}"

    def builtin(self, name: str) -> str:
        """A reference to builtin ``name`` that no generated attribute shadows."""
        return f"{self.alias('builtins')}.{name}" if name in self.shadowed else name

    def cls_ref(self, cls: type) -> str:
        """A reference to class ``cls`` from the stub module."""
        name: str = cls.__name__
        if cls is NoneType:
            return "None"
        if cls.__module__ == "builtins" and getattr(builtins, name, None) is cls:
            return self.builtin(name)
        if getattr(capnweb, name, None) is cls:
            return self.ref_capnweb(name)
        return f"{self.alias(cls.__module__)}.{cls.__qualname__}"

    # -- annotations

    def plain(self, tp: Any, awaited: bool = False) -> str:
        """``tp`` as written (``awaited``: with capabilities as what await gives)."""
        tp = strip(tp)
        if tp is Any:
            return self.ref_typing("Any")
        if tp is None or tp is NoneType:
            return "None"
        if awaited:
            if is_interface(tp):
                return self.stub_names[tp][0]
            if is_callable(tp):
                return self.ref_capnweb("RpcStub")
            chunk = stream_chunk(tp)
            if chunk is not None and (get_origin(tp) or tp) in _ITERATED:
                # a received stream is an iterator (not a generator: it takes no values)
                return f"{self.ref_abc('AsyncIterator')}[{self.plain(chunk, True)}]"
        members = union_args(tp)
        if members is not None:
            return _join(self.plain(m, awaited) for m in members)
        origin = get_origin(tp)
        args = get_args(tp)
        if origin is typing.Literal:
            return f"{self.ref_typing('Literal')}[{', '.join(self.literal(v) for v in args)}]"
        if origin is collections.abc.Callable and args:
            params, ret = args[0], args[1]
            head = "..." if params is Ellipsis else f"[{', '.join(self.plain(a) for a in params)}]"
            return f"{self.ref_abc('Callable')}[{head}, {self.plain(ret)}]"
        if origin is not None:
            if origin is tuple and not args:
                return f"{self.builtin('tuple')}[()]"
            rendered = ", ".join("..." if a is Ellipsis else self.plain(a, awaited) for a in args)
            return f"{self.cls_ref(origin)}[{rendered}]" if args else self.cls_ref(origin)
        if isinstance(tp, type):
            return self.cls_ref(tp)
        return self.ref_typing("Any")

    def literal(self, value: Any) -> str:
        if isinstance(value, enum.Enum):
            return f"{self.cls_ref(type(value))}.{value.name}"
        return repr(value)

    def param(self, tp: Any) -> str:
        """What a stub method accepts for a parameter annotated ``tp``."""
        tp = strip(tp)
        inner = self._param_inner(tp)
        if tp is Any or tp is object or is_capability(tp) or contains(tp, _is_stream):
            return inner
        if union_args(tp) is not None and any(is_capability(m) for m in union_args(tp) or ()):
            return inner
        return _join([inner, f"{self.ref_capnweb('RpcPromise')}[{self.plain(tp, awaited=True)}]"])

    def _param_inner(self, tp: Any) -> str:
        if tp is Any or tp is object:
            return self.plain(tp)
        if is_interface(tp):
            return _join([self.plain(tp), self.stub_names[tp][0]])
        if is_callable(tp):
            return _join([self.plain(tp), self.ref_capnweb("RpcStub")])
        chunk = stream_chunk(tp)
        if chunk is not None:  # any async iterable goes out as a stream
            return f"{self.ref_abc('AsyncIterable')}[{self.plain(chunk)}]"
        members = union_args(tp)
        if members is not None:
            return _join(self._param_inner(strip(m)) for m in members)
        elem = element_type(tp)
        if elem is not None:
            return f"{self.ref_abc('Sequence')}[{self.param(elem)}]"
        kv = mapping_types(tp)
        if kv is not None:
            return f"{self.ref_abc('Mapping')}[{self.plain(kv[0])}, {self.param(kv[1])}]"
        if get_origin(tp) is tuple and get_args(tp):
            return f"{self.builtin('tuple')}[{', '.join(self.param(a) for a in get_args(tp))}]"
        return self.plain(tp)

    def default(self, value: Any) -> str | None:
        """Source for a parameter default, or None when it has no faithful literal."""
        if value is None or isinstance(value, bool | int | str | bytes):
            return repr(value)
        if isinstance(value, float) and math.isfinite(value):
            return repr(value)
        if isinstance(value, enum.Enum):
            return self.literal(value)
        if isinstance(value, tuple):
            items = [self.default(v) for v in value]
            if all(i is not None for i in items):
                inner = ", ".join(typing.cast(list[str], items))
                return f"({inner},)" if len(items) == 1 else f"({inner})"
        return None

    # -- promise classes

    def promise(self, tp: Any) -> tuple[str, str]:
        """(type, runtime class) of the promise for a result annotated ``tp``."""
        tp = strip(tp)
        if is_interface(tp):
            name = self.stub_names[tp][1]
            return name, name
        if is_callable(tp) or is_stub_class(tp):
            awaited = (
                self.plain(tp, awaited=True) if is_stub_class(tp) else self.ref_capnweb("RpcStub")
            )
            return f"{self.ref_capnweb('RpcPromise')}[{awaited}]", self.ref_capnweb("RpcPromise")
        if not (is_data_class(tp) or element_type(tp) is not None or self._converts(tp)):
            # (awaited: a stream declared as an AsyncGenerator arrives as an AsyncIterator)
            return f"{self.ref_typed('TypedPromise')}[{self.plain(tp, awaited=True)}]", (
                self.ref_typed("TypedPromise")
            )
        key = _type_key(tp)
        known = self.promise_names.get(key)
        if known is not None:
            return known, known
        name = self.promise_names[key] = self._claim(f"{_slug(tp)}Promise")
        self.promises[key] = self._promise_class(name, tp)
        return name, name

    def _converts(self, tp: Any) -> bool:
        """Whether an awaited value must be converted: data types, capabilities, tuples (a
        stream's chunks are converted as they are read)."""
        return contains(tp, lambda t: is_data_class(t) or is_interface(t) or _is_tuple(t))

    def _promise_class(self, name: str, tp: Any) -> PromiseClass:
        awaited = self.plain(tp, awaited=True)
        elem = element_type(tp)
        if elem is not None:
            elem_type, elem_runtime = self.promise(elem)
            cls = PromiseClass(
                name=name,
                bases=f"{self.ref_typed('TypedListPromise')}[{awaited}, {elem_type}]",
                result_type=awaited,
                element_type=elem_runtime,
                doc=f"A pending ``{_short(tp)}``: await it, or ``map()`` over it.",
            )
            if "." not in elem_runtime:  # a generated class: define it first
                cls.depends.append(elem_runtime)
            return cls
        cls = PromiseClass(
            name=name,
            bases=f"{self.ref_typed('TypedPromise')}[{awaited}]",
            result_type=awaited,
            element_type=None,
            doc=f"A pending ``{_short(tp)}``.",
        )
        if stream_chunk(tp) is not None:
            cls.doc = (
                f"A pending stream ``{_short(tp)}``: await it, then ``async for`` over it.\n\n"
                "Its chunks are converted as they are read."
            )
        if is_data_class(tp):
            own = data_doc(tp)
            cls.doc = f"A pending ``{_short(tp)}``: await it, or read its fields pipelined."
            if own:
                cls.doc += "\n\n" + own
            model = is_model_class(tp)
            for f in data_fields(tp):
                if not is_identifier(f.name) or f.name in RESERVED:
                    cls.skipped.append(_skipped(f.wire_name))
                    continue
                if model and _foreign(f.annotation):
                    ftype, fruntime = self.adapted_promise(f.annotation)
                else:
                    ftype, fruntime = self.promise(f.annotation)
                cls.fields.append(
                    Method(f.name, f.wire_name, "property", [], [], ftype, fruntime, None)
                )
        return cls

    def adapted_promise(self, tp: Any) -> tuple[str, str]:
        """A promise class for a model field the wire carries in pydantic's JSON form (a UUID
        as a string...): awaiting it validates the value back with a ``pydantic.TypeAdapter``."""
        key = ("pydantic", _type_key(tp))
        known = self.promise_names.get(key)
        if known is not None:
            return known, known
        name = self.promise_names[key] = self._claim(f"{_slug(tp)}Promise")
        awaited = self.plain(tp)
        self.promises[key] = PromiseClass(
            name=name,
            bases=f"{self.ref_typed('TypedPromise')}[{awaited}]",
            result_type=f"{self.alias('pydantic')}.TypeAdapter({awaited})",
            element_type=None,
            doc=f"A pending ``{_short(tp)}`` (validated by pydantic on arrival).",
        )
        return name, name

    # -- interfaces

    def stub_class(self, iface: Interface) -> StubClass:
        stub, promise = self.stub_names[iface.cls]
        methods: list[Method] = []
        skipped: list[str] = []
        for member in iface.members.values():
            if not is_identifier(member.name) or member.name in RESERVED:
                skipped.append(_skipped(member.wire_name))
                continue
            methods.append(self.method(member))
        return StubClass(stub, promise, iface.doc, methods, skipped, iface.ref)

    def method(self, member: Member) -> Method:
        returns, runtime = self.promise(member.returns)
        params: list[str] = []
        args: list[str] = []
        for p in member.params:
            annotation = self.param(p.annotation)
            if p.required:
                params.append(f"{p.name}: {annotation}")
            else:
                default = self.default(p.default)
                if default is None:
                    annotation = _join([annotation, self.ref_capnweb("UndefinedType")])
                    default = self.ref_capnweb("undefined")
                params.append(f"{p.name}: {annotation} = {default}")
            args.append(p.name)
        if member.variadic:
            params.append(f"*args: {self.ref_typing('Any')}")
            args.append("*args")
        return Method(
            member.name, member.wire_name, member.kind, params, args, returns, runtime, member.doc
        )

    # -- imports

    def imports(self) -> list[list[str]]:
        """``import module as alias`` lines: standard library first, then the others."""
        stdlib: list[str] = []
        other: list[str] = []
        for module, alias in sorted(self.aliases.items()):
            top = module.split(".")[0]
            line = f"import {module} as {alias}"
            (stdlib if top in sys.stdlib_module_names else other).append(line)
        return [block for block in (stdlib, other) if block]


def _skipped(name: str) -> str:
    """The comment line for a member that gets no attribute."""
    why = "used locally by stubs and promises" if name in RESERVED else "not an identifier"
    return f"no attribute for {name!r} ({why}): use self[{name!r}]"


def _join(parts: Any) -> str:
    """``A | B`` without repeats, in first-seen order."""
    seen: list[str] = []
    for part in parts:
        for piece in _split_union(part):
            if piece not in seen:
                seen.append(piece)
    if "None" in seen:  # keep None last, as people write it
        seen.remove("None")
        seen.append("None")
    return " | ".join(seen)


def _split_union(text: str) -> list[str]:
    """Top-level ``|`` members of a rendered type."""
    out, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        elif ch == "|" and depth == 0:
            out.append(text[start:i].strip())
            start = i + 1
    out.append(text[start:].strip())
    return out


# Types the wire carries as they are (besides data types and capabilities): a model field of
# any other type (UUID, Decimal, Enum, date, set...) is sent in pydantic's JSON form.
_WIRE_TYPES = (
    bool,
    int,
    float,
    str,
    bytes,
    bytearray,
    datetime,
    list,
    tuple,
    dict,
    NoneType,
    capnweb.BigInt,
    capnweb.URL,
    capnweb.Headers,
    capnweb.TypedArray,
    capnweb.Blob,
    capnweb.Request,
    capnweb.Response,
    capnweb.UndefinedType,
    capnweb.RpcTarget,
    capnweb.RpcStub,
    BaseException,
)
_SET_ORIGINS = (set, frozenset, collections.abc.Set, collections.abc.MutableSet)


def _foreign(tp: Any) -> bool:
    """Whether a model field annotated ``tp`` arrives in a form only pydantic turns back into
    ``tp`` (no capability in it: pydantic could not build those)."""

    def foreign(t: Any) -> bool:
        if get_origin(t) in _SET_ORIGINS or t in (set, frozenset):
            return True
        if not isinstance(t, type) or get_origin(t) is not None or t is object:
            return False
        if issubclass(t, enum.Enum):
            return True
        return not (issubclass(t, _WIRE_TYPES) or is_data_class(t) or is_stub_class(t))

    return contains(tp, foreign) and not contains(tp, is_capability)


_ITERATED = (collections.abc.AsyncIterable, collections.abc.AsyncGenerator)
"""Stream results declared so are awaited as ``AsyncIterator[T]`` (which a stream is)."""


def _is_stream(tp: Any) -> bool:
    """Whether ``tp`` is a readable or writable stream type (no promise of one is accepted)."""
    return stream_chunk(tp) is not None or writable_chunk(tp) is not None


def _is_tuple(tp: Any) -> bool:
    return tp is tuple or get_origin(tp) is tuple


def _type_key(tp: Any) -> Any:
    try:
        hash(tp)
        return tp
    except TypeError:
        return repr(tp)


def _short(tp: Any) -> str:
    """A readable spelling of ``tp`` for docstrings."""
    tp = strip(tp)
    if tp is NoneType:
        return "None"
    if isinstance(tp, type) and get_origin(tp) is None:
        return tp.__qualname__
    text = repr(tp)
    for prefix in ("typing.", "collections.abc."):
        text = text.replace(prefix, "")
    return _unqualify(text)


def _unqualify(text: str) -> str:
    """``a.b.Profile | None`` -> ``Profile | None``."""
    out: list[str] = []
    token = ""
    for ch in text + " ":
        if ch.isalnum() or ch in "._":
            token += ch
            continue
        if token:
            out.append(token.rsplit(".", 1)[-1])
            token = ""
        out.append(ch)
    return "".join(out).strip()


def _slug(tp: Any) -> str:
    """A class-name fragment for ``tp`` (``list[Profile]`` -> ``ProfileList``)."""
    tp = strip(tp)
    if tp is Any:
        return "Any"
    if tp is None or tp is NoneType:
        return "None"
    inner = optional_of(tp)
    if inner is not None:
        return f"Optional{_slug(inner)}"
    members = union_args(tp)
    if members is not None:
        return "Or".join(_slug(m) for m in members)
    chunk = stream_chunk(tp)
    if chunk is not None:
        return f"{_slug(chunk)}Stream"
    elem = element_type(tp)
    if elem is not None:
        return f"{_slug(elem)}List"
    kv = mapping_types(tp)
    if kv is not None:
        return f"{_slug(kv[1])}Dict"
    origin = get_origin(tp)
    if origin is tuple:
        return "".join(_slug(a) for a in get_args(tp)) + "Tuple"
    if origin is typing.Literal:
        return "Literal"
    if is_callable(tp):
        return "Callable"
    if isinstance(tp, type):
        name = tp.__qualname__.replace(".", "")
        return name[:1].upper() + name[1:]
    return "Value"


def _order(classes: list[PromiseClass]) -> list[PromiseClass]:
    """Promise classes sorted by name, each after the classes its body refers to."""
    by_name = {c.name: c for c in classes}
    out: list[PromiseClass] = []
    done: set[str] = set()

    def visit(c: PromiseClass) -> None:
        if c.name in done:
            return
        done.add(c.name)
        for dep in sorted(c.depends):
            if dep in by_name:
                visit(by_name[dep])
        out.append(c)

    for c in sorted(classes, key=lambda c: c.name):
        visit(c)
    return out


def python_context(unit: Unit) -> dict[str, Any]:
    """Everything the Python template needs for ``unit``."""
    r = _Renderer(unit)
    stub_base = r.ref_typed("TypedStub")
    property_ = r.builtin("property")
    stubs = [r.stub_class(iface) for iface in unit.interfaces]
    iface_promises = [
        PromiseClass(
            name=s.promise,
            bases=f"{r.ref_typed('TypedPromise')}[{s.name}], {s.name}",
            result_type=s.name,
            element_type=None,
            doc=(
                f"A pending ``{s.name}``: await it for the stub, or call its methods pipelined."
                + (f"\n\n{s.doc}" if s.doc else "")
            ),
        )
        for s in stubs
    ]
    promises = _order(iface_promises + list(r.promises.values()))
    names = sorted([s.name for s in stubs] + [p.name for p in promises])
    return {
        "refs": unit.refs,
        "module": unit.module,
        "interfaces": [i.ref for i in unit.interfaces],
        "imports": r.imports(),  # last: every alias is known once everything is rendered
        "stubs": sorted(stubs, key=lambda s: s.name),
        "promises": promises,
        "names": names,
        "stub_base": stub_base,
        "property": property_,
    }
