"""Python interfaces from TypeScript (``python -m capnweb_codegen --from-ts``).

The TypeScript compiler itself reads the sources: ``ts/describe.mjs`` runs under Node with the
``typescript`` package pinned in ``ts/package.json`` (installed there by ``npm ci`` on first
use) and prints a JSON description of the requested interfaces and every type they reach. This
module turns that description into a Python module of ``Protocol`` interfaces and
``TypedDict`` data types (the form :mod:`capnweb.interface` reads), then into typed stubs with
the generator used for Python interfaces. Wire names stay exactly the TypeScript ones.

Type mapping (also in docs/typed-stubs.md): ``number`` is ``float`` (which also accepts
``int``), ``bigint`` ``capnweb.BigInt``, ``undefined`` ``capnweb.UndefinedType`` (a ``void``
result is ``None``), optional members ``NotRequired``/defaults of ``capnweb.undefined``,
``ReadableStream<T>`` ``AsyncIterator[T]``, ``WritableStream<T>`` ``capnweb.WritableStream[T]``;
whatever has no Python counterpart is ``Any``, with a comment saying why.
"""

from __future__ import annotations

import builtins
import json
import keyword
import re
import shutil
import subprocess
import sys
import textwrap
import types
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from capnweb.interface import camel_case

from ._model import CodegenError
from ._python import RESERVED

__all__ = [
    "TS_DIR",
    "describe_typescript",
    "ensure_typescript",
    "load_module",
    "module_stem",
    "node_executable",
    "protocol_source",
    "python_names",
]

TS_DIR = Path(__file__).resolve().parent / "ts"
"""The Node package holding ``describe.mjs`` and the pinned TypeScript compiler."""

NODE_MIN_MAJOR = 18
DESCRIBE_TIMEOUT_S = 300.0
NPM_CI_TIMEOUT_S = 600.0

_TS_SUFFIXES = (".d.mts", ".d.cts", ".d.ts", ".mts", ".cts", ".tsx", ".ts")

# Names the Protocol module defines or imports at module level: generated names avoid them.
_MODULE_NAMES = frozenset(
    [
        "Any",
        "AsyncIterator",
        "Awaitable",
        "Callable",
        "Literal",
        "NotRequired",
        "Protocol",
        "TypeAlias",
        "TypedDict",
        "annotations",
        "builtins",
        "camel_case",
        "capnweb",
        "datetime",
        "rpc_interface",
        "rpc_method",
        "rpc_property",
    ]
)
# Builtins written in annotations; written as ``builtins.X`` when a member or field shadows them.
_BUILTINS = frozenset(
    ["Exception", "bool", "bytes", "dict", "float", "list", "object", "property", "str", "tuple"]
)

_BUILTIN_TYPES = {
    "Date": "datetime",
    "Uint8Array": "bytes",
    "TypedArray": "capnweb.TypedArray",
    "URL": "capnweb.URL",
    "Headers": "capnweb.Headers",
    "Request": "capnweb.Request",
    "Response": "capnweb.Response",
    "Blob": "capnweb.Blob",
    "Error": "Exception",
}

_COMMENT_WIDTH = 96


# --------------------------------------------------------------------------------------------
# Running the TypeScript compiler


def node_executable() -> str:
    """The ``node`` on PATH (version 18 or later), or a CodegenError saying what to install."""
    node = shutil.which("node")
    if node is None:
        raise CodegenError(
            "--from-ts reads TypeScript with the TypeScript compiler, which runs on Node.js, "
            "and `node` is not on PATH: install Node.js 20 or later (https://nodejs.org or "
            "your package manager) and try again"
        )
    try:
        proc = subprocess.run(
            [node, "--version"], capture_output=True, text=True, timeout=30, check=True
        )
        major = int(proc.stdout.strip().lstrip("v").split(".")[0])
    except (OSError, subprocess.SubprocessError, ValueError) as e:
        raise CodegenError(f"cannot run {node} --version: {e}") from e
    if major < NODE_MIN_MAJOR:
        raise CodegenError(
            f"--from-ts needs Node.js {NODE_MIN_MAJOR} or later; {node} is "
            f"{proc.stdout.strip()}: install Node.js 20 or later"
        )
    return node


