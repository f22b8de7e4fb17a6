"""TypeScript declarations: the same interfaces for ``RpcStub<Api>`` clients.

Interfaces become ``interface X extends RpcTarget`` (so capnweb's types treat them as
capabilities and pipeline through them), data types plain ``interface``s, members use their
wire names. Return types are written as values; capnweb's ``RpcStub`` turns them into promises.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import decimal
import enum
import json
import typing
import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, get_args, get_origin

import capnweb
from capnweb.interface import (
    Interface,
    Member,
    is_interface,
    is_model_class,
    stream_chunk,
    union_args,
    writable_chunk,
)

from ._model import (
    NoneType,
    Unit,
    data_doc,
    data_fields,
    element_type,
    is_callable,
    is_stub_class,
    mapping_types,
    strip,
)

__all__ = ["typescript_context"]

# Words a TypeScript parameter cannot be called (Python allows them).
_TS_RESERVED_WORDS = """
break case catch class const continue debugger default delete do else enum export extends false
finally for function if import in instanceof new null return super switch this throw true try
typeof var void while with implements interface let package private protected public static
yield arguments eval await
"""
_TS_RESERVED = frozenset(_TS_RESERVED_WORDS.split())

_SIMPLE: dict[Any, str] = {
    bool: "boolean",
    int: "number",
    float: "number",
    str: "string",
    bytes: "Uint8Array",
    bytearray: "Uint8Array",
    memoryview: "Uint8Array",
    datetime: "Date",
    capnweb.BigInt: "bigint",
    capnweb.URL: "URL",
    capnweb.Headers: "Headers",
    capnweb.Request: "Request",
    capnweb.Response: "Response",
    capnweb.TypedArray: "ArrayBufferView",
    capnweb.Blob: "Blob",
    capnweb.UndefinedType: "undefined",
    # only pydantic models send these, as pydantic's JSON mode writes them
    uuid.UUID: "string",
    decimal.Decimal: "string",
    date: "string",
    time: "string",
    timedelta: "string",
}


@dataclass
class TsMember:
    """One member line of a declared interface."""

    key: str
    kind: str
    params: list[str]
    type: str
    doc: str | None


@dataclass
class TsInterface:
    """One ``export interface``."""

    name: str
    extends: str | None
    doc: str | None
    members: list[TsMember]


def _key(name: str) -> str:
    """A property key: the name itself when it is an identifier, else a string literal."""
    if name.isidentifier() and name.isascii():
        return name
    return json.dumps(name)


class _Renderer:
    def __init__(self, unit: Unit) -> None:
        self.names: dict[type, str] = {}
        taken: set[str] = {"RpcTarget"}
        for cls in [i.cls for i in unit.interfaces] + list(unit.data_types):
            base = cls.__qualname__.replace(".", "")
            name, n = base, 2
            while name in taken:
                name, n = f"{base}{n}", n + 1
            taken.add(name)
            self.names[cls] = name

    def ts(self, tp: Any) -> str:
        tp = strip(tp)
        if tp is Any or tp is object:
            return "unknown"
        if tp is None or tp is NoneType:
            return "null"
        if _is_root_model(tp):  # sent as its root value
            return self.ts(tp.model_fields["root"].annotation)
        if tp in self.names:
            return self.names[tp]
        simple = _SIMPLE.get(tp)
        if simple is not None:
            return simple
        members = union_args(tp)
        if members is not None:
            parts: list[str] = []
            for m in members:
                t = self.ts(m)
                if t not in parts:
                    parts.append(t)
            return " | ".join(parts)
        origin = get_origin(tp)
        args = get_args(tp)
        if origin is typing.Literal:
            return " | ".join(dict.fromkeys(_literal(v) for v in args))
        if is_callable(tp):
            return self.function(tp)
        chunk = stream_chunk(tp)
        if chunk is not None:
            return f"ReadableStream<{self.ts(chunk)}>"
        chunk = writable_chunk(tp)
        if chunk is not None:
            return f"WritableStream<{self.ts(chunk)}>"
        if is_stub_class(tp):
            return "RpcTarget | ((...args: any[]) => unknown)"
        elem = element_type(tp)
        if elem is not None:
            inner = self.ts(elem)
            return f"{inner}[]" if inner.replace("_", "").isalnum() else f"Array<{inner}>"
        kv = mapping_types(tp)
        if kv is not None:
            return f"Record<string, {self.ts(kv[1])}>"
        if origin is tuple:
            return f"[{', '.join(self.ts(a) for a in args)}]"
        if origin in (collections.abc.Awaitable, collections.abc.Coroutine):
            return self.ts(args[-1]) if args else "unknown"
        if isinstance(tp, type) and issubclass(tp, BaseException):
            return "Error"
        if isinstance(tp, type) and issubclass(tp, enum.Enum):
            return " | ".join(dict.fromkeys(_literal(v) for v in tp))
        return "unknown"

    def function(self, tp: Any) -> str:
        args = get_args(tp)
        if not args:
            return "(...args: any[]) => unknown"
        params, ret = args
        if params is Ellipsis:
            head = "...args: any[]"
        else:
            head = ", ".join(f"arg{i}: {self.ts(p)}" for i, p in enumerate(params))
        ret = strip(ret)
        if get_origin(ret) in (collections.abc.Awaitable, collections.abc.Coroutine):
            ret = get_args(ret)[-1]
        value = self.ts(ret)
        result = "void | Promise<void>" if value == "null" else f"{value} | Promise<{value}>"
        return f"({head}) => {result}"

    def interface(self, iface: Interface) -> TsInterface:
        members = [self.member(m) for m in iface.members.values()]
        return TsInterface(self.names[iface.cls], "RpcTarget", iface.doc, members)

    def member(self, m: Member) -> TsMember:
        returns = self.ts(m.returns)
        if m.kind == "property":
            return TsMember(_key(m.wire_name), "property", [], returns, m.doc)
        params = []
        for p in m.params:
            name = p.name + "_" if p.name in _TS_RESERVED else p.name
            params.append(f"{name}{'' if p.required else '?'}: {self.ts(p.annotation)}")
        if m.variadic:
            params.append("...rest: unknown[]")
        return TsMember(_key(m.wire_name), "method", params, returns, m.doc)

    def data(self, cls: type) -> TsInterface:
        # A dataclass or a model always travels with every field (a model's under its aliases);
        # a TypedDict may omit its NotRequired keys.
        always = dataclasses.is_dataclass(cls) or is_model_class(cls)
        members = [
            TsMember(
                _key(f.wire_name) + ("" if f.required or always else "?"),
                "field",
                [],
                self.ts(f.annotation),
                None,
            )
            for f in data_fields(cls)
        ]
        return TsInterface(self.names[cls], None, data_doc(cls), members)


def _literal(value: Any) -> str:
    if isinstance(value, enum.Enum):
        value = value.value
    if value is None:
        return "null"
    return json.dumps(value)


def _is_root_model(tp: Any) -> bool:
    """Whether ``tp`` is a pydantic ``RootModel`` (it has no fields of its own)."""
    return is_model_class(tp) and bool(getattr(tp, "__pydantic_root_model__", False))


def typescript_context(unit: Unit) -> dict[str, Any]:
    """Everything the TypeScript template needs for ``unit``."""
    r = _Renderer(unit)
    declarations = [r.interface(i) for i in unit.interfaces]
    declarations += [r.data(c) for c in unit.data_types if not _is_root_model(c)]
    example = next((r.names[i.cls] for i in unit.interfaces if i.ref in unit.refs), "Api")
    return {
        "refs": unit.refs,
        "file_stem": unit.file_stem,
        "example": example,
        "declarations": sorted(declarations, key=lambda d: d.name),
        "is_interface": is_interface,
    }
