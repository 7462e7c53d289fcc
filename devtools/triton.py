"""Run a real Triton Inference Server on this machine from the ``nvidia-pytriton`` wheel.

The wheel is installed (without its Python dependencies) into ``.triton/`` by ``make``; it ships
the ``tritonserver`` binary and the Python backend, whose stub embeds the system Python 3.11
(which needs Debian's ``python3-numpy``). Models are small numpy models in the Python backend.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
WHEEL_DIR = Path(os.environ.get("LIFECYCLED_TRITON_DIR", ROOT / ".triton"))


def triton_home() -> Path:
    """Folder of the wheel's tritonserver installation, or FileNotFoundError saying how to get it."""
    home = WHEEL_DIR / "pytriton" / "tritonserver"
    if not (home / "bin" / "tritonserver").exists():
        raise FileNotFoundError(
            f"no tritonserver under {WHEEL_DIR}: run `make test` or "
            f"`pip install --no-deps --target {WHEEL_DIR} nvidia-pytriton==0.7.0`")
    return home


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


MODEL_PY = '''
import json
import time
import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    """A logistic model over the input features; a value beyond +-1e6 fails that request, and a
    first feature of exactly 4242 makes it take 0.3 s (a slow request)."""

    def initialize(self, args):
        config = json.loads(args["model_config"])
        params = json.loads(config["parameters"]["weights"]["string_value"])
        self.weights = np.asarray(params["weights"], dtype=np.float32)
        self.bias = np.float32(params["bias"])

    def execute(self, requests):
        responses = []
        for request in requests:
            x = pb_utils.get_input_tensor_by_name(request, "INPUT").as_numpy()
            if x[0, 0] == 4242:
                time.sleep(0.3)
            if np.abs(x).max() > 1e6:
                # Raising fails the request in Triton's own counters (reason BACKEND).
                raise pb_utils.TritonModelException("input out of range")
            score = 1.0 / (1.0 + np.exp(-(x @ self.weights + self.bias)))
            out = pb_utils.Tensor("OUTPUT", score.reshape(-1, 1).astype(np.float32))
            responses.append(pb_utils.InferenceResponse(output_tensors=[out]))
        return responses
'''


@dataclass(frozen=True)
class ModelSpec:
    name: str
    version: str
    features: int
    weights: tuple[float, ...]
    bias: float = 0.0


def config_pbtxt(model: ModelSpec) -> str:
    params = json.dumps({"weights": list(model.weights), "bias": model.bias})
    return textwrap.dedent(f"""\
        name: "{model.name}"
        backend: "python"
        max_batch_size: 64
        input [{{ name: "INPUT", data_type: TYPE_FP32, dims: [ {model.features} ] }}]
        output [{{ name: "OUTPUT", data_type: TYPE_FP32, dims: [ 1 ] }}]
        instance_group [{{ kind: KIND_CPU, count: 1 }}]
        parameters {{ key: "weights" value: {{ string_value: {json.dumps(params)} }} }}
        """)


def write_model(repository: Path, model: ModelSpec) -> Path:
    """Write (or add a version to) a Python-backend model in ``repository``."""
    folder = repository / model.name
    (folder / model.version).mkdir(parents=True, exist_ok=True)
    (folder / "config.pbtxt").write_text(config_pbtxt(model))
    (folder / model.version / "model.py").write_text(MODEL_PY)
    return folder


SEED_MODELS = (
    ModelSpec("credit_scoring", "1", 4, (0.8, -0.5, 0.3, 0.1), -0.2),
    ModelSpec("fraud_detection", "2", 4, (1.2, 0.4, -0.7, 0.2), 0.1),
    ModelSpec("risk_assessment", "3", 4, (-0.3, 0.9, 0.5, -0.4), 0.0),
)


def prepare_backends(target: Path) -> Path:
    """Copy the Python backend files into ``target/python`` (as Triton expects) and return it."""
    home = triton_home()
    python = target / "python"
    python.mkdir(parents=True, exist_ok=True)
    for name in ("libtriton_python.so", "triton_python_backend_utils.py"):
        shutil.copy2(home / "backends" / "python" / name, python / name)
    shutil.copy2(home / "python_backend_stubs" / "3.11" / "triton_python_backend_stub",
                 python / "triton_python_backend_stub")
    return target