def ensure_typescript() -> None:
    """Install the pinned ``typescript`` (and capnweb's declarations) into :data:`TS_DIR` with
    ``npm ci`` unless they are there already."""
    modules = TS_DIR / "node_modules"
    if all((modules / p / "package.json").is_file() for p in ("typescript", "capnweb")):
        return
    npm = shutil.which("npm")
    fix = f"run `npm ci` in {TS_DIR}"
    if npm is None:
        raise CodegenError(
            f"the TypeScript compiler is not installed and `npm` is not on PATH: {fix}"
        )
    print(
        f"capnweb_codegen: installing the TypeScript compiler (npm ci in {TS_DIR})", file=sys.stderr
    )
    try:
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=TS_DIR,
            capture_output=True,
            text=True,
            timeout=NPM_CI_TIMEOUT_S,
            check=True,
        )
    except subprocess.CalledProcessError as e:
        raise CodegenError(f"npm ci failed in {TS_DIR} ({fix} by hand):\n{e.stderr}") from e
    except (OSError, subprocess.TimeoutExpired) as e:
        raise CodegenError(f"npm ci failed in {TS_DIR} ({fix} by hand): {e}") from e


def describe_typescript(files: Sequence[str | Path], interfaces: Sequence[str]) -> dict[str, Any]:
    """The JSON description ``describe.mjs`` prints for ``interfaces`` of ``files``."""
    if not files:
        raise CodegenError("--from-ts needs at least one .ts or .d.ts file")
    paths = [Path(f).resolve() for f in files]
    for path in paths:
        if not path.is_file():
            raise CodegenError(f"no such TypeScript file: {path}")
    node = node_executable()
    ensure_typescript()
    request = json.dumps({"files": [str(p) for p in paths], "interfaces": list(interfaces)})
    try:
        proc = subprocess.run(
            [node, str(TS_DIR / "describe.mjs")],
            input=request,
            capture_output=True,
            text=True,
            timeout=DESCRIBE_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise CodegenError(f"the TypeScript compiler did not finish: {e}") from e
    if proc.returncode != 0:
        raise CodegenError(proc.stderr.strip() or f"describe.mjs exited {proc.returncode}")
    if proc.stderr:  # warnings (syntax errors in the sources)
        sys.stderr.write(proc.stderr)
    try:
        description: dict[str, Any] = json.loads(proc.stdout)
    except json.JSONDecodeError as e:
        raise CodegenError(f"describe.mjs printed no JSON: {e}") from e
    return description


def module_stem(file: str | Path) -> str:
    """A module name for TypeScript file ``file`` (``my-api.d.ts`` -> ``my_api``)."""
    name = Path(file).name
    for suffix in _TS_SUFFIXES:
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return _identifier(name, "ts_")


# --------------------------------------------------------------------------------------------
# Names


def _identifier(name: str, prefix: str) -> str:
    """``name`` made a Python identifier (not a keyword)."""
    text = re.sub(r"\W+", "_", name).strip("_")
    if not text or not text.isidentifier():
        text = prefix + text
    if not text.isidentifier():
        text = prefix.rstrip("_") or "x"
    if keyword.iskeyword(text):
        text += "_"
    return text


def snake_case(name: str) -> str:
    """``getHTTPStatus`` -> ``get_http_status`` (an identifier, lowercase)."""
    text = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", text).lower()
    return _identifier(text, "m_")


def _claim(name: str, taken: set[str]) -> str:
    """``name``, else ``name_``, ``name_2``... (the first not in ``taken``, which gets it)."""
    candidate, n = name, 1
    while candidate in taken:
        candidate = f"{name}_" if n == 1 else f"{name}_{n}"
        n += 1
    taken.add(candidate)
    return candidate


def _doc(text: str | None) -> str | None:
    """A TypeScript doc comment as a docstring: Markdown code spans become reST literals."""
    if not text:
        return None
    return re.sub(r"(?<!`)`([^`\n]+)`(?!`)", r"``\1``", text.strip())


def _comments(text: str) -> list[str]:
    """Comment lines (without ``#``) for ``text``, wrapped."""
    out: list[str] = []
    for line in text.splitlines() or [""]:
        out.extend(textwrap.wrap(line, _COMMENT_WIDTH, break_long_words=False) or [""])
    return out


# --------------------------------------------------------------------------------------------
# The Protocol module


@dataclass
class _Member:
    kind: str
    name: str
    wire: str | None
    params: list[str]
    returns: str
    doc: str | None
    comments: list[str]


@dataclass
class _Protocol:
    name: str
    doc: str | None
    comments: list[str]
    members: list[_Member]
    property: str


@dataclass
class _Field:
    key: str
    annotation: str
    comments: list[str]


@dataclass
class _Data:
    name: str
    doc: str | None
    comments: list[str]
    fields: list[_Field]
    functional: bool
    convertible: bool


@dataclass
class _Alias:
    name: str
    value: str
    doc: str | None
    comments: list[str]


@dataclass
class _Renderer:
    """Turns describe.mjs's JSON into the Protocol module's parts."""

    description: dict[str, Any]
    decls: dict[str, dict[str, Any]] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)
    used: set[str] = field(default_factory=set)
    shadowed: set[str] = field(default_factory=set)
    """Builtins that names in the class being rendered shadow (written ``builtins.X``)."""
    notes: list[str] = field(default_factory=list)
    alias_stack: list[str] = field(default_factory=list)
    aliases_done: dict[str, _Alias] = field(default_factory=dict)

    def __post_init__(self) -> None:
        taken = set(_MODULE_NAMES) | set(dir(builtins))
        for decl in self.description["declarations"]:
            self.decls[decl["name"]] = decl
            self.names[decl["name"]] = _claim(_identifier(decl["name"], "T"), taken)

    # -- names used in annotations

    def ref(self, name: str) -> str:
        """``name`` (an import or a builtin), noting the import it needs."""
        if name in _BUILTINS:
            if name in self.shadowed:
                self.used.add("builtins")
                return f"builtins.{name}"
            return name
        self.used.add(name.split(".")[0])
        return name

    # -- types

    def type(self, t: dict[str, Any], *, result: bool = False, in_alias: bool = False) -> str:
        """The annotation for JSON type ``t`` (``result``: a return value, where a lone
        ``void``/``undefined`` is ``None``; ``in_alias``: in the value of a type alias, which
        runs at import, so the aliases it uses are written before it)."""
        if result and self._is_void(t):
            return "None"
        parts = self._union_parts(t, in_alias)
        return " | ".join(parts)

    def _is_void(self, t: dict[str, Any]) -> bool:
        if t["k"] in ("void", "undefined"):
            return True
        return t["k"] == "union" and all(self._is_void(m) for m in t["types"])

    def _union_parts(self, t: dict[str, Any], in_alias: bool) -> list[str]:
        members = list(self._flatten(t))
        literals = [m["value"] for m in members if m["k"] == "literal"]
        out: list[str] = []
        tail: list[str] = []
        for m in members:
            if m["k"] == "literal":
                if literals:
                    # by type and value: True == 1 in Python
                    unique = dict.fromkeys((type(v), v) for v in literals)
                    values = ", ".join(_literal(v) for _, v in unique)
                    out.append(f"{self.ref('Literal')}[{values}]")
                    literals = []
                continue
            text = self._single(m, in_alias)
            if text in ("None", self.ref("capnweb.UndefinedType")):
                if text not in tail:
                    tail.append(text)
            elif text not in out:
                out.append(text)
        tail.sort(key=lambda s: s == "None")  # None last, as people write it
        return out + tail

    def _flatten(self, t: dict[str, Any]) -> Iterator[dict[str, Any]]:
        if t["k"] == "union":
            for m in t["types"]:
                yield from self._flatten(m)
        else:
            yield t

    def _single(self, t: dict[str, Any], in_alias: bool) -> str:
        k = t["k"]
        if t.get("note"):
            self.notes.append(t["note"])
        if k == "any":
            return self.ref("Any")
        if k == "unknown":
            return self.ref("object")
        if k in ("str", "float", "bool"):
            return self.ref(k)
        if k == "bigint":
            return self.ref("capnweb.BigInt")
        if k == "null":
            return "None"
        if k in ("undefined", "void"):
            return self.ref("capnweb.UndefinedType")
        if k == "literal":
            return f"{self.ref('Literal')}[{_literal(t['value'])}]"
        if k == "list":
            return f"{self.ref('list')}[{self.type(t['item'], in_alias=in_alias)}]"
        if k == "dict":
            value = self.type(t["value"], in_alias=in_alias)
            return f"{self.ref('dict')}[{self.ref('str')}, {value}]"
        if k == "tuple":
            return self._tuple(t, in_alias)
        if k == "builtin":
            return self.ref(_BUILTIN_TYPES[t["name"]])
        if k == "stub":
            return self.ref("capnweb.RpcStub")
        if k == "readable":  # any async iterable is sent as one; a received one iterates
            return f"{self.ref('AsyncIterator')}[{self.type(t['item'], in_alias=in_alias)}]"
        if k == "writable":
            item = self.type(t["item"], in_alias=in_alias)
            return f"{self.ref('capnweb.WritableStream')}[{item}]"
        if k == "function":
            returns = self.type(t["returns"], result=True, in_alias=in_alias)
            awaitable = f"{self.ref('Awaitable')}[{returns}]"
            if t["rest"]:
                return f"{self.ref('Callable')}[..., {awaitable}]"
            params = ", ".join(self.type(p, in_alias=in_alias) for p in t["params"])
            return f"{self.ref('Callable')}[[{params}], {awaitable}]"
        if k == "ref":
            return self._ref(t["name"], in_alias)
        self.notes.append(f"unknown type description {k!r}")
        return self.ref("Any")

    def _tuple(self, t: dict[str, Any], in_alias: bool) -> str:
        items = t["items"]
        tuple_ = self.ref("tuple")
        if any(i["kind"] == "rest" for i in items):
            self.notes.append(f"{t['ts']}: a tuple of any length is a list here")
            inner = {"k": "union", "types": [i["type"] for i in items]}
            return f"{self.ref('list')}[{self.type(inner, in_alias=in_alias)}]"
        rendered = [self.type(i["type"], in_alias=in_alias) for i in items]
        required = sum(1 for i in items if i["kind"] == "required")
        shapes = []
        for n in range(required, len(items) + 1):
            shapes.append(f"{tuple_}[{', '.join(rendered[:n])}]" if n else f"{tuple_}[()]")
        return " | ".join(shapes)

    def _ref(self, name: str, in_alias: bool) -> str:
        decl = self.decls.get(name)
        py = self.names.get(name)
        if decl is None or py is None:
            self.notes.append(f"{name}: not described")
            return self.ref("Any")
        if decl["kind"] != "alias" or not in_alias:
            return py
        # An alias's value is evaluated when the module runs: aliases it uses come first.
        if name in self.alias_stack:
            self.notes.append(f"{name} refers to itself: those references are Any here")
            return self.ref("Any")
        self.alias(name)
        return py

    # -- declarations

    def alias(self, name: str) -> _Alias:
        """The alias declaration ``name`` (rendered once, after the aliases it uses)."""
        done = self.aliases_done.get(name)
        if done is not None:
            return done
        decl = self.decls[name]
        self.alias_stack.append(name)
        saved, self.notes = self.notes, []
        value = self.type(decl["type"], in_alias=True)
        comments = [c for n in _unique(self.notes) for c in _comments(n)]
        self.notes = saved
        self.alias_stack.pop()
        self.used.add("TypeAlias")
        out = _Alias(self.names[name], value, _doc(decl.get("doc")), comments)
        self.aliases_done[name] = out
        return out

    def data(self, decl: dict[str, Any]) -> _Data:
        keys = [f["name"] for f in decl["fields"]]
        module_names = _MODULE_NAMES | set(self.names.values())
        convertible = all(k.isidentifier() and not keyword.iskeyword(k) for k in keys)
        functional = not convertible or any(k in module_names for k in keys)
        functional |= any(f["optional"] for f in decl["fields"])
        # Field names are names in a class body, but not in the functional form.
        self.shadowed = set() if functional else set(_BUILTINS.intersection(keys))
        fields: list[_Field] = []
        for f in decl["fields"]:
            key: str = f["name"]
            self.notes = []
            annotation = self.type(f["type"])
            if f["optional"]:
                # Under `from __future__ import annotations`, Python 3.11 reads a class-syntax
                # `NotRequired[...]` as required: optional keys need the functional form.
                annotation = f"{self.ref('NotRequired')}[{annotation!r}]"
            comments = list(_comments(f["doc"])) if f.get("doc") else []
            comments += [c for n in _unique(self.notes) for c in _comments(f"{key}: {n}")]
            fields.append(_Field(key, annotation, comments))
        self.notes = []
        self.shadowed = set()
        if functional:  # values are evaluated at once: written as strings, read later
            for f in fields:
                if not f.annotation.startswith(self.ref("NotRequired") + "["):
                    f.annotation = repr(f.annotation)
        comments = [c for n in decl.get("notes", []) for c in _comments(n)]
        self.used.add("TypedDict")
        name = self.names[decl["name"]]
        return _Data(name, _doc(decl.get("doc")), comments, fields, functional, convertible)

    def member_names(self, decl: dict[str, Any]) -> list[tuple[dict[str, Any], str]]:
        """The remote members of capability ``decl`` with their Python names: snake_case,
        clear of the stubs' own methods (``map``...) and of the module's names."""
        taken = set(RESERVED) | _MODULE_NAMES | set(self.names.values())
        return [
            (m, _claim(snake_case(m["name"]), taken))
            for m in decl["members"]
            if m["kind"] != "skipped"
        ]

    def protocol(self, decl: dict[str, Any]) -> _Protocol:
        self.used |= {"Protocol", "rpc_interface", "camel_case"}
        named = self.member_names(decl)
        self.shadowed = set(_BUILTINS.intersection(name for _, name in named))
        comments = [
            c
            for m in decl["members"]
            if m["kind"] == "skipped"
            for c in _comments(f"{m['name']!r}: {m['why']}")
        ]
        members = [
            self.member(m, name, None if camel_case(name) == m["name"] else m["name"])
            for m, name in named
        ]
        name = self.names[decl["name"]]
        shown = decl["ts"] if len(decl["ts"]) <= 60 and "\n" not in decl["ts"] else name
        doc = _doc(decl.get("doc")) or f"The TypeScript {decl['source']} ``{shown}``."
        out = _Protocol(name, doc, comments, members, self.ref("property"))
        self.shadowed = set()
        return out

    def member(self, m: dict[str, Any], name: str, wire: str | None) -> _Member:
        self.notes = []
        comments = [c for n in m.get("notes", []) for c in _comments(n)]
        doc = _doc(m.get("doc"))
        if m["kind"] == "property":
            self.used.add("rpc_property")
            returns = self.type(m["type"])
            comments += [c for n in _unique(self.notes) for c in _comments(n)]
            return _Member("property", name, wire, [], returns, doc, comments)
        self.used.add("rpc_method")
        params: list[str] = []
        taken = {"self"}
        specs: list[dict[str, Any]] = m["params"]
        # Python needs every parameter after an optional one to be optional too.
        optional_from = len(specs)
        while optional_from > 0 and (
            specs[optional_from - 1]["optional"] or specs[optional_from - 1]["rest"]
        ):
            optional_from -= 1
        for i, p in enumerate(specs):
            pname = _claim(_identifier(p["name"], "arg_"), taken)
            before = len(self.notes)
            annotation = self.type(p["type"])
            self.notes[before:] = [f"{pname}: {n}" for n in self.notes[before:]]
            if p["rest"]:
                params.append(f"*{pname}: {annotation}")
            elif i >= optional_from:
                undefined = self.ref("capnweb.UndefinedType")
                if undefined not in annotation.split(" | "):
                    annotation = f"{annotation} | {undefined}"
                params.append(f"{pname}: {annotation} = {self.ref('capnweb')}.undefined")
            else:
                params.append(f"{pname}: {annotation}")
        before = len(self.notes)
        returns = self.type(m["returns"], result=True)
        self.notes[before:] = [f"result: {n}" for n in self.notes[before:]]
        comments += [c for n in _unique(self.notes) for c in _comments(n)]
        return _Member("method", name, wire, params, returns, doc, comments)


