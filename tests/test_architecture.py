"""The house rules of docs/architecture.md: layers without circles, rooms of a livable size, and
a public API that exports every type it returns."""

from __future__ import annotations

import ast
import inspect
import subprocess
import sys
import typing
from pathlib import Path

import pytest

import auditlog

PACKAGE = Path(auditlog.__file__).resolve().parent
ROOT = PACKAGE.parent

MODULES = sorted(
    ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
    for path in PACKAGE.rglob("*.py")
)

# Each module is imported in an interpreter where no other auditlog module was imported
# before it, so an import circle that works only in some import orders shows up.
_IMPORT_EACH_FRESH = """
import importlib, sys, warnings
warnings.simplefilter("error")
failed = []
for name in sys.argv[1:]:
    for loaded in [m for m in sys.modules if m.startswith("auditlog.") or m == "auditlog"]:
        if loaded != "auditlog._speedups":
            del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception as exc:
        failed.append(f"{name}: {exc!r}")
print("\\n".join(failed))
sys.exit(1 if failed else 0)
"""


def test_every_module_imports_first_in_a_fresh_interpreter() -> None:
    """Every module of auditlog imports on its own, whatever was (not) imported before it,
    with warnings as errors."""
    modules = [m for m in MODULES if not m.endswith("__main__")]
    assert len(modules) > 50
    done = subprocess.run(
        [sys.executable, "-c", _IMPORT_EACH_FRESH, *modules],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_import_layers_hold() -> None:
    """import-linter's contracts in pyproject.toml (layers, no circles) are kept."""
    linter = Path(sys.executable).with_name("lint-imports")
    if not linter.exists():
        pytest.fail("lint-imports is not installed: install auditlog with the test extra")
    done = subprocess.run(
        [str(linter)], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: p.name)
def test_no_room_is_too_big(path: Path) -> None:
    """No module is over 600 lines and no class over 400 (docs/architecture.md)."""
    source = path.read_text("utf-8")
    assert source.count("\n") <= 600, f"{path.relative_to(ROOT)} has {source.count(chr(10))} lines"
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ClassDef):
            assert node.end_lineno is not None
            length = node.end_lineno - node.lineno + 1
            assert length <= 400, f"{path.relative_to(ROOT)}:{node.name} spans {length} lines"


def _public_methods() -> list[tuple[str, object]]:
    """(name, function) of every public method of every class ``auditlog`` exports, and of
    the sub-APIs ``AuditLog`` hands out."""
    found = []
    for name in auditlog.__all__:
        value = getattr(auditlog, name)
        if not inspect.isclass(value):
            continue
        for attribute, member in vars(value).items():
            if attribute.startswith("_") or not callable(member):
                continue
            found.append((f"{name}.{attribute}", member))
    return found


def _types_in(annotation: object) -> list[type]:
    origin = typing.get_origin(annotation)
    if origin is None:
        return [annotation] if isinstance(annotation, type) else []
    found: list[type] = []
    for argument in typing.get_args(annotation):
        found += _types_in(argument)
    if isinstance(origin, type) and origin.__module__.startswith("auditlog"):
        found.append(origin)
    return found


def test_every_type_a_public_method_returns_is_exported() -> None:
    """Every auditlog type in the return annotation of a public method of an exported class
    is itself exported from ``auditlog`` (or from ``auditlog.note`` for note types)."""
    exported = {getattr(auditlog, name) for name in auditlog.__all__}
    missing = []
    for qualified, function in _public_methods():
        target = function.fget if isinstance(function, property) else function
        target = getattr(target, "__func__", target)
        if not callable(target):
            continue
        try:
            hints = typing.get_type_hints(target)
        except (NameError, TypeError):
            continue
        for kind in _types_in(hints.get("return")):
            ours = kind.__module__.startswith("auditlog") and kind.__module__ != "auditlog.note"
            if ours and kind not in exported:
                missing.append(f"{qualified} returns {kind.__module__}.{kind.__qualname__}")
    assert not missing, "\n".join(sorted(set(missing)))
