"""Sweep jobs as Ray tasks: each asks for the CPUs/GPUs of one run, failures retried a few times.

Run directories must be on a filesystem every node sees (the sweep's --out); each task runs the
same papermill job as the local executor, so a re-submitted sweep skips what is complete.
"""
from __future__ import annotations

from .jobs import Job, cpu_threads, run_job, training_notebook


class RunFailed(RuntimeError):
    pass


def _task(job: Job, env: dict, notebook) -> dict:
    result = run_job(job, env=env, notebook=notebook)
    if result["status"] == "failed":  # raise so Ray retries; diverged runs are deterministic
        raise RunFailed(f"{job.name}: {result['error']}")
    return result


def run_ray(jobs: list[Job], address: str | None = None, retries: int = 1, progress: bool = True,
            cpus_per_run: float = 1.0, gpus_per_run: float | None = None) -> list[dict]:
    import ray
    from tqdm.auto import tqdm

    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False,
                 configure_logging=False)
    if gpus_per_run is None:  # one GPU per run where the cluster has GPUs
        gpus_per_run = 1.0 if ray.cluster_resources().get("GPU", 0) else 0.0
    remote = ray.remote(num_cpus=cpus_per_run, num_gpus=gpus_per_run, max_retries=retries,
                        retry_exceptions=[RunFailed])(_task)
    env = {} if gpus_per_run else cpu_threads(cpus_per_run)
    notebook = training_notebook()
    pending = {remote.remote(job, env, notebook): job for job in jobs}
    results = []
    with tqdm(total=len(pending), desc="sweep (ray)", disable=not progress) as bar:
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            job = pending.pop(done[0])
            try:
                results.append(ray.get(done[0]))
            except Exception as e:  # retries exhausted: record and go on
                msg = str(getattr(e, "cause", None) or e).strip().splitlines()
                results.append({"name": job.name, "status": "failed", "test_acc": None,
                                "seconds": 0.0, "error": msg[-1][:300] if msg else type(e).__name__})
            bar.update()
    return results
