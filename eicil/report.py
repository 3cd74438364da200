"""Tables 1 and 2 and Figure 2 from run directories: means over seeds, spread, Welch/Holm, paper beside;
the controls that isolate STDP, a verdict per claim, forest plots and accuracy against STDP's dose.
This module loads the run records and writes the whole report; the tables, verdicts and figures are
made in eicil.tables, eicil.verdicts and eicil.figures, and their entry points are importable here.

Accuracies are fractions in the run records and percent (differences: percentage points) in every
table and figure.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from eicil import cycle, records
from eicil.cells import SET_DOSE, collapsed, collapsed_mask, split_settings
from eicil.dose_plot import dose_figure
from eicil.figures import FIGURE_EXTS, figure2, forest
from eicil.stats import summarize
from eicil.tables import _matching, control, controls, table1, table2, write_tables
from eicil.verdicts import verdicts

__all__ = ["load_runs", "load_curves", "split_settings", "build_report", "run_time_line", "summary_by",
           "scale_note", "table1", "table2", "control", "controls", "write_tables", "verdicts", "figure2",
           "forest", "dose_figure"]

RUN_COLUMNS = ["model", "dataset", "method", "k", "seed", "test_acc", "best_test_acc", "best_val_acc",
               "stdp_dose", "stdp_rel_step", "wall_seconds", "epochs", "status", "last_test_acc", "collapsed", "path"]
CURVE_COLUMNS = ["model", "dataset", "method", "k", "seed", "epoch", "mechanism", "value"]
# The settings that set a run's scale, printed above every markdown table (those that vary are columns).
SCALE = ("width", "train_subset", "epochs", "timesteps", "batch_size", "test_subset", "val_fraction", "augment")
PAPER_NOTE = "paper: the paper's full-width, 350-epoch GPU figures."


def load_runs(root: Path | str, status: str | None = "complete") -> pd.DataFrame:
    """One row per run directory below root with the given summary status (None: every run).

    Runs without a summary.json get status "no summary"; `last_test_acc` is the last epoch's test
    accuracy and `collapsed` whether it fell back towards chance (cells.collapsed). Other scalar config fields follow the
    named columns; a field that cannot change what the run's method computes (K of gs, stdp_lr of
    a run without STDP) is left empty, so it neither splits nor matches.
    """
    rows, peaks = [], []
    for path in records.find_runs(Path(root)):
        config = records.read_json(path / "config.json")["config"]
        summary_file = path / "summary.json"
        summary = records.read_json(summary_file) if summary_file.exists() else {"status": "no summary"}
        method = config["method"]
        accs = _test_accs(path)
        named = {
            "model": config["model"], "dataset": config["dataset"], "method": method,
            "k": config.get("k") if cycle.uses_k(method) else None,
            "seed": config["seed"], "test_acc": summary.get("test_acc"),
            "best_test_acc": summary.get("best_test_acc"), "best_val_acc": summary.get("best_val_acc"),
            "stdp_dose": _number(summary.get("stdp_dose")), "stdp_rel_step": _number(summary.get("stdp_rel_step")),
            "wall_seconds": _number(summary.get("wall_seconds")),
            "epochs": config["epochs"], "status": summary["status"],
            "last_test_acc": accs[-1] if accs else math.nan, "path": str(path),
        }
        peaks.append(max(accs, default=math.nan))
        extra = {SET_DOSE if key == "stdp_dose" else key: v if cycle.relevant(method, key) else None
                 for key, v in config.items() if isinstance(v, (str, int, float, bool, type(None)))
                 and (key not in named or key == "stdp_dose")}
        rows.append({**named, **extra})
    runs = pd.DataFrame(rows, columns=None if rows else [c for c in RUN_COLUMNS if c != "collapsed"])
    runs["k"] = runs["k"].astype("Int64")
    runs.insert(RUN_COLUMNS.index("collapsed"), "collapsed", _collapsed(runs, peaks))
    if status is not None:
        runs = runs[runs["status"] == status]
    return runs.reset_index(drop=True)


def _collapsed(runs: pd.DataFrame, peaks: list[float]) -> list[bool]:
    """cells.collapsed of each run against the mean last-epoch accuracy of the complete gs runs that
    match it on every setting gs uses, or against its own best epoch (peaks) where none does."""
    keys = ["model", "dataset", *split_settings(runs)]
    done = runs["status"] == "complete"
    flags = []
    for (_, run), peak in zip(runs.iterrows(), peaks):
        gs = runs.loc[done & _matching(runs, "gs", run.to_dict(), keys), "last_test_acc"].dropna()
        flags.append(collapsed(run["last_test_acc"], peak, gs.mean() if len(gs) else peak, run["dataset"]))
    return flags


def _test_accs(path: Path) -> list[float]:
    """Test accuracy per epoch, in epoch order (none before a run's first epoch)."""
    if not (path / "metrics.csv").exists():
        return []
    rows = [m for m in records.read_metrics(path / "metrics.csv") if m["split"] == "test" and m["metric"] == "acc"]
    return [m["value"] for m in sorted(rows, key=lambda m: m["epoch"])]


def _number(value) -> float:
    """A summary field as a float: NaN when missing or null (older runs, runs without STDP)."""
    return math.nan if value is None else float(value)


def load_curves(root: Path | str, keep_collapsed: bool = False) -> pd.DataFrame:
    """Test accuracy (fraction) per epoch of every complete run below root that did not collapse
    (keep_collapsed: of every complete run); attrs["collapsed"] counts those left out."""
    return _curves(load_runs(root), keep_collapsed)


def _curves(runs: pd.DataFrame, keep_collapsed: bool = False) -> pd.DataFrame:
    split = split_settings(runs)
    out = pd.Series(False, runs.index) if keep_collapsed else collapsed_mask(runs)
    left_out = int(out.sum())
    runs = runs[~out]
    rows = [
        {"model": run["model"], "dataset": run["dataset"], "method": run["method"], "k": run["k"],
         **{c: run[c] for c in split}, "seed": run["seed"],
         "epoch": m["epoch"], "mechanism": m["mechanism"], "value": m["value"]}
        for _, run in runs.iterrows()
        for m in records.read_metrics(Path(run["path"]) / "metrics.csv")
        if m["split"] == "test" and m["metric"] == "acc"
    ]
    curves = pd.DataFrame(rows, columns=CURVE_COLUMNS[:4] + split + CURVE_COLUMNS[4:])
    curves["k"] = curves["k"].astype("Int64")
    curves.attrs["split"] = split
    curves.attrs["collapsed"] = left_out
    return curves


def build_report(runs_root: Path | str, out_dir: Path | str = "figures", k: int = 5) -> dict:
    """Write runs.csv; Tables 1-2, the gsni control table, the controls table and the verdicts
    (headline test_acc and the paper's best-test protocol, the latter as *_best_test.*); Figure 2,
    the forest plots of table1, control and controls (headline metric) and, when some run records
    STDP's dose, accuracy against dose.

    Returns {"files": [paths written], "summary": text naming what was used and what was skipped}.
    """
    out_dir = Path(out_dir)
    every_run = load_runs(runs_root, status=None)
    runs = every_run[every_run["status"] == "complete"].reset_index(drop=True)
    if runs.empty:
        raise ValueError(f"no complete runs under {runs_root}")
    files = [out_dir / "runs.csv"]
    # wall_seconds depends on the machine and its load: left out so runs.csv reproduces byte for byte
    records.atomic_write_bytes(files[0], every_run.drop(columns="wall_seconds").to_csv(index=False).encode())
    drawn = {}
    for metric, suffix in (("test_acc", ""), ("best_test_acc", "_best_test")):
        tables = _write_metric_tables(runs, metric, suffix, k, out_dir, files)
        drawn = drawn or tables  # the forest plots draw the headline metric's tables
    for name, (table, base_col) in drawn.items():
        if forest(table, base_col, out_dir, f"forest_{name}") is not None:
            files += [out_dir / f"forest_{name}.{ext}" for ext in FIGURE_EXTS]
    figure2(_curves(runs), out_dir, k=k)
    files += [out_dir / f"figure2.{ext}" for ext in FIGURE_EXTS]
    if dose_figure(runs, out_dir) is not None:
        files += [out_dir / f"dose.{ext}" for ext in FIGURE_EXTS]
    skipped = every_run[every_run["status"] != "complete"]
    lines = [f"{len(runs)} complete runs under {runs_root}; {len(skipped)} skipped; {len(files)} files in {out_dir}",
             run_time_line(runs)]
    lines += [f"skipped ({r.status}): {r.path}" for r in skipped.itertuples()]
    return {"files": files, "summary": "\n".join(lines)}


def run_time_line(runs: pd.DataFrame) -> str:
    """The summed wall_seconds of the runs' summaries: what a sweep of them costs on this machine."""
    known = runs["wall_seconds"].dropna()
    hours = known.sum() / 3600
    return (f"run time: {hours:.2f} h summed over {len(known)} runs' wall_seconds "
            f"(~{hours / 2:.2f} h with --jobs 2 on 2 cores)")


def _write_metric_tables(runs: pd.DataFrame, metric: str, suffix: str, k: int, out_dir: Path,
                         files: list[Path]) -> dict[str, tuple[pd.DataFrame, str]]:
    """Write one metric's tables (appending their paths to files); return the comparison tables
    with their difference column, for the forest plots."""
    first, second = table1(runs, k=k, metric=metric), table2(runs, metric=metric)
    checked, isolated = control(runs, metric=metric), controls(runs, metric=metric)
    claims = verdicts(first, isolated)
    note = scale_note(runs)
    files += write_tables(first, out_dir, f"table1{suffix}", note=note)
    for table, name in ((second, "table2"), (checked, "control"), (isolated, "controls")):
        if len(table):  # a table with no rows (no cycle runs, no controls) is not written
            files += write_tables(table, out_dir, f"{name}{suffix}", note=note)
    if len(claims):
        files += write_tables(claims, out_dir, f"verdicts{suffix}", exts=("csv", "md"), note=note)
    return {"table1": (first, "delta_vs_gs"), "control": (checked, "delta_vs_gsni"), "controls": (isolated, "delta")}


def summary_by(runs: pd.DataFrame, by: list[str], metric: str = "test_acc") -> pd.DataFrame:
    """Mean, std, n and 95% CI (percent) of a metric per group of any config columns,
    e.g. by=["weight_dep", "stdp_lr"] for an ablation that Tables 1-2 do not cover."""
    missing = [b for b in by if b not in runs.columns]
    if missing:
        raise ValueError(f"unknown column(s) {', '.join(missing)}; runs have: {', '.join(runs.columns)}")
    rows = [{**dict(zip(by, key if isinstance(key, tuple) else (key,))),
             **summarize(group[metric].to_numpy(float) * 100)}
            for key, group in runs.groupby(by, dropna=False)]
    return pd.DataFrame(rows)


def scale_note(runs: pd.DataFrame) -> str:
    """One line naming the scale every run of a table shares (0 subsets: all), and which scale
    settings differ between rows (each a column of the table)."""
    present = [c for c in SCALE if c in runs]
    varying = [c for c in present if runs[c].nunique(dropna=False) > 1]
    shared = [f"{c} {_scale_value(c, runs[c].iloc[0])}" for c in present if c not in varying]
    return (f"Scale of every run: {', '.join(shared)}" + (f"; per row: {', '.join(varying)}" if varying else "")
            + f". {PAPER_NOTE}")


def _scale_value(name: str, value) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "on" if value else "off"
    return "all" if name.endswith("_subset") and value == 0 else str(value)
