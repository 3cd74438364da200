"""Tables 1 and 2 and Figure 2 from run directories: means over seeds, spread, Welch/Holm, paper beside.

Accuracies are fractions in the run records and percent in every table and figure.
"""
from __future__ import annotations

import math
from pathlib import Path

import matplotlib
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from eicil import records
from eicil.paper import paper_acc
from eicil.stats import holm, summarize, welch_p

CYCLE_METHODS = ("gsi", "gsgi", "gsni")
# Rows follow the paper's order (its Table 1 lists models and methods this way), not the alphabet.
ORDER = {column: {name: i for i, name in enumerate(names)} for column, names in {
    "model": ("resnet18", "vgg11", "ei_net", "csnn"),
    "dataset": ("cifar10", "cifar100", "mnist", "digits", "fake"),
    "method": ("gs", "stdp-bw", "stdp-conv", "stdp-bw-gs", "gsi", "gsgi", "gsni"),
}.items()}
RUN_COLUMNS = ["model", "dataset", "method", "k", "seed", "test_acc", "best_test_acc", "best_val_acc",
               "epochs", "status", "path"]
CURVE_COLUMNS = ["model", "dataset", "method", "k", "seed", "epoch", "mechanism", "value"]
STAT_COLUMNS = ["mean", "std", "n", "ci_low", "ci_high", "delta_vs_gs", "p_vs_gs", "p_holm", "paper", "note"]
FIGURE_COLUMNS = ["model", "dataset", "method", "k", "epoch", "mechanism", "mean", "ci_low", "ci_high", "n"]
SINGLE_SEED_NOTE = "n=1: demonstration, not a result"


def load_runs(root: Path | str, status: str | None = "complete") -> pd.DataFrame:
    """One row per run directory below root with the given summary status (None: every run).

    Runs without a summary.json get status "no summary". Other scalar config fields follow the
    named columns, so a caller can filter to one configuration before building tables.
    """
    rows = []
    for path in records.find_runs(Path(root)):
        config = records.read_json(path / "config.json")["config"]
        summary_file = path / "summary.json"
        summary = records.read_json(summary_file) if summary_file.exists() else {"status": "no summary"}
        named = {
            "model": config["model"], "dataset": config["dataset"], "method": config["method"],
            # K only shapes the schedule of the cycle methods; elsewhere it is an unused default.
            "k": config.get("k") if config["method"] in CYCLE_METHODS else None,
            "seed": config["seed"], "test_acc": summary.get("test_acc"),
            "best_test_acc": summary.get("best_test_acc"), "best_val_acc": summary.get("best_val_acc"),
            "epochs": config["epochs"], "status": summary["status"], "path": str(path),
        }
        extra = {key: v for key, v in config.items()
                 if key not in named and isinstance(v, (str, int, float, bool, type(None)))}
        rows.append({**named, **extra})
    runs = pd.DataFrame(rows, columns=RUN_COLUMNS if not rows else None)
    runs["k"] = runs["k"].astype("Int64")
    if status is not None:
        runs = runs[runs["status"] == status]
    return runs.reset_index(drop=True)


def load_curves(root: Path | str) -> pd.DataFrame:
    """Test accuracy (fraction) per epoch of every complete run below root."""
    return _curves(load_runs(root))


def _curves(runs: pd.DataFrame) -> pd.DataFrame:
    rows = [
        {"model": run.model, "dataset": run.dataset, "method": run.method, "k": run.k, "seed": run.seed,
         "epoch": m["epoch"], "mechanism": m["mechanism"], "value": m["value"]}
        for run in runs.itertuples()
        for m in records.read_metrics(Path(run.path) / "metrics.csv")
        if m["split"] == "test" and m["metric"] == "acc"
    ]
    curves = pd.DataFrame(rows, columns=CURVE_COLUMNS)
    curves["k"] = curves["k"].astype("Int64")
    return curves


