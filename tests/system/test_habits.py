"""The habits that keep the house clean, run with the suite: ruff's lint and format check,
mypy, the import contracts (layering), one name per module, and tests that import no other
test file."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import Counter
from pathlib import Path

from testkit import ROOT

BIN = Path(sys.executable).parent
SOURCES = ["kiosk", "sync", "scripts/workbench", "tests"]


def tool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / args[0]), *args[1:]], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


def test_ruff_lint_is_clean():
    r = tool("ruff", "check", "--output-format", "concise", *SOURCES)
    assert r.returncode == 0, r.stdout + r.stderr


def test_ruff_format_is_clean():
    r = tool("ruff", "format", "--check", *SOURCES)
    assert r.returncode == 0, r.stdout + r.stderr


def test_mypy_is_clean():
    r = tool("mypy")
    assert r.returncode == 0 and "Success" in r.stdout, r.stdout + r.stderr


def test_the_layering_contracts_hold():
    """The device never imports the authority; the core imports no device part or I/O
    library; the authority takes only the core from kiosk (pyproject: [tool.importlinter])."""
    r = tool("lint-imports", "--no-cache")
    assert r.returncode == 0 and "0 broken" in r.stdout, r.stdout + r.stderr


def test_no_two_modules_share_a_name():
    names = Counter(
        p.name
        for d in ("kiosk", "sync", "scripts/workbench")
        for p in (ROOT / d).rglob("*.py")
        if p.name != "__init__.py"
    )
    names.update(p.name for p in (ROOT / "tests").rglob("test_*.py"))
    assert [n for n, c in names.items() if c > 1] == []


def test_no_test_file_imports_another():
    offenders = []
    for p in (ROOT / "tests").rglob("*.py"):
        for node in ast.walk(ast.parse(p.read_text())):
            mods = []
            if isinstance(node, ast.ImportFrom) and node.module:
                mods = [node.module]
            elif isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            offenders += [
                f"{p.relative_to(ROOT)}: {m}"
                for m in mods
                if m.split(".")[-1].startswith(("test_", "conftest")) or m.startswith("tests")
            ]
    assert offenders == []


def test_installed_packages_import_nothing_from_the_tools_or_the_tests():
    offenders = []
    for d in ("kiosk", "sync"):
        for p in (ROOT / d).rglob("*.py"):
            text = p.read_text()
            offenders += [
                str(p.relative_to(ROOT))
                for bad in ("import workbench", "from workbench", "sys.path.insert", "sys.path[")
                if bad in text
            ]
    assert offenders == []


def test_no_module_imports_another_modules_private_name():
    """A name that starts with an underscore is its module's own: no other module imports it
    (``from x import _y``) or reaches it (``x._y``)."""
    offenders = []
    for d in ("kiosk", "sync"):
        for p in (ROOT / d).rglob("*.py"):
            tree = ast.parse(p.read_text())
            ours: set[str] = set()
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(("kiosk", "sync")):
                    for a in node.names:
                        if a.name.startswith("_") and not a.name.startswith("__"):
                            offenders.append(f"{p.relative_to(ROOT)}:{node.lineno}: {node.module}.{a.name}")
                        ours.add(a.asname or a.name)
                elif isinstance(node, ast.Import):
                    ours.update(
                        a.asname or a.name.split(".")[0]
                        for a in node.names
                        if a.name.startswith(("kiosk", "sync"))
                    )
            for node in ast.walk(tree):
                if (
                    isinstance(node, ast.Attribute)
                    and isinstance(node.value, ast.Name)
                    and node.value.id in ours
                    and node.attr.startswith("_")
                    and not node.attr.startswith("__")
                ):
                    offenders.append(f"{p.relative_to(ROOT)}:{node.lineno}: {node.value.id}.{node.attr}")
    assert offenders == []
