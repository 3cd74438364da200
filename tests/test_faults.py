"""Runs survive SIGKILL, refuse damaged checkpoints and stop cleanly on NaN or OOM."""
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from eicil import train as train_mod
from eicil.cli import main
from eicil.records import read_json, read_metrics
from eicil.config import config_from
from eicil.train import train

ARGS = ["--profile", "smoke", "--method", "gsgi", "--k", "2", "--epochs", "8", "--quiet"]


def rows(path):
    return [(r["epoch"], r["mechanism"], r["split"], r["metric"], r["value"])
            for r in read_metrics(path) if not r["metric"].endswith("seconds")]


def test_sigkill_then_resume_matches_uninterrupted_run(tmp_path):
    cmd = [sys.executable, "-m", "eicil", "train", *ARGS, "--out", str(tmp_path)]
    subprocess.run(cmd + ["--name", "full"], check=True, capture_output=True)
    proc = subprocess.Popen(cmd + ["--name", "killed"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    metrics = tmp_path / "killed" / "metrics.csv"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if metrics.exists() and max((r[0] for r in rows(metrics)), default=0) >= 2:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the run ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    interrupted = read_json(tmp_path / "killed" / "summary.json")
    assert interrupted["status"] == "running" and interrupted["epochs_completed"] < 8
    subprocess.run(cmd + ["--name", "killed"], check=True, capture_output=True)
    assert rows(metrics) == rows(tmp_path / "full" / "metrics.csv")
    final = read_json(tmp_path / "killed" / "summary.json")
    assert final["status"] == "complete" and final["test_acc"] == read_json(tmp_path / "full" / "summary.json")["test_acc"]
    assert not list((tmp_path / "killed").rglob("*.tmp"))


def test_corrupted_checkpoint_is_named(tmp_path, capsys):
    cfg = config_from("smoke", out=str(tmp_path), name="r", epochs=3)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, progress=False, on_epoch=lambda info: (_ for _ in ()).throw(KeyboardInterrupt))
    ckpt = tmp_path / "r" / "checkpoints" / "last.pt"
    ckpt.write_bytes(ckpt.read_bytes()[:100])
    code = main(["train", "--profile", "smoke", "--epochs", "3", "--out", str(tmp_path), "--name", "r", "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "last.pt" in err and "unreadable" in err and len(err.splitlines()) == 1


def test_nan_loss_stops_with_a_status(tmp_path, monkeypatch, capsys):
    real = train_mod.F.cross_entropy
    monkeypatch.setattr(train_mod.F, "cross_entropy", lambda out, y, **kw: real(out, y, **kw) * float("nan"))
    code = main(["train", *ARGS, "--epochs", "2", "--out", str(tmp_path), "--name", "nan"])
    summary = read_json(tmp_path / "nan" / "summary.json")
    assert code == 3 and summary["status"] == "diverged" and "nan" in summary["message"]
    assert "diverged" in capsys.readouterr().err


def test_out_of_memory_is_reported(tmp_path, monkeypatch, capsys):
    def oom(*a, **k):
        raise torch.OutOfMemoryError("CUDA out of memory")
    monkeypatch.setattr(train_mod, "train_epoch", oom)
    code = main(["train", *ARGS, "--out", str(tmp_path), "--name", "oom"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "out of memory" in err and "--batch-size" in err
    assert read_json(tmp_path / "oom" / "summary.json")["status"] == "failed"
