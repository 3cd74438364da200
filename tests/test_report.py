import math

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest

from eicil import records
from eicil.cells import split_settings
from eicil.dose_plot import dose_figure
from eicil.figures import METHOD_STYLE, figure2, forest
from eicil.report import build_report, load_curves, load_runs, run_time_line, scale_note
from eicil.stats import holm, holm_interval, mde
from eicil.tables import SINGLE_SEED_NOTE, controls, table1, table2, write_tables
from eicil.verdicts import COLLAPSED_VERDICT, UNTESTED, verdicts
from scipy import stats as sps

EPOCHS = 5
SCHEDULES = {
    ("gs", 5): ["gs"] * 5,
    ("stdp-bw", 4): ["stdp-bw"] * 5,
    ("gsi", 5): ["gs", "gs", "gs", "gs", "stdp-bw"],
    ("gsgi", 5): ["gs", "gs", "gs", "gs", "stdp-bw-gs"],
    ("gsgi", 3): ["gs", "gs", "stdp-bw-gs", "gs", "gs"],
}
# (method, k, seed, test_acc, status): gsgi K=5 clearly beats gs, gsi K=5 does not.
RUNS = [
    ("gs", 5, 0, 0.890, "complete"), ("gs", 5, 1, 0.892, "complete"), ("gs", 5, 2, 0.894, "complete"),
    ("gsgi", 5, 0, 0.910, "complete"), ("gsgi", 5, 1, 0.912, "complete"), ("gsgi", 5, 2, 0.914, "complete"),
    ("gsi", 5, 0, 0.891, "complete"), ("gsi", 5, 1, 0.893, "complete"), ("gsi", 5, 2, 0.889, "complete"),
    ("gsgi", 3, 0, 0.900, "complete"), ("gsgi", 3, 1, 0.904, "complete"),
    ("stdp-bw", 4, 0, 0.905, "complete"),  # k=4 is an unused default for stdp-bw
    ("gsi", 5, 3, 0.100, "running"), ("gs", 5, 3, 0.100, "diverged"),
]


def write_run(root, method, k, seed, test_acc, status, model="resnet18", dataset="cifar10", extra=None,
              summary=None):
    path = root / model / dataset / f"{method}_k{k}" / f"seed{seed}"
    schedule = SCHEDULES.get((method, k), [method] * EPOCHS)
    config = {"model": model, "dataset": dataset, "method": method, "k": k, "seed": seed, "epochs": EPOCHS,
              "handoff": "best", **(extra or {})}
    records.write_json(path / "config.json", {"config": config, "git": "test", "versions": {}, "schedule": schedule})
    # The test curve climbs linearly to test_acc; a train row checks that only test acc is read.
    metrics = [row for epoch, mechanism in enumerate(schedule, 1) for row in (
        {"epoch": epoch, "mechanism": mechanism, "split": "test", "metric": "acc", "value": test_acc * epoch / EPOCHS},
        {"epoch": epoch, "mechanism": mechanism, "split": "train", "metric": "loss", "value": 1.0 / epoch},
    )]
    records.write_metrics(path / "metrics.csv", metrics)
    records.write_json(path / "summary.json", {
        "status": status, "test_acc": test_acc, "best_test_acc": test_acc + 0.01, "best_val_acc": test_acc,
        "best_epoch": EPOCHS, "epochs_completed": EPOCHS, "wall_seconds": 1.0, **(summary or {})})
    return path


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    for run in RUNS:
        write_run(root, *run)
    return root


@pytest.fixture(scope="module")
def runs(root):
    return load_runs(root)


def cell(table, **keys):
    rows = table
    for key, value in keys.items():
        rows = rows[rows[key] == value]
    assert len(rows) == 1, keys
    return rows.iloc[0]


def test_load_runs_keeps_complete_runs_only(root, runs):
    assert len(runs) == 12 and set(runs["status"]) == {"complete"}
    assert len(load_runs(root, status=None)) == len(RUNS)
    cycles = runs["method"].isin(["gsi", "gsgi"])
    assert runs.loc[cycles, "handoff"].eq("best").all()  # other config fields come along for filtering
    assert runs.loc[~cycles, "handoff"].isna().all()  # ... empty where the method ignores them
    assert pd.isna(cell(runs, method="stdp-bw")["k"])


def test_table1_statistics(runs):
    t = table1(runs)
    assert list(t["method"]) == ["gs", "stdp-bw", "gsi", "gsgi"]
    gs, gsgi, gsi = cell(t, method="gs"), cell(t, method="gsgi"), cell(t, method="gsi")
    assert gs["mean"] == pytest.approx(89.2) and gs["std"] == pytest.approx(0.2) and gs["n"] == 3
    assert gs["ci_low"] < 89.2 < gs["ci_high"]
    assert gsgi["k"] == 5 and gsgi["n"] == 3 and gsgi["mean"] == pytest.approx(91.2)
    assert gsgi["delta_vs_gs"] == pytest.approx(2.0)
    # two groups with equal spread: t = 2 / sqrt(2 * 0.04 / 3), Welch df = 4
    t_stat = 2.0 / math.sqrt(2 * 0.04 / 3)
    assert gsgi["p_vs_gs"] == pytest.approx(2 * sps.t.sf(t_stat, 4))
    assert gsgi["p_vs_gs"] < 0.01
    assert gsi["n"] == 3 and gsi["p_vs_gs"] > 0.5  # the "running" seed 3 is not counted
    assert math.isnan(gs["p_vs_gs"])


