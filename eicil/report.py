"""Tables 1 and 2 and Figure 2 from run directories: means over seeds, spread, Welch/Holm, paper beside.

Accuracies are fractions in the run records and percent in every table and figure.
"""
from __future__ import annotations

import math
from pathlib import Path

import matplotlib
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from eicil import cycle, records
from eicil.config import RUN_IRRELEVANT, TYPES
from eicil.cycle import METHODS
from eicil.paper import paper_acc
from eicil.stats import holm, summarize, welch_p

# Rows follow the paper's order (its Table 1 lists models and methods this way), not the alphabet.
ORDER = {column: {name: i for i, name in enumerate(names)} for column, names in {
    "model": ("resnet18", "vgg11", "ei_net", "csnn"),
    "dataset": ("cifar10", "cifar100", "mnist", "digits", "fake"),
    "method": METHODS,
}.items()}
RUN_COLUMNS = ["model", "dataset", "method", "k", "seed", "test_acc", "best_test_acc", "best_val_acc",
               "epochs", "status", "path"]
CURVE_COLUMNS = ["model", "dataset", "method", "k", "seed", "epoch", "mechanism", "value"]
STAT_COLUMNS = ["mean", "std", "n", "ci_low", "ci_high", "delta_vs_gs", "p_vs_gs", "p_holm", "paper", "note"]
FIGURE_COLUMNS = ["model", "dataset", "method", "k", "epoch", "mechanism", "mean", "ci_low", "ci_high", "n"]
SINGLE_SEED_NOTE = "n=1: demonstration, not a result"
# Config fields that say what a run computed, beyond the named columns and the seed.
SETTINGS = [name for name in TYPES if name not in RUN_IRRELEVANT and name not in ("model", "dataset", "method", "k", "seed")]


def load_runs(root: Path | str, status: str | None = "complete") -> pd.DataFrame:
    """One row per run directory below root with the given summary status (None: every run).

    Runs without a summary.json get status "no summary". Other scalar config fields follow the
    named columns; a field that cannot change what the run's method computes (K of gs, stdp_lr of
    a run without STDP) is left empty, so it neither splits nor matches.
    """
    rows = []
    for path in records.find_runs(Path(root)):
        config = records.read_json(path / "config.json")["config"]
        summary_file = path / "summary.json"
        summary = records.read_json(summary_file) if summary_file.exists() else {"status": "no summary"}
        method = config["method"]
        named = {
            "model": config["model"], "dataset": config["dataset"], "method": method,
            "k": config.get("k") if cycle.uses_k(method) else None,
            "seed": config["seed"], "test_acc": summary.get("test_acc"),
            "best_test_acc": summary.get("best_test_acc"), "best_val_acc": summary.get("best_val_acc"),
            "epochs": config["epochs"], "status": summary["status"], "path": str(path),
        }
        extra = {key: v if cycle.relevant(method, key) else None for key, v in config.items()
                 if key not in named and isinstance(v, (str, int, float, bool, type(None)))}
        rows.append({**named, **extra})
    runs = pd.DataFrame(rows, columns=RUN_COLUMNS if not rows else None)
    runs["k"] = runs["k"].astype("Int64")
    if status is not None:
        runs = runs[runs["status"] == status]
    return runs.reset_index(drop=True)


def split_settings(runs: pd.DataFrame) -> list[str]:
    """Settings that take more than one value among the runs: each becomes a key column of a table,
    so runs that differ in anything but the seed never share a cell."""
    return [c for c in SETTINGS if c in runs.columns and runs[c].dropna().nunique() > 1]


def load_curves(root: Path | str) -> pd.DataFrame:
    """Test accuracy (fraction) per epoch of every complete run below root."""
    return _curves(load_runs(root))


def _curves(runs: pd.DataFrame) -> pd.DataFrame:
    split = split_settings(runs)
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
    return curves


