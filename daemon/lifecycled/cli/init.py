"""``lifecycled init DIR``: a minimal configuration for one Triton and one Prometheus, the Prometheus
scrape configuration for lifecycled, and a copy of every shipped file a deployment starts from."""

from __future__ import annotations

import argparse
import json
import os
import shlex
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from lifecycled.cli.output import EXIT_OK, Formatter
from lifecycled.errors import InputError

CONFIG = """\
# lifecycled: one Triton, one Prometheus. Check it with
#   lifecycled check-config --probe --config {config}
# Every key and its default: shipped/config/lifecycled.yaml beside this file.

daemon:
  listen: {listen}          # Prometheus scrapes /metrics here (loopback unless you say so)
  # State: a SQLite file. A relative path resolves against $STATE_DIRECTORY (systemd's
  # StateDirectory=), else $XDG_STATE_HOME/lifecycled, else ~/.local/state/lifecycled.
  state_url: sqlite:///lifecycled.db
  # A token for the API calls that change state (pushes, job events); a file only you can read.
  # api_token_file: /etc/lifecycled/credentials/api_token

sources:
  triton:
    - name: triton                  # the endpoint's name in metrics and logs
      url: {triton}                 # Triton's HTTP API (KServe v2)
{metrics_line}{prometheus_block}
# Models Triton serves are registered by discovery as `{initial}` until a person promotes them:
#   lifecycled models set-status NAME:VERSION production --reason "..." --config {config}
# Owners, thresholds and drift settings per model: one file per model in models.d/
# (see shipped/config/models.d/ for examples).
"""

PROMETHEUS = """\
  # Serving metrics from your Prometheus (which scrapes Triton); lifecycled scrapes Triton
  # directly while it is down.
  prometheus:
    url: {prometheus}
    fallback_to_triton: true
"""

SCRAPE = """\
# Add to prometheus.yml under scrape_configs: (Prometheus scrapes lifecycled's /metrics).
# The rules: copy shipped/alerting/rules/lifecycled.yml and name it under rule_files:.
- job_name: lifecycled
  scrape_interval: 30s
  static_configs:
    - targets: ["{target}"]
"""


def _url(value: str, flag: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError(f"{flag} {value!r}: expected an http:// or https:// URL")
    if parts.username or parts.password:
        raise InputError(f"{flag}: credentials may not be written in the URL")
    return value.rstrip("/")


def _copy_tree(source: Traversable, target: Path, written: list[Path]) -> None:
    for item in sorted(source.iterdir(), key=lambda t: t.name):
        if item.name.startswith((".", "__")):
            continue
        if item.is_dir():
            _copy_tree(item, target / item.name, written)
        else:
            (target / item.name).parent.mkdir(parents=True, exist_ok=True)
            (target / item.name).write_bytes(item.read_bytes())
            written.append(target / item.name)


def cmd_init(args: argparse.Namespace) -> int:
    from lifecycled.settings import MonitoringSettings, listenable
    folder = Path(args.dir)
    triton = _url(args.triton, "--triton")
    metrics = _url(args.triton_metrics, "--triton-metrics") if args.triton_metrics else None
    prometheus = _url(args.prometheus, "--prometheus") if args.prometheus else None
    try:
        listenable(args.listen)
    except ValueError as exc:
        raise InputError(f"--listen: {exc}") from None
    config = folder / "lifecycled.yaml"
    scrape = folder / "prometheus-scrape.yml"
    shipped = folder / "shipped"
    existing = [p for p in (config, scrape, shipped) if p.exists()]
    if existing and not args.force:
        raise InputError(f"{existing[0]} exists; --force replaces what init writes")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "models.d").mkdir(exist_ok=True)
    block = PROMETHEUS.format(prometheus=json.dumps(prometheus)) if prometheus else (
        "  # prometheus: {url: http://127.0.0.1:9090}   # read serving metrics from Prometheus\n")
    metrics_line = (f"      metrics_url: {json.dumps(metrics)}   # Triton's /metrics\n" if metrics
                    else "      # metrics_url: default: the url's host, port 8002, /metrics\n")
    text = CONFIG.format(config=config, listen=json.dumps(args.listen),
                         triton=json.dumps(triton), metrics_line=metrics_line,
                         prometheus_block=block,
                         initial=MonitoringSettings().initial_status.value)
    yaml.safe_load(text)  # what we write must read back
    written: list[Path] = []
    config.write_text(text, encoding="utf-8")
    os.chmod(config, 0o640)
    written.append(config)
    scrape.write_text(SCRAPE.format(target=args.listen), encoding="utf-8")
    written.append(scrape)
    _copy_tree(resources.files("lifecycled") / "shipped", shipped, written)
    print(f"wrote {config}, {scrape} and {len(written) - 2} shipped files under {shipped}/")
    print("next:")
    print(f"  {shlex.join(['lifecycled', 'check-config', '--probe', '--config', str(config)])}")
    print(f"  {shlex.join(['lifecycled', 'run', '--config', str(config)])}")
    print(f"  # and the job in {scrape} under scrape_configs: in prometheus.yml")
    return EXIT_OK


def add_parsers(sub: Any, common: argparse.ArgumentParser, as_json: argparse.ArgumentParser
                ) -> None:
    p = sub.add_parser(
        "init", formatter_class=Formatter,
        help="write a starting configuration, the Prometheus scrape job and the shipped files")
    p.add_argument("dir", metavar="DIR", help="folder to write into (created if missing)")
    p.add_argument("--triton", default="http://127.0.0.1:8000", metavar="URL",
                   help="Triton's HTTP API")
    p.add_argument("--triton-metrics", default=None, metavar="URL",
                   help="Triton's /metrics (default: the --triton host, port 8002)")
    p.add_argument("--prometheus", default=None, metavar="URL",
                   help="a Prometheus to read serving metrics from (default: none)")
    p.add_argument("--listen", default="127.0.0.1:9877", metavar="HOST:PORT",
                   help="where lifecycled will listen (and Prometheus scrape it)")
    p.add_argument("--force", action="store_true", help="replace files init wrote before")
    p.set_defaults(func=cmd_init)
