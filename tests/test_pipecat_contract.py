"""The installed Pipecat still has every private name `voice/pipecat/contract.py` lists.

An upgrade of `pipecat-ai` that renames or drops one fails here, naming the
piece of Switchboard that breaks and what callers would notice, instead of
failing calls (or, worse, quietly making them slower). The contract must also
be complete: a class in `voice/pipecat/` that touches a private Pipecat name
the contract does not list fails `test_the_contract_lists_every_private_name`.
"""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import inspect
import re
from functools import cache
from pathlib import Path
from typing import NoReturn

import pipecat
import pytest

from voice.pipecat.contract import PRIVATE_NAMES, SKIPPED_INITS, PrivateName, SkippedInit

ROOT = Path(__file__).resolve().parent.parent
PIPECAT_FOLDER = ROOT / "voice" / "pipecat"
CONTRACT = PIPECAT_FOLDER / "contract.py"
REQUIREMENTS = ROOT / "requirements.txt"
PIN = re.compile(r"^pipecat-ai(\[[^\]]*\])?==(?P<version>\S+)", re.MULTILINE)
INSTALLED = importlib.metadata.version("pipecat-ai")


def relying_files(name: str) -> str:
    """The modules of `voice/pipecat/` whose code uses `name`, for the failure message."""
    files = []
    for path in sorted(PIPECAT_FOLDER.rglob("*.py")):
        if path == CONTRACT:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                found = node.name
            elif isinstance(node, ast.Attribute):
                found = node.attr
            elif isinstance(node, ast.Name):
                found = node.id
            else:
                continue
            if found == name:
                files.append(str(path.relative_to(ROOT)))
                break
    return ", ".join(files) or "voice/pipecat/"


def broken(piece: str, why: str, name: str, problem: str) -> NoReturn:
    """Fail saying what Pipecat changed, what breaks, and what to update."""
    pytest.fail(
        f"Pipecat {INSTALLED} {problem}.\n"
        f"  What breaks: {piece}.\n"
        f"  Effect: {why}.\n"
        f"  Update {relying_files(name)} and voice/pipecat/contract.py together with the "
        "pinned pipecat-ai in requirements.txt.",
        pytrace=False,
    )


def assigns(source: str, name: str) -> bool:
    """Whether `source` assigns `self.<name>` (with or without an annotation)."""
    return re.search(rf"\bself\.{re.escape(name)}\s*(:[^=\n]*)?=(?!=)", source) is not None


def uses(source: str, name: str) -> bool:
    """Whether `source` mentions `self.<name>`."""
    return re.search(rf"\bself\.{re.escape(name)}\b", source) is not None


@cache
def source_of(obj: object) -> str:
    """The source of a Pipecat class or function, or "" for one without any (a C slot)."""
    try:
        return inspect.getsource(obj)  # type: ignore[arg-type]
    except (OSError, TypeError):
        return ""


@pytest.mark.parametrize("entry", PRIVATE_NAMES, ids=lambda entry: entry.label)
def test_pipecat_still_has_it(entry: PrivateName) -> None:
    def fail(problem: str) -> NoReturn:
        broken(entry.piece, entry.why, entry.name, problem)

    owner = entry.owner.__name__
    if entry.kind == "attribute":
        setter = getattr(entry.owner, entry.set_in, None)
        if setter is None:
            fail(f"has no {owner}.{entry.set_in}, which set {entry.label}")
        in_class = entry.name in dir(entry.owner) and not callable(getattr(entry.owner, entry.name))
        if not (in_class or assigns(source_of(setter), entry.name)):
            fail(f"no longer has {entry.label}: {owner}.{entry.set_in} does not set it")
        return
    method = getattr(entry.owner, entry.name, None)
    if method is None:
        fail(f"no longer has {entry.label}")
    if not inspect.isfunction(method):
        fail(f"has {entry.label}, but not as a method")
    is_async = inspect.iscoroutinefunction(method)
    if is_async != (entry.kind == "async method"):
        fail(f"made {entry.label} {'async' if is_async else 'synchronous'}")
    parameters = tuple(inspect.signature(method).parameters)
    if parameters != entry.parameters:
        was, now = ", ".join(entry.parameters or ()), ", ".join(parameters)
        fail(f"changed {entry.label}({was}) to {entry.label}({now})")


