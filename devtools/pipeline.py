"""A small retraining pipeline for the demo: a webhook receiver that verifies each delivery and,
on ``model.update_requested``, reports progress to the callback URL, writes the new version into
Triton's model repository, loads it and reports validation metrics."""

from __future__ import annotations

import base64
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from devtools import triton
from devtools.receiver import Receiver

log = logging.getLogger("pipeline")


@dataclass
class Pipeline:
    secret: str
    token: str
    triton_url: str
    repository: Path
    validation_accuracy: float = 0.93
    after_deploy: Callable[[str, str], None] | None = None  # (model, version)
    seen: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.receiver = Receiver(self.secret, respond=lambda n, h: (204, {}),
                                 on_event=lambda event: self.receive(event.body))

    @property
    def url(self) -> str:
        return self.receiver.url.replace("/hook", "/hooks/lifecycled")

    def receive(self, event: dict[str, Any]) -> None:
        self.seen.append(event)
        if event["type"] == "model.update_requested":
            threading.Thread(target=self.train, args=(event["data"],), daemon=True).start()

    def train(self, data: dict[str, Any]) -> None:
        """'Retrain', deploy into Triton next to the old version, report each stage."""
        url, auth = data["callback_url"], {"Authorization": f"Bearer {self.token}"}
        model, version = data["model"], data["target_version"]

        def report(body: dict[str, Any]) -> None:
            requests.post(url, json=body, headers=auth, timeout=30).raise_for_status()

        try:
            report({"state": "training", "progress": 10, "log": f"retraining {model} on the "
                                                                "latest labelled window"})
            report({"state": "validating", "progress": 60, "log": "holdout evaluation",
                    "validation_metrics": {"accuracy": self.validation_accuracy}})
            triton.write_model(self.repository, triton.ModelSpec(
                model, version, 4, (0.9, -0.6, 0.35, 0.15), -0.15))
            config = requests.get(f"{self.triton_url}/v2/models/{model}/config", timeout=30).json()
            config["version_policy"] = {"all": {}}  # serve the old and the new side by side
            requests.post(f"{self.triton_url}/v2/repository/models/{model}/load", timeout=120,
                          json={"parameters": {"config": json.dumps(config)}}).raise_for_status()
            if self.after_deploy is not None:
                self.after_deploy(model, version)
            report({"state": "deploying", "progress": 90,
                    "log": f"{model} version {version} loaded in Triton"})
        except requests.RequestException as exc:
            self.errors.append(str(exc))
            log.error("pipeline failed: %s", exc)

    def stop(self) -> None:
        self.receiver.stop()


def new_secret() -> str:
    import os

    return "whsec_" + base64.b64encode(os.urandom(32)).decode()
