"""Run directories: config.json, tidy metrics.csv, summary.json, checkpoints/.

Every write goes to a temporary file in the same folder and is renamed into place, so a
killed process never leaves a half-written record behind.
"""
from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import tempfile
from pathlib import Path

import torch

METRIC_COLUMNS = ["epoch", "mechanism", "split", "metric", "value"]


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_json(path: Path, obj) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def read_json(path: Path):
    return json.loads(Path(path).read_text())


def write_metrics(path: Path, rows: list[dict]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=METRIC_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_bytes(path, buf.getvalue().encode())


def read_metrics(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return [
            {**r, "epoch": int(r["epoch"]), "value": float(r["value"])} for r in csv.DictReader(f)
        ]


def save_checkpoint(path: Path, state: dict) -> None:
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(path, buf.getvalue())


def load_checkpoint(path: Path) -> dict:
    """Load a checkpoint; a truncated or foreign file raises ValueError naming it."""
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # torch raises several types for a damaged file
        raise ValueError(f"checkpoint {path} is unreadable ({type(e).__name__}); delete it to restart the run") from e


def git_hash() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
            cwd=Path(__file__).resolve().parent,
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True,
            timeout=5, cwd=Path(__file__).resolve().parent,
        )
        if out.returncode != 0:
            return "unknown"
        return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def package_versions() -> dict:
    from importlib import metadata
    import platform

    names = ["torch", "torchvision", "spikingjelly", "numpy", "scikit-learn", "eicil"]
    versions = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def find_runs(root: Path) -> list[Path]:
    """Every run directory (one holding a config.json) below root, sorted."""
    return sorted(p.parent for p in Path(root).rglob("config.json"))
