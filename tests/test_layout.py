"""The project's layout: a small top level, small modules, and no import cycles.

A folder is a concept and the top level keeps the design card's files; these
checks keep it that way as features are added.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = (
    "assistants", "bench", "calls", "config", "console", "dialout", "events", "latency", "ops",
    "records", "simulator", "telephony", "tools", "transfer", "voice",
)  # fmt: skip
MAX_TOP_LEVEL_MODULES = 8
# "About 300 lines": a module past this is two concepts, or one that wants a folder.
MAX_MODULE_LINES = 320


def product_modules() -> dict[str, Path]:
    """Every module of the product (not its tests), by dotted name."""
    modules = {path.stem: path for path in ROOT.glob("*.py")}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            modules[name] = path
    return modules


def imports_of(path: Path, known: set[str]) -> set[str]:
    """The product modules `path` imports, anywhere in it (lazy imports count too).

    A module's packages count as imported with it: their `__init__` runs first.
    """
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
        else:
            continue
        for name in names:
            # Importing a.b.c runs a/__init__.py and a/b/__init__.py first.
            parts = name.split(".")
            found.update(
                prefix for i in range(1, len(parts) + 1) if (prefix := ".".join(parts[:i])) in known
            )
    return found


def ancestors(module: str) -> set[str]:
    """The packages `module` lives in: "a.b.c" lives in "a" and "a.b"."""
    parts = module.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts))}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle in `graph`, as the modules along it, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = 1
        path.append(module)
        for other in sorted(graph[module]):
            if state.get(other) == 1:
                return [*path[path.index(other) :], other]
            if other not in state and (cycle := visit(other)):
                return cycle
        path.pop()
        state[module] = 2
        return None

    for module in sorted(graph):
        if module not in state and (cycle := visit(module)):
            return cycle
    return None


def test_no_import_cycles() -> None:
    modules = product_modules()
    graph = {
        # A module's own packages are set up before it, by design: not an edge.
        name: imports_of(path, set(modules)) - {name} - ancestors(name)
        for name, path in modules.items()
    }
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_top_level_stays_small() -> None:
    top = sorted(path.name for path in ROOT.glob("*.py"))
    assert len(top) <= MAX_TOP_LEVEL_MODULES, f"{len(top)} modules on top: {top}"


def test_modules_stay_small() -> None:
    long = {
        str(path.relative_to(ROOT)): lines
        for path in product_modules().values()
        if (lines := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert not long, f"split these by concept: {long}"


def test_the_cycle_finder_finds_cycles() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
