"""Figure 2 (test accuracy per epoch), the forest plots of the tables' differences and accuracy
against STDP's dose: each written as png, svg and the csv of the numbers drawn.

Accuracies are percent (differences: percentage points) in every figure.
"""
from __future__ import annotations

import math
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from eicil import cycle, records
from eicil.cells import _pick_k, _sorted, split_settings
from eicil.cycle import PAPER_METHODS
from eicil.stats import summarize

FIGURE_EXTS = ("png", "svg", "csv")
FIGURE_COLUMNS = ["model", "dataset", "method", "k", "epoch", "mechanism", "mean", "ci_low", "ci_high", "n"]
# Figure 2 draws the paper's methods and gsni; the other controls are in the controls table and forest.
FIGURE2_METHODS = PAPER_METHODS + ("gsni",)
DOSE_MAX = 1e3  # doses beyond this are drawn on the dose plot's edge


def figure2(curves: pd.DataFrame, out_dir: Path | str, k: int = 5,
            methods: tuple[str, ...] = FIGURE2_METHODS) -> Figure:
    """Test accuracy per epoch, a panel per (model, dataset), a line per method with a 95% CI band.

    Only the given methods are drawn (all of them when the curves hold none of these). Hollow
    markers sit on epochs trained by an inhibitory (non-gs) mechanism.
    """
    out_dir = Path(out_dir)
    split = curves.attrs.get("split", [])
    if curves["method"].isin(methods).any():
        curves = curves[curves["method"].isin(methods)]
    line_keys = ["model", "dataset", *split, "method", "k"]
    rows = []
    for cell, group in _pick_k(curves, k, split).groupby(line_keys + ["epoch"], dropna=False):
        # One K fixes the schedule, so every seed ran the same mechanism in a given epoch.
        rows.append({**dict(zip(line_keys + ["epoch"], cell)), "mechanism": group["mechanism"].iloc[0],
                     **summarize(group["value"] * 100)})
    columns = FIGURE_COLUMNS[:2] + split + FIGURE_COLUMNS[2:]
    plotted = _sorted(pd.DataFrame(rows, columns=columns + ["std"])[columns], line_keys + ["epoch"])
    plotted["k"] = plotted["k"].astype("Int64")  # all-empty when no cycle method is drawn
    panels = _panels(plotted)
    if not panels:
        raise ValueError("figure2: the curves hold no test accuracy to plot")
    titles, within = _panel_settings(plotted, split)
    plotted["line"] = [_line_label(r, within[r["model"], r["dataset"]]) for _, r in plotted.iterrows()]
    seeds = _pick_k(curves, k, split).merge(plotted[line_keys + ["epoch", "line"]], on=line_keys + ["epoch"])
    seeds["acc"] = seeds["value"] * 100
    ncols = min(3, len(panels))
    fig = Figure(figsize=(4.8 * ncols, 3.6 * math.ceil(len(panels) / ncols) + 0.4))
    for ax, (model, dataset) in zip(_panel_axes(fig, len(panels)), panels):
        panel = _in_panel(plotted, model, dataset)
        order = list(dict.fromkeys(panel["line"]))
        palette = dict(zip(order, sns.color_palette(n_colors=len(order))))
        # seaborn draws each line from the seeds, its band from the same t-interval as figure2.csv
        sns.lineplot(data=_in_panel(seeds, model, dataset), x="epoch", y="acc",
                     hue="line", hue_order=order, palette=palette, errorbar=_ci95, lw=1.2, ax=ax)
        inhibitory = panel[panel["mechanism"] != cycle.EXCITATORY]
        for label, points in inhibitory.groupby("line", sort=False):
            ax.plot(points["epoch"], points["mean"], "o", ms=3.5, mfc="none", color=palette[label])
        ax.set(title=titles[model, dataset], xlabel="epoch", ylabel="test accuracy (%)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(fontsize="small", title=None)
    fig.suptitle("mean over seeds; band: 95% CI; hollow markers: inhibitory (non-gs) epochs", fontsize="small")
    fig.tight_layout()
    _save_figure(fig, plotted[columns], out_dir, "figure2")
    return fig


def _save_figure(fig: Figure, plotted: pd.DataFrame, out_dir: Path, name: str) -> None:
    """name.png, name.svg (reproducible: fixed ids, no date) and name.csv, the numbers drawn."""
    out_dir.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_dir / f"{name}.png", dpi=150)
    with matplotlib.rc_context({"svg.hashsalt": "eicil"}):  # stable ids: a rerun gives the same file
        fig.savefig(out_dir / f"{name}.svg", metadata={"Date": None})
    records.atomic_write_bytes(out_dir / f"{name}.csv", plotted.to_csv(index=False).encode())


