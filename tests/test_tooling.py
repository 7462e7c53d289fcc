"""The code passes the ruff and mypy settings and keeps the import contract in pyproject.toml."""

from __future__ import annotations

import json
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
    never both, and ``make test-fast`` (in-process, not slow) keeps at least 550 of them. One
    collection, in a child process, lists every test with its markers."""
    script = (
        "import json, sys, pytest\n"
        "found = {}\n"
        "class Markers:\n"
        "    def pytest_collection_finish(self, session):\n"
        "        found.update((item.nodeid, sorted({m.name for m in item.iter_markers()}))\n"
        "                     for item in session.items)\n"
        "code = pytest.main(['--collect-only', '-q', '-p', 'no:cacheprovider'],\n"
        "                   plugins=[Markers()])\n"
        "sys.stderr.write(json.dumps(found))\n"
        "sys.exit(code)\n")
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:]
    found: dict[str, list[str]] = json.loads(proc.stderr.strip().splitlines()[-1])
    assert len(found) > 1000
    tiers = {nodeid: {"inprocess", "servers"} & set(marks) for nodeid, marks in found.items()}
    assert [nodeid for nodeid, tier in tiers.items() if len(tier) != 1] == []
    fast = [n for n, marks in found.items() if "inprocess" in marks and "slow" not in marks]
    assert len(fast) >= 550


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
