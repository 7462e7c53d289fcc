"""The shipped Alertmanager routing made local (for the tests and the demo), and a Slack stand-in
that keeps what Alertmanager sends it."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent


def alertmanager_config(slack_url_file: Path, smtp: str | None = None,
                        password_file: Path | None = None) -> dict[str, Any]:
    """The shipped routing, with Slack sent to ``slack_url_file``'s URL, e-mail to ``smtp``
    (left out without it) and no PagerDuty; its timings made fast."""
    config = yaml.safe_load((ROOT / "alerting" / "alertmanager.yml").read_text())
    if smtp is not None and password_file is not None:
        config["global"].update({"smtp_smarthost": smtp, "smtp_require_tls": False,
                                 "smtp_auth_password_file": str(password_file)})
    else:
        for key in [k for k in config["global"] if k.startswith("smtp_")]:
            del config["global"][key]
    config["route"].update({"group_wait": "1s", "group_interval": "2s", "repeat_interval": "1h"})
    config["templates"] = [str(ROOT / "alerting" / "templates" / "*.tmpl")]  # the config moves
    for receiver in config["receivers"]:
        for slack in receiver.get("slack_configs", []):
            slack["api_url_file"] = str(slack_url_file)
        receiver.pop("pagerduty_configs", None)  # no PagerDuty here; amtool checks its route
        if smtp is None:
            receiver.pop("email_configs", None)
    return config


class SlackSink:
    """An HTTP server on 127.0.0.1 that keeps each JSON body POSTed to it (Slack's incoming
    webhook format) and answers 200."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                try:
                    sink.received.append(json.loads(raw or b"{}"))
                except ValueError:
                    sink.received.append({"raw": raw.decode("utf-8", "replace")})
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/slack"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