def test_table1_holm_and_paper(runs):
    t = table1(runs)
    tested = t["p_vs_gs"].notna()
    assert tested.sum() == 2  # stdp-bw has one seed, gs is the baseline
    gsgi, gsi = cell(t, method="gsgi"), cell(t, method="gsi")
    p_gsi = sps.ttest_ind([89.1, 89.3, 88.9], [89.0, 89.2, 89.4], equal_var=False).pvalue
    assert gsi["p_vs_gs"] == pytest.approx(p_gsi)
    # Holm by hand, m = 2: the smaller p doubled, the larger kept at least that
    assert gsgi["p_holm"] == pytest.approx(2 * gsgi["p_vs_gs"])
    assert gsi["p_holm"] == pytest.approx(max(p_gsi, 2 * gsgi["p_vs_gs"]))
    assert cell(t, method="gs")["paper"] == 89.39
    assert cell(t, method="gsgi")["paper"] == 90.34


def test_table1_marks_single_seed(runs):
    t = table1(runs)
    stdp = cell(t, method="stdp-bw")
    assert stdp["n"] == 1 and stdp["note"] == SINGLE_SEED_NOTE
    assert math.isnan(stdp["std"]) and math.isnan(stdp["p_vs_gs"])
    assert stdp["delta_vs_gs"] == pytest.approx(90.5 - 89.2)
    assert (t[t["method"] != "stdp-bw"]["note"] == "").all()


def test_table1_falls_back_to_other_k(runs):
    t = table1(runs, k=4)  # no K=4 runs: each cycle method uses the K it has most seeds of
    assert cell(t, method="gsgi")["k"] == 5 and cell(t, method="gsi")["k"] == 5


def test_table2_per_k_with_paper(runs):
    t = table2(runs)
    assert list(zip(t["k"], t["method"])) == [(3, "gsgi"), (5, "gsi"), (5, "gsgi")]
    k3 = cell(t, k=3)
    assert k3["n"] == 2 and k3["mean"] == pytest.approx(90.2) and k3["paper"] == 90.26
    assert cell(t, k=5, method="gsi")["paper"] == 90.46
    assert cell(t, k=5, method="gsgi")["paper"] == 90.58
    p = t["p_vs_gs"].tolist()
    assert all(h == pytest.approx(min(1.0, 3 * min(p))) or h >= min(p) for h in t["p_holm"])
    assert min(t["p_holm"]) == pytest.approx(min(1.0, 3 * min(p)))  # m = 3 tested rows


def test_best_test_metric(runs):
    assert cell(table1(runs, metric="best_test_acc"), method="gs")["mean"] == pytest.approx(90.2)


def test_repeated_seed_is_refused(tmp_path):
    write_run(tmp_path / "a", "gs", 5, 0, 0.9, "complete")
    write_run(tmp_path / "b", "gs", 5, 0, 0.9, "complete")
    with pytest.raises(ValueError, match="repeat"):
        table1(load_runs(tmp_path))


def test_runs_that_differ_in_a_setting_are_split_not_pooled(tmp_path):
    """Two stdp_lr values of gsgi: a row each, both compared with the one gs (which uses no STDP)."""
    for seed, acc in enumerate((0.890, 0.892, 0.894)):
        write_run(tmp_path, "gs", 5, seed, acc, "complete", extra={"stdp_lr": 0.01})
    for lr, base in ((0.01, 0.890), (1.0, 0.910)):
        for seed in range(3):
            write_run(tmp_path / f"lr{lr}", "gsgi", 5, seed, base + 0.002 * seed, "complete", extra={"stdp_lr": lr})
    runs = load_runs(tmp_path)
    assert pd.isna(runs.loc[runs["method"] == "gs", "stdp_lr"]).all()  # gs ignores stdp_lr
    t = table1(runs)
    assert list(t.columns[:5]) == ["model", "dataset", "stdp_lr", "method", "k"]
    low, high = cell(t, method="gsgi", stdp_lr=0.01), cell(t, method="gsgi", stdp_lr=1.0)
    assert low["n"] == high["n"] == 3
    assert low["mean"] == pytest.approx(89.2) and high["mean"] == pytest.approx(91.2)
    assert high["delta_vs_gs"] == pytest.approx(2.0) and low["delta_vs_gs"] == pytest.approx(0.0)
    md = write_tables(t, tmp_path / "out", "table1")[1].read_text()
    assert md.startswith("| model | dataset | stdp_lr | method | k |")
    fig_dir = tmp_path / "fig"
    figure2(load_curves(tmp_path), fig_dir)
    plotted = pd.read_csv(fig_dir / "figure2.csv")
    assert sorted(plotted.loc[plotted["method"] == "gsgi", "stdp_lr"].unique()) == [0.01, 1.0]