@dataclass
class TritonServer:
    """A running tritonserver process with its ports."""

    process: subprocess.Popen[bytes]
    http_port: int
    grpc_port: int
    metrics_port: int
    repository: Path
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def stop(self, timeout: float = 60.0) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def start(repository: Path, workdir: Path, *, http_port: int | None = None,
          grpc_port: int | None = None, metrics_port: int | None = None,
          ready_timeout: float = 120.0, load: tuple[str, ...] | None = None,
          trace_file: Path | None = None) -> TritonServer:
    """Start tritonserver in explicit model-control mode with summary latencies; wait until
    ready. With ``trace_file``, the trace extension writes there (``TRACE_FLAGS``: tracing off
    until a model's own settings switch it on)."""
    home = triton_home()
    backends = prepare_backends(workdir / "backends")
    ports = (http_port or free_port(), grpc_port or free_port(), metrics_port or free_port())
    env = server_environment()
    loads = [f"--load-model={name}" for name in (load if load is not None else ("*",))]
    log_path = workdir / f"triton-{ports[0]}.log"
    argv = [str(home / "bin" / "tritonserver"), f"--model-repository={repository}",
            f"--backend-directory={backends}", f"--http-port={ports[0]}",
            f"--grpc-port={ports[1]}", f"--metrics-port={ports[2]}", "--allow-gpu-metrics=false",
            "--model-control-mode=explicit", *loads,
            "--metrics-config", "summary_latencies=true", "--http-address=127.0.0.1",
            "--grpc-address=127.0.0.1", "--metrics-address=127.0.0.1", "--exit-timeout-secs=10",
            *(trace_flags(trace_file) if trace_file is not None else [])]
    with log_path.open("wb") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env,
                                   start_new_session=True)
    server = TritonServer(process, *ports, repository, log_path)
    deadline = time.monotonic() + ready_timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"tritonserver exited with {process.returncode}:\n{server.log()[-3000:]}")
        try:
            ready = requests.get(f"{server.url}/v2/health/ready", timeout=2).status_code == 200
        except requests.RequestException:
            ready = False
        if ready:
            problem = inference_problem(server)
            if problem is None:
                return server
            server.stop()
            raise RuntimeError(f"tritonserver is ready but an inference fails: {problem}")
        time.sleep(0.2)
    server.stop()
    raise TimeoutError(f"tritonserver not ready after {ready_timeout}s:\n{server.log()[-3000:]}")


def trace_flags(trace_file: Path) -> list[str]:
    """Triton's start flags for lifecycled's trace sampling (docs/sources.md): the file every
    trace goes to, and tracing off for every model until lifecycled switches it on for one."""
    return ["--trace-config", f"triton,file={trace_file}", "--trace-config", "level=OFF",
            "--trace-config", "rate=1000"]


def server_environment() -> dict[str, str]:
    """The environment tritonserver runs with, built from nothing but what it needs. The Python
    backend stub embeds Debian's Python and finds its prefix through PATH: with an activated
    virtualenv (or conda, pyenv) first on the caller's PATH, models report READY but every
    inference fails. So PATH is the system's, and no Python variable is passed on."""
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8",
           "LD_LIBRARY_PATH": str(WHEEL_DIR / "nvidia_pytriton.libs")}
    for name in ("HOME", "TMPDIR"):
        if name in os.environ:
            env[name] = os.environ[name]
    return env


def inference_problem(server: TritonServer) -> str | None:
    """One inference of a zero row against the first READY model: None when it succeeds, else
    one line naming the cause (None too when no model is loaded)."""
    index = requests.post(f"{server.url}/v2/repository/index", json={}, timeout=10).json()
    for entry in index:
        if entry.get("state") != "READY":
            continue
        config = (server.repository / entry["name"] / "config.pbtxt").read_text()
        match = re.search(r'name: "INPUT", data_type: TYPE_FP32, dims: \[ (\d+) \]', config)
        if not match:
            continue
        reply = infer(server.url, entry["name"], [[0.0] * int(match.group(1))],
                      version=entry.get("version"))
        if reply.status_code == 200:
            return None
        return f"{entry['name']}: HTTP {reply.status_code} {reply.text[:300]}"
    return None


def infer(server_url: str, model: str, rows: list[list[float]], version: str | None = None,
          timeout: float = 30.0) -> requests.Response:
    """Send one KServe v2 inference request (a batch of rows) and return the response."""
    path = f"/v2/models/{model}" + (f"/versions/{version}" if version else "") + "/infer"
    body = {"inputs": [{"name": "INPUT", "shape": [len(rows), len(rows[0])], "datatype": "FP32",
                        "data": [v for row in rows for v in row]}]}
    return requests.post(server_url + path, json=body, timeout=timeout)


def parse_metrics_text(text: str) -> dict[tuple[str, str], object]:
    """Per (model, version) counters of a Triton /metrics text (for tests and benchmarks)."""
    from lifecycled.sources.triton import parse_metrics

    return dict(parse_metrics(text, 0.0).models)
