"""The manual and the front door: the references generated from the code are current, the shipped
configuration holds every key with its default, the MkDocs site builds with --strict (links and
anchors checked), the README stays a front page, and every command the README and the
getting-started page print is run by a test."""

from __future__ import annotations

import functools
import html.parser
import http.server
import re
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml
from lifecycled.settings import Settings

from devtools import reference
from tests.helpers import chromium, section, shell_blocks

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
GETTING_STARTED = ROOT / "docs" / "getting-started.md"
QUICKSTART = "## Quickstart: my Triton, my Prometheus"


def test_the_generated_files_are_current() -> None:
    """config/lifecycled.yaml and docs/reference/*.md are what the code gives now."""
    stale = [str(path.relative_to(ROOT)) for path in reference.stale()]
    assert stale == [], f"stale: {stale}; run `python -m devtools.reference`"


def uncommented(text: str) -> str:
    """The shipped file with its commented examples made live: a `KEY: {}` (or null) line
    followed by `# KEY:` at its indentation takes that example's lines in its place."""
    lines = text.splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        match = re.match(r"^(\s*)([a-z_]+): (\{\}|null)$", line)
        if match and i + 1 < len(lines) and lines[i + 1] == f"{match[1]}# {match[2]}:":
            indent = match[1]
            out.append(f"{indent}{match[2]}:")
            i += 2
            while i < len(lines) and lines[i].startswith(indent + "#   "):
                out.append(indent + lines[i][len(indent) + 2:])
                i += 1
            continue
        out.append(line)
        i += 1
    return "\n".join(out) + "\n"


def paths(value: Any, prefix: str = "", mappings: frozenset[str] = frozenset()) -> set[str]:
    """Every key path of a loaded YAML document, written as the reference writes them."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            if prefix.rstrip(".") in mappings:  # a name of the user's: models.<name>.KEY
                found |= paths(item, prefix + "<name>.", mappings)
                continue
            path = f"{prefix}{key}"
            found.add(path)
            found |= paths(item, path + ".", mappings)
    elif isinstance(value, list) and value and isinstance(value[0], dict):
        found |= paths(value[0], prefix.rstrip(".") + "[].", mappings)
    return found


def test_the_shipped_config_shows_every_key_with_its_default() -> None:
    """It lacked state_password_file, the replica keys, push_max_body, the late-label keys and
    webhooks.secret_env while saying every key was shown. Now: as shipped it validates to the
    defaults (but the one local Triton it names), and with its examples made live it holds every
    key of the schema and still validates."""
    text = (ROOT / "config" / "lifecycled.yaml").read_text()
    shipped = yaml.safe_load(text)
    settings = Settings.model_validate(shipped)
    assert [e.name for e in settings.sources.triton] == ["local"]
    assert settings.model_copy(update={"sources": Settings().sources}) == Settings()
    live = yaml.safe_load(uncommented(text))
    Settings.model_validate(live)
    keys = list(reference.walk(Settings))
    schema = {key.path for key in keys}
    values = {key.path for key in keys if reference.section_of(key.hint) is None}
    found = {path for path in paths(live, mappings=frozenset({"models", "webhooks"}))
             if path.rpartition(".")[0] not in values}  # not the keys of a value's mapping
    assert schema - found == set(), "keys missing from config/lifecycled.yaml"
    assert found - schema == set(), "keys the schema does not have"


class Ids(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.ids.update(value for name, value in attrs if name == "id" and value)


def ids_of(page: Path) -> set[str]:
    parser = Ids()
    parser.feed(page.read_text())
    return parser.ids


def built_page(site: Path, doc: str) -> Path:
    """Where MkDocs writes docs/<doc>.md (directory URLs)."""
    stem = doc.removesuffix(".md")
    return site / "index.html" if stem == "index" else site / stem / "index.html"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The manual, built with `mkdocs build --strict`: a broken link or anchor between pages, or
    a page left out of the navigation, fails the build."""
    site = tmp_path_factory.mktemp("manual") / "site"
    build = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir",
                            str(site), "--config-file", str(ROOT / "mkdocs.yml")],
                           capture_output=True, text=True, timeout=300,
                           env={"PATH": "/usr/bin:/bin", "NO_MKDOCS_2_WARNING": "1"})
    assert build.returncode == 0, build.stdout + build.stderr
    assert "WARNING" not in build.stderr, build.stderr
    return site


