"""Bad input exits non-zero with one clear line, never a traceback."""
import json

import pytest

from eicil.cli import main


@pytest.mark.parametrize("args,needle", [
    (["--model", "resnet19"], "unknown model 'resnet19'"),
    (["--method", "gsgl"], "unknown method 'gsgl'"),
    (["--dataset", "imagenet"], "unknown dataset"),
    (["--method", "gsi", "--k", "1"], "|K| >= 2"),
    (["--k", "0"], "|K| >= 2"),
    (["--timesteps", "0"], "timesteps"),
    (["--epochs", "-1"], "epochs"),
    (["--weight-dep", "hard"], "weight dependence"),
    (["--device", "cuda"] , "CUDA is not available"),
    (["--profile", "gpu"], "invalid choice"),
    (["--epoch", "3"], "unrecognized arguments"),
    (["--k", "five"], "invalid int value"),
    (["--tau-pre", "0.5"], "tau_pre and tau_post must be >= 1"),
    (["--stem", "tiny"], "unknown stem 'tiny'"),
    (["--stdp-dose", "-1"], "stdp_dose must be >= 0"),
    (["--stdp-dose", "inf"], "stdp_dose must be >= 0"),
    (["--optimizer", "adamw"], "optimizer must be adam or sgd"),
    (["--lr-schedule", "step"], "lr_schedule must be cosine or linear"),
    (["--warmup", "1.5"], "warmup is a share"),
    (["--label-smoothing", "1"], "label_smoothing must be in [0, 1)"),
    (["--weight-decay", "-0.1"], "weight_decay must be >= 0"),
    (["--compile", "yes"], "compile must be auto, on, off"),
])
def test_bad_input_is_one_line(args, needle, tmp_path, capsys):
    with pytest.raises(SystemExit) if "--profile" in args or "--epoch" in args or "five" in args else _no_exit():
        code = main(["train", "--out", str(tmp_path), *args])
        assert code == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and "Traceback" not in err and len(err.splitlines()) == 1, err


class _no_exit:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_missing_data_offline_names_the_folder(tmp_path, capsys):
    code = main(["train", "--dataset", "cifar10", "--data-root", str(tmp_path / "nowhere"), "--out", str(tmp_path), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "cifar-10-batches-py" in err and "--download" in err


def test_dry_run_prints_schedule(tmp_path, capsys):
    assert main(["train", "--method", "gsgi", "--k", "-3", "--epochs", "3", "--dry-run", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert '"stdp-bw-gs",\n    "stdp-bw-gs",\n    "gs"' in out
    assert not any(tmp_path.iterdir())


def test_deep_profile_resolves_per_model(tmp_path, capsys):
    for model, width, epochs in (("vgg11", 0.25, 4), ("resnet18", 0.125, 4), ("ei_net", 0.25, 4)):
        assert main(["train", "--profile", "deep", "--model", model, "--dry-run"]) == 0
        cfg = json.loads(capsys.readouterr().out)["config"]
        assert (cfg["width"], cfg["epochs"], cfg["dataset"], cfg["optimizer"], cfg["timesteps"]) == (
            width, epochs, "cifar10", "sgd", 2)
    assert main(["train", "--profile", "deep", "--model", "vgg11", "--width", "0.5", "--dry-run"]) == 0
    assert json.loads(capsys.readouterr().out)["config"]["width"] == 0.5  # an explicit option wins


def test_help_states_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    assert "--stdp-lr" in out and "default: 0.01" in out and "--profile" in out


def test_train_smoke_and_info(tmp_path, capsys, monkeypatch):
    assert main(["train", "--profile", "smoke", "--method", "stdp-bw", "--out", str(tmp_path), "--quiet"]) == 0
    assert "test_acc" in capsys.readouterr().out
    assert main(["info", "ei_net", "--width", "0.25"]) == 0
    assert "stdp-conv" in capsys.readouterr().out
    assert main(["report", str(tmp_path), "--by", "method,weight_dep", "--figures", str(tmp_path / "fig")]) == 0
    assert "stdp-bw" in capsys.readouterr().out and (tmp_path / "fig" / "summary_by.csv").exists()
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    assert main(["report", str(tmp_path), "--by", "method"]) == 0  # no --figures: prints, writes nothing
    assert "wrote" not in capsys.readouterr().out and not any((tmp_path / "cwd").iterdir())
    assert main(["report", str(tmp_path), "--by", "methd"]) == 2
    assert "unknown column(s) methd" in capsys.readouterr().err