def _panel_axes(fig: Figure, count: int, ncols: int = 3) -> list:
    """Up to ncols panels a row; the unused ones hidden."""
    ncols = min(ncols, count)
    axes = list(fig.subplots(math.ceil(count / ncols), ncols, squeeze=False).flat)
    for ax in axes[count:]:
        ax.set_visible(False)
    return axes[:count]


def _panels(frame: pd.DataFrame) -> list[tuple[str, str]]:
    return list(frame[["model", "dataset"]].drop_duplicates().itertuples(index=False, name=None))


def _in_panel(frame: pd.DataFrame, model: str, dataset: str) -> pd.DataFrame:
    return frame[(frame["model"] == model) & (frame["dataset"] == dataset)]


def _panel_settings(frame: pd.DataFrame, split: list[str]) -> tuple[dict, dict]:
    """Per (model, dataset) panel: its title, naming the split settings all its rows share, and the
    split settings that vary within it (the only ones a line's label needs)."""
    titles, within = {}, {}
    for model, dataset in _panels(frame):
        panel = _in_panel(frame, model, dataset)
        within[model, dataset] = [c for c in split if panel[c].nunique() > 1]
        shared = [f"{c} {panel[c].dropna().iloc[0]}" for c in split
                  if c not in within[model, dataset] and panel[c].notna().any()]
        titles[model, dataset] = f"{model} / {dataset}" + (f" ({', '.join(shared)})" if shared else "")
    return titles, within


def _line_label(row: pd.Series, split: list[str]) -> str:
    name = row["method"] if pd.isna(row["k"]) else f"{row['method']} K={int(row['k'])}"
    return " ".join([name] + [f"{c}={row[c]}" for c in split if not pd.isna(row[c])])


def _ci95(values) -> tuple[float, float]:
    s = summarize(values)
    return s["ci_low"], s["ci_high"]


def forest(table: pd.DataFrame, base_col: str, out_dir: Path | str, name: str) -> Figure | None:
    """Each row's difference from its baseline with its Welch 95% interval, a panel per (model,
    dataset). base_col is the table's difference column: delta_vs_gs (table1/table2), delta_vs_gsni
    (control) or delta (controls, whose baseline is each row's `control`). The grey band spans
    ± the row's MDE (80% power): a true difference inside it would often (over 20% of the time)
    go undetected, so a miss there says little.

    Writes name.{png,svg,csv}; returns None and writes nothing when no row has a difference."""
    plotted = _forest_rows(table, base_col)
    if plotted.empty:
        return None
    panels = _panels(plotted)
    tallest = max(len(_in_panel(plotted, *p)) for p in panels)
    fig = Figure(figsize=(5.6 * min(3, len(panels)), (0.32 * tallest + 1.3) * math.ceil(len(panels) / 3) + 0.4))
    for i, (ax, (model, dataset)) in enumerate(zip(_panel_axes(fig, len(panels)), panels)):
        panel = _in_panel(plotted, model, dataset)
        y = -np.arange(len(panel))  # the table's first row on top
        ax.set_ylim(0.5 - tallest, 0.5)  # the same row spacing in every panel
        band = panel["mde"].notna().to_numpy()
        ax.barh(y[band], 2 * panel["mde"][band], left=-panel["mde"][band], height=0.7, color="0.88",
                label="± MDE (80% power)")
        ax.hlines(y, panel["diff_low"], panel["diff_high"], color="C0", lw=1.5, label="95% CI (Welch)")
        ax.plot(panel["delta"], y, "o", color="C0", ms=4, label="difference of means")
        ax.axvline(0, color="k", lw=0.8)
        ax.set_yticks(y, panel["label"], fontsize="small")
        ax.set(title=panel["title"].iloc[0], xlabel="difference (percentage points)")
        if i == 0:
            handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, fontsize="x-small", loc="lower center", ncols=3)  # one legend, under all panels
    fig.suptitle(f"{name}: each row minus its baseline; no bar: n < 2 or no spread", fontsize="small")
    fig.tight_layout(rect=(0, 0.3 / fig.get_figheight(), 1, 1))
    _save_figure(fig, plotted, Path(out_dir), name)
    return fig


def _forest_rows(table: pd.DataFrame, base_col: str) -> pd.DataFrame:
    """The rows with a difference, labelled 'method [K] [settings] vs baseline'."""
    rows = table[table[base_col].notna()].reset_index(drop=True)
    keys = list(table.columns[:list(table.columns).index("mean")])
    split = [c for c in keys if c not in ("model", "dataset", "method", "k", "control")]
    baseline = rows["control"] if "control" in rows else pd.Series(base_col.removeprefix("delta_vs_"), rows.index)
    titles, within = _panel_settings(rows, split)
    labels = [f"{_line_label(r, within[r['model'], r['dataset']])} vs {b}" for (_, r), b in zip(rows.iterrows(), baseline)]
    return pd.DataFrame({"model": rows["model"], "dataset": rows["dataset"], "label": labels,
                         "title": [titles[m, d] for m, d in zip(rows["model"], rows["dataset"])],
                         "baseline": baseline, "delta": rows[base_col], "diff_low": rows["diff_low"],
                         "diff_high": rows["diff_high"], "mde": rows["mde"], "p_holm": rows["p_holm"]})


