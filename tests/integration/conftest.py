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


class Server:
    """A Debian Prometheus or Alertmanager process on a free port."""

    def __init__(self, argv: list[str], port: int, log: Path) -> None:
        import subprocess
        self.port = port
        self.log_path = log
        with log.open("wb") as out:
            self.process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, path: str, timeout: float = 60.0) -> None:
        import time

        import requests
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log_path.read_text()[-3000:]
            try:
                if requests.get(self.url + path, timeout=2).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise TimeoutError(self.log_path.read_text()[-3000:])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Start Prometheus (``kind="prometheus"``) or Alertmanager with a config mapping."""
    import shutil

    import yaml
    started: list[Server] = []

    def start(kind: str, config: dict[str, object]) -> Server:
        port = triton.free_port()
        work = tmp_path / f"{kind}-{port}"
        work.mkdir()
        (work / "config.yml").write_text(yaml.safe_dump(config))
        if kind == "prometheus":
            binary = shutil.which("prometheus")
            argv = [str(binary), f"--config.file={work / 'config.yml'}",
                    f"--storage.tsdb.path={work / 'data'}",
                    f"--web.listen-address=127.0.0.1:{port}", "--web.enable-lifecycle"]
            ready = "/-/ready"
        else:
            binary = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
            argv = [str(binary), f"--config.file={work / 'config.yml'}",
                    f"--storage.path={work / 'data'}", f"--web.listen-address=127.0.0.1:{port}",
                    "--cluster.listen-address="]
            ready = "/-/ready"
        assert binary, f"{kind} is not installed (make test installs the Debian packages)"
        server = Server(argv, port, work / "log.txt")
        started.append(server)
        server.wait_ready(ready)
        return server

    yield start
    for server in started:
        server.stop()