@pytest.mark.parametrize(
    "entry", [e for e in PRIVATE_NAMES if e.read_by], ids=lambda entry: entry.label
)
def test_pipecat_still_uses_it(entry: PrivateName) -> None:
    for user in entry.read_by:
        method = getattr(entry.owner, user, None)
        where = f"{entry.owner.__name__}.{user}"
        if method is None:
            broken(entry.piece, entry.why, entry.name, f"has no {where}, which used {entry.label}")
        elif not uses(source_of(method), entry.name):
            broken(entry.piece, entry.why, entry.name, f"no longer uses {entry.label} in {where}")


@pytest.mark.parametrize("entry", SKIPPED_INITS, ids=lambda entry: entry.owner.__name__)
def test_skipped_constructor_sets_what_we_set(entry: SkippedInit) -> None:
    source = source_of(vars(entry.owner).get("__init__"))
    assigned = sorted(set(re.findall(r"\bself\.(\w+)\s*(?::[^=\n]*)?=(?!=)", source)))
    if assigned != sorted(entry.assigns):
        broken(
            entry.piece,
            entry.why,
            entry.owner.__name__,
            f"sets {assigned} in {entry.owner.__name__}.__init__, not {sorted(entry.assigns)}",
        )


def test_each_name_is_listed_once() -> None:
    labels = [entry.label for entry in PRIVATE_NAMES]
    assert sorted(labels) == sorted(set(labels))


def test_the_pin_is_the_version_checked() -> None:
    pin = PIN.search(REQUIREMENTS.read_text())
    assert pin is not None, "requirements.txt does not pin pipecat-ai[...]==X"
    assert pin["version"] == INSTALLED == pipecat.__version__, (
        f"requirements.txt pins pipecat-ai=={pin['version']}, but the contract was checked "
        f"against {INSTALLED} (pipecat.__version__ {pipecat.__version__}): reinstall, or "
        "update the pin and voice/pipecat/contract.py together."
    )


def pipecat_owner(cls: type, name: str) -> type | None:
    """The Pipecat class in `cls`'s ancestry that defines or assigns `name`, if any."""
    for base in cls.__mro__[1:]:
        if base.__module__.partition(".")[0] != "pipecat":
            continue
        if name in vars(base) or uses(source_of(base), name):
            return base
    return None


def is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def on_self(node: ast.Attribute) -> bool:
    """Whether `node` is `self.x` or `super().x`."""
    value = node.value
    if isinstance(value, ast.Name):
        return value.id == "self"
    return isinstance(value, ast.Call) and getattr(value.func, "id", None) == "super"


def test_the_contract_lists_every_private_name() -> None:
    listed = {(entry.owner, entry.name) for entry in PRIVATE_NAMES}
    listed_names = {entry.name for entry in PRIVATE_NAMES}
    ours: set[str] = set()  # private names our own classes define
    foreign: list[tuple[Path, int, str]] = []  # `obj._x` on something not self
    missing: list[str] = []
    for path in sorted(PIPECAT_FOLDER.rglob("*.py")):
        if path == CONTRACT:
            continue
        parts = path.relative_to(ROOT).with_suffix("").parts
        module = importlib.import_module(".".join(p for p in parts if p != "__init__"))
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and is_private(node.attr) and not on_self(node):
                foreign.append((path, node.lineno, node.attr))
            if not isinstance(node, ast.ClassDef):
                continue
            cls = getattr(module, node.name, None)
            if not inspect.isclass(cls):
                continue
            names = {
                n.name for n in node.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
            }
            names |= {n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute) and on_self(n)}
            for name in sorted(filter(is_private, names)):
                owner = pipecat_owner(cls, name)
                if owner is None:
                    ours.add(name)
                elif not any((base, name) in listed for base in cls.__mro__):
                    missing.append(
                        f"{path.relative_to(ROOT)}: {cls.__name__} uses {owner.__name__}.{name}"
                    )
    missing += [
        f"{path.relative_to(ROOT)}:{line} uses .{name}"
        for path, line, name in foreign
        if name not in listed_names and name not in ours
    ]
    if missing:
        pytest.fail(
            "Private Pipecat names used in voice/pipecat/ but missing from "
            "voice/pipecat/contract.py (list them there, or rename ours if it clashes):\n  "
            + "\n  ".join(missing),
            pytrace=False,
        )