def test_a_setting_of_a_cycle_splits_the_control_too(tmp_path):
    for handoff, shift in (("last", 0.0), ("best", 0.02)):
        for method, base in (("gsni", 0.890), ("gsgi", 0.900)):
            for seed in range(2):
                write_run(tmp_path / handoff, method, 5, seed, base + shift + 0.002 * seed, "complete",
                          extra={"handoff": handoff})
    from eicil.tables import control
    table = control(load_runs(tmp_path))
    assert sorted(table["handoff"]) == ["best", "last"]
    assert table["delta_vs_gsni"].tolist() == pytest.approx([1.0, 1.0])  # each against its own gsni


def test_write_tables(runs, tmp_path):
    t = table1(runs)
    paths = write_tables(t, tmp_path, "table1")
    assert [p.name for p in paths] == ["table1.csv", "table1.md", "table1.tex"]
    assert len(pd.read_csv(paths[0])) == len(t)
    md = paths[1].read_text()
    assert "89.20 ± 0.20 (3)" in md and "90.50 ± – (1)" in md and SINGLE_SEED_NOTE in md
    assert "| p (Holm) | MDE (80%) | paper |" in md and f"| {mde(0.2, 3, 0.2, 3):.2f} |" in md
    assert "MDE (80\\%)" in paths[2].read_text()
    assert "\\begin{tabular}" in paths[2].read_text()


def test_scale_note_names_shared_scale_and_varying_columns(tmp_path):
    for width, method in ((0.5, "gs"), (0.25, "gsgi")):
        write_run(tmp_path, method, 5, 0, 0.9, "complete", extra={"width": width, "train_subset": 3000,
                                                                    "test_subset": 0, "timesteps": 4, "augment": False})
    note = scale_note(load_runs(tmp_path))
    assert note.startswith(f"Scale of every run: train_subset 3000, epochs {EPOCHS}, timesteps 4, test_subset all")
    assert "augment off; per row: width." in note and "350-epoch" in note
    md = write_tables(table1(load_runs(tmp_path)), tmp_path / "out", "table1", note=note)[1].read_text()
    assert md.startswith(note + "\n\n| model | dataset | width |")


def test_scale_note_says_all_only_of_subsets(tmp_path):
    write_run(tmp_path, "gs", 5, 0, 0.9, "complete", extra={"train_subset": 0, "val_fraction": 0.0})
    note = scale_note(load_runs(tmp_path))
    assert "train_subset all" in note and "val_fraction 0.0" in note


def test_figure2_writes_plotted_numbers(root, tmp_path):
    fig = figure2(load_curves(root), tmp_path)
    assert len(fig.axes) == 1
    for ext in ("png", "svg", "csv"):
        assert (tmp_path / f"figure2.{ext}").stat().st_size > 0
    plotted = pd.read_csv(tmp_path / "figure2.csv")
    assert len(plotted) == 4 * EPOCHS  # gs, stdp-bw, gsi K=5, gsgi K=5; gsgi K=3 is not drawn
    last = plotted[(plotted["method"] == "gsgi") & (plotted["epoch"] == EPOCHS)].iloc[0]
    assert last["k"] == 5 and last["n"] == 3 and last["mechanism"] == "stdp-bw-gs"
    assert last["mean"] == pytest.approx(91.2) and last["ci_low"] < 91.2 < last["ci_high"]


def test_figure2_draws_paper_methods_and_gsni_only(tmp_path):
    for method in ("gs", "gsni", "gsi-shrink", "frozen-bw"):
        write_run(tmp_path / "runs", method, 5, 0, 0.9, "complete")
    figure2(load_curves(tmp_path / "runs"), tmp_path)
    assert set(pd.read_csv(tmp_path / "figure2.csv")["method"]) == {"gs", "gsni"}
    only_controls = tmp_path / "controls"
    write_run(only_controls, "frozen-bw", 5, 0, 0.9, "complete")
    figure2(load_curves(only_controls), tmp_path)  # nothing of the paper's: every method is drawn
    assert set(pd.read_csv(tmp_path / "figure2.csv")["method"]) == {"frozen-bw"}


def test_figure2_titles_panel_settings_and_hides_spare_axes(tmp_path):
    for model, width in (("resnet18", 0.125), ("ei_net", 0.125), ("vgg11", 0.25), ("csnn", 0.5)):
        for method in ("gs", "gsgi"):
            write_run(tmp_path / "runs", method, 5, 0, 0.9, "complete", model=model, extra={"width": width})
    fig = figure2(load_curves(tmp_path / "runs"), tmp_path)
    shown = [ax for ax in fig.axes if ax.get_visible()]
    assert len(fig.axes) == 6 and len(shown) == 4
    assert shown[3].get_title() == "csnn / cifar10 (width 0.5)"
    assert [t.get_text() for t in shown[3].get_legend().get_texts()] == ["gs (n=1)", "gsgi K=5 (n=1)"]
    # one colour per method in every panel
    colors = {(ax.get_title(), l.get_label()): l.get_color() for ax in shown for l in ax.get_lines()
              if not l.get_label().startswith("_")}
    assert {c for (_, label), c in colors.items() if label.startswith("gsgi")} == {METHOD_STYLE["gsgi"][0]}
    forest(table1(load_runs(tmp_path / "runs")), "delta_vs_gs", tmp_path, "forest")
    rows = pd.read_csv(tmp_path / "forest.csv")
    assert set(rows["label"]) == {"gsgi K=5 vs gs"} and "csnn / cifar10 (width 0.5)" in set(rows["title"])