def _unique(notes: list[str]) -> list[str]:
    return list(dict.fromkeys(notes))


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, str):
        return json.dumps(value)
    return str(value)


def _import_lines(used: set[str]) -> list[list[str]]:
    """The import blocks (standard library, then capnweb) for the names ``used``."""
    stdlib: list[str] = []
    if "builtins" in used:
        stdlib.append("import builtins")
    abc = sorted(used & {"AsyncIterator", "Awaitable", "Callable"})
    if abc:
        stdlib.append(f"from collections.abc import {', '.join(abc)}")
    if "datetime" in used:
        stdlib.append("from datetime import datetime")
    typing_names = sorted(
        used & {"Any", "Literal", "NotRequired", "Protocol", "TypeAlias", "TypedDict"}
    )
    if typing_names:
        stdlib.append(f"from typing import {', '.join(typing_names)}")
    other: list[str] = []
    if "capnweb" in used:
        other.append("import capnweb")
    iface = sorted(used & {"camel_case", "rpc_interface", "rpc_method", "rpc_property"})
    if iface:
        other.append(f"from capnweb.interface import {', '.join(iface)}")
    return [block for block in (stdlib, other) if block]


def python_names(description: dict[str, Any]) -> dict[str, str]:
    """The Python name of each declaration of ``description``, by TypeScript name."""
    return dict(_Renderer(description).names)


