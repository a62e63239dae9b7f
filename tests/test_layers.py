"""The layers hold: every query is built in storage/, storage/ imports nothing from workbench/, and
no workbench module imports another that (directly or not) imports it back."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
QUERY_BUILDERS = {"select", "insert", "update", "delete", "text", "func", "case", "and_", "or_", "bindparam", "col"}


def _modules(package: str) -> dict[str, Path]:
    found = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _imports(name: str, path: Path, known: set[str]) -> list[tuple[str, list[str]]]:
    """(module imported, names taken from it) for every import in the file, at any depth."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                out.append((sub, []) if sub in known else (base, [alias.name]))
    return out


WORKBENCH = _modules("workbench")
STORAGE = _modules("storage")


def test_workbench_modules_build_no_queries():
    offenders = {}
    for name, path in WORKBENCH.items():
        for module, names in _imports(name, path, set(WORKBENCH)):
            root = module.split(".")[0]
            if root in ("sqlalchemy", "sqlmodel") and (not names or QUERY_BUILDERS & set(names)):
                offenders.setdefault(name, []).append(f"{module}: {', '.join(names) or '(module)'}")
            if module == "storage.db":
                offenders.setdefault(name, []).append("storage.db (sessions belong in storage/ repositories)")
    assert offenders == {}


def test_storage_imports_nothing_from_workbench():
    offenders = {
        name: sorted({m for m, _ in _imports(name, path, set(STORAGE)) if m.split(".")[0] == "workbench"})
        for name, path in STORAGE.items()
    }
    assert {name: found for name, found in offenders.items() if found} == {}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_no_import_cycles_between_workbench_modules():
    """Imports inside functions count too: a lazy import only hides a cycle."""
    known = set(WORKBENCH) | set(STORAGE)
    graph = {
        name: {m for m, _ in _imports(name, path, known) if m in known and m != name}
        for name, path in {**WORKBENCH, **STORAGE}.items()
    }
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize("name", sorted(WORKBENCH))
def test_every_workbench_module_imports(name):
    importlib.import_module(name)
