"""`eicil sweep CONFIG.yaml`: execute notebooks/01_train.ipynb with papermill for every grid cell.

A config holds a profile, fixed settings and one or more grids (each a dict of lists):

    profile: cpu
    settings: {epochs: 20}
    grids:
      - {model: [csnn], method: [gs, gsgi], k: [5], seed: [0, 1, 2]}

`--profile` runs a config's grid under another profile (a CPU grid at the paper's scale).

Each run gets its own run directory (out/<run name>/) holding the executed notebook. Complete
runs are skipped, so re-submitting a sweep finishes what is missing; a failed run is recorded in
out/sweep.csv and the others go on.
"""
from __future__ import annotations

import itertools
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

from . import cycle, records
from .config import PROFILES, TYPES, Config, ConfigError, config_from, run_name, validate
from .jobs import Job, cpu_threads, is_complete, run_job, training_notebook

CONFIG_KEYS = {"profile", "settings", "grids"}
NAMED = {"model", "dataset", "method", "k", "seed"}  # already part of every run name


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
    names = set(TYPES)
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
            method = cell.get("method", PROFILES.get(profile, {}).get("method", Config.method))
            for unused in [s for s in cell if not cycle.relevant(method, s)]:
                cell.pop(unused)  # a setting the method ignores (K of gs): one run, not one per value
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


def gpu_count() -> int:
    try:
        import torch
        return torch.cuda.device_count()
    except Exception:  # a broken CUDA setup means: run on CPU
        return 0


def run_sweep(config: str | Path, out: str | Path, jobs: int = 1, executor: str = "local",
              address: str | None = None, retries: int = 1, progress: bool = True,
              cpus_per_run: float = 1.0, gpus_per_run: float | None = None,
              profile: str | None = None) -> list[dict]:
    """Run every missing job of a sweep; returns one result dict per job (skipped ones included).
    `profile` replaces the config's own profile (None keeps it)."""
    if jobs < 1:
        raise ConfigError(f"--jobs must be >= 1, got {jobs}")
    cfg = load_config(config)
    if profile is not None:
        cfg["profile"] = profile
    all_jobs = expand(cfg, out, source=str(config))
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
    threads = {} if gpus else cpu_threads((os.cpu_count() or 1) / jobs)
    notebook = training_notebook()
    slots: queue.Queue = queue.Queue()
    for i in range(jobs):
        slots.put(i)

    def work(job: Job) -> dict:
        slot = slots.get()  # a slot is a GPU while it runs, so two jobs never share one by accident
        try:
            return run_job(job, env={**threads, **({"CUDA_VISIBLE_DEVICES": str(slot % gpus)} if gpus else {})},
                           notebook=notebook)
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
                        cpus_per_run=args.cpus_per_run, gpus_per_run=args.gpus_per_run,
                        profile=args.profile)
    bad = [r for r in results if r["status"] != "complete"]
    ran = sum(1 for r in results if not r["error"].startswith("skipped"))
    print(f"sweep: {len(results)} runs ({ran} run now, {len(results) - ran} already complete), "
          f"{len(bad)} not complete; status in {Path(args.out) / 'sweep.csv'}")
    for r in bad:
        print(f"  {r['name']}: {r['status']}: {r['error']}", file=sys.stderr)
    return 1 if bad else 0
