"""Typed client stubs for capnweb interfaces (``python -m capnweb_codegen``).

Input: ``module:Interface`` names (or modules: every interface they define), i.e. Protocols
whose remote members carry ``@rpc_method``/``@rpc_property``. They are read only through
:func:`capnweb.interface.describe`, the description the server's dispatcher uses too.

Output, one file per module: Python stubs (``--lang py``, formatted with ``ruff format
--isolated``) or TypeScript declarations (``--lang ts``) for ``RpcStub<Api>`` clients. The
output depends on nothing but the interfaces and this package: no timestamps, no paths, sorted
names, so regenerating gives byte-identical files and ``--check`` can tell a stale one.

From TypeScript (``--from-ts``, :func:`from_typescript`): the TypeScript compiler reads
interfaces and ``RpcTarget`` classes; the output is a Python Protocol module and its stubs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import jinja2

from ._model import CodegenError, Unit, resolve
from ._python import python_context
from ._typescript import typescript_context

__all__ = ["CodegenError", "Lang", "from_typescript", "generate", "ruff_executable"]

Lang = Literal["py", "ts"]

DEFAULT_LINE_LENGTH = 100
"""Line length given to ``ruff format`` for Python stubs."""

_TEMPLATES = {"py": ("python.py.j2", ".py"), "ts": ("typescript.d.ts.j2", ".d.ts")}


def generate(
    targets: list[str], lang: Lang = "py", *, line_length: int = DEFAULT_LINE_LENGTH
) -> dict[str, str]:
    """The generated files for ``targets``: file name -> content, sorted by name."""
    units = resolve(targets)
    template_name, suffix = _TEMPLATES[lang]
    template = _environment().get_template(template_name)
    out: dict[str, str] = {}
    for unit in units:
        text = template.render(**_context(unit, lang))
        if lang == "py":
            text = ruff_format(text, line_length)
        out[unit.file_stem + suffix] = text
    return dict(sorted(out.items()))


def from_typescript(
    files: Sequence[str | Path],
    interfaces: Sequence[str] = (),
    *,
    module: str | None = None,
    line_length: int = DEFAULT_LINE_LENGTH,
) -> dict[str, str]:
    """Python interfaces and typed stubs for TypeScript ``interfaces`` (names of interfaces,
    ``RpcTarget`` classes or type aliases in ``files``; none: every exported ``RpcTarget``
    class and interface extending ``RpcTarget``), read by the TypeScript compiler.

    ``module`` is the dotted name the Protocol module is imported as (default: the first
    file's name, ``api.d.ts`` -> ``api``); the stubs import it. Returns ``{"<last part>.py":
    Protocol module, "<last part>_stubs.py": stubs}``.
    """
    from ._from_ts import describe_typescript, load_module, module_stem, protocol_source

    if module is None:
        module = module_stem(files[0]) if files else "api"
    if not all(part.isidentifier() for part in module.split(".")):
        raise CodegenError(f"not a module name: {module!r}")
    stem = module.rpartition(".")[2]
    description = describe_typescript(files, interfaces)
    source = protocol_source(description, f"{stem}_stubs", line_length)
    previous = sys.modules.get(module)
    try:
        load_module(module, source)
        targets = [f"{module}:{name}" for name in _roots(description)]
        (stubs,) = generate(targets, "py", line_length=line_length).values()
    finally:
        if previous is None:
            sys.modules.pop(module, None)
        else:
            sys.modules[module] = previous
    return {f"{stem}.py": source, f"{stem}_stubs.py": stubs}


def _roots(description: dict[str, Any]) -> list[str]:
    """The Protocol names of the requested interfaces (as ``__all__`` spells them)."""
    from ._from_ts import python_names

    names = python_names(description)
    return sorted(names[n] for n in description["roots"])


def _context(unit: Unit, lang: Lang) -> dict[str, Any]:
    return python_context(unit) if lang == "py" else typescript_context(unit)


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("capnweb_codegen", "templates"),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["pydoc"] = _pydoc
    env.filters["pystr"] = _pystr
    env.filters["jsdoc"] = _jsdoc
    return env


def _pystr(text: str) -> str:
    """A Python string literal for ``text``."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _pydoc(text: str, indent: int) -> str:
    """A docstring literal for ``text``, continuation lines indented by ``indent``."""
    body = text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    if body.endswith('"'):
        body = body[:-1] + '\\"'
    lines = body.split("\n")
    if len(lines) == 1:
        return f'"""{body}"""'
    pad = " " * indent
    rest = "\n".join(pad + line if line else "" for line in lines[1:])
    return f'"""{lines[0]}\n{rest}\n{pad}"""'


def _jsdoc(text: str, indent: int) -> str:
    """A ``/** ... */`` comment for ``text`` (reST double backquotes become single), indented."""
    pad = " " * indent
    lines = text.replace("``", "`").replace("*/", "*\\/").split("\n")
    if len(lines) == 1:
        return f"/** {lines[0]} */"
    body = "\n".join(f"{pad} *{' ' + line if line else ''}" for line in lines)
    return f"/**\n{body}\n{pad} */"


def ruff_executable() -> str:
    """The ruff executable next to this Python, else the one on PATH."""
    candidate = Path(sys.executable).parent / ("ruff.exe" if os.name == "nt" else "ruff")
    if candidate.is_file():
        return str(candidate)
    found = shutil.which("ruff")
    if found is None:
        raise CodegenError(
            "ruff is needed to format Python stubs: pip install 'capnweb[codegen]' (or ruff)"
        )
    return found


def ruff_format(source: str, line_length: int) -> str:
    """``source`` formatted by ``ruff format --isolated`` (no configuration file applies)."""
    command = [
        ruff_executable(),
        "format",
        "--isolated",
        "--line-length",
        str(line_length),
        "--stdin-filename",
        "stub.py",
        "-",
    ]
    proc = subprocess.run(command, input=source, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise CodegenError(f"ruff format failed on a generated stub:\n{proc.stderr}\n{source}")
    return proc.stdout
