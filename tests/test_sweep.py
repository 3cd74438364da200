"""Sweeps: validated configs, skipped complete runs, failures recorded, Ray executor."""
import csv
from pathlib import Path

import pytest
import yaml

from eicil.cli import main
from eicil.config import config_from
from eicil.cycle import relevant
from eicil.records import read_json
from eicil.sweep import expand, load_config, run_sweep


def write(tmp_path, cfg, name="sweep.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(cfg))
    return path


SMOKE = {"profile": "smoke", "settings": {"epochs": 1, "train_subset": 64},
         "grids": [{"method": ["gs", "gsgi"], "k": [2], "seed": [0]}]}


@pytest.mark.parametrize("cfg,needle", [
    ({"profile": "cpu", "grid": []}, "unknown key(s) grid"),
    ({"grids": [{"methd": ["gs"]}]}, "unknown setting(s) methd"),
    ({"grids": [{"method": ["gsi"], "k": [5, 0]}]}, "'k': 0"),
    ({"grids": [{"method": ["gsi"], "k": [-1]}]}, "|K| >= 2"),
    ({"grids": [{"model": ["resnet19"]}]}, "unknown model 'resnet19'"),
    ({"grids": [{"seed": [0], "out": ["x"]}]}, "'out' is set by the sweep"),
    ({"profile": "gpu", "grids": [{"seed": [0]}]}, "unknown profile"),
    ({"grids": []}, "at least one grid"),
    ({"settings": {"epochs": "ten"}, "grids": [{"seed": [0]}]}, "epochs must be an integer, got 'ten'"),
    ({"grids": [{"method": ["gsi"], "k": [2.5]}]}, "k must be an integer, got 2.5"),
    ({"grids": [{"method": ["gsi"], "handoff": ["first"]}]}, "handoff must be last or best, got 'first'"),
])
def test_bad_configs_name_the_offending_item(tmp_path, capsys, cfg, needle):
    code = main(["sweep", str(write(tmp_path, cfg)), "--out", str(tmp_path / "runs"), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and needle in err and len(err.splitlines()) == 1, err


def test_expand_merges_k_of_single_methods_and_names_extra_axes(tmp_path):
    jobs = expand({"grids": [{"method": ["gs", "gsi"], "k": [3, 5], "seed": [0]},
                             {"method": ["gsi"], "k": [5], "stdp_lr": [0.1, 0.01], "seed": [0]}]}, tmp_path)
    names = sorted(j.name for j in jobs)
    assert names == ["csnn-digits-gs-s0", "csnn-digits-gsi-k3-s0", "csnn-digits-gsi-k5-s0",
                     "csnn-digits-gsi-k5-s0-stdp_lr=0.01", "csnn-digits-gsi-k5-s0-stdp_lr=0.1"]


# The committed sweeps and the number of runs their READMEs and headers state.
SWEEPS = {"cpu.yaml": 85, "study.yaml": 158, "dose.yaml": 435, "dose_data.yaml": 18, "shrink_cos.yaml": 14, "study_deep.yaml": 126}


@pytest.mark.parametrize("name,count", SWEEPS.items())
def test_committed_sweeps_expand_to_their_stated_size(name, count, tmp_path):
    path = Path(__file__).parent.parent / "configs" / name
    assert len(expand(load_config(path), tmp_path)) == count


def test_profile_flag_runs_a_grid_under_another_profile(tmp_path, monkeypatch, capsys):
    import eicil.sweep
    ran = []
    monkeypatch.setattr(eicil.sweep, "_run_local", lambda todo, jobs, progress: ran.extend(todo) or [])
    deep = Path(__file__).parent.parent / "configs" / "study_deep.yaml"
    assert main(["sweep", str(deep), "--out", str(tmp_path), "--profile", "paper", "--quiet"]) == 0
    assert len(ran) == 126 and {j.params["profile"] for j in ran} == {"paper"}
    paper = [config_from(**{k: v for k, v in j.params.items() if k != "out"}) for j in ran]
    assert {(c.width, c.epochs, c.timesteps) for c in paper} == {(1.0, 350, 4)}
    assert {c.k for c in paper if relevant(c.method, "k")} == {2}
    assert {c.stdp_dose for c in paper} == {0.0, 0.2, 2.0}
    with pytest.raises(SystemExit):
        main(["sweep", str(deep), "--out", str(tmp_path), "--profile", "gpu"])
    err = capsys.readouterr().err.strip()
    assert "invalid choice" in err and len(err.splitlines()) == 1, err


def test_local_sweep_runs_skips_and_records_failures(tmp_path):
    cfg = {**SMOKE, "grids": SMOKE["grids"] + [{"method": ["gs"], "dataset": ["cifar10"],
                                                 "data_root": [str(tmp_path / "none")], "seed": [0]}]}
    path, out = write(tmp_path, cfg), tmp_path / "runs"
    results = {r["name"]: r for r in run_sweep(path, out, jobs=2, progress=False)}
    assert results["csnn-digits-gs-s0"]["status"] == "complete"
    assert results["csnn-digits-gsgi-k2-s0"]["status"] == "complete"
    failed = [r for r in results.values() if r["status"] != "complete"]
    assert len(failed) == 1 and "cifar-10-batches-py" in failed[0]["error"]
    assert (out / "csnn-digits-gs-s0" / "train.ipynb").exists()
    with open(out / "sweep.csv") as f:
        assert {r["status"] for r in csv.DictReader(f)} == {"complete", "failed"}
    again = run_sweep(path, out, jobs=1, progress=False)
    skipped = [r for r in again if r["error"].startswith("skipped")]
    assert len(skipped) == 2


def test_ray_sweep_on_a_local_instance(tmp_path):
    import ray
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        path, out = write(tmp_path, SMOKE), tmp_path / "runs"
        results = run_sweep(path, out, executor="ray", retries=1, progress=False)
        assert sorted(r["status"] for r in results) == ["complete", "complete"]
        assert read_json(out / "csnn-digits-gsgi-k2-s0" / "summary.json")["epochs_completed"] == 1
        again = run_sweep(path, out, executor="ray", progress=False)
        assert all(r["error"].startswith("skipped") for r in again)
    finally:
        ray.shutdown()


def test_settings_a_method_ignores_make_one_run(tmp_path):
    jobs = expand({"grids": [{"method": ["gs", "gsgi"], "k": [5], "stdp_lr": [0.1, 1.0], "handoff": ["last", "best"],
                              "seed": [0]}]}, tmp_path)
    names = sorted(j.name for j in jobs)
    assert names[0] == "csnn-digits-gs-s0" and len(names) == 1 + 4  # gs once; gsgi per stdp_lr and handoff
    assert "stdp_lr" not in jobs[0].params and "handoff" not in jobs[0].params


def test_cpu_jobs_get_their_share_of_threads(monkeypatch):
    from eicil.jobs import cpu_threads
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert cpu_threads(2.0) == {"OMP_NUM_THREADS": "2"} and cpu_threads(0.5) == {"OMP_NUM_THREADS": "1"}
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert cpu_threads(2.0) == {}  # the user's own setting wins