@pytest.mark.slow
def test_the_rules_and_the_readme_link_into_the_built_manual(site: Path) -> None:
    """Each alert's runbook_url lands on its section of the runbooks page; each of the README's
    links names a file that exists, and each anchor it names into the manual exists there."""
    rules = yaml.safe_load((ROOT / "alerting" / "rules" / "lifecycled.yml").read_text())
    runbooks = ids_of(built_page(site, "runbooks.md"))
    for group in rules["groups"]:
        for rule in group["rules"]:
            if "alert" in rule:
                page, anchor = rule["annotations"]["runbook_url"].split("#")
                assert page.endswith("/runbooks/") and anchor in runbooks, rule["alert"]
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README.read_text()):
        if "://" not in target:
            assert (ROOT / target).exists(), f"README links to {target}, which does not exist"
    for doc, anchor in re.findall(r"\]\(docs/([^)#]+)#([^)]+)\)", README.read_text()):
        assert anchor in ids_of(built_page(site, doc)), f"README: docs/{doc}#{anchor}"


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.mark.slow
def test_the_manual_renders_in_chromium(site: Path, tmp_path: Path) -> None:
    """Served over HTTP as a reader gets it, the home page and the runbooks render in headless
    Chromium with no console error and nothing fetched from the network (no web fonts)."""
    handler = functools.partial(Quiet, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        for page, text in (("/", "Start here"), ("/runbooks/", "LifecycledModelAccuracyLow"),
                           ("/reference/metrics/", "lifecycled_model_status")):
            dom = chromium(base + page, tmp_path, "--dump-dom")
            assert dom.returncode == 0, dom.stderr[-2000:]
            errors = [line for line in dom.stderr.splitlines()
                      if "CONSOLE" in line or "net::ERR" in line]
            assert errors == [], (page, errors)
            assert text in dom.stdout and 'class="md-nav' in dom.stdout, page
            assert "fonts.googleapis" not in dom.stdout
        shot = tmp_path / "manual.png"
        taken = chromium(base + "/", tmp_path, f"--screenshot={shot}", "--window-size=1280,2000")
        assert taken.returncode == 0 and shot.stat().st_size > 10_000, taken.stderr[-2000:]
    finally:
        server.shutdown()
        server.server_close()


def test_the_readme_is_a_front_page() -> None:
    """At most 250 lines (it was 1,697), and its first screen says how to point lifecycled at a
    Triton and how Prometheus scrapes it."""
    text = README.read_text()
    assert len(text.splitlines()) <= 250
    first_screen = "\n".join(text.splitlines()[:60])
    assert "--triton http" in first_screen and "scrape_configs:" in first_screen
    assert "job_name: lifecycled" in first_screen


# Every command the README and the getting-started page print, and the test that runs it.
RUN_BY = {
    "make demo": ("tests/test_setup.py", "test_make_demo_names_no_test_only_package"),
    "make test": ("tests/test_setup.py", "test_ci_runs_make_test"),
    "python3 -m venv /opt/lifecycled/venv && /opt/lifecycled/venv/bin/pip install .":
        ("tests/integration/test_installed.py", "installed"),
    "export PATH=/opt/lifecycled/venv/bin:$PATH":
        ("tests/integration/test_installed.py", "test_the_quickstart_as_written"),
    "lifecycled init": ("tests/integration/test_installed.py", "test_the_quickstart_as_written"),
    "lifecycled check-config --probe":
        ("tests/integration/test_installed.py", "test_the_quickstart_as_written"),
    "lifecycled run": ("tests/integration/test_installed.py", "test_the_quickstart_as_written"),
}


def test_every_front_door_command_is_run_by_a_test() -> None:
    """A command added to the README or the getting-started page without a test that runs it
    fails here; the quickstart is the same block in both (its test runs the page's)."""
    readme = shell_blocks(README.read_text())
    guide = shell_blocks(GETTING_STARTED.read_text())
    assert shell_blocks(section(README.read_text(), QUICKSTART)) == shell_blocks(
        section(GETTING_STARTED.read_text(), QUICKSTART))
    for command in {c for block in readme + guide for c in block}:
        matches = [key for key in RUN_BY if command == key or command.startswith(key + " ")]
        assert matches, f"no test runs {command!r}"
        path, name = RUN_BY[matches[0]]
        assert re.search(rf"^def {name}\(", (ROOT / path).read_text(), re.MULTILINE), (path, name)
