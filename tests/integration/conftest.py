"""Real servers for integration tests: Triton from the nvidia-pytriton wheel (see devtools/)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from devtools import triton


@pytest.fixture
def triton_factory(tmp_path: Path) -> Iterator[Callable[..., triton.TritonServer]]:
    """Start real Triton servers (the seed models unless told otherwise); stop them afterwards."""
    started: list[triton.TritonServer] = []

    def start(name: str = "t1", models: tuple[triton.ModelSpec, ...] = triton.SEED_MODELS,
              **kw: object) -> triton.TritonServer:
        work = tmp_path / name
        repository = work / "models"
        for model in models:
            triton.write_model(repository, model)
        server = triton.start(repository, work, **kw)  # type: ignore[arg-type]
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def endpoint(name: str, server: triton.TritonServer, **extra: object) -> dict[str, object]:
    """A sources.triton entry for ``server``."""
    return {"name": name, "url": server.url, "metrics_url": server.metrics_url, "timeout": "5s",
            **extra}