def test_build_report(root, tmp_path):
    result = build_report(root, tmp_path / "figures")
    names = {p.name for p in result["files"]}
    assert {"runs.csv", "table1.md", "table2.tex", "table1_best_test.csv", "figure2.png"} <= names
    assert all(p.exists() for p in result["files"])
    assert "12 complete runs" in result["summary"] and "skipped (running)" in result["summary"]


def test_run_time_line_sums_wall_seconds(tmp_path):
    write_run(tmp_path, "gs", 5, 0, 0.5, "complete", summary={"wall_seconds": 1800.0})
    write_run(tmp_path, "gsgi", 5, 0, 0.5, "complete", summary={"wall_seconds": 5400.0})
    write_run(tmp_path, "gsi", 5, 0, 0.5, "complete", summary={"wall_seconds": None})  # an old record
    line = run_time_line(load_runs(tmp_path))
    assert line.startswith("run time: 2.00 h summed over 2 runs") and "~1.00 h with --jobs 2" in line


def test_build_report_without_complete_runs(tmp_path):
    write_run(tmp_path, "gs", 5, 0, 0.5, "running")
    with pytest.raises(ValueError, match=str(tmp_path)):
        build_report(tmp_path, tmp_path / "out")


def test_control_compares_cycles_with_gsni_of_the_same_k(tmp_path):
    SCHEDULES[("gsni", 5)] = ["gs", "gs", "gs", "gs", "null"]
    accs = {"gsni": (0.890, 0.892, 0.894), "gsgi": (0.910, 0.912, 0.914), "gsi": (0.891, 0.893, 0.889)}
    for method, values in accs.items():
        for seed, acc in enumerate(values):
            write_run(tmp_path, method, 5, seed, acc, "complete")
    from eicil.tables import control
    table = control(load_runs(tmp_path)).set_index("method")
    assert list(table.index) == ["gsi", "gsgi"]
    assert table.loc["gsgi", "delta_vs_gsni"] == pytest.approx(2.0)
    assert table.loc["gsgi", "p_vs_gsni"] < 0.01 < table.loc["gsi", "p_vs_gsni"]
    p_gsgi, p_gsi = table.loc["gsgi", "p_vs_gsni"], table.loc["gsi", "p_vs_gsni"]
    assert p_gsgi == pytest.approx(sps.ttest_ind([91.0, 91.2, 91.4], [89.0, 89.2, 89.4], equal_var=False).pvalue)
    assert list(table["p_holm"]) == pytest.approx([max(p_gsi, 2 * p_gsgi), 2 * p_gsgi])
    md = write_tables(table.reset_index(), tmp_path / "out", "control")[1].read_text()
    assert "delta vs gsni" in md


def test_table1_difference_interval_and_mde(runs):
    gsgi = cell(table1(runs), method="gsgi")
    ci = sps.ttest_ind([91.0, 91.2, 91.4], [89.0, 89.2, 89.4], equal_var=False).confidence_interval()
    assert (gsgi["diff_low"], gsgi["diff_high"]) == pytest.approx((ci.low, ci.high))
    assert gsgi["mde"] == pytest.approx(mde(0.2, 3, 0.2, 3))
    stdp = cell(table1(runs), method="stdp-bw")  # one seed: a difference, but no interval or MDE
    assert not math.isnan(stdp["delta_vs_gs"]) and math.isnan(stdp["diff_low"]) and math.isnan(stdp["mde"])


def test_load_runs_reads_stdp_dose(tmp_path):
    write_run(tmp_path, "gsgi", 5, 0, 0.9, "complete", summary={"stdp_dose": 0.05, "stdp_rel_step": 1e-4})
    write_run(tmp_path, "gsgi", 5, 1, 0.9, "complete", summary={"stdp_dose": None, "stdp_rel_step": None})
    write_run(tmp_path, "gs", 5, 0, 0.9, "complete")  # an older summary: no such fields
    runs = load_runs(tmp_path).set_index(["method", "seed"])
    assert runs.loc[("gsgi", 0), "stdp_dose"] == 0.05 and runs.loc[("gsgi", 0), "stdp_rel_step"] == 1e-4
    assert math.isnan(runs.loc[("gsgi", 1), "stdp_dose"]) and math.isnan(runs.loc[("gs", 0), "stdp_rel_step"])


# (method, k, stdp_lr, test accuracies over seeds 0..): each STDP method and its isolating controls.
CONTROL_RUNS = [
    ("stdp-bw", 5, 0.01, (0.900, 0.902, 0.904)), ("stdp-bw", 5, 1.0, (0.850, 0.852, 0.854)),
    ("frozen-bw", 5, 0.01, (0.890, 0.892, 0.894)),  # no STDP: serves both stdp_lr values
    ("shrink-bw", 5, 0.01, (0.901, 0.903, 0.905)), ("shrink-bw", 5, 1.0, (0.870, 0.872, 0.874)),
    ("gs", 3, 0.01, (0.890, 0.892, 0.894)),  # K is unused by gs, the control of stdp-bw-gs
    ("stdp-bw-gs", 5, 0.01, (0.910, 0.912, 0.914)),
    ("gsi", 5, 0.01, (0.900, 0.902, 0.904)), ("gsni", 5, 0.01, (0.890, 0.892, 0.894)),
    ("gsni", 3, 0.01, (0.800, 0.802, 0.804)),  # another K: never the control of gsi K=5
    ("gsi-frozen", 5, 0.01, (0.900,)),  # one seed: not testable
]


