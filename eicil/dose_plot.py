"""Accuracy against STDP's dose as small multiples: png, svg and the csv of the numbers drawn.

Accuracies are percent. The panels, colours and markers are eicil.figures'.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import NullFormatter

from eicil.cells import SET_DOSE, _sorted, collapsed_mask, split_settings
from eicil.figures import (METHOD_STYLE, _facets, _line_label, _marker, _method_key, _panel_axes, _save_figure,
                           _suptitle)
from eicil.stats import summarize

DOSE_MAX = 1e3  # doses beyond this are drawn on the dose plot's edge
DODGE = 0.02  # decades between the lines of a panel drawn side by side, so bars at one dose do not hide each other
# Settings that stay within one panel: the knob along x and the update's coupling.
DOSE_LINE_SETTINGS = ("stdp_lr", SET_DOSE, "stdp_norm")


def dose_figure(runs: pd.DataFrame, out_dir: Path | str, metric: str = "test_acc") -> Figure | None:
    """Accuracy against STDP's dose (its step over the optimiser's, log scale) as small multiples: a
    panel per (model, dataset) and per combination of the settings that vary within it except the dose
    knob (stdp_lr, stdp_dose_set) and stdp_norm (e.g. a panel per K and weight dependence). In a panel,
    a marker per cell of runs that differ only in the seed, at the mean of both with 95% CIs over
    seeds; each STDP method (filled) in its colour, its shrinkage and frozen controls (hollow) in its
    colour family, the lines dodged a few percent apart along x (DODGE) so that bars at one dose all
    show (the csv keeps the measured dose); gs and gsni, which take no STDP step, as bands (mean, 95% CI).

    Collapsed runs (cells.collapsed) are kept out of every mean and marked with a cross in a strip
    at the panel's foot, below a grey line and every mean, at their cell's dose (a dose that
    overflowed, weights blown up, on the plot's edge). Writes dose.{png,svg,csv}; returns None and
    writes nothing when no run has a dose."""
    split = split_settings(runs)
    keys = ["model", "dataset", *split, "method", "k"]
    dosed = runs[runs["stdp_dose"].notna()]
    if dosed.empty:
        return None
    points = _dose_cells(dosed, keys, split, metric, "point")
    bands = _dose_cells(runs[runs["method"].isin(["gs", "gsni"])], keys, split, metric, "band")
    knob = [c for c in keys if c not in ("stdp_lr", SET_DOSE)]  # a line joins the cells along the knob
    cells = pd.concat([points, bands], ignore_index=True)
    panels = _facets(cells, split + ["k"], keep=DOSE_LINE_SETTINGS)
    ncols = 2 if len(panels) == 4 else min(4, len(panels))
    fig = Figure(figsize=(3.9 * ncols + 2.6, 3.3 * math.ceil(len(panels) / ncols) + 0.6), layout="constrained")
    for ax, (title, panel) in zip(_panel_axes(fig, len(panels), ncols=ncols), panels):
        for r in panel[panel["kind"] == "band"].itertuples():
            color, style = METHOD_STYLE[r.method]
            ax.axhline(r.mean, color=color, ls=style, lw=1.2)
            if r.n > 1:
                ax.axhspan(r.ci_low, r.ci_high, color=color, alpha=0.12, lw=0)
        lines = [line.sort_values("dose") for _, line in
                 panel[panel["kind"] == "point"].groupby(knob, dropna=False, sort=False)]
        rows = sum(bool((line["collapsed"] > 0).any()) for line in lines)
        row = 0  # each line's crosses get a row of the strip, so two lines collapsed at one dose both show
        drawn = sum(bool((line["n"] > 0).any()) for line in lines)
        dodge = 0  # the drawn lines' places side by side
        for line in lines:
            method = line["method"].iloc[0]
            color, style = METHOD_STYLE.get(method, ("black", "-"))
            raw = _raw_sum(line["stdp_norm"].iloc[0]) if "stdp_norm" in line else False
            shown = line[line["n"] > 0]
            x = shown["dose"].clip(upper=DOSE_MAX)  # runaway doses (weights blown up) sit on the edge
            if len(shown):  # dodged: the csv keeps the measured dose
                x = x * 10 ** (DODGE * (dodge - (drawn - 1) / 2))
                dodge += 1
            ax.plot(x, shown["mean"], "*" if raw else _marker(method) + style, color=color,
                    mfc="white" if _is_control(method) else color, ms=8 if raw else 5, lw=1)
            ax.vlines(x, shown["ci_low"].clip(lower=0), shown["ci_high"].clip(upper=100), color=color, lw=1)
            out = line[line["collapsed"] > 0]
            if len(out):
                y = 0.02 + 0.05 * row / (rows - 1) if rows > 1 else 0.045  # the strip: the axes' lowest 0.09
                ax.plot(out["dose_all"].clip(upper=DOSE_MAX), [y] * len(out), "x", color=color, ms=6, mew=1.5,
                        transform=ax.get_xaxis_transform())
                row += 1
        if (panel[["dose", "dose_all"]] >= DOSE_MAX).any().any():
            ax.axvline(DOSE_MAX, color="0.6", lw=0.8)
        ax.set_xscale("log")
        doses = panel[["dose", "dose_all"]].stack().clip(upper=DOSE_MAX)
        doses = doses[doses > 0]
        if len(doses):  # whole decades, so every panel has labelled ticks and no crowded minor labels
            ax.set_xlim(10 ** math.floor(math.log10(doses.min()) - 0.05), 10 ** math.ceil(math.log10(doses.max()) + 0.05))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_title(title, fontsize="medium")
        ax.set_xlabel("STDP step / optimiser step", fontsize="small")
        ax.set_ylabel(f"{metric.replace('_', ' ')} (%)", fontsize="small")
        if (panel["collapsed"] > 0).any():  # the crosses get a strip of their own, clear of every line
            low, high = ax.get_ylim()
            low = max(low, 0.0)
            ticks = [t for t in ax.get_yticks() if low <= t <= high]  # none in the strip: no accuracy lives there
            ax.set_ylim(low - 0.1 * (high - low), high)
            ax.set_yticks(ticks)
            ax.axhline(low, color="0.75", lw=0.6)
    fig.legend(handles=_dose_key(cells), fontsize="x-small", loc="outside right upper", frameon=False)
    # wrapped clear of the legend column at the right
    _suptitle(fig, f"mean over seeds, bars: 95% CI; x: STDP's step over the optimiser's, mean over STDP epochs (log; "
                   f">{DOSE_MAX:g} on the grey line; methods dodged a few % apart)", width=fig.get_figwidth() - 2.6)
    _save_figure(fig, cells, Path(out_dir), "dose")
    return fig


def _raw_sum(stdp_norm) -> bool:
    """stdp_norm off: the released code's coupling (the update's raw sum), drawn as a star."""
    return pd.notna(stdp_norm) and not bool(stdp_norm)


def _is_control(method: str) -> bool:
    return "shrink" in method or "frozen" in method


def _dose_key(cells: pd.DataFrame) -> list:
    """The dose figure's legend: each method drawn, its marks, then the crosses of collapsed runs."""
    key = []
    for method in sorted(cells["method"].unique(), key=_method_key):
        color, style = METHOD_STYLE.get(method, ("black", "-"))
        if method in ("gs", "gsni"):
            key.append(Line2D([], [], color=color, ls=style, lw=1.2, label=f"{method} (no STDP; band: 95% CI)"))
        else:
            key.append(Line2D([], [], color=color, ls=style, marker=_marker(method),
                              mfc="white" if _is_control(method) else color, label=method))
    if "stdp_norm" in cells and cells["stdp_norm"].map(_raw_sum).any():
        key.append(Line2D([], [], color="0.3", marker="*", ls="", ms=8, label="stdp_norm off (raw sum)"))
    if (cells["collapsed"] > 0).any():
        key.append(Line2D([], [], color="0.3", marker="x", ls="", label="runs collapsed here\n(not in the means)"))
    return key


