"""No import circles between mlprov's modules (issue 12), counted the strict way.

Every ``import`` counts as an edge: at module level, inside functions (a deferred
import is still a dependency) and under ``if TYPE_CHECKING:``. ``from mlprov import
__version__`` is ignored (a constant, not a dependency). Circles are the strongly
connected groups of more than one module, as ``/work/shared/tools/import_cycles.py``
reports them.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "mlprov"

#: The circles known today. The registry's goes with its redesign (issue 12);
#: then empty this set. Any other circle, or a registry circle of other modules,
#: fails the test below.
KNOWN_CIRCLES: set[frozenset[str]] = set()


def _modules(src: Path, package: str) -> dict[str, Path]:
    modules = {}
    for path in (src / package).rglob("*.py"):
        parts = list(path.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module: str, path: Path, modules: dict[str, Path], package: str) -> set[str]:
    """Every package module ``module`` imports, wherever the import statement sits."""
    anchor = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    targets: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(parent + ([base] if base else []))
            for alias in node.names:
                if base == package and alias.name == "__version__":
                    continue
                full = f"{base}.{alias.name}"
                targets.append(full if full in modules else base)
    found = {_resolve(t, modules) for t in targets}
    return {t for t in found if t is not None and t != module
            and (t == package or t.startswith(package + "."))}


def import_graph(src: Path = SRC, package: str = PACKAGE) -> dict[str, set[str]]:
    """Module -> the package modules it imports."""
    modules = _modules(src, package)
    return {name: _imports(name, path, modules, package) for name, path in modules.items()}


def circles(graph: dict[str, set[str]]) -> set[frozenset[str]]:
    """The strongly connected groups of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: set[frozenset[str]] = set()
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.add(member)
                    if member == node:
                        break
                if len(group) > 1:
                    found.add(frozenset(group))
    return found


def _show(groups: set[frozenset[str]]) -> str:
    return "; ".join(" ".join(sorted(g)) for g in sorted(groups, key=sorted)) or "none"


def test_the_finder_sees_deferred_and_type_checking_imports(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("__version__ = '1'\n")
    (package / "a.py").write_text("from pkg import b\n")
    (package / "b.py").write_text("def f():\n    from pkg.sub import c\n")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "c.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..a import x\n")
    (package / "d.py").write_text("from pkg import __version__\nimport pkg.a\n")
    graph = import_graph(tmp_path, "pkg")
    assert graph["pkg.d"] == {"pkg.a"}  # __version__ is not an edge
    assert circles(graph) == {frozenset({"pkg.a", "pkg.b", "pkg.sub.c"})}


def test_no_import_circle_but_the_known_ones() -> None:
    found = circles(import_graph())
    new, gone = found - KNOWN_CIRCLES, KNOWN_CIRCLES - found
    assert not new, f"new import circle(s): {_show(new)}; make imports flow one way " \
                    "(see docs/decisions.md, 'Imports flow one way')"
    assert not gone, f"a known circle changed or went away: {_show(gone)}; " \
                     "update KNOWN_CIRCLES in this file"


def test_no_import_circle_at_all() -> None:
    assert circles(import_graph()) == set()


def test_signing_backends_import_only_their_base() -> None:
    """model_signing's shape: a backend imports its base, never the public modules above it."""
    graph = import_graph()
    backends = [m for m in graph if m.startswith("mlprov._signing.") and
                m not in ("mlprov._signing.interface", "mlprov._signing.common")]
    assert backends
    for backend in backends:
        above = {m for m in graph[backend] if m in (
            "mlprov.signing", "mlprov.bundles", "mlprov.trust", "mlprov.verification")}
        assert not above, f"{backend} imports {sorted(above)}"
