"""The packages of ``harness/`` form a layered graph: no import cycles between them (function-level
imports count, they only hide a cycle), and no module imports another module's private names."""

from __future__ import annotations

import ast
import pathlib
from collections import defaultdict

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGES = ("harness", "mocks")


def _module_name(path: pathlib.Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def _unit(module: str) -> str | None:
    """The package (or top-level module) of ``harness`` that ``module`` belongs to."""
    parts = module.split(".")
    if parts[0] != "harness" or len(parts) < 2:
        return None
    base = ROOT / "harness" / parts[1]
    return f"harness.{parts[1]}" if base.is_dir() or base.with_suffix(".py").exists() else None


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    out: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            out.update(id(n) for n in ast.walk(node))
    return out


def _imports(path: pathlib.Path) -> list[tuple[int, str, list[str]]]:
    """(line, module, imported names) for every runtime import, at any depth."""
    tree = ast.parse(path.read_text(), str(path))
    skip = _type_checking_nodes(tree)
    out = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.lineno, node.module, [alias.name for alias in node.names]))
    return out


def _sources(*packages: str) -> list[pathlib.Path]:
    return sorted(p for pkg in packages for p in (ROOT / pkg).rglob("*.py"))


def package_graph() -> tuple[dict[str, set[str]], dict[tuple[str, str], str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    where: dict[tuple[str, str], str] = {}
    for path in _sources("harness"):
        src = _unit(_module_name(path))
        for line, module, names in _imports(path):
            for target in [module] + [f"{module}.{n}" for n in names]:
                dst = _unit(target)
                if src and dst and dst != src:
                    graph[src].add(dst)
                    where.setdefault((src, dst), f"{path.relative_to(ROOT)}:{line}")
    return graph, where


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_cycle_finder_sees_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles_between_harness_packages():
    graph, where = package_graph()
    assert graph, "no imports found: the walk is broken"
    problems = []
    for comp in cycles(graph):
        edges = [f"{a} -> {b} ({where[(a, b)]})" for a in comp for b in sorted(graph[a]) if b in comp]
        problems.append(f"cycle {' / '.join(comp)}: " + "; ".join(edges))
    assert not problems, "\n".join(problems)


def test_no_module_imports_another_modules_private_names():
    problems = []
    for path in _sources(*PACKAGES):
        for line, module, names in _imports(path):
            private = [n for n in names if n.startswith("_") and not n.startswith("__")]
            if private and module.split(".")[0] in PACKAGES:
                problems.append(f"{path.relative_to(ROOT)}:{line}: from {module} import {', '.join(private)}")
    assert not problems, "\n".join(problems)