def _dose_cells(runs: pd.DataFrame, keys: list[str], split: list[str], metric: str, kind: str) -> pd.DataFrame:
    """Per cell of keys: mean and 95% CI over the seeds that did not collapse of accuracy (percent)
    and of the dose, the count of collapsed runs and the mean dose of all of them (dose_all: where a
    cell of only collapsed runs is marked)."""
    rows = []
    for cell, group in runs.groupby(keys, dropna=False, sort=False):
        info = dict(zip(keys, cell))
        out = collapsed_mask(group)
        kept = group[~out]
        acc = summarize(kept[metric] * 100)
        dose = _mean_dose(kept["stdp_dose"].dropna())
        rows.append({**info, "kind": kind, "label": _line_label(pd.Series(info), split), "dose": dose["mean"],
                     "dose_low": dose["ci_low"], "dose_high": dose["ci_high"], **acc, "collapsed": int(out.sum()),
                     "dose_all": _mean_dose(group["stdp_dose"].dropna())["mean"]})
    columns = keys + ["kind", "label", "dose", "dose_low", "dose_high", "mean", "std", "n", "ci_low", "ci_high",
                      "collapsed", "dose_all"]
    return _sorted(pd.DataFrame(rows, columns=columns), keys)


def _mean_dose(doses: pd.Series) -> dict:
    if np.isfinite(doses).all():
        return summarize(doses)
    return dict.fromkeys(("mean", "ci_low", "ci_high"), math.inf)  # a run's weights blew up
