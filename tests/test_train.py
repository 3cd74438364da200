"""Each mechanism moves exactly the weights it should; runs are seeded and resumable."""
import pytest
import torch

from eicil.models import create_model, stdp_layers
from eicil.records import read_json, read_metrics
from eicil.train import Config, config_from, mechanism, stdp_pairs, train, train_epoch


def one_epoch(mech, stdp_lr):
    torch.manual_seed(0)
    model = create_model("csnn", in_channels=1, num_classes=10, width=0.5, hidden=16)
    x, y = torch.rand(16, 1, 8, 8), torch.randint(0, 10, (16,))
    loader = [(x[:8], y[:8]), (x[8:], y[8:])]
    pairs = stdp_pairs(model, x[:2], 2)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    cfg = Config(timesteps=2)
    with mechanism(model, pairs, mech) as rec:
        train_epoch(model, loader, torch.optim.Adam(model.parameters(), lr=1e-2), cfg, mech, rec, stdp_lr,
                    torch.device("cpu"), False)
    after = model.state_dict()
    moved = {k for k in before if not torch.equal(before[k], after[k]) and "running" not in k and "num_batches" not in k}
    names = {id(p): n for n, p in model.named_parameters()}
    return moved, {names[id(m.weight)] for m in stdp_layers(model, mech)}, before, after, model


def test_gs_moves_every_weight():
    moved, _, *_ , model = one_epoch("gs", 0.1)
    assert moved == {n for n, _ in model.named_parameters()}


@pytest.mark.parametrize("mech", ["stdp-bw", "stdp-conv"])
def test_stdp_only_weights_move_by_stdp_alone(mech):
    moved, stdp_names, *_ , model = one_epoch(mech, 0.1)
    assert stdp_names and moved == {n for n, _ in model.named_parameters()}
    moved0, *_ = one_epoch(mech, 0.0)  # no STDP step: the STDP weights must stay put
    assert moved0 == moved - stdp_names


def test_stdp_bw_gs_adds_stdp_on_top_of_backprop():
    moved, stdp_names, _, with_stdp, _ = one_epoch("stdp-bw-gs", 0.1)
    moved0, _, _, without, _ = one_epoch("stdp-bw-gs", 0.0)
    assert stdp_names <= moved and stdp_names <= moved0  # backprop still moves the convs
    for n in stdp_names:
        assert not torch.equal(with_stdp[n], without[n])


def test_null_updates_no_weight_but_bn_statistics_move():
    moved, _, before, after, _ = one_epoch("null", 0.1)
    assert moved == set()
    assert any(not torch.equal(before[k], after[k]) for k in before if "running_mean" in k)


def smoke(tmp_path, **kw):
    return config_from("smoke", out=str(tmp_path), **kw)


def test_seeded_runs_repeat_and_records_are_complete(tmp_path):
    a = train(smoke(tmp_path, method="gsgi", k=2, name="a"), progress=False)
    b = train(smoke(tmp_path, method="gsgi", k=2, name="b"), progress=False)
    c = train(smoke(tmp_path, method="gsgi", k=2, name="c", seed=1), progress=False)
    ra, rb, rc = (read_metrics(tmp_path / n / "metrics.csv") for n in "abc")
    strip = lambda rows: [(r["epoch"], r["mechanism"], r["split"], r["metric"], r["value"]) for r in rows if r["metric"] != "seconds"]  # noqa: E731
    assert strip(ra) == strip(rb) and strip(ra) != strip(rc)
    assert [r["mechanism"] for r in ra if r["metric"] == "acc" and r["split"] == "test"] == ["gs", "stdp-bw-gs"]
    for key in ("test_acc", "best_test_acc", "best_val_acc", "epochs_completed", "wall_seconds"):
        assert key in a
    assert a["status"] == "complete" and a["epochs_completed"] == 2
    cfg = read_json(tmp_path / "a" / "config.json")
    assert cfg["config"]["method"] == "gsgi" and cfg["schedule"] == ["gs", "stdp-bw-gs"]
    assert cfg["versions"]["torch"] and cfg["git"]
    assert (tmp_path / "a" / "checkpoints" / "last.pt").exists()
    assert (tmp_path / "a" / "checkpoints" / "best.pt").exists()
    assert 0 <= a["test_acc"] <= a["best_test_acc"] <= 1


def test_stdp_changes_target_weights_during_training(tmp_path):
    """An stdp-bw run's hidden Linear differs from the same run with the STDP step switched off."""
    runs = [train(smoke(tmp_path, method="stdp-bw", epochs=1, stdp_lr=lr, name=f"lr{lr}"), progress=False)
            for lr in (0.0, 0.1)]
    w = [torch.load(f"{r['run_dir']}/checkpoints/last.pt", weights_only=False)["model"]["fc_hidden.weight"] for r in runs]
    init = create_model("csnn", in_channels=1, num_classes=10, width=0.5, hidden=32)
    assert not torch.equal(w[0], w[1])
    assert w[0].shape == init.fc_hidden.weight.shape


def test_resume_continues_and_matches_uninterrupted(tmp_path):
    full = train(smoke(tmp_path, method="gsi", k=2, epochs=3, name="full"), progress=False)
    part = smoke(tmp_path, method="gsi", k=2, epochs=3, name="part")

    def stop_after_two(info):
        if info["epoch"] == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(part, progress=False, on_epoch=stop_after_two)
    assert read_json(tmp_path / "part" / "summary.json")["status"] == "running"
    resumed = train(part, progress=False)
    assert resumed["epochs_completed"] == 3
    key = lambda rows: [(r["epoch"], r["metric"], r["split"], r["value"]) for r in rows if r["metric"] != "seconds"]  # noqa: E731
    assert key(read_metrics(tmp_path / "part" / "metrics.csv")) == key(read_metrics(tmp_path / "full" / "metrics.csv"))
    assert resumed["test_acc"] == full["test_acc"]


def test_complete_run_is_not_repeated_and_other_settings_are_refused(tmp_path):
    first = train(smoke(tmp_path, name="r"), progress=False)
    again = train(smoke(tmp_path, name="r"), progress=False)
    assert again["wall_seconds"] == first["wall_seconds"]
    with pytest.raises(ValueError, match=r"other settings \(lr\)"):
        train(smoke(tmp_path, name="r", lr=0.5), progress=False)
    with pytest.raises(ValueError, match=r"other settings \(epochs\)"):
        train(smoke(tmp_path, name="r", epochs=3), progress=False)