def _sorted(frame: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    key = lambda col: col.map(ORDER[col.name]) if col.name in ORDER else col  # noqa: E731
    return frame.sort_values(by, key=key, kind="stable").reset_index(drop=True)


def _pick_k(frame: pd.DataFrame, k: int, split: list[str]) -> pd.DataFrame:
    """Keep one K per cell of a cycle method: k if present, else the K with most seeds."""
    cell = ["model", "dataset", *split, "method"]
    is_cycle = frame["method"].map(cycle.uses_k).astype(bool)
    seeds = frame[is_cycle].groupby(cell + ["k"], dropna=False)["seed"].nunique().reset_index()
    seeds["preferred"] = seeds["k"] == k
    chosen = seeds.sort_values(["preferred", "seed"], ascending=False, kind="stable").drop_duplicates(cell)
    return pd.concat([frame[~is_cycle], frame[is_cycle].merge(chosen[cell + ["k"]], on=cell + ["k"])])


def _same(column: pd.Series, value) -> pd.Series:
    return column.isna() if pd.isna(value) else column == value


def _compare(runs: pd.DataFrame, keys: list[str], metric: str, base: str = "gs",
             methods: tuple[str, ...] | None = None) -> pd.DataFrame:
    """Statistics per cell of `keys` (rows of `methods`, default all), each compared with the runs of
    method `base` of the same model and dataset that agree on every key `base` uses."""
    repeated = runs[runs.duplicated(keys + ["seed"], keep=False)]
    if len(repeated):  # identical settings and seed twice: pooling would inflate n
        raise ValueError(f"runs repeat the same settings and seed: {sorted(repeated['path'])}; "
                         "report them from separate folders")
    rows = []
    for cell, group in runs.groupby(keys, dropna=False, sort=False):
        info = dict(zip(keys, cell))
        if methods is not None and info["method"] not in methods:
            continue
        match = runs["method"] == base
        for c in keys:
            if c != "method" and cycle.relevant(base, c):
                match &= _same(runs[c], info[c])
        acc = group[metric].to_numpy(float) * 100
        base_acc = runs.loc[match, metric].to_numpy(float) * 100
        compared = info["method"] != base and len(base_acc) > 0
        stats = summarize(acc)
        rows.append({
            **info, **stats,
            f"delta_vs_{base}": stats["mean"] - base_acc.mean() if compared else math.nan,
            f"p_vs_{base}": welch_p(acc, base_acc) if compared else math.nan,
            "note": SINGLE_SEED_NOTE if min(stats["n"], len(base_acc) or 1) == 1 else "",
        })
    columns = keys + STAT_COLUMNS[:5] + [f"delta_vs_{base}", f"p_vs_{base}", "note"]
    table = pd.DataFrame(rows, columns=columns)
    table["p_holm"] = holm(table[f"p_vs_{base}"]) if len(table) else []
    return _sorted(table, keys)


def _keys(runs: pd.DataFrame, *last: str) -> list[str]:
    return ["model", "dataset", *split_settings(runs), *last]


def table1(runs: pd.DataFrame, k: int = 5, metric: str = "test_acc") -> pd.DataFrame:
    """A row per (model, dataset, differing settings, method); cycle methods at K=k where run
    (column k says which K)."""
    keys = _keys(runs, "method", "k")
    table = _compare(_pick_k(runs, k, split_settings(runs)), keys, metric)
    # The paper's Table 1 states no K, so its number stands beside whichever K we ran.
    table["paper"] = [paper_acc(r.model, r.dataset, r.method) for r in table.itertuples()]
    return table[keys + STAT_COLUMNS]


def table2(runs: pd.DataFrame, metric: str = "test_acc") -> pd.DataFrame:
    """A row per (model, dataset, differing settings, K, cycle method), compared with gs."""
    keys = _keys(runs, "k", "method")
    methods = tuple(m for m in METHODS if cycle.uses_k(m))
    table = _compare(runs, keys, metric, methods=methods)
    table["paper"] = [paper_acc(r.model, r.dataset, r.method, int(r.k)) for r in table.itertuples()]
    return table[keys + STAT_COLUMNS]


def _fmt(x: float, spec: str) -> str:
    return "" if pd.isna(x) else format(x, spec)


def _display(table: pd.DataFrame) -> pd.DataFrame:
    """The table as strings: 'mean ± std (n)', the interval, p-values and the paper's number."""
    base = "gsni" if "delta_vs_gsni" in table else "gs"  # the control table compares with gsni
    keys = list(table.columns[:list(table.columns).index("mean")])  # the cell's key columns, in order
    out = pd.DataFrame({c: [_fmt(v, "") for v in table[c]] for c in keys})
    out["mean ± std (n)"] = [f"{r.mean:.2f} ± {_fmt(r.std, '.2f') or '–'} ({r.n})" for r in table.itertuples()]
    out["95% CI"] = [f"[{r.ci_low:.2f}, {r.ci_high:.2f}]" if r.n > 1 else "" for r in table.itertuples()]
    out[f"delta vs {base}"] = [_fmt(v, "+.2f") for v in table[f"delta_vs_{base}"]]
    out["p (Welch)"] = [_fmt(v, ".3g") for v in table[f"p_vs_{base}"]]
    out["p (Holm)"] = [_fmt(v, ".3g") for v in table["p_holm"]]
    out["paper"] = [_fmt(v, ".2f") for v in table["paper"]]
    out["note"] = list(table["note"])
    return out


def control(runs: pd.DataFrame, metric: str = "test_acc") -> pd.DataFrame:
    """gsi and gsgi against gsni of the same model, dataset, K and settings: the same cycle with STDP
    epochs against null epochs that update nothing. The difference is what STDP itself contributes."""
    keys = _keys(runs, "k", "method")
    table = _compare(runs, keys, metric, base="gsni", methods=("gsi", "gsgi"))
    table = table[table["p_vs_gsni"].notna() | table["delta_vs_gsni"].notna()].copy()
    table["p_holm"] = holm(table["p_vs_gsni"]) if len(table) else []
    table["paper"] = math.nan
    return table[keys + STAT_COLUMNS[:5] + ["delta_vs_gsni", "p_vs_gsni", "p_holm", "paper", "note"]]


def write_tables(df: pd.DataFrame, out_dir: Path | str, name: str) -> list[Path]:
    """Write name.csv (full precision), name.md and name.tex (readable) into out_dir."""
    out_dir = Path(out_dir)
    shown = _display(df)
    header = "| " + " | ".join(shown.columns) + " |\n|" + "---|" * len(shown.columns) + "\n"
    body = "".join("| " + " | ".join(row) + " |\n" for row in shown.itertuples(index=False))
    paths = [out_dir / f"{name}.{ext}" for ext in ("csv", "md", "tex")]
    texts = [df.to_csv(index=False), header + body, shown.to_latex(index=False, escape=True)]
    for path, text in zip(paths, texts):
        records.atomic_write_bytes(path, text.encode())
    return paths


def figure2(curves: pd.DataFrame, out_dir: Path | str, k: int = 5) -> Figure:
    """Test accuracy per epoch, a panel per (model, dataset), a line per method with a 95% CI band.

    Hollow markers sit on epochs trained by an inhibitory (non-gs) mechanism.
    """
    out_dir = Path(out_dir)
    split = curves.attrs.get("split", [])
    line_keys = ["model", "dataset", *split, "method", "k"]
    rows = []
    for cell, group in _pick_k(curves, k, split).groupby(line_keys + ["epoch"], dropna=False):
        # One K fixes the schedule, so every seed ran the same mechanism in a given epoch.
        rows.append({**dict(zip(line_keys + ["epoch"], cell)), "mechanism": group["mechanism"].iloc[0],
                     **summarize(group["value"] * 100)})
    columns = FIGURE_COLUMNS[:2] + split + FIGURE_COLUMNS[2:]
    plotted = _sorted(pd.DataFrame(rows, columns=columns + ["std"])[columns], line_keys + ["epoch"])
    panels = list(plotted[["model", "dataset"]].drop_duplicates().itertuples(index=False))
    if not panels:
        raise ValueError("figure2: the curves hold no test accuracy to plot")
    plotted["line"] = [_line_label(r, split) for _, r in plotted.iterrows()]
    seeds = _pick_k(curves, k, split).merge(plotted[line_keys + ["epoch", "line"]], on=line_keys + ["epoch"])
    seeds["acc"] = seeds["value"] * 100
    ncols = min(3, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig = Figure(figsize=(4.8 * ncols, 3.6 * nrows + 0.4))
    axes = fig.subplots(nrows, ncols, squeeze=False).flat
    for ax, (model, dataset) in zip(axes, panels):
        panel = plotted[(plotted["model"] == model) & (plotted["dataset"] == dataset)]
        order = list(dict.fromkeys(panel["line"]))
        palette = dict(zip(order, sns.color_palette(n_colors=len(order))))
        # seaborn draws each line from the seeds, its band from the same t-interval as figure2.csv
        sns.lineplot(data=seeds[(seeds["model"] == model) & (seeds["dataset"] == dataset)], x="epoch", y="acc",
                     hue="line", hue_order=order, palette=palette, errorbar=_ci95, lw=1.2, ax=ax)
        inhibitory = panel[panel["mechanism"] != cycle.EXCITATORY]
        for label, points in inhibitory.groupby("line", sort=False):
            ax.plot(points["epoch"], points["mean"], "o", ms=3.5, mfc="none", color=palette[label])
        ax.set(title=f"{model} / {dataset}", xlabel="epoch", ylabel="test accuracy (%)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(fontsize="small", title=None)
    for ax in list(axes)[len(panels):]:
        ax.set_visible(False)
    fig.suptitle("mean over seeds; band: 95% CI; hollow markers: inhibitory (non-gs) epochs", fontsize="small")
    fig.tight_layout()
    out_dir.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_dir / "figure2.png", dpi=150)
    with matplotlib.rc_context({"svg.hashsalt": "eicil"}):  # stable ids: a rerun gives the same file
        fig.savefig(out_dir / "figure2.svg", metadata={"Date": None})
    records.atomic_write_bytes(out_dir / "figure2.csv", plotted[columns].to_csv(index=False).encode())
    return fig


def _line_label(row: pd.Series, split: list[str]) -> str:
    name = row["method"] if pd.isna(row["k"]) else f"{row['method']} K={int(row['k'])}"
    return " ".join([name] + [f"{c}={row[c]}" for c in split if not pd.isna(row[c])])


def _ci95(values) -> tuple[float, float]:
    s = summarize(values)
    return s["ci_low"], s["ci_high"]


def build_report(runs_root: Path | str, out_dir: Path | str = "figures", k: int = 5) -> dict:
    """Write runs.csv, Tables 1-2 and the gsni control table (headline test_acc and the paper's
    best-test protocol) and Figure 2.

    Returns {"files": [paths written], "summary": text naming what was used and what was skipped}.
    """
    out_dir = Path(out_dir)
    every_run = load_runs(runs_root, status=None)
    runs = every_run[every_run["status"] == "complete"].reset_index(drop=True)
    if runs.empty:
        raise ValueError(f"no complete runs under {runs_root}")
    files = [out_dir / "runs.csv"]
    records.atomic_write_bytes(files[0], every_run.to_csv(index=False).encode())
    for metric, suffix in (("test_acc", ""), ("best_test_acc", "_best_test")):
        files += write_tables(table1(runs, k=k, metric=metric), out_dir, f"table1{suffix}")
        second = table2(runs, metric=metric)
        if len(second):
            files += write_tables(second, out_dir, f"table2{suffix}")
        checked = control(runs, metric=metric)
        if len(checked):
            files += write_tables(checked, out_dir, f"control{suffix}")
    figure2(_curves(runs), out_dir, k=k)
    files += [out_dir / f"figure2.{ext}" for ext in ("png", "svg", "csv")]
    skipped = every_run[every_run["status"] != "complete"]
    lines = [f"{len(runs)} complete runs under {runs_root}; {len(skipped)} skipped; {len(files)} files in {out_dir}"]
    lines += [f"skipped ({r.status}): {r.path}" for r in skipped.itertuples()]
    return {"files": files, "summary": "\n".join(lines)}


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