@pytest.fixture(scope="module")
def control_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("controls")
    for method, k, lr, accs in CONTROL_RUNS:
        for seed, acc in enumerate(accs):
            dose = {"stdp_dose": lr * (1 + 0.1 * seed)} if method.startswith(("stdp", "gsi")) else {}
            write_run(root / f"lr{lr}", method, k, seed, acc, "complete", extra={"stdp_lr": lr}, summary=dose)
    return root


def test_controls_match_each_control_on_the_settings_it_uses(control_root):
    t = controls(load_runs(control_root))
    assert list(t.columns[:6]) == ["model", "dataset", "stdp_lr", "method", "k", "control"]
    pairs = [(r.method, r.stdp_lr, r.control) for r in t.itertuples()]
    assert pairs == [("stdp-bw", 0.01, "frozen-bw"), ("stdp-bw", 0.01, "shrink-bw"), ("stdp-bw-gs", 0.01, "gs"),
                     ("gsi", 0.01, "gsi-frozen"), ("gsi", 0.01, "gsni"),
                     ("stdp-bw", 1.0, "frozen-bw"), ("stdp-bw", 1.0, "shrink-bw")]
    low, high = {"stdp_lr": 0.01}, {"stdp_lr": 1.0}
    # frozen-bw ignores stdp_lr and serves both; shrink-bw uses it and matches its own
    assert cell(t, **low, control="frozen-bw")["control_mean"] == pytest.approx(89.2)
    assert cell(t, **high, control="frozen-bw")["control_mean"] == pytest.approx(89.2)
    assert cell(t, **low, control="shrink-bw")["control_mean"] == pytest.approx(90.3)
    assert cell(t, **high, control="shrink-bw")["control_mean"] == pytest.approx(87.2)
    assert cell(t, control="gsni")["control_mean"] == pytest.approx(89.2)  # gsni K=5, not K=3
    bwgs = cell(t, control="gs")
    assert bwgs["control_n"] == 3 and bwgs["delta"] == pytest.approx(2.0) and pd.isna(bwgs["k"])
    ci = sps.ttest_ind([91.0, 91.2, 91.4], [89.0, 89.2, 89.4], equal_var=False).confidence_interval()
    assert (bwgs["diff_low"], bwgs["diff_high"]) == pytest.approx((ci.low, ci.high))
    assert bwgs["mde"] == pytest.approx(mde(0.2, 3, 0.2, 3))


def test_a_control_without_stdp_serves_every_set_dose(tmp_path):
    for dose, accs in ((2.0, (0.80, 0.81, 0.82)), (0.2, (0.88, 0.89, 0.90))):
        for seed, acc in enumerate(accs):
            write_run(tmp_path / f"rho{dose}", "gsgi", 2, seed, acc, "complete", extra={"stdp_dose": dose})
            write_run(tmp_path / f"rho{dose}", "gsgi-shrink", 2, seed, acc + 0.01, "complete", extra={"stdp_dose": dose})
    for seed, acc in enumerate((0.885, 0.895, 0.905)):
        write_run(tmp_path, "gs", 2, seed, acc, "complete", extra={"stdp_dose": 2.0})  # blanked: gs takes no STDP step
    runs = load_runs(tmp_path)
    assert "stdp_dose_set" in split_settings(runs)
    t = table1(runs, k=2).set_index(["stdp_dose_set", "method"])
    assert t.loc[(2.0, "gsgi"), "delta_vs_gs"] == pytest.approx(-8.5)
    assert t.loc[(0.2, "gsgi"), "delta_vs_gs"] == pytest.approx(-0.5)
    pairs = {(r.stdp_dose_set, r.control): r.control_n for r in controls(runs).itertuples()}
    assert pairs == {(2.0, "gs"): 3, (2.0, "gsgi-shrink"): 3, (0.2, "gs"): 3, (0.2, "gsgi-shrink"): 3}


def test_controls_holm_and_verdicts(control_root):
    t = controls(load_runs(control_root))
    assert t["p_holm"].tolist() == pytest.approx(holm(t["p"]), nan_ok=True)
    assert t["p"].notna().sum() == 6  # gsi-frozen has one seed
    v = {(r.method, r.stdp_lr, r.control): r.verdict for r in t.itertuples()}
    assert v[("stdp-bw-gs", 0.01, "gs")] == "STDP helps"
    assert v[("stdp-bw", 1.0, "frozen-bw")] == "STDP hurts" and v[("stdp-bw", 1.0, "shrink-bw")] == "STDP hurts"
    assert v[("stdp-bw", 0.01, "shrink-bw")] == f"not detected (MDE {mde(0.2, 3, 0.2, 3):.2f})"
    assert v[("gsi", 0.01, "gsi-frozen")] == UNTESTED
    assert cell(t, control="gsi-frozen")["note"] == SINGLE_SEED_NOTE


def test_controls_tables_are_written(control_root, tmp_path):
    paths = write_tables(controls(load_runs(control_root)), tmp_path, "controls")
    md = paths[1].read_text()
    assert "| control | mean ± std (n) | 95% CI | control mean ± std (n) | delta | 95% CI of delta |" in md
    assert "MDE (80%)" in md and "STDP helps" in md and "89.20 ± 0.20 (3)" in md
    assert "MDE (80\\%)" in paths[2].read_text()


