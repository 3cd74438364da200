"""`eicil sweep CONFIG.yaml`: execute notebooks/01_train.ipynb with papermill for every grid cell.

A config holds a profile, fixed settings and one or more grids (each a dict of lists):

    profile: cpu
    settings: {epochs: 20}
    grids:
      - {model: [csnn], method: [gs, gsgi], k: [5], seed: [0, 1, 2]}

Each run gets its own run directory (out/<run name>/) holding the executed notebook. Complete
runs are skipped, so re-submitting a sweep finishes what is missing; a failed run is recorded in
out/sweep.csv and the others go on.
"""
from __future__ import annotations

import itertools
import re
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from pathlib import Path

import yaml

from . import cycle, records
from .train import Config, ConfigError, config_from, run_name, validate

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "01_train.ipynb"
CONFIG_KEYS = {"profile", "settings", "grids"}
NAMED = {"model", "dataset", "method", "k", "seed"}  # already part of every run name


@dataclass
class Job:
    name: str
    params: dict  # papermill parameters: profile + the settings that differ from it
    run_dir: Path


def load_config(path: str | Path) -> dict:
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"sweep config {path} does not exist")
    try:
        cfg = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"sweep config {path} is not valid YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(cfg, dict):
        raise ConfigError(f"sweep config {path} must be a mapping with keys {', '.join(sorted(CONFIG_KEYS))}")
    unknown = sorted(set(cfg) - CONFIG_KEYS)
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(CONFIG_KEYS))}")
    if not cfg.get("grids"):
        raise ConfigError(f"{path}: 'grids' must list at least one grid")
    return cfg


def expand(cfg: dict, out: str | Path, source: str = "config") -> list[Job]:
    """Every grid cell as a Job, validated up front; duplicates (k of a non-cycle method) merged."""
    names = {f.name for f in fields(Config)}
    profile = cfg.get("profile", "cpu")
    settings = dict(cfg.get("settings") or {})
    jobs: dict[str, Job] = {}
    for g, grid in enumerate(cfg["grids"]):
        if not isinstance(grid, dict):
            raise ConfigError(f"{source}: grid {g + 1} must be a mapping of setting -> list of values")
        bad = sorted((set(grid) | set(settings)) - names)
        if bad:
            raise ConfigError(f"{source}: unknown setting(s) {', '.join(bad)} in grid {g + 1}")
        for key in ("out", "name"):
            if key in grid or key in settings:
                raise ConfigError(f"{source}: '{key}' is set by the sweep, not the config")
        axes = {k: v if isinstance(v, list) else [v] for k, v in grid.items()}
        for values in itertools.product(*axes.values()):
            cell = {**settings, **dict(zip(axes, values))}
            if cell.get("method") in cycle.SINGLE:
                cell.pop("k", None)  # K means nothing without a cycle: one run, not one per K
            # settings a grid varies beyond the standard ones name the run, so runs never collide
            extra = "".join(f"-{k}={v}" for k, v in cell.items() if k in grid and k not in NAMED)
            try:
                run_cfg = config_from(profile, **cell, out=str(out))
                validate(run_cfg)
            except (ConfigError, ValueError, TypeError) as e:
                raise ConfigError(f"{source}: grid {g + 1} cell {cell}: {e}") from None
            name = run_name(run_cfg) + extra
            params = {"profile": profile, **cell, "out": str(out), **({"name": name} if extra else {})}
            jobs[name] = Job(name, params, Path(out) / name)
    return list(jobs.values())


def is_complete(job: Job) -> bool:
    path = job.run_dir / "summary.json"
    return path.exists() and records.read_json(path).get("status") == "complete"


def run_job(job: Job, env: dict | None = None) -> dict:
    """Execute the training notebook for one job in a fresh process; never raises."""
    job.run_dir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "papermill", str(NOTEBOOK), str(job.run_dir / "train.ipynb"),
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


def gpu_count() -> int:
    try:
        import torch
        return torch.cuda.device_count()
    except Exception:  # a broken CUDA setup means: run on CPU
        return 0


def run_sweep(config: str | Path, out: str | Path, jobs: int = 1, executor: str = "local",
              address: str | None = None, retries: int = 1, progress: bool = True,
              cpus_per_run: float = 1.0, gpus_per_run: float | None = None) -> list[dict]:
    """Run every missing job of a sweep; returns one result dict per job (skipped ones included)."""
    if jobs < 1:
        raise ConfigError(f"--jobs must be >= 1, got {jobs}")
    all_jobs = expand(load_config(config), out, source=str(config))
    todo = [j for j in all_jobs if not is_complete(j)]
    done = [{"name": j.name, "status": "complete", "test_acc": records.read_json(j.run_dir / "summary.json")["test_acc"],
             "seconds": 0.0, "error": "skipped: already complete"} for j in all_jobs if j not in todo]
    if executor == "ray":
        from .ray_executor import run_ray
        results = run_ray(todo, address=address, retries=retries, progress=progress,
                          cpus_per_run=cpus_per_run, gpus_per_run=gpus_per_run)
    elif executor == "local":
        results = _run_local(todo, jobs, progress)
    else:
        raise ConfigError(f"unknown executor {executor!r}; choose local or ray")
    results = done + results
    _write_status(Path(out), results)
    return results


def _run_local(todo: list[Job], jobs: int, progress: bool) -> list[dict]:
    from tqdm.auto import tqdm

    import queue

    gpus = gpu_count()
    # CPU jobs share the cores: oversubscribed OpenMP threads only spin against each other
    threads = {"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // jobs)))}
    slots: queue.Queue = queue.Queue()
    for i in range(jobs):
        slots.put(i)

    def work(job: Job) -> dict:
        slot = slots.get()  # a slot is a GPU while it runs, so two jobs never share one by accident
        try:
            return run_job(job, env={**threads, **({"CUDA_VISIBLE_DEVICES": str(slot % gpus)} if gpus else {})})
        finally:
            slots.put(slot)

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(tqdm(pool.map(work, todo), total=len(todo), desc="sweep", disable=not progress))


def _write_status(out: Path, results: list[dict]) -> None:
    import csv
    import io
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=["name", "status", "test_acc", "seconds", "error"], lineterminator="\n")
    w.writeheader()
    w.writerows(sorted(results, key=lambda r: r["name"]))
    records.atomic_write_bytes(out / "sweep.csv", buf.getvalue().encode())


def main(args) -> int:
    results = run_sweep(args.config, args.out, jobs=args.jobs, executor=args.executor,
                        address=args.address, retries=args.retries, progress=not args.quiet,
                        cpus_per_run=args.cpus_per_run, gpus_per_run=args.gpus_per_run)
    bad = [r for r in results if r["status"] != "complete"]
    ran = sum(1 for r in results if not r["error"].startswith("skipped"))
    print(f"sweep: {len(results)} runs ({ran} run now, {len(results) - ran} already complete), "
          f"{len(bad)} not complete; status in {Path(args.out) / 'sweep.csv'}")
    for r in bad:
        print(f"  {r['name']}: {r['status']}: {r['error']}", file=sys.stderr)
    return 1 if bad else 0