def _sorted(frame: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    key = lambda col: col.map(ORDER[col.name]) if col.name in ORDER else col  # noqa: E731
    return frame.sort_values(by, key=key, kind="stable").reset_index(drop=True)


def _pick_k(frame: pd.DataFrame, k: int) -> pd.DataFrame:
    """Keep one K per (model, dataset, method) of a cycle method: k if present, else the K with most seeds."""
    cell = ["model", "dataset", "method"]
    is_cycle = frame["method"].isin(CYCLE_METHODS)
    seeds = frame[is_cycle].groupby(cell + ["k"])["seed"].nunique().reset_index()
    seeds["preferred"] = seeds["k"] == k
    chosen = seeds.sort_values(["preferred", "seed"], ascending=False, kind="stable").drop_duplicates(cell)
    return pd.concat([frame[~is_cycle], frame[is_cycle].merge(chosen[cell + ["k"]], on=cell + ["k"])])


def _check_one_configuration(runs: pd.DataFrame) -> None:
    # Two runs of one cell and seed, or two epoch budgets in one comparison, mean the root mixes
    # experiments; pooling them would inflate n or compare unlike runs.
    repeated = runs[runs.duplicated(["model", "dataset", "method", "k", "seed"], keep=False)]
    if len(repeated):
        raise ValueError(f"runs repeat a (model, dataset, method, k, seed): {sorted(repeated['path'])}; "
                         "filter load_runs() to one configuration first")
    budgets = runs.groupby(["model", "dataset"])["epochs"].nunique()
    if (budgets > 1).any():
        raise ValueError(f"several epoch budgets for {list(budgets[budgets > 1].index)}; "
                         "filter load_runs() to one budget first")


def _compare(runs: pd.DataFrame, keys: list[str], metric: str) -> pd.DataFrame:
    """Statistics per cell of `keys`, each compared with gs of the same model and dataset."""
    _check_one_configuration(runs)
    rows = []
    for cell, group in runs.groupby(keys, dropna=False):
        info = dict(zip(keys, cell))
        acc = group[metric].to_numpy(float) * 100
        is_gs = runs["method"] == "gs"
        base = runs[is_gs & (runs["model"] == info["model"]) & (runs["dataset"] == info["dataset"])]
        base_acc = base[metric].to_numpy(float) * 100
        compared = info["method"] != "gs" and len(base_acc) > 0
        stats = summarize(acc)
        rows.append({
            **info, **stats,
            "delta_vs_gs": stats["mean"] - base_acc.mean() if compared else math.nan,
            "p_vs_gs": welch_p(acc, base_acc) if compared else math.nan,
            "note": SINGLE_SEED_NOTE if stats["n"] == 1 else "",
        })
    table = pd.DataFrame(rows)
    table["p_holm"] = holm(table["p_vs_gs"])
    return _sorted(table, keys)


def table1(runs: pd.DataFrame, k: int = 5, metric: str = "test_acc") -> pd.DataFrame:
    """A row per (model, dataset, method); cycle methods at K=k where run (column k says which K)."""
    table = _compare(_pick_k(runs, k), ["model", "dataset", "method", "k"], metric)
    # The paper's Table 1 states no K, so its number stands beside whichever K we ran.
    table["paper"] = [paper_acc(r.model, r.dataset, r.method) for r in table.itertuples()]
    return table[["model", "dataset", "method", "k"] + STAT_COLUMNS]


def table2(runs: pd.DataFrame, metric: str = "test_acc") -> pd.DataFrame:
    """A row per (model, dataset, K, cycle method), compared with gs of the same model and dataset."""
    keys = ["model", "dataset", "k", "method"]
    cycled = runs["method"].isin(CYCLE_METHODS)
    if not cycled.any():
        return pd.DataFrame(columns=keys + STAT_COLUMNS)
    # gs runs stay in so that _compare finds the baseline; their rows (untested, so outside Holm's m)
    # are dropped after.
    table = _compare(runs[cycled | (runs["method"] == "gs")], keys, metric)
    table = table[table["method"] != "gs"].copy()
    table["paper"] = [paper_acc(r.model, r.dataset, r.method, int(r.k)) for r in table.itertuples()]
    return _sorted(table[keys + STAT_COLUMNS], keys)


def _fmt(x: float, spec: str) -> str:
    return "" if pd.isna(x) else format(x, spec)


def _display(table: pd.DataFrame) -> pd.DataFrame:
    """The table as strings: 'mean ± std (n)', the interval, p-values and the paper's number."""
    base = "gsni" if "delta_vs_gsni" in table else "gs"  # the control table compares with gsni
    keys = [c for c in ("model", "dataset", "k", "method") if c in table]
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
    """gsi and gsgi against gsni of the same model, dataset and K: the same cycle with STDP epochs
    against null epochs that update nothing. The difference is what STDP itself contributes."""
    keys = ["model", "dataset", "k", "method"]
    _check_one_configuration(runs)
    rows = []
    for (model, dataset, k), group in runs[runs["method"].isin(CYCLE_METHODS)].groupby(keys[:3]):
        base = group.loc[group["method"] == "gsni", metric].to_numpy(float) * 100
        for method in ("gsi", "gsgi"):
            acc = group.loc[group["method"] == method, metric].to_numpy(float) * 100
            if len(base) and len(acc):
                stats = summarize(acc)
                rows.append({"model": model, "dataset": dataset, "k": k, "method": method, **stats,
                             "delta_vs_gsni": stats["mean"] - base.mean(), "p_vs_gsni": welch_p(acc, base),
                             "paper": math.nan,
                             "note": SINGLE_SEED_NOTE if min(len(acc), len(base)) == 1 else ""})
    table = pd.DataFrame(rows, columns=keys + STAT_COLUMNS[:5] + ["delta_vs_gsni", "p_vs_gsni", "paper", "note"])
    table["p_holm"] = holm(table["p_vs_gsni"]) if len(table) else []
    return _sorted(table, keys)


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
    rows = []
    for cell, group in _pick_k(curves, k).groupby(["model", "dataset", "method", "k", "epoch"], dropna=False):
        # One K fixes the schedule, so every seed ran the same mechanism in a given epoch.
        rows.append({**dict(zip(FIGURE_COLUMNS[:5], cell)), "mechanism": group["mechanism"].iloc[0],
                     **summarize(group["value"] * 100)})
    plotted = _sorted(pd.DataFrame(rows, columns=FIGURE_COLUMNS + ["std"])[FIGURE_COLUMNS],
                      ["model", "dataset", "method", "k", "epoch"])
    panels = list(plotted[["model", "dataset"]].drop_duplicates().itertuples(index=False))
    if not panels:
        raise ValueError("figure2: the curves hold no test accuracy to plot")
    ncols = min(3, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig = Figure(figsize=(4.8 * ncols, 3.6 * nrows + 0.4))
    axes = fig.subplots(nrows, ncols, squeeze=False).flat
    for ax, (model, dataset) in zip(axes, panels):
        panel = plotted[(plotted["model"] == model) & (plotted["dataset"] == dataset)]
        for (method, k_used), line in panel.groupby(["method", "k"], dropna=False, sort=False):
            label = method if pd.isna(k_used) else f"{method} K={int(k_used)}"
            (drawn,) = ax.plot(line["epoch"], line["mean"], label=label, lw=1.2)
            ax.fill_between(line["epoch"], line["ci_low"], line["ci_high"], color=drawn.get_color(), alpha=0.2)
            inhibitory = line[line["mechanism"] != "gs"]
            ax.plot(inhibitory["epoch"], inhibitory["mean"], "o", ms=3.5, mfc="none", color=drawn.get_color())
        ax.set(title=f"{model} / {dataset}", xlabel="epoch", ylabel="test accuracy (%)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(fontsize="small")
    for ax in list(axes)[len(panels):]:
        ax.set_visible(False)
    fig.suptitle("mean over seeds; band: 95% CI; hollow markers: inhibitory (non-gs) epochs", fontsize="small")
    fig.tight_layout()
    out_dir.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_dir / "figure2.png", dpi=150)
    with matplotlib.rc_context({"svg.hashsalt": "eicil"}):  # stable ids: a rerun gives the same file
        fig.savefig(out_dir / "figure2.svg", metadata={"Date": None})
    records.atomic_write_bytes(out_dir / "figure2.csv", plotted.to_csv(index=False).encode())
    return fig


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