def test_verdicts_take_the_papers_direction(tmp_path):
    # vgg11/mnist: the paper has stdp-bw-gs 2.35 below gs and gsgi 0.57 above; csnn/digits has no paper cell
    cells = [("vgg11", "mnist", "gs", 0.980), ("vgg11", "mnist", "stdp-bw-gs", 0.990),
             ("vgg11", "mnist", "gsgi", 0.990), ("vgg11", "mnist", "gsi", 0.9801),
             ("csnn", "digits", "gs", 0.900), ("csnn", "digits", "gsgi", 0.920)]
    for model, dataset, method, acc in cells:
        for seed in range(3):
            write_run(tmp_path, method, 5, seed, acc + 0.002 * seed, "complete", model=model, dataset=dataset)
    runs = load_runs(tmp_path)
    first, isolated = table1(runs), controls(runs)
    v = verdicts(first, isolated).set_index(["model", "claim"])
    assert list(v.columns[:2]) == ["dataset", "k"]
    bwgs = v.loc[("vgg11", "stdp-bw-gs < gs")]
    assert (bwgs["paper"], bwgs["paper_base"], bwgs["paper_delta"]) == (95.85, 98.2, -2.35)
    assert bwgs["delta"] == pytest.approx(1.0) and bwgs["verdict"] == "contradicted"
    gsgi = v.loc[("vgg11", "gsgi > gs")]
    assert gsgi["paper_delta"] == 0.57 and gsgi["verdict"] == "reproduced" and gsgi["source"] == "paper Table 1"
    assert gsgi["p_holm"] == cell(first, model="vgg11", method="gsgi")["p_holm"]
    gsi = v.loc[("vgg11", "gsi > gs")]
    assert gsi["verdict"] == f"not detected (MDE {gsi['mde']:.2f})"
    csnn = v.loc[("csnn", "gsgi > gs")]  # the paper's general claim; no number to put beside it
    assert csnn["source"] == "paper (no Table 1 cell)" and math.isnan(csnn["paper_delta"])
    assert csnn["verdict"] == "reproduced"
    helps = v.loc[("vgg11", "STDP helps: stdp-bw-gs > gs")]  # from the controls table
    assert helps["source"] == "controls" and helps["paper_delta"] == -2.35 and helps["verdict"] == "reproduced"
    assert helps["p_holm"] == cell(isolated, method="stdp-bw-gs")["p_holm"]
    md = write_tables(verdicts(first, isolated), tmp_path / "out", "verdicts", exts=("csv", "md"))[1].read_text()
    assert "| claim | paper | paper delta | our delta |" in md and "95.85 vs 98.20" in md


def test_verdicts_equal_paper_numbers_are_contradicted_by_any_significant_difference(tmp_path):
    # vgg11/cifar10: the paper prints 83.96 for both gs and stdp-bw-gs
    for method, acc in (("gs", 0.830), ("stdp-bw-gs", 0.850)):
        for seed in range(3):
            write_run(tmp_path, method, 5, seed, acc + 0.002 * seed, "complete", model="vgg11")
    runs = load_runs(tmp_path)
    row = verdicts(table1(runs), controls(runs)).iloc[0]
    assert row["claim"] == "stdp-bw-gs = gs" and row["paper_delta"] == 0 and row["verdict"] == "contradicted"


def test_forest_plots_differences_with_interval_and_mde(runs, tmp_path):
    t = table1(runs)
    fig = forest(t, "delta_vs_gs", tmp_path, "forest_table1")
    assert len([ax for ax in fig.axes if ax.get_visible()]) == 1
    plotted = pd.read_csv(tmp_path / "forest_table1.csv")
    assert list(plotted["label"]) == ["stdp-bw vs gs", "gsi K=5 vs gs", "gsgi K=5 vs gs"]
    gsgi, row = plotted.iloc[2], cell(t, method="gsgi")
    assert (gsgi["delta"], gsgi["diff_low"], gsgi["diff_high"], gsgi["mde"]) == pytest.approx(
        (row["delta_vs_gs"], row["diff_low"], row["diff_high"], row["mde"]))
    svg = (tmp_path / "forest_table1.svg").read_bytes()
    forest(t, "delta_vs_gs", tmp_path, "forest_table1")
    assert (tmp_path / "forest_table1.svg").read_bytes() == svg  # reproducible
    assert forest(t[t["method"] == "gs"], "delta_vs_gs", tmp_path, "nothing") is None
    assert not (tmp_path / "nothing.png").exists()


def test_forest_of_controls_names_each_baseline(control_root, tmp_path):
    forest(controls(load_runs(control_root)), "delta", tmp_path, "forest_controls")
    plotted = pd.read_csv(tmp_path / "forest_controls.csv")
    # the setting places the row in its panel (and is a column of the csv), the label names the baseline
    assert "stdp-bw vs shrink-bw" in set(plotted.loc[plotted["stdp_lr"] == 1.0, "label"])
    assert list(plotted["baseline"])[:3] == ["frozen-bw", "shrink-bw", "gs"]


