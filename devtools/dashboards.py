"""The dashboards for Grafana's Import UI (``grafana/import/``), made from the provisioned ones
in ``grafana/dashboards/``: the same JSON with ``__inputs`` (Grafana asks which Prometheus to use)
and ``__requires``. ``python -m devtools.dashboards`` writes them; ``--check`` exits 1 when they
are out of date (a test runs it)."""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PROVISIONED = ROOT / "grafana" / "dashboards"
IMPORT = ROOT / "grafana" / "import"
INPUT = "DS_PROMETHEUS"


def for_import(dashboard: dict[str, Any]) -> dict[str, Any]:
    board = copy.deepcopy(dashboard)
    for variable in board["templating"]["list"]:
        if variable["type"] == "datasource":
            chosen = "${" + INPUT + "}"  # Grafana's import puts the chosen uid here
            variable["current"] = {"selected": True, "text": chosen, "value": chosen}
    panels = sorted({p["type"] for p in board["panels"]})
    return {
        "__inputs": [{"name": INPUT, "label": "Prometheus", "type": "datasource",
                      "pluginId": "prometheus", "pluginName": "Prometheus",
                      "description": "The Prometheus (or Mimir, Thanos) that scrapes lifecycled"}],
        "__requires": [{"type": "grafana", "id": "grafana", "name": "Grafana", "version": "10.0.0"},
                       {"type": "datasource", "id": "prometheus", "name": "Prometheus",
                        "version": "1.0.0"},
                       *({"type": "panel", "id": p, "name": p, "version": ""} for p in panels)],
        **board,
    }


def rendered() -> dict[Path, str]:
    return {IMPORT / path.name: json.dumps(for_import(json.loads(path.read_text())), indent=2,
                                           ensure_ascii=False) + "\n"
            for path in sorted(PROVISIONED.glob("*.json"))}


def main(argv: list[str]) -> int:
    wanted = rendered()
    if argv == ["--check"]:
        stale = [p.name for p, text in wanted.items()
                 if not p.exists() or p.read_text() != text]
        if stale:
            print(f"grafana/import is out of date ({', '.join(stale)}): "
                  "python -m devtools.dashboards", file=sys.stderr)
            return 1
        return 0
    IMPORT.mkdir(exist_ok=True)
    for path, text in wanted.items():
        path.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
