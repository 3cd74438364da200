"""Each mechanism moves exactly the weights its MECHANISMS row says; runs are seeded and resumable."""
import functools

import pytest
import torch

from eicil import cycle
from eicil import train as train_mod
from eicil.config import config_from
from eicil.records import load_checkpoint, read_json, read_metrics
from eicil.train import RunState, is_better, setup, train, train_epoch


def tiny(**kw):
    return config_from("smoke", train_subset=16, batch_size=8, timesteps=2, hidden=16, lr=1e-2, **kw)


def one_epoch(mech, stdp_lr):
    """(names of parameters that moved, names of the mechanism's STDP targets, before, after)."""
    run = setup(tiny(stdp_lr=stdp_lr))
    before = {k: v.clone() for k, v in run.model.state_dict().items()}
    train_epoch(run, mech)
    after = run.model.state_dict()
    params = {n for n, _ in run.model.named_parameters()}
    moved = {k for k in params if not torch.equal(before[k], after[k])}
    names = {id(p): n for n, p in run.model.named_parameters()}
    targets = {names[id(m.weight)] for m in cycle.stdp_targets(run.model, mech)}
    frozen = {names[id(m.weight)] for m in cycle.frozen(run.model, mech)}
    return moved, targets, frozen, params, before, after


@pytest.mark.parametrize("mech", list(cycle.MECHANISMS))
def test_each_mechanism_moves_what_its_row_says(mech):
    row = cycle.MECHANISMS[mech]
    moved0, targets, frozen, params, _, without = one_epoch(mech, 0.0)
    assert moved0 == ((params - frozen) if row.optimizer_steps else set())
    moved, _, _, _, _, with_stdp = one_epoch(mech, 0.1)
    stepped = targets if row.move != "none" else set()
    assert moved == moved0 | stepped  # STDP (or its matched shrinkage) moves the targets, nothing else
    for name in targets:  # ... by a step that is really there
        assert torch.equal(with_stdp[name], without[name]) == (row.move == "none")


def test_rows_name_the_paper_mechanisms():
    only_stdp = [m for m, r in cycle.MECHANISMS.items() if r.move == "stdp" and not r.backprop_on_targets]
    assert only_stdp == ["stdp-bw", "stdp-conv"]
    torch.set_flush_denormal(False)
    run = setup(tiny())
    assert torch.tensor(1e-30) * torch.tensor(1e-10) == 0  # setup flushes subnormals (collapsed runs: 2-6x slower)
    assert cycle.stdp_targets(run.model, "stdp-bw") == [run.model.fc_hidden]
    assert cycle.stdp_targets(run.model, "gs") == cycle.stdp_targets(run.model, "null") == []
    assert set(run.pairs) == set(cycle.all_stdp_targets(run.model))


def test_null_epoch_moves_batchnorm_statistics():
    *_, before, after = one_epoch("null", 0.1)
    assert any(not torch.equal(before[k], after[k]) for k in before if "running_mean" in k)


def smoke(tmp_path, **kw):
    return config_from("smoke", out=str(tmp_path), **kw)


def test_seeded_runs_repeat_and_records_are_complete(tmp_path):
    a = train(smoke(tmp_path, method="gsgi", k=2, name="a"), progress=False)
    b = train(smoke(tmp_path, method="gsgi", k=2, name="b"), progress=False)
    c = train(smoke(tmp_path, method="gsgi", k=2, name="c", seed=1), progress=False)
    ra, rb, rc = (read_metrics(tmp_path / n / "metrics.csv") for n in "abc")
    strip = lambda rows: [(r["epoch"], r["mechanism"], r["split"], r["metric"], r["value"]) for r in rows if not r["metric"].endswith("seconds")]  # noqa: E731
    assert strip(ra) == strip(rb) and strip(ra) != strip(rc)
    assert [r["mechanism"] for r in ra if r["metric"] == "acc" and r["split"] == "test"] == ["gs", "stdp-bw-gs"]
    stdp = {r["epoch"]: r["value"] for r in ra if r["metric"] == "stdp_step"}
    assert stdp[1] == 0 and stdp[2] > 0  # STDP ran in the stdp-bw-gs epoch only
    assert a["status"] == "complete" and a["epochs_completed"] == 2
    cfg = read_json(tmp_path / "a" / "config.json")
    assert cfg["config"]["method"] == "gsgi" and cfg["schedule"] == ["gs", "stdp-bw-gs"]
    assert cfg["versions"]["torch"] and cfg["git"]
    assert cfg["ei_split"]["mechanism"] == "stdp-bw-gs" and cfg["ei_split"]["layers_inhibitory"] == 2
    assert (tmp_path / "a" / "checkpoints" / "last.pt").exists()
    assert (tmp_path / "a" / "checkpoints" / "best.pt").exists()
    assert 0 <= a["test_acc"] <= a["best_test_acc"] <= 1


