"""Figure 2 (test accuracy per epoch) and the forest plots of the tables' differences, each written
as png, svg and the csv of the numbers drawn; the panels, colours and markers every figure shares
(eicil.dose_plot draws accuracy against STDP's dose with them).

Accuracies are percent (differences: percentage points) in every figure.
"""
from __future__ import annotations

import math
import textwrap
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from eicil import cycle, records
from eicil.cells import ORDER, _pick_k, _sorted
from eicil.cycle import PAPER_METHODS
from eicil.stats import summarize

FIGURE_EXTS = ("png", "svg", "csv")
FIGURE_COLUMNS = ["model", "dataset", "method", "k", "epoch", "mechanism", "mean", "ci_low", "ci_high", "n"]
# Figure 2 draws the paper's methods and gsni; the other controls are in the controls table and forest.
FIGURE2_METHODS = PAPER_METHODS + ("gsni",)
# One colour per method in every figure. An STDP method and its controls share a colour family, the
# controls dashed (shrink: a step of STDP's size along -w) or dotted (frozen); gs grey, gsni purple.
METHOD_STYLE = {
    "gs": ("0.45", "-"), "gsni": ("#7b3294", "-."),
    "gsgi": ("#08519c", "-"), "gsgi-shrink": ("#4eb3d3", "--"),
    "gsi": ("#d94801", "-"), "gsi-shrink": ("#fd8d3c", "--"), "gsi-frozen": ("#8c2d04", ":"),
    "stdp-bw-gs": ("#006d2c", "-"), "shrink-bw-gs": ("#74c476", "--"),
    "stdp-bw": ("#a50f15", "-"), "shrink-bw": ("#fb6a4a", "--"), "frozen-bw": ("#67000d", ":"),
    "stdp-conv": ("#7a5c00", "-"), "shrink-conv": ("#c9a227", "--"), "frozen-conv": ("#4d3900", ":"),
}


def method_color(method: str) -> str:
    return METHOD_STYLE.get(method, ("black", "-"))[0]


def _marker(method: str) -> str:
    # STDP and the methods without STDP: circles; shrink controls: squares; frozen: triangles
    return "s" if "shrink" in method else "^" if "frozen" in method else "o"


def _facets(frame: pd.DataFrame, split: list[str], keep: tuple[str, ...] = ()) -> list[tuple[str, pd.DataFrame]]:
    """The panels of a figure: a panel per (model, dataset) and per combination of the split settings
    that vary within it (except those in keep, which stay within a panel). A row blank in such a
    setting (its method ignores it, as gs ignores stdp_lr) joins every panel of its (model, dataset).

    Returns (title, rows) per panel, in frame order."""
    out = []
    for (model, dataset), group in frame.groupby(["model", "dataset"], sort=False):
        faceted = [c for c in split if c not in keep and group[c].dropna().nunique() > 1]
        shared = [_setting(c, group[c].dropna().iloc[0]) for c in split if c not in faceted
                  and group[c].notna().any() and not (c in keep and group[c].dropna().nunique() > 1)]
        title = f"{model} / {dataset}" + (f" ({', '.join(shared)})" if shared else "")
        combos = group[faceted].dropna().drop_duplicates() if faceted else pd.DataFrame(index=[0])
        for _, combo in combos.iterrows():
            rows = group
            for c in faceted:
                rows = rows[rows[c].isna() | (rows[c] == combo[c])]
            where = ", ".join(_setting(c, combo[c]) for c in faceted)
            out.append((title + (f"\n{where}" if where else ""), rows))
    return out


def _setting(name: str, v) -> str:
    if name == "k":
        return f"K={int(v)}"
    return f"{name} {v:g}" if isinstance(v, float) else f"{name} {v}"