def protocol_context(description: dict[str, Any]) -> dict[str, Any]:
    """Everything the ``protocol.py.j2`` template needs for ``description``."""
    r = _Renderer(description)
    decls = description["declarations"]
    protocols = [r.protocol(d) for d in decls if d["kind"] == "capability"]
    data = [r.data(d) for d in decls if d["kind"] == "data"]
    for d in sorted((d for d in decls if d["kind"] == "alias"), key=lambda d: r.names[d["name"]]):
        r.alias(d["name"])
    aliases = list(r.aliases_done.values())  # each after the aliases its value uses
    names = [p.name for p in protocols] + [d.name for d in data] + [a.name for a in aliases]
    roots = [r.names[n] for n in description["roots"]]
    return {
        "files": description["files"],
        "roots": roots,
        "imports": _import_lines(r.used),
        "names": sorted(names),
        "protocols": sorted(protocols, key=lambda p: p.name),
        "data": sorted(data, key=lambda d: d.name),
        "aliases": aliases,
    }


def protocol_source(description: dict[str, Any], stubs_module: str, line_length: int) -> str:
    """The Protocol module for ``description``, formatted (``stubs_module``: the name of the
    stubs module written beside it, for the docstring)."""
    from . import _environment, ruff_format

    context = protocol_context(description)
    context["stubs_module"] = stubs_module
    template = _environment().get_template("protocol.py.j2")
    return ruff_format(template.render(**context), line_length)


def load_module(name: str, source: str) -> types.ModuleType:
    """Run ``source`` as module ``name`` and register it in ``sys.modules`` (the caller
    removes it)."""
    module = types.ModuleType(name)
    module.__file__ = f"<{name}>"
    sys.modules[name] = module
    try:
        exec(compile(source, f"<{name}>", "exec"), module.__dict__)
    except Exception as e:
        del sys.modules[name]
        raise CodegenError(f"the generated module {name} does not run: {e}\n{source}") from e
    return module
