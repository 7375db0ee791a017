"""Reruns are for single tests whose verdict depends on Whisper hearing synthesised speech.

conftest.py gives them (to tests using `transcribe` or marked `speech`); a mark on
a module or a class would rerun tests that do not listen, and hide their races.
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent
RERUN_MARKS = {"speech", "flaky"}


def marks_in(node: ast.AST) -> set[str]:
    """The `pytest.mark.X` names an expression applies."""
    return {
        sub.attr
        for sub in ast.walk(node)
        if isinstance(sub, ast.Attribute)
        and isinstance(sub.value, ast.Attribute)
        and sub.value.attr == "mark"
    }


def wide_rerun_marks(path: Path) -> list[str]:
    """Where `path` applies a rerun mark to more than one test function."""
    found = []
    tree = ast.parse(path.read_text(), str(path))
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else []
        if any(isinstance(t, ast.Name) and t.id == "pytestmark" for t in targets):
            assert isinstance(node, ast.Assign)
            found += [f"module: {m}" for m in marks_in(node.value) & RERUN_MARKS]
        if isinstance(node, ast.ClassDef):
            for decorator in node.decorator_list:
                found += [f"class {node.name}: {m}" for m in marks_in(decorator) & RERUN_MARKS]
    return found


def test_no_module_or_class_reruns_its_tests() -> None:
    modules = sorted(TESTS.glob("test_*.py"))
    assert len(modules) > 20
    wide = {path.name: marks for path in modules if (marks := wide_rerun_marks(path))}
    assert wide == {}


def test_reruns_come_only_from_conftest() -> None:
    # A test marked `flaky` itself would be retried whatever it checks.
    direct = [
        path.name
        for path in sorted(TESTS.glob("test_*.py"))
        if "flaky" in marks_in(ast.parse(path.read_text()))
    ]
    assert direct == []