def _method_key(method: str) -> tuple:
    """Legend order: gs and gsni, then each STDP method (the paper's order) followed by its controls."""
    family = next((m for m, cs in cycle.CONTROLS.items() if method in cs and method not in ("gs", "gsni")), method)
    rank = ORDER["method"]
    return (method not in ("gs", "gsni"), rank.get(family, len(rank)), method != family, rank.get(method, len(rank)))


def figure2(curves: pd.DataFrame, out_dir: Path | str, k: int = 5,
            methods: tuple[str, ...] = FIGURE2_METHODS) -> Figure:
    """Test accuracy per epoch, a line per method with a 95% CI band, as the paper's Figure 2: a
    panel per (model, dataset) and per combination of the settings that vary within it (gs, which
    ignores STDP's settings, in every panel of its data), each method in its one colour.

    Only the given methods are drawn (all of them when the curves hold none of these). Hollow
    markers sit on epochs trained by an inhibitory (non-gs) mechanism. Collapsed runs are not in the
    curves (report.load_curves), so they pull no mean down; curves.attrs["collapsed"] counts them."""
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
    if plotted.empty:
        raise ValueError("figure2: the curves hold no test accuracy to plot")
    panels = _facets(plotted, split)
    ncols = min(3, len(panels))
    fig = Figure(figsize=(5.2 * ncols, 3.4 * math.ceil(len(panels) / ncols) + 0.5), layout="constrained")
    for ax, (title, panel) in zip(_panel_axes(fig, len(panels)), panels):
        lines = panel.groupby(line_keys, dropna=False, sort=False)
        for _, line in sorted(lines, key=lambda kv: _method_key(kv[1]["method"].iloc[0])):
            first = line.iloc[0]
            color, style = METHOD_STYLE.get(first["method"], ("black", "-"))
            ax.fill_between(line["epoch"], line["ci_low"].clip(lower=0), line["ci_high"].clip(upper=100),
                            color=color, alpha=0.12, lw=0)
            ax.plot(line["epoch"], line["mean"], style, color=color, lw=1.5,
                    label=f"{_line_label(first, [])} (n={line['n'].max()})")
            off = line[line["mechanism"] != cycle.EXCITATORY]
            ax.plot(off["epoch"], off["mean"], "o", ms=4, mfc="white", color=color)
        ax.set(title=title, xlabel="epoch", ylabel="test accuracy (%)")
        ax.title.set_fontsize("medium")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    left_out = curves.attrs.get("collapsed", 0)
    _suptitle(fig, "test accuracy, mean over seeds; band: 95% CI; hollow markers: inhibitory (non-gs) epochs"
              + (f"; {left_out} collapsed runs left out" if left_out else ""))
    _save_figure(fig, plotted[columns], out_dir, "figure2")
    return fig


def _suptitle(fig: Figure, text: str, width: float | None = None) -> None:
    """A small-type title wrapped to `width` inches (default: the figure's), so a one-panel figure
    never clips it; a narrower width starts it at the left edge, clear of a legend at the right."""
    chars = int(17 * (width or fig.get_figwidth()))  # about 17 characters per inch at "small" size
    where = dict(x=0.01, ha="left") if width else {}
    fig.suptitle(textwrap.fill(text, chars), fontsize="small", **where)


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


