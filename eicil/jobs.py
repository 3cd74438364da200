"""One sweep job: the training notebook executed by papermill in a fresh process.

The local executor (sweep.py) and the Ray executor (ray_executor.py) both run jobs through here.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from . import records
from .config import ConfigError

NOTEBOOK = Path("notebooks") / "01_train.ipynb"


@dataclass
class Job:
    name: str
    params: dict  # papermill parameters: profile + the settings that differ from it
    run_dir: Path


def training_notebook() -> Path:
    """notebooks/01_train.ipynb of the checkout in the working directory, else of the installed
    package's checkout (an editable install)."""
    for root in (Path.cwd(), Path(__file__).resolve().parent.parent):
        if (root / NOTEBOOK).is_file():
            return (root / NOTEBOOK).resolve()
    raise ConfigError(f"{NOTEBOOK} not found in {Path.cwd()}; run eicil sweep from the repository root")


def is_complete(job: Job) -> bool:
    path = job.run_dir / "summary.json"
    return path.exists() and records.read_json(path).get("status") == "complete"


def cpu_threads(cpus: float) -> dict:
    """OMP_NUM_THREADS for a CPU job given its share of cores; oversubscribed OpenMP threads only
    spin against each other. A value the user exported wins."""
    if "OMP_NUM_THREADS" in os.environ:
        return {}
    return {"OMP_NUM_THREADS": str(max(1, int(cpus)))}


def run_job(job: Job, env: dict | None = None, notebook: Path | None = None) -> dict:
    """Execute the training notebook for one job in a fresh process; never raises."""
    job.run_dir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "papermill", str(notebook or training_notebook()), str(job.run_dir / "train.ipynb"),
           "--no-progress-bar", "--log-level", "ERROR", "-k", "python3"]
    for key, value in job.params.items():
        cmd += ["-p" if not isinstance(value, str) else "-r", key, str(value)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})})
    code, tail = proc.returncode, (proc.stderr + proc.stdout).strip().splitlines()
    summary = records.read_json(job.run_dir / "summary.json") if (job.run_dir / "summary.json").exists() else {}
    status = summary.get("status", "failed")
    if code != 0 and status in ("complete", "running"):
        status = "failed"
    return {"name": job.name, "status": status, "test_acc": summary.get("test_acc"),
            "seconds": round(time.perf_counter() - t0, 1),
            "error": "" if status == "complete" else _error_line(tail, summary)}


def _error_line(lines: list[str], summary: dict) -> str:
    """The run's own message, else the last 'SomeError: ...' line papermill printed."""
    if summary.get("message"):
        return summary["message"]
    errors = [t.strip() for t in lines if re.match(r"^\s*[\w.]*(Error|Exception|Interrupt)\b.*:", t)]
    return (errors or [t for t in lines if t.strip()] or ["no output"])[-1][:300]