def test_stdp_alone_moves_the_frozen_target_during_training(tmp_path):
    """stdp-bw drops fc_hidden's backprop update: with stdp_lr 0 the weight ends where it began, with
    stdp_lr 0.1 it does not."""
    init = setup(smoke(tmp_path, method="stdp-bw", epochs=1)).model.fc_hidden.weight.detach().clone()
    final = {}
    for lr in (0.0, 0.1):
        run = train(smoke(tmp_path, method="stdp-bw", epochs=1, stdp_lr=lr, name=f"lr{lr}"), progress=False)
        final[lr] = load_checkpoint(f"{run['run_dir']}/checkpoints/last.pt")["model"]["fc_hidden.weight"]
    assert torch.equal(final[0.0], init)
    assert (final[0.1] - init).abs().max() > 1e-6


def test_resume_continues_and_matches_uninterrupted(tmp_path):
    for handoff in ("last", "best"):
        full = train(smoke(tmp_path, method="gsi", k=2, epochs=4, handoff=handoff, name=f"full-{handoff}"),
                     progress=False)
        part = smoke(tmp_path, method="gsi", k=2, epochs=4, handoff=handoff, name=f"part-{handoff}")

        def stop_after_three(info):
            if info["epoch"] == 3:  # the next epoch is a hand-off (stdp-bw -> gs)
                raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            train(part, progress=False, on_epoch=stop_after_three)
        assert read_json(tmp_path / f"part-{handoff}" / "summary.json")["status"] == "running"
        resumed = train(part, progress=False)
        assert resumed["epochs_completed"] == 4
        key = lambda rows: [(r["epoch"], r["metric"], r["split"], r["value"]) for r in rows if not r["metric"].endswith("seconds")]  # noqa: E731
        assert key(read_metrics(tmp_path / f"part-{handoff}" / "metrics.csv")) == \
            key(read_metrics(tmp_path / f"full-{handoff}" / "metrics.csv"))
        assert resumed["test_acc"] == full["test_acc"]


def test_ties_go_to_the_lower_validation_loss():
    state = RunState(best_val=0.5, best_val_loss=1.0)
    assert is_better(state, 0.5, 0.9) and not is_better(state, 0.5, 1.1) and not is_better(state, 0.5, 1.0)
    assert is_better(state, 0.6, 9.0) and not is_better(state, 0.4, 0.1)
    assert is_better(RunState(), 0.0, 5.0)  # the first epoch is always the best so far


def test_handoff_best_on_a_plateau_reloads_the_latest_improvement(tmp_path, monkeypatch):
    """Validation accuracy flat, validation loss falling: each epoch is the new best, so a hand-off
    reloads the epoch just trained, not epoch 1."""
    real = train_mod.evaluate
    reloads = []

    def flat(run, loader):
        loss, acc = real(run, loader)
        return (1.0 / (run.state.epoch + 1), 0.5) if loader is run.data.val else (loss, acc)

    monkeypatch.setattr(train_mod, "evaluate", flat)
    real_load = torch.nn.Module.load_state_dict

    def spy(self, state, *a, **kw):
        if self.__class__.__name__ == "SpikingNet":
            reloads.append({k: v.clone() for k, v in state.items()})
        return real_load(self, state, *a, **kw)

    monkeypatch.setattr(torch.nn.Module, "load_state_dict", spy)
    done = train(smoke(tmp_path, method="gsni", k=2, epochs=4, handoff="best"), progress=False)
    assert done["best_epoch"] == 4
    ck = load_checkpoint(tmp_path / "csnn-digits-gsni-k2-s0" / "checkpoints" / "last.pt")
    assert ck["state"]["best_epoch"] == 4 and len(reloads) == 3  # hand-offs before epochs 2, 3, 4