def dose_figure(runs: pd.DataFrame, out_dir: Path | str, metric: str = "test_acc") -> Figure | None:
    """Accuracy against STDP's dose (its step over Adam's, log scale): a marker per cell of runs that
    differ only in the seed, at the mean of both with 95% CIs over seeds; horizontal lines and bands
    (mean, 95% CI) for the same panel's gs and gsni, which use no STDP. A panel per (model, dataset).

    A run whose dose overflowed (weights blown up: an infinite dose) counts in its cell's accuracy
    and puts the cell on the plot's edge. Writes dose.{png,svg,csv}; returns None and writes nothing
    when no run has a dose."""
    split = split_settings(runs)
    keys = ["model", "dataset", *split, "method", "k"]
    dosed = runs[runs["stdp_dose"].notna()]
    if dosed.empty:
        return None
    points = _dose_cells(dosed, keys, split, metric, "point")
    bands = _dose_cells(runs[runs["method"].isin(["gs", "gsni"])], keys, split, metric, "band")
    # a line joins the cells that differ only in stdp_lr: the dose knob
    knob = [c for c in keys if c != "stdp_lr"]
    titles, within = _panel_settings(points, [c for c in split if c != "stdp_lr"])
    points["line"] = [_line_label(r, within[r["model"], r["dataset"]]) for _, r in points.iterrows()]
    panels = _panels(points)
    fig = Figure(figsize=(8.2 * min(2, len(panels)), 4.6 * math.ceil(len(panels) / 2) + 0.4))
    for ax, (model, dataset) in zip(_panel_axes(fig, len(panels), ncols=2), panels):
        panel, lines = _in_panel(points, model, dataset), _in_panel(bands, model, dataset)
        groups = list(panel.groupby(knob, dropna=False, sort=False))
        colors = iter(sns.color_palette("tab20", n_colors=len(groups) + len(lines)))
        for _, line in groups:
            line = line.sort_values("dose")
            color, shrink = next(colors), line["method"].iloc[0].endswith("-shrink")
            x = line["dose"].clip(upper=DOSE_MAX)  # runaway doses (weights blown up) sit on the edge
            ax.plot(x, line["mean"], "s--" if shrink else "o-", mfc="none" if shrink else color, color=color,
                    ms=5, lw=1, label=f"{line['line'].iloc[0]} (n={line['n'].max()})")
            ax.vlines(x, line["ci_low"], line["ci_high"], color=color, lw=1)
        for r in lines.itertuples():
            color = next(colors)
            ax.axhline(r.mean, color=color, ls=":", lw=1.2, label=f"{r.label} (n={r.n})")
            if r.n > 1:
                ax.axhspan(r.ci_low, r.ci_high, color=color, alpha=0.12, lw=0)
        ax.axvline(DOSE_MAX, color="0.6", lw=0.8)
        ax.set_xscale("log")
        ax.set(title=titles[model, dataset], ylabel=f"{metric.replace('_', ' ')} (%)",
               xlabel=f"STDP dose: STDP step / Adam step (mean over STDP epochs; >{DOSE_MAX:g} on the grey line)")
        ax.legend(fontsize="xx-small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.suptitle("mean over seeds, bars: 95% CI; filled: STDP, hollow squares: its shrinkage control\n"
                 "(same step size along -w); lines join stdp_lr values; dotted: runs without STDP", fontsize="small")
    fig.tight_layout()
    _save_figure(fig, pd.concat([points.drop(columns="line"), bands], ignore_index=True), Path(out_dir), "dose")
    return fig


def _dose_cells(runs: pd.DataFrame, keys: list[str], split: list[str], metric: str, kind: str) -> pd.DataFrame:
    """Mean and 95% CI over seeds of accuracy (percent) and of the dose, per cell of keys."""
    rows = []
    for cell, group in runs.groupby(keys, dropna=False, sort=False):
        info = dict(zip(keys, cell))
        doses = group["stdp_dose"].dropna()
        acc = summarize(group[metric] * 100)
        dose = summarize(doses) if np.isfinite(doses).all() else dict.fromkeys(("mean", "ci_low", "ci_high"), math.inf)
        rows.append({**info, "kind": kind, "label": _line_label(pd.Series(info), split), "dose": dose["mean"],
                     "dose_low": dose["ci_low"], "dose_high": dose["ci_high"], **acc})
    columns = keys + ["kind", "label", "dose", "dose_low", "dose_high", "mean", "std", "n", "ci_low", "ci_high"]
    return _sorted(pd.DataFrame(rows, columns=columns), keys)
