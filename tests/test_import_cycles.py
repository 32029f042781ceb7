"""No import cycle inside the ``psirel`` package (issue 14).

The import graph is built statically with :mod:`ast`: every ``import`` and ``from ... import``
statement anywhere in a module counts, at module level or inside a function. Function-local
(lazy) imports *do* count: a lazy import postpones a cycle to call time but does not remove it,
and lazy imports are exactly how cycles hide. Only imports under ``if TYPE_CHECKING:`` are left
out: they never run.

A package's ``__init__`` is a module of its own (``psirel.scene`` for
``psirel/scene/__init__.py``). Relative imports are resolved against the importing module's
package, and ``from psirel.x import name`` is an edge to ``psirel.x.name`` when ``name`` is a
submodule, otherwise to ``psirel.x``. Importing ``a.b.c`` also runs its parent packages'
``__init__``, but parents are not edges: that would make every import of ``psirel.x.y`` from
inside ``psirel.x`` a cycle through ``psirel/x/__init__.py``, which Python resolves fine; only
the modules a statement names are edges.
"""

from __future__ import annotations

import ast
from pathlib import Path

import psirel

PACKAGE = "psirel"
SRC_ROOT = Path(psirel.__file__).resolve().parent


def module_names(root: Path, package: str) -> dict[str, Path]:
    """Every module under ``root`` by dotted name; ``__init__`` names its package."""
    names = {}
    for path in sorted(root.rglob("*.py")):
        parts = [package, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Import statements at any depth, skipping ``if TYPE_CHECKING:`` bodies."""
    found: list[ast.Import | ast.ImportFrom] = []
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))
    return found


def import_graph(root: Path, package: str) -> dict[str, set[str]]:
    """Edges ``module -> modules of the package it imports``."""
    modules = module_names(root, package)
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        here = name if is_package else name.rpartition(".")[0]
        for node in _imports(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                if node.level:
                    base = here.split(".")
                    base = base[: len(base) - (node.level - 1)]
                    stem = ".".join(base + ([node.module] if node.module else []))
                else:
                    stem = node.module or ""
                targets = [
                    f"{stem}.{alias.name}" if f"{stem}.{alias.name}" in modules else stem
                    for alias in node.names
                ]
            for target in targets:
                # ``import psirel.a.b`` of a name that is not a module: the longest
                # module prefix is what gets imported.
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
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
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def _describe(graph: dict[str, set[str]], component: list[str]) -> str:
    members = set(component)
    edges = [f"  {a} -> {b}" for a in component for b in sorted(graph[a] & members)]
    return "\n".join([", ".join(component), *edges])


def test_psirel_has_no_import_cycle() -> None:
    graph = import_graph(SRC_ROOT, PACKAGE)
    assert "psirel.scene.generate" in graph["psirel.scene"]  # the graph is not empty
    found = cycles(graph)
    assert not found, "import cycles in psirel:\n" + "\n\n".join(
        _describe(graph, c) for c in found
    )


def test_detector_finds_a_known_cycle(tmp_path: Path) -> None:
    pkg = tmp_path / "toy"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("from toy.a import A\n")
    (pkg / "a.py").write_text("from toy.sub import b\nA = 1\n")
    (pkg / "sub" / "__init__.py").write_text("")
    # b -> c by a relative import, c -> a lazily inside a function.
    (pkg / "sub" / "b.py").write_text("from . import c\n")
    (pkg / "sub" / "c.py").write_text("def f():\n    import toy.a\n")
    # Imports that never run or name no module of the package are no edges.
    (pkg / "d.py").write_text(
        "from typing import TYPE_CHECKING\nimport os\n"
        "if TYPE_CHECKING:\n    from toy import e\n"
    )
    (pkg / "e.py").write_text("from toy.d import TYPE_CHECKING\n")
    graph = import_graph(pkg, "toy")
    assert graph["toy"] == {"toy.a"}
    assert graph["toy.a"] == {"toy.sub.b"}
    assert graph["toy.sub.b"] == {"toy.sub.c"}
    assert graph["toy.sub.c"] == {"toy.a"}
    assert graph["toy.d"] == set()
    assert graph["toy.e"] == {"toy.d"}
    assert cycles(graph) == [["toy.a", "toy.sub.b", "toy.sub.c"]]
    (pkg / "sub" / "c.py").write_text("def f():\n    pass\n")
    assert cycles(import_graph(pkg, "toy")) == []