def test_amp_runs_in_bfloat16_on_the_cpu():
    run = setup(tiny(amp=True))
    seen = []
    run.model.features[0].register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    out = train_epoch(run, "stdp-bw-gs")
    assert seen and set(seen) == {torch.bfloat16}
    assert sum(out["stdp"].values()) > 0 and out["loss"] == out["loss"]


def test_compiled_run_applies_the_same_stdp(tmp_path, monkeypatch):
    """A graph compiled in a gs epoch must not skip the recorder of the next stdp-bw-gs epoch.
    The eager backend keeps the test fast; the hook guards at fault live in dynamo, before any backend."""
    torch._dynamo.reset()
    monkeypatch.setattr(torch, "compile", functools.partial(torch.compile, backend="eager"))
    rows = {}
    for compiled in (False, True):
        run = train(smoke(tmp_path, method="gsgi", k=2, epochs=2, compile="on" if compiled else "off",
                          name=f"c{compiled}"),
                    progress=False)
        rows[compiled] = {r["epoch"]: r["value"] for r in read_metrics(f"{run['run_dir']}/metrics.csv")
                          if r["metric"] == "stdp_step"}
    torch._dynamo.reset()
    assert rows[False][2] > 0
    assert rows[True][2] == pytest.approx(rows[False][2], rel=1e-4)


def test_complete_run_is_not_repeated_and_other_settings_are_refused(tmp_path):
    first = train(smoke(tmp_path, name="r"), progress=False)
    again = train(smoke(tmp_path, name="r"), progress=False)
    assert again["wall_seconds"] == first["wall_seconds"]
    with pytest.raises(ValueError, match=r"other settings \(lr\)"):
        train(smoke(tmp_path, name="r", lr=0.5), progress=False)
    with pytest.raises(ValueError, match=r"other settings \(epochs\)"):
        train(smoke(tmp_path, name="r", epochs=3), progress=False)


def test_dose_compares_stdp_with_adam_on_the_same_weights():
    def rows(epoch, mech, stdp, adam, weight=10.0):
        return [{"epoch": epoch, "mechanism": mech, "split": "dose", "metric": f"{kind}:fc", "value": v}
                for kind, v in (("stdp", stdp), ("adam", adam), ("weight", weight))]
    # gsi: a gs epoch (Adam 0.2), then stdp-bw (fc frozen: Adam 0, STDP 0.01) -> reference is epoch 1
    assert train_mod.dose(rows(1, "gs", 0.0, 0.2) + rows(2, "stdp-bw", 0.01, 0.0)) == pytest.approx((0.05, 0.001))
    # stdp-bw-gs: the reference is the same epoch's Adam step
    assert train_mod.dose(rows(1, "stdp-bw-gs", 0.03, 0.1)) == pytest.approx((0.3, 0.003))
    # stdp-bw alone: Adam never moves fc, so no dose, only the step relative to the weight
    assert train_mod.dose(rows(1, "stdp-bw", 0.01, 0.0)) == (None, pytest.approx(0.001))
    assert train_mod.dose(rows(1, "gs", 0.0, 0.2)) == (None, None)


def test_dose_is_recorded_per_layer_and_summarised(tmp_path):
    done = train(smoke(tmp_path, method="gsgi", k=2, epochs=2), progress=False)
    metrics = read_metrics(f"{done['run_dir']}/metrics.csv")
    layers = {r["metric"].split(":", 1)[1] for r in metrics if r["split"] == "dose"}
    assert layers == {"features.0", "features.4", "fc_hidden"}
    stdp = {(r["epoch"], r["metric"]): r["value"] for r in metrics if r["split"] == "dose"}
    assert stdp[(1, "stdp:features.0")] == 0 and stdp[(2, "stdp:features.0")] > 0
    assert stdp[(2, "stdp:fc_hidden")] == 0  # stdp-bw-gs trains the convs only
    assert stdp[(2, "adam:features.0")] > 0  # backprop still moves them
    assert 0 < done["stdp_dose"] < 10 and 0 < done["stdp_rel_step"] < 1
    # how much of each STDP update points along -w: recorded only in epochs that computed one
    cos = {(r["epoch"], r["metric"]): r["value"] for r in metrics if r["metric"].startswith("cos:")}
    assert set(cos) == {(2, "cos:features.0"), (2, "cos:features.4")}
    assert all(-1 <= v <= 1 for v in cos.values()) and -1 <= done["stdp_shrink_cos"] <= 1


