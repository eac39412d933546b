"""The shape of the library: no import circle, one direction between one run and the experiment,
no reach into another package's private names, and modules small enough to read in one sitting.

The import graph is read from the source (``ast``), not by importing, so a circle that Python
happens to resolve (a name imported late, inside a function) still counts.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import paperlib

ROOT = Path(paperlib.__file__).resolve().parent
MAX_LINES = 400
BOUNDED = ("run", "experiment")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _imports(path: Path, modules: dict[str, Path]) -> list[tuple[str, list[str], int]]:
    """``(imported paperlib module, names imported from it, line)`` for every import in ``path``
    (at any depth: module level or inside a function)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(a.name, [], node.lineno) for a in node.names if a.name in modules]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            if not base.startswith("paperlib"):
                continue
            names = [a.name for a in node.names]
            submodules = [f"{base}.{n}" for n in names if f"{base}.{n}" in modules]
            if base in modules:
                found.append(
                    (base, [n for n in names if f"{base}.{n}" not in modules], node.lineno)
                )
            found += [(m, [], node.lineno) for m in submodules]
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    graph = {name: set() for name in modules}
    for name, path in modules.items():
        for target, _, _ in _imports(path, modules):
            if target != name:
                graph[name].add(target)
    # a package's __init__ runs before any of its submodules: importing a.b imports a too
    for name in list(graph):
        for target in list(graph[name]):
            parent = target.rpartition(".")[0]
            while parent and parent != name and not name.startswith(parent + "."):
                graph[name].add(parent)
                parent = parent.rpartition(".")[0]
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle_in_paperlib() -> None:
    graph = _graph()
    assert "paperlib.run.train" in graph and "paperlib.experiment.grid" in graph
    cycle = _cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_one_run_never_imports_the_experiment() -> None:
    graph = _graph()
    upward = {
        (name, target)
        for name, targets in graph.items()
        if name.startswith("paperlib.run")
        for target in targets
        if target.startswith("paperlib.experiment") or target.startswith("paperlib.localisation")
    }
    assert upward == set()
    assert "paperlib.run.train" in graph["paperlib.experiment.pools"]


def test_no_private_name_is_imported_across_packages() -> None:
    modules = _modules()
    reaching = []
    for name, path in modules.items():
        own = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for target, names, line in _imports(path, modules):
            other = target if modules[target].name == "__init__.py" else target.rpartition(".")[0]
            private = [n for n in names if n.startswith("_") and not n.startswith("__")]
            if private and other != own:
                reaching.append(f"{path.name}:{line} imports {private} from {target}")
    assert reaching == []


def test_the_training_package_is_gone() -> None:
    assert not (ROOT / "training").exists()
    assert not [m for m in _modules() if m.startswith("paperlib.training")]


@pytest.mark.parametrize("package", BOUNDED)
def test_modules_of_run_and_experiment_are_short(package: str) -> None:
    sizes = {p.name: len(p.read_text().splitlines()) for p in (ROOT / package).glob("*.py")}
    assert len(sizes) >= 5
    too_long = {name: n for name, n in sizes.items() if n > MAX_LINES}
    assert too_long == {}, f"modules over {MAX_LINES} lines: {too_long}"
