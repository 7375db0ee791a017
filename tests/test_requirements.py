"""Every package the code imports is declared, pinned, in a requirements file.

A package that only arrives as another's dependency can vanish with that
package's next release; the product's imports must be in requirements.txt, the
tests' (and the benchmark's) in either file.
"""

from __future__ import annotations

import ast
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The product's code; the rest (tests/, bench/) may also use requirements-dev.txt.
RUNTIME_FOLDERS = (
    "calls", "dialout", "latency", "ops", "records", "simulator", "telephony", "voice",
)  # fmt: skip
SKIPPED = {".venv", ".git", "data", "node_modules"}


def sources() -> list[Path]:
    return [path for path in ROOT.rglob("*.py") if not SKIPPED & set(path.relative_to(ROOT).parts)]


def top_level_imports(path: Path) -> set[str]:
    """The top-level names of the absolute imports in `path`, lazy ones included."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared(*files: str) -> set[str]:
    """The distributions the requirements files pin, normalized."""
    names = set()
    for file in files:
        for line in (ROOT / file).read_text().splitlines():
            line = line.split("#")[0].strip()
            if line and not line.startswith("-"):
                assert "==" in line, f"{file}: {line!r} is not pinned with =="
                names.add(normalized(re.split(r"[\[=<>~!;]", line)[0]))
    return names


def undeclared(paths: list[Path], allowed: set[str]) -> dict[str, set[str]]:
    """Third-party imports of `paths` whose distribution is not in `allowed`, by module."""
    local = {path.name for path in ROOT.iterdir() if path.is_dir()} | {
        path.stem for path in ROOT.glob("*.py")
    }
    distributions = packages_distributions()
    missing: dict[str, set[str]] = {}
    for path in paths:
        for name in top_level_imports(path) - local - set(sys.stdlib_module_names):
            owners = {normalized(d) for d in distributions.get(name, [])}
            assert owners, f"{path.relative_to(ROOT)} imports {name}, which nothing installed"
            if not owners & allowed:
                missing.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    return missing


def test_the_product_imports_only_what_requirements_txt_declares() -> None:
    runtime = [
        path
        for path in sources()
        if path.parent == ROOT or path.relative_to(ROOT).parts[0] in RUNTIME_FOLDERS
    ]
    assert len(runtime) > 50
    assert undeclared(runtime, declared("requirements.txt")) == {}


def test_tests_and_the_benchmark_import_only_what_is_declared() -> None:
    everything = declared("requirements.txt", "requirements-dev.txt")
    assert undeclared(sources(), everything) == {}