def test_shrink_share_weights_each_layer_by_its_step():
    def rows(epoch, layer, cos, step):
        return [{"epoch": epoch, "mechanism": "x", "split": "dose", "metric": f"cos:{layer}", "value": cos},
                {"epoch": epoch, "mechanism": "x", "split": "dose", "metric": f"stdp:{layer}", "value": step}]
    assert train_mod.shrink_share(rows(1, "a", 1.0, 3.0) + rows(1, "b", 0.0, 1.0)) == pytest.approx(0.75)
    assert train_mod.shrink_share(rows(1, "a", 0.5, 0.0)) is None  # no STDP movement, no share
    assert train_mod.shrink_share([]) is None


def test_on_grad_arm_takes_a_far_larger_step(tmp_path):
    """The released code's coupling: the raw STDP sum, an SGD step at the Adam learning rate."""
    doses = {}
    for name, kw in (("normalised", {}), ("on_grad", dict(stdp_norm=False, stdp_lr=1e-3))):
        done = train(smoke(tmp_path, method="stdp-bw-gs", epochs=1, name=name, **kw), progress=False)
        doses[name] = done["stdp_dose"]
    assert doses["on_grad"] > 100 * doses["normalised"]


@pytest.mark.parametrize("method,k", [("gsgi", 2), ("gsgi-shrink", 2), ("gsi", 2), ("stdp-bw-gs", 5)])
def test_stdp_dose_sets_the_recorded_dose(tmp_path, method, k):
    """--stdp-dose RHO: the STDP (or matched shrinkage) step is RHO x the optimiser's step on the same
    layer, in the batch (gsgi, stdp-bw-gs) or, where the layer is frozen (gsi's stdp-bw epochs), its
    mean step in the latest epoch that moved it; so the run's stdp_dose is RHO."""
    for rho in (0.5, 3.0):
        s = train(smoke(tmp_path, method=method, k=k, epochs=2, stdp_dose=rho, name=f"{method}-{rho}"), progress=False)
        assert s["stdp_dose"] == pytest.approx(rho, rel=1e-4)


def test_stdp_dose_before_any_optimiser_step_uses_the_nominal_step(tmp_path):
    """stdp-bw never lets the optimiser move fc_hidden: its step is RHO x lr x sqrt(weights)."""
    cfg = tiny(method="stdp-bw", stdp_dose=2.0)
    run = setup(cfg)
    out = train_epoch(run, "stdp-bw")
    w = run.model.fc_hidden.weight
    assert out["stdp"][run.model.fc_hidden] == pytest.approx(2.0 * cfg.lr * w.numel() ** 0.5, rel=1e-4)


def test_linear_schedule_warms_up_and_ends_at_zero(tmp_path):
    cfg = tiny(lr_schedule="linear", warmup=0.5, optimizer="sgd", epochs=2)
    run = setup(cfg)
    lrs = []
    run.opt.step = (lambda step: lambda *a, **k: (lrs.append(run.opt.param_groups[0]["lr"]), step(*a, **k)))(run.opt.step)
    train_epoch(run, "gs")
    train_epoch(run, "gs")
    assert lrs[0] == pytest.approx(cfg.lr / 10) and max(lrs) == pytest.approx(cfg.lr)
    assert lrs.index(max(lrs)) == len(lrs) // 2 and run.opt.param_groups[0]["lr"] == 0


def test_compiled_step_computes_what_the_eager_one_does():
    """torch.compile (inductor) against eager on one seed, a gs epoch then an stdp-bw-gs epoch (STDP
    recorded through the compiled graph): the same losses to 1e-5 relative and the same weights to
    5e-5 absolute, half a percent of one Adam step at lr 1e-2 (Adam turns rounding-level gradient
    differences on near-zero gradients into step differences of that order; measured 2e-5)."""
    torch._dynamo.reset()
    weights, losses = {}, {}
    for mode in ("off", "on"):
        run = setup(tiny(compile=mode))
        losses[mode] = [train_epoch(run, "gs")["loss"]]
        out = train_epoch(run, "stdp-bw-gs")
        assert sum(out["stdp"].values()) > 0
        losses[mode].append(out["loss"])
        weights[mode] = {k: v.clone() for k, v in run.model.state_dict().items()}
    torch._dynamo.reset()
    assert losses["on"] == pytest.approx(losses["off"], rel=1e-5)
    for name, w in weights["off"].items():
        torch.testing.assert_close(weights["on"][name], w, rtol=0, atol=5e-5)