def test_dose_figure(control_root, tmp_path):
    runs = load_runs(control_root)
    fig = dose_figure(runs, tmp_path)
    assert fig.axes[0].get_xscale() == "log"
    plotted = pd.read_csv(tmp_path / "dose.csv")
    points, bands = plotted[plotted["kind"] == "point"], plotted[plotted["kind"] == "band"]
    # every STDP method's cell with a dose (gsi-frozen has one too: written by the fixture)
    assert len(points) == 5 and set(bands["method"]) == {"gs", "gsni"} and len(bands) == 3
    high = cell(points, method="stdp-bw", stdp_lr=1.0)
    doses = [1.0, 1.1, 1.2]
    low_ci, high_ci = sps.t.interval(0.95, 2, loc=1.1, scale=sps.sem(doses))
    assert (high["dose"], high["dose_low"], high["dose_high"]) == pytest.approx((1.1, low_ci, high_ci))
    assert high["mean"] == pytest.approx(85.2) and high["n"] == 3
    # each drawn line sits a little apart, so bars at one dose do not hide each other; the csv keeps the dose
    xs = [x for line in fig.axes[0].lines if line.get_marker() not in ("x", "None") for x in line.get_xdata()]
    assert len(xs) == len(points) and len(set(xs)) == len(xs) and points["dose"].round(6).nunique() < len(xs)
    assert sorted(xs) == pytest.approx(sorted(points["dose"]), rel=0.1)
    one = (runs["method"] == "stdp-bw") & (runs["stdp_lr"] == 1.0) & (runs["seed"] == 0)
    blown = runs.assign(stdp_dose=runs["stdp_dose"].mask(one, math.inf))  # that run's weights blew up
    dose_figure(blown, tmp_path / "blown")
    edge = cell(pd.read_csv(tmp_path / "blown" / "dose.csv"), method="stdp-bw", stdp_lr=1.0)
    assert edge["n"] == 3 and edge["mean"] == pytest.approx(85.2) and edge["dose"] == math.inf
    assert dose_figure(runs.assign(stdp_dose=math.nan), tmp_path / "none") is None
    assert not (tmp_path / "none").exists()


def test_build_report_writes_controls_verdicts_forests_and_dose(control_root, root, tmp_path):
    names = {p.name for p in build_report(control_root, tmp_path / "a")["files"]}
    assert {"controls.md", "controls_best_test.csv", "verdicts.md", "verdicts_best_test.csv",
            "forest_table1.svg", "forest_control.png", "forest_controls.csv", "dose.png", "dose.svg"} <= names
    names = {p.name for p in build_report(root, tmp_path / "b")["files"]}  # no dose recorded
    assert "forest_table1.png" in names and "verdicts.csv" in names
    assert "controls.md" in names  # gsgi against gs, the same epochs without STDP
    assert not names & {"dose.png", "verdicts.tex"}


def test_set_dose_is_a_setting_apart_from_the_measured_dose(tmp_path):
    """The config's stdp_dose (RHO) splits runs as stdp_dose_set; stdp_dose stays the measured dose."""
    for rho in (0.1, 1.0):
        for seed in range(2):
            write_run(tmp_path / f"rho{rho}", "gsgi", 5, seed, 0.9, "complete", extra={"stdp_dose": rho},
                      summary={"stdp_dose": rho * (1 + 1e-6 * seed)})
    runs = load_runs(tmp_path)
    assert sorted(runs["stdp_dose_set"]) == [0.1, 0.1, 1.0, 1.0]
    assert split_settings(runs) == ["stdp_dose_set"]


def write_curve(root, method, seed, curve, k=5, extra=None, summary=None):
    """A run whose test accuracy per epoch is `curve` (fractions); its summary's test_acc is the best."""
    path = write_run(root, method, k, seed, max(curve), "complete", extra=extra, summary=summary)
    schedule = SCHEDULES.get((method, k), [method] * len(curve))
    records.write_metrics(path / "metrics.csv", [
        {"epoch": e, "mechanism": m, "split": "test", "metric": "acc", "value": v}
        for e, (m, v) in enumerate(zip(schedule, curve), 1)])
    return path


RISE = (0.5, 0.7, 0.8, 0.85, 0.9)


@pytest.fixture
def collapse_root(tmp_path):
    """gs and gsi-shrink learn; gsi falls to chance after its STDP epoch in all three seeds, gsgi
    in one of three (cifar10: chance 0.1)."""
    for seed in range(3):
        write_curve(tmp_path, "gs", seed, [a + 0.002 * seed for a in RISE])
        write_curve(tmp_path, "gsi-shrink", seed, [a + 0.003 * seed for a in RISE])
        write_curve(tmp_path, "gsi", seed, (0.5, 0.7, 0.8, 0.85, 0.11 + 0.01 * seed),
                    summary={"stdp_dose": 1e20})
        fell = (0.5, 0.7, 0.8, 0.85, 0.12)
        write_curve(tmp_path, "gsgi", seed, fell if seed == 0 else [a + 0.01 + 0.002 * seed for a in RISE],
                    summary={"stdp_dose": 0.5})
    return tmp_path


