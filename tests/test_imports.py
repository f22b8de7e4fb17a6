"""The modules of ``capnweb`` import each other without a cycle.

Every import that runs counts, at module level or inside a function (a function-level import
does not make a cycle go away, it only moves the moment it bites). Imports under
``if TYPE_CHECKING:`` are left out: they never run, and annotations may name a module above.
Importing ``capnweb.a.b`` also runs the package ``capnweb.a``; the top package ``capnweb``
itself, which every submodule implies, counts only when a module imports it by name.
"""

from __future__ import annotations

import ast
from pathlib import Path

import capnweb

PACKAGE = Path(capnweb.__file__).resolve().parent
ROOT = "capnweb"


def _module_name(path: Path) -> str:
    parts = [ROOT, *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES: dict[str, Path] = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
EXTENSIONS: set[str] = {
    _module_name(p.with_name(p.name.split(".")[0] + ".py"))
    for p in PACKAGE.rglob("*")
    if p.suffix in (".so", ".pyd")
}
"""Compiled modules: they import nothing of the package, but ``from . import x`` names them."""


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement of ``tree`` outside ``if TYPE_CHECKING:`` bodies."""
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:  # the else branch runs
                visit(child)
            return
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def _with_packages(module: str) -> set[str]:
    """``module`` and the packages between it and the top package, those that exist here."""
    parts = module.split(".")
    names = {".".join(parts[:i]) for i in range(2, len(parts) + 1)}
    if module == ROOT:
        names.add(ROOT)
    return {n for n in names if n in MODULES}


def imports_of(module: str) -> set[str]:
    """The modules of the package that ``module`` imports when it runs."""
    path = MODULES[module]
    is_package = path.name == "__init__.py"
    out: set[str] = set()
    for node in _runtime_imports(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == ROOT or alias.name.startswith(ROOT + "."):
                    out |= _with_packages(alias.name)
            continue
        if node.level:
            base = module.split(".") if is_package else module.split(".")[:-1]
            base = base[: len(base) - node.level + 1]
            target = ".".join(base + ([node.module] if node.module else []))
        else:
            target = node.module or ""
        if target != ROOT and not target.startswith(ROOT + "."):
            continue
        for alias in node.names:
            sub = f"{target}.{alias.name}"
            if sub in EXTENSIONS:
                out.add(sub)
            else:
                out |= _with_packages(sub if sub in MODULES else target)
    out.discard(module)
    return out


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (as a path that ends where it starts) per strongly connected component."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def connect(v: str) -> None:  # Tarjan
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, set())):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return [_cycle_in(graph, set(c)) for c in components]


def _cycle_in(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """A shortest cycle through the first module of ``component`` (breadth first)."""
    start = min(component)
    paths = {start: [start]}
    queue = [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(graph.get(v, set()) & component):
            if w == start:
                return [*paths[v], start]
            if w not in paths:
                paths[w] = [*paths[v], w]
                queue.append(w)
    raise AssertionError("not a cycle")  # pragma: no cover


def test_the_package_has_modules_to_check() -> None:
    assert {"capnweb._codec", "capnweb._hooks", "capnweb.stubs", "capnweb.session"} <= set(MODULES)
    assert "capnweb._values" in imports_of("capnweb._codec")


def test_no_import_cycle() -> None:
    graph = {m: imports_of(m) for m in MODULES}
    cycles = find_cycles(graph)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_the_finder_reports_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycles(graph) == [["a", "b", "c", "a"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_function_level_and_type_checking_imports_are_told_apart() -> None:
    tree = ast.parse(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from .a import A\nelse:\n    from .b import B\n"
        "def f():\n    from .c import C\n"
    )
    assert sorted(n.module or "" for n in _runtime_imports(tree)) == ["b", "c", "typing"]


def test_the_codec_knows_no_runtime_module() -> None:
    """The wire codec is sans-IO: values, errors and its compiled half, nothing above."""
    allowed = {"capnweb._values", "capnweb.errors", "capnweb._speedups"}
    assert imports_of("capnweb._codec") <= allowed


def test_what_the_hooks_build_on_stays_below_them() -> None:
    """The Hook interface and map recording import nothing of the local runtime."""
    assert imports_of("capnweb._hookbase") == set()
    assert imports_of("capnweb._map") <= {
        "capnweb._codec",
        "capnweb._hookbase",
        "capnweb.errors",
    }