def forest(table: pd.DataFrame, base_col: str, out_dir: Path | str, name: str) -> Figure | None:
    """Each row's difference from its baseline, a panel per (model, dataset) and per combination of
    the settings that vary within it, each panel as tall as its rows. base_col is the table's
    difference column: delta_vs_gs (table1/table2), delta_vs_gsni (control) or delta (controls,
    whose baseline is each row's `control`). A row's thick bar is its Welch 95% interval, the thin
    one the interval at Holm's level (it excludes 0 exactly when the verdict calls the difference
    detected); its colour is its method's. The grey band spans ± the row's MDE (80% power): a true
    difference inside it would often (over 20% of the time) go undetected, so a miss there says little.

    Writes name.{png,svg,csv}; returns None and writes nothing when no row has a difference."""
    plotted = _forest_rows(table, base_col)
    if plotted.empty:
        return None
    keys = list(table.columns[:list(table.columns).index("mean")])
    split = [c for c in keys if c not in ("model", "dataset", "method", "k", "control")]
    panels = _facets(plotted, split)
    ncols = min(3, len(panels))
    grid_rows = [panels[i:i + ncols] for i in range(0, len(panels), ncols)]
    heights = [max(len(rows) for _, rows in row) * 0.26 + 0.9 for row in grid_rows]
    width = 4.4 + 0.055 * plotted["label"].str.len().max()  # room for the row labels
    # at least as wide as the title and the legend under the panels
    fig = Figure(figsize=(max(7.5, width * ncols), sum(heights) + 0.7), layout="constrained")
    axes = fig.subplots(len(grid_rows), ncols, squeeze=False, gridspec_kw={"height_ratios": heights}).flat
    axes = list(axes)
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    for ax, (title, panel) in zip(axes, panels):
        y = -np.arange(len(panel))  # the table's first row on top
        colors = [method_color(m) for m in panel["method"]]
        band = panel["mde"].notna().to_numpy()
        ax.barh(y[band], 2 * panel["mde"][band], left=-panel["mde"][band], height=0.7, color="0.9")
        ax.hlines(y, panel["holm_low"], panel["holm_high"], colors=colors, lw=0.8)
        ax.hlines(y, panel["diff_low"], panel["diff_high"], colors=colors, lw=2.2)
        ax.scatter(panel["delta"], y, c=colors, s=18, zorder=3)
        ax.axvline(0, color="k", lw=0.8)
        ax.set_yticks(y, panel["label"], fontsize="small")
        ax.set_ylim(y.min() - 0.6, 0.6)
        ax.set_xlim(max(ax.get_xlim()[0], -100), min(ax.get_xlim()[1], 100))  # no difference is wider
        ax.set_title(title, fontsize="medium")
        ax.set_xlabel("difference (percentage points)", fontsize="small")
    key = [Patch(color="0.9", label="± MDE (80% power)"), Line2D([], [], color="0.3", lw=2.2, label="95% CI (Welch)"),
           Line2D([], [], color="0.3", lw=0.8, label="interval at Holm's level"),
           Line2D([], [], color="0.3", marker="o", ls="", label="difference of means")]
    fig.legend(handles=key, fontsize="x-small", loc="outside lower center", ncols=4, frameon=False)
    _suptitle(fig, f"{name}: each row minus its baseline; colour: the row's method; no bar: n < 2 or no spread")
    _save_figure(fig, plotted, Path(out_dir), name)
    return fig


def _forest_rows(table: pd.DataFrame, base_col: str) -> pd.DataFrame:
    """The rows with a difference, labelled 'method [K] vs baseline', with the settings that place
    them in a panel."""
    rows = table[table[base_col].notna()].reset_index(drop=True)
    keys = list(table.columns[:list(table.columns).index("mean")])
    split = [c for c in keys if c not in ("model", "dataset", "method", "k", "control")]
    baseline = rows["control"] if "control" in rows else pd.Series(base_col.removeprefix("delta_vs_"), rows.index)
    titles, _ = _panel_settings(rows, split)
    labels = [f"{_line_label(r, [])} vs {b}" for (_, r), b in zip(rows.iterrows(), baseline)]
    return pd.DataFrame({"model": rows["model"], "dataset": rows["dataset"], **{c: rows[c] for c in split},
                         "method": rows["method"], "label": labels,
                         "title": [titles[m, d] for m, d in zip(rows["model"], rows["dataset"])],
                         "baseline": baseline, "delta": rows[base_col], "diff_low": rows["diff_low"],
                         "diff_high": rows["diff_high"], "holm_low": rows["holm_low"],
                         "holm_high": rows["holm_high"], "mde": rows["mde"], "p_holm": rows["p_holm"]})
