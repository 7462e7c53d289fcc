"""The code passes the ruff and mypy settings and keeps the import contract in pyproject.toml."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _tool(name: str) -> str:
    found = Path(sys.executable).parent / name
    if found.exists():
        return str(found)
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed (it is in the test extra)")
    return path


def test_ruff_is_clean() -> None:
    proc = subprocess.run([_tool("ruff"), "check", "daemon", "tests", "scripts", "bench", "devtools"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_mypy_is_clean() -> None:
    proc = subprocess.run([_tool("mypy")], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_import_contract_is_kept() -> None:
    """The rooms import only the rooms below them (CONTRIBUTING.md)."""
    proc = subprocess.run([_tool("lint-imports"), "--no-cache"], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _imports(path: Path) -> list[str]:
    """Every module ``path`` imports (top-level and function-level), as written."""
    import ast

    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append(node.module)
    return found


PACKAGE = ROOT / "daemon" / "lifecycled"
def test_no_private_module_of_a_dependency_is_imported() -> None:
    """A minor release of a dependency may move a ``_``-prefixed module: none is imported
    (function-level imports included)."""
    found = {(str(path.relative_to(PACKAGE)), module)
             for path in PACKAGE.rglob("*.py") for module in _imports(path)
             if not module.startswith(("lifecycled", "__future__"))
             and any(part.startswith("_") for part in module.split("."))}
    assert found == set()


def test_only_the_store_speaks_to_the_database_drivers() -> None:
    """``StoreError`` is the only store exception outside ``store/``: nothing else imports
    sqlite3 or psycopg (a ``sqlite3.Error`` caught elsewhere would miss a PostgreSQL one)."""
    drivers = ("sqlite3", "psycopg", "psycopg_pool")
    outside = {str(path.relative_to(PACKAGE)): module
               for path in PACKAGE.rglob("*.py") if "store" not in path.relative_to(PACKAGE).parts
               for module in _imports(path) if module.split(".")[0] in drivers}
    assert outside == {}


@pytest.mark.slow
def test_every_test_is_in_one_tier_and_the_fast_tier_holds_most() -> None:
    """The tiers are applied by tests/conftest.py: each test is ``inprocess`` or ``servers``,
    never both, and ``make test-fast`` (in-process, not slow) keeps at least 550 of them."""
    def collected(expression: str) -> int:
        proc = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p",
                               "no:cacheprovider", "-m", expression], cwd=ROOT,
                              capture_output=True, text=True, timeout=300)
        last = proc.stdout.strip().splitlines()[-1]  # "N/M tests collected" or "no tests ..."
        return 0 if last.startswith("no tests") else int(last.split("/")[0].split()[0])

    every = collected("inprocess or servers or not (inprocess or servers)")
    assert collected("inprocess") + collected("servers") == every
    assert collected("inprocess and servers") == 0
    assert collected("inprocess and not slow") >= 550


def test_the_manual_names_every_webhook_event_type() -> None:
    """The event list of the webhooks page omitted model.unload_requested."""
    from lifecycled.settings import EVENT_TYPES

    text = (ROOT / "docs" / "webhooks.md").read_text()
    listed = text.split("Events: ", 1)[1].split(".\n", 1)[0]  # the webhooks section's list
    assert [event for event in EVENT_TYPES if f"`{event}`" not in listed] == []


def test_no_test_imports_a_conftest() -> None:
    """A conftest holds fixtures; what tests share otherwise is in tests/helpers.py (33 imports
    from the conftests made fixtures and helpers one tangle)."""
    found = [str(path.relative_to(ROOT)) for path in (ROOT / "tests").rglob("*.py")
             if re.search(r"^from tests(\.\w+)*\.conftest import", path.read_text(), re.M)]
    assert found == []
