"""The lifecycled demo: the seed scenario, done through the project's own CLI.

Everything it makes (configuration, state file, logs) goes into one folder, ``demo-run/`` by
default, which is printed at the end.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def lifecycled(config: Path, *args: str) -> str:
    """Run one lifecycled command, echo it, and return its output (stop the demo on failure)."""
    argv = [sys.executable, "-m", "daemon", *args, "--config", str(config)]
    print(f"\n$ lifecycled {' '.join(args)}", flush=True)
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT)
    if proc.stdout:
        print(proc.stdout.rstrip())
    if proc.returncode != 0:
        print(proc.stderr.rstrip(), file=sys.stderr)
        raise SystemExit(f"demo stopped: `lifecycled {' '.join(args)}` exited {proc.returncode}")
    return proc.stdout


def prepare(run_dir: Path) -> Path:
    """Make a fresh run folder holding a copy of the shipped config with state inside it."""
    if run_dir.exists():
        shutil.rmtree(run_dir)
    (run_dir / "config").mkdir(parents=True)
    shutil.copytree(ROOT / "config" / "models.d", run_dir / "config" / "models.d")
    data = yaml.safe_load((ROOT / "config" / "lifecycled.yaml").read_text())
    data["daemon"]["state_url"] = f"sqlite:///{(run_dir / 'state' / 'lifecycled.db').resolve()}"
    config = run_dir / "config" / "lifecycled.yaml"
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    return config


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default=str(ROOT / "demo-run"), help="run folder")
    args = parser.parse_args()
    run_dir = Path(args.dir)
    config = prepare(run_dir)

    print("Step 1: validate the configuration and register the seed's three credit-risk models")
    lifecycled(config, "check-config")
    lifecycled(config, "models", "register", "--file",
               str(ROOT / "config" / "examples" / "seed-models.yaml"))
    lifecycled(config, "models", "list")

    print("\nStep 2: promote risk_assessment after its review; every move is recorded")
    lifecycled(config, "models", "set-status", "risk_assessment:3", "production",
               "--reason", "model risk review approved", "--actor", "model-risk-committee")
    lifecycled(config, "models", "history", "risk_assessment:3")

    print("\nStep 3: the lifecycle overview")
    lifecycled(config, "report")
    print(f"\nState, configuration and logs are in {run_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