def test_a_run_that_falls_towards_chance_collapsed():
    from eicil.cells import collapsed
    assert collapsed(0.11, 0.85, 0.9, "cifar10")  # fell from 85% to chance, gs at 90%
    assert not collapsed(0.52, 0.85, 0.9, "cifar10")  # above half-way between chance (10%) and gs
    assert not collapsed(0.151, 0.16, 0.205, "cifar10")  # slow, never fell: not a collapse
    assert not collapsed(0.12, 0.14, 0.15, "cifar10")  # a 2-point dip near chance is noise
    assert not collapsed(math.nan, 0.9, 0.9, "cifar10")  # no epoch yet
    assert collapsed(0.1, 0.1, 0.62, "cifar10")  # never left chance: driven there from its first epoch
    assert collapsed(0.1, 0.115, 0.62, "cifar10") and not collapsed(0.12, 0.125, 0.62, "cifar10")
    assert not collapsed(0.01, 0.01, 0.5, "fake")  # chance unknown: only a fall counts


def test_collapsed_runs_are_counted_apart_and_kept_out_of_statistics(collapse_root, tmp_path):
    runs = load_runs(collapse_root)
    assert runs.groupby("method")["collapsed"].sum().to_dict() == {"gs": 0, "gsgi": 1, "gsi": 3, "gsi-shrink": 0}
    t = table1(runs)
    gsgi, gsi = cell(t, method="gsgi"), cell(t, method="gsi")
    assert (gsgi["n"], gsgi["collapsed"]) == (2, 1) and "1 of 3 runs collapsed" in gsgi["note"]
    assert gsgi["mean"] == pytest.approx(np.mean([91 + 0.2 * s for s in (1, 2)]))
    assert (gsi["n"], gsi["collapsed"]) == (0, 3) and math.isnan(gsi["mean"]) and math.isnan(gsi["p_vs_gs"])
    md = write_tables(t, tmp_path, "table1")[1].read_text()
    assert "collapsed (3 of 3)" in md and "(2 + 1 collapsed)" in md
    c = controls(runs)
    shrink = cell(c, method="gsi", control="gsi-shrink")
    assert shrink["verdict"] == COLLAPSED_VERDICT and shrink["control_n"] == 3 and shrink["collapsed"] == 3
    claims = verdicts(t, c)
    assert COLLAPSED_VERDICT in set(claims["verdict"])
    from eicil.tables import SINGLE_SEED_NOTE, _note
    assert _note(3, 0, 0) == ""  # a control whose runs all collapsed is no single seed
    assert SINGLE_SEED_NOTE in _note(1, 0, 3) and SINGLE_SEED_NOTE in _note(3, 0, 1)
    fig2 = figure2(load_curves(collapse_root), tmp_path)
    plotted = pd.read_csv(tmp_path / "figure2.csv")
    assert set(plotted["method"]) == {"gs", "gsgi"} and plotted.loc[plotted["method"] == "gsgi", "n"].max() == 2
    assert "4 collapsed runs left out" in fig2.get_suptitle()
    fig = dose_figure(runs, tmp_path)
    dose = pd.read_csv(tmp_path / "dose.csv")
    low, high = fig.axes[0].get_ylim()  # the crosses' strip (the bottom tenth) is clear of every mean and CI
    assert dose[["mean", "ci_low"]].min().min() >= low + 0.09 * (high - low)
    crosses = [line for line in fig.axes[0].lines if line.get_marker() == "x"]
    assert len({line.get_ydata()[0] for line in crosses}) == len(crosses) == 2  # a row of the strip per line
    assert cell(dose, method="gsi")["n"] == 0 and cell(dose, method="gsi")["collapsed"] == 3
    assert cell(dose, method="gsgi")["n"] == 2 and cell(dose, method="gsgi")["collapsed"] == 1


def test_holm_interval_excludes_zero_exactly_when_holm_detects():
    rng = np.random.default_rng(0)
    pairs = [(rng.normal(shift, 1, 5), rng.normal(0, 1, 5)) for shift in np.linspace(0, 3, 12)]
    p = [sps.ttest_ind(a, b, equal_var=False).pvalue for a, b in pairs]
    adjusted = holm(p)
    for (a, b), raw, adj in zip(pairs, p, adjusted):
        low, high = holm_interval(a, b, raw, adj)
        assert (low > 0 or high < 0) == (adj < 0.05)
        wide = sps.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
        assert low <= wide.low and high >= wide.high  # never narrower than the unadjusted 95% interval
    assert any(a < 0.05 for a in adjusted) and not all(a < 0.05 for a in adjusted)


def test_forest_panels_follow_the_settings_and_draw_holm_intervals(control_root, tmp_path):
    fig = forest(controls(load_runs(control_root)), "delta", tmp_path, "forest_controls")
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible()]
    assert titles == ["resnet18 / cifar10\nstdp_lr 0.01", "resnet18 / cifar10\nstdp_lr 1"]
    plotted = pd.read_csv(tmp_path / "forest_controls.csv")
    row = plotted[plotted["label"] == "stdp-bw-gs vs gs"].iloc[0]
    assert row["holm_low"] < row["diff_low"] < row["delta"] < row["diff_high"] < row["holm_high"]


def test_every_method_has_one_colour():
    from eicil.cycle import METHODS
    assert set(METHODS) <= set(METHOD_STYLE)
    assert len({color for color, _ in METHOD_STYLE.values()}) == len(METHOD_STYLE)
