"""Tables 1 and 2 and Figure 2 from run directories: means over seeds, spread, Welch/Holm, paper beside;
the controls that isolate STDP, a verdict per claim, forest plots and accuracy against STDP's dose.

Accuracies are fractions in the run records and percent (differences: percentage points) in every
table and figure.
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
from eicil.config import RUN_IRRELEVANT, TYPES
from eicil.cycle import METHODS, PAPER_METHODS
from eicil.paper import paper_acc
from eicil.stats import diff_ci, holm, mde, summarize, welch_p

# Rows follow the paper's order (its Table 1 lists models and methods this way), not the alphabet.
ORDER = {column: {name: i for i, name in enumerate(names)} for column, names in {
    "model": ("resnet18", "vgg11", "ei_net", "csnn"),
    "dataset": ("cifar10", "cifar100", "mnist", "digits", "fake"),
    # the paper's methods in its order, then the controls in registry order
    "method": PAPER_METHODS + tuple(m for m in METHODS if m not in PAPER_METHODS),
}.items()}
ORDER["control"] = ORDER["method"]
RUN_COLUMNS = ["model", "dataset", "method", "k", "seed", "test_acc", "best_test_acc", "best_val_acc",
               "stdp_dose", "stdp_rel_step", "wall_seconds", "epochs", "status", "path"]
CURVE_COLUMNS = ["model", "dataset", "method", "k", "seed", "epoch", "mechanism", "value"]


def _stat_columns(base: str) -> list[str]:
    # diff_low/diff_high: the Welch 95% interval of the difference; mde: the smallest difference the
    # test detects with 80% power (percentage points), so a miss can be read as "too small to see".
    return ["mean", "std", "n", "ci_low", "ci_high", f"delta_vs_{base}", "diff_low", "diff_high",
            f"p_vs_{base}", "p_holm", "mde", "paper", "note"]


STAT_COLUMNS = _stat_columns("gs")
# The controls table: a method's cell, its control's cell, and the difference between them.
CONTROLS_COLUMNS = ["mean", "std", "n", "ci_low", "ci_high", "control_mean", "control_std", "control_n",
                    "delta", "diff_low", "diff_high", "p", "p_holm", "mde", "verdict", "note"]
VERSUS = ("delta", "diff_low", "diff_high", "p", "mde")
ALPHA = 0.05  # the Holm-adjusted level a verdict calls significant
UNTESTED = "not tested (n < 2 or no spread)"
CLAIMS = ("gsgi", "gsi", "stdp-bw", "stdp-bw-gs")  # the paper's Table 1 claims: each beats gs
SIGNS = {1: ">", 0: "=", -1: "<"}
FIGURE_EXTS = ("png", "svg", "csv")
FIGURE_COLUMNS = ["model", "dataset", "method", "k", "epoch", "mechanism", "mean", "ci_low", "ci_high", "n"]
SINGLE_SEED_NOTE = "n=1: demonstration, not a result"
# Figure 2 draws the paper's methods and gsni; the other controls are in the controls table and forest.
FIGURE2_METHODS = PAPER_METHODS + ("gsni",)
# Config fields that say what a run computed, beyond the named columns and the seed.
# The config's stdp_dose (the RHO a run was told to take) is the column stdp_dose_set: the column
# stdp_dose is the dose the run measured (summary.json).
SET_DOSE = "stdp_dose_set"
SETTINGS = [SET_DOSE if name == "stdp_dose" else name for name in TYPES
            if name not in RUN_IRRELEVANT and name not in ("model", "dataset", "method", "k", "seed")]
# The settings that set a run's scale, printed above every markdown table (those that vary are columns).
SCALE = ("width", "train_subset", "epochs", "timesteps", "batch_size", "test_subset", "val_fraction", "augment")
PAPER_NOTE = "paper: the paper's full-width, 350-epoch GPU figures."
DOSE_MAX = 1e3  # doses beyond this are drawn on the dose plot's edge


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
            "stdp_dose": _number(summary.get("stdp_dose")), "stdp_rel_step": _number(summary.get("stdp_rel_step")),
            "wall_seconds": _number(summary.get("wall_seconds")),
            "epochs": config["epochs"], "status": summary["status"], "path": str(path),
        }
        extra = {SET_DOSE if key == "stdp_dose" else key: v if cycle.relevant(method, key) else None
                 for key, v in config.items() if isinstance(v, (str, int, float, bool, type(None)))
                 and (key not in named or key == "stdp_dose")}
        rows.append({**named, **extra})
    runs = pd.DataFrame(rows, columns=RUN_COLUMNS if not rows else None)
    runs["k"] = runs["k"].astype("Int64")
    if status is not None:
        runs = runs[runs["status"] == status]
    return runs.reset_index(drop=True)


def _number(value) -> float:
    """A summary field as a float: NaN when missing or null (older runs, runs without STDP)."""
    return math.nan if value is None else float(value)


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
    _refuse_repeats(runs, keys)
    rows = []
    for cell, group in runs.groupby(keys, dropna=False, sort=False):
        info = dict(zip(keys, cell))
        if methods is not None and info["method"] not in methods:
            continue
        acc = group[metric].to_numpy(float) * 100
        base_acc = runs.loc[_matching(runs, base, info, keys), metric].to_numpy(float) * 100
        versus = _versus(acc, base_acc) if info["method"] != base else dict.fromkeys(VERSUS, math.nan)
        stats = summarize(acc)
        rows.append({
            **info, **stats, f"delta_vs_{base}": versus["delta"], "diff_low": versus["diff_low"],
            "diff_high": versus["diff_high"], f"p_vs_{base}": versus["p"], "mde": versus["mde"],
            "note": SINGLE_SEED_NOTE if min(stats["n"], len(base_acc) or 1) == 1 else "",
        })
    columns = keys + [c for c in _stat_columns(base) if c not in ("p_holm", "paper")]
    table = pd.DataFrame(rows, columns=columns)
    table["p_holm"] = holm(table[f"p_vs_{base}"]) if len(table) else []
    return _sorted(table, keys)


def _refuse_repeats(runs: pd.DataFrame, keys: list[str]) -> None:
    repeated = runs[runs.duplicated(keys + ["seed"], keep=False)]
    if len(repeated):  # identical settings and seed twice: pooling would inflate n
        raise ValueError(f"runs repeat the same settings and seed: {sorted(repeated['path'])}; "
                         "report them from separate folders")


def _matching(runs: pd.DataFrame, base: str, info: dict, keys: list[str]) -> pd.Series:
    """The runs of method `base` that agree with a cell on every key `base` uses (a setting `base`
    ignores is blank in its rows, so it must not be matched)."""
    match = runs["method"] == base
    for c in keys:
        if c != "method" and cycle.relevant(base, c):
            match &= _same(runs[c], info[c])
    return match


def _versus(acc: np.ndarray, base_acc: np.ndarray) -> dict[str, float]:
    """acc - base_acc: the difference of means, its Welch 95% interval, Welch p and the MDE."""
    delta, low, high = diff_ci(acc, base_acc)
    return {"delta": delta, "diff_low": low, "diff_high": high, "p": welch_p(acc, base_acc),
            "mde": mde(summarize(acc)["std"], len(acc), summarize(base_acc)["std"], len(base_acc))}


def _verdict(delta: float, p_holm: float, mde_: float, favour: str, against: str) -> str:
    """favour / against when Holm's p is below ALPHA with delta above / not above 0; otherwise the
    size of difference these runs could have seen."""
    if pd.isna(p_holm):
        return UNTESTED
    if p_holm < ALPHA:
        return favour if delta > 0 else against
    return f"not detected (MDE {mde_:.2f})"


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


def _interval(low: float, high: float) -> str:
    return "" if pd.isna(low) else f"[{low:+.2f}, {high:+.2f}]"


def _cells(table: pd.DataFrame) -> pd.DataFrame:
    """The key columns (those before 'mean') and each cell's 'mean ± std (n)' and 95% CI, as strings."""
    keys = list(table.columns[:list(table.columns).index("mean")])
    out = pd.DataFrame({c: [_fmt(v, "") for v in table[c]] for c in keys})
    out["mean ± std (n)"] = [f"{r.mean:.2f} ± {_fmt(r.std, '.2f') or '–'} ({r.n})" for r in table.itertuples()]
    out["95% CI"] = [f"[{r.ci_low:.2f}, {r.ci_high:.2f}]" if r.n > 1 else "" for r in table.itertuples()]
    return out


def _display(table: pd.DataFrame) -> pd.DataFrame:
    """The table as strings: 'mean ± std (n)', the interval, p-values, MDE and the paper's number."""
    base = "gsni" if "delta_vs_gsni" in table else "gs"  # the control table compares with gsni
    out = _cells(table)
    out[f"delta vs {base}"] = [_fmt(v, "+.2f") for v in table[f"delta_vs_{base}"]]
    out["p (Welch)"] = [_fmt(v, ".3g") for v in table[f"p_vs_{base}"]]
    out["p (Holm)"] = [_fmt(v, ".3g") for v in table["p_holm"]]
    out["MDE (80%)"] = [_fmt(v, ".2f") for v in table["mde"]]
    out["paper"] = [_fmt(v, ".2f") for v in table["paper"]]
    out["note"] = list(table["note"])
    return out


def _display_controls(table: pd.DataFrame) -> pd.DataFrame:
    out = _cells(table)
    out["control mean ± std (n)"] = [f"{r.control_mean:.2f} ± {_fmt(r.control_std, '.2f') or '–'} ({r.control_n})"
                                     for r in table.itertuples()]
    out["delta"] = [_fmt(v, "+.2f") for v in table["delta"]]
    out["95% CI of delta"] = [_interval(r.diff_low, r.diff_high) for r in table.itertuples()]
    out["p (Welch)"] = [_fmt(v, ".3g") for v in table["p"]]
    out["p (Holm)"] = [_fmt(v, ".3g") for v in table["p_holm"]]
    out["MDE (80%)"] = [_fmt(v, ".2f") for v in table["mde"]]
    out["verdict"] = list(table["verdict"])
    out["note"] = list(table["note"])
    return out


def _display_verdicts(table: pd.DataFrame) -> pd.DataFrame:
    keys = list(table.columns[:list(table.columns).index("claim")])
    out = pd.DataFrame({c: [_fmt(v, "") for v in table[c]] for c in keys})
    out["claim"] = list(table["claim"])
    out["paper"] = [f"{r.paper:.2f} vs {r.paper_base:.2f}" if pd.notna(r.paper_delta) else ""
                    for r in table.itertuples()]
    out["paper delta"] = [_fmt(v, "+.2f") for v in table["paper_delta"]]
    out["our delta"] = [_fmt(v, "+.2f") for v in table["delta"]]
    out["95% CI"] = [_interval(r.diff_low, r.diff_high) for r in table.itertuples()]
    out["p (Holm)"] = [_fmt(v, ".3g") for v in table["p_holm"]]
    out["MDE (80%)"] = [_fmt(v, ".2f") for v in table["mde"]]
    out["verdict"] = list(table["verdict"])
    return out


def control(runs: pd.DataFrame, metric: str = "test_acc") -> pd.DataFrame:
    """gsi and gsgi against gsni of the same model, dataset, K and settings: the same cycle with STDP
    epochs against null epochs that update nothing. The difference is what STDP itself contributes."""
    keys = _keys(runs, "k", "method")
    table = _compare(runs, keys, metric, base="gsni", methods=("gsi", "gsgi"))
    table = table[table["p_vs_gsni"].notna() | table["delta_vs_gsni"].notna()].copy()
    table["p_holm"] = holm(table["p_vs_gsni"]) if len(table) else []
    table["paper"] = math.nan
    return table[keys + _stat_columns("gsni")]


def controls(runs: pd.DataFrame, metric: str = "test_acc") -> pd.DataFrame:
    """Each STDP method against each of its isolating controls (cycle.CONTROLS: the same run with
    STDP's targets frozen, a null epoch, or a shrinkage step of STDP's size), at the same model,
    dataset, settings and K. The control's runs must agree on every setting the control uses, so a
    frozen control (no STDP) serves every stdp_lr while a shrink control matches its own, and gs
    (the control of stdp-bw-gs) ignores K. Holm's correction runs across the table."""
    keys = _keys(runs, "method", "k")
    _refuse_repeats(runs, keys)
    rows = []
    for cell, group in runs[runs["method"].isin(list(cycle.CONTROLS))].groupby(keys, dropna=False, sort=False):
        info = dict(zip(keys, cell))
        for name in cycle.CONTROLS[info["method"]]:
            base = runs[_matching(runs, name, info, keys)]
            if len(base):
                rows.append(_control_row(info, name, group[metric], base[metric]))
    filled = [c for c in CONTROLS_COLUMNS if c not in ("p_holm", "verdict")]  # the rest need the whole table
    table = pd.DataFrame(rows, columns=keys + ["control"] + filled)
    table["p_holm"] = holm(table["p"]) if len(table) else []
    table["verdict"] = [_verdict(r.delta, r.p_holm, r.mde, "STDP helps", "STDP hurts") for r in table.itertuples()]
    # a stable sort on the method's keys keeps each method's controls in cycle.CONTROLS order
    return _sorted(table, keys)[keys + ["control"] + CONTROLS_COLUMNS]


def _control_row(info: dict, control: str, acc: pd.Series, base_acc: pd.Series) -> dict:
    acc, base_acc = acc.to_numpy(float) * 100, base_acc.to_numpy(float) * 100
    stats, base_stats = summarize(acc), summarize(base_acc)
    return {**info, "control": control, **stats, "control_mean": base_stats["mean"],
            "control_std": base_stats["std"], "control_n": base_stats["n"], **_versus(acc, base_acc),
            "note": SINGLE_SEED_NOTE if min(stats["n"], base_stats["n"]) == 1 else ""}


def verdicts(table1: pd.DataFrame, controls: pd.DataFrame) -> pd.DataFrame:
    """A row per claim the runs can speak to: the paper's Table 1 claims (gsgi, gsi, stdp-bw and
    stdp-bw-gs each against gs, per table1 row) with the paper's numbers beside, then the project's
    question, "STDP helps", per controls row. Verdict: "reproduced" when Holm's p (of the table the
    row comes from) is below 0.05 in the claim's direction, "contradicted" when below it against,
    else "not detected" with the MDE the runs had.

    The direction is the paper's sign at that model/dataset (its Table 1 has stdp-bw-gs below gs on
    vgg11/mnist, and equal on vgg11/cifar10: an "=" claim any significant difference contradicts);
    where the paper has no such cell (csnn, digits) it is the paper's general claim, ">"."""
    keys = [c for c in table1.columns[:list(table1.columns).index("mean")] if c != "method"]
    claimed = table1[table1["method"].isin(CLAIMS) & table1["delta_vs_gs"].notna()]
    rows = [_paper_claim(r, keys) for _, r in claimed.iterrows()]
    rows += [_control_claim(r, keys) for _, r in controls.iterrows()]
    columns = keys + ["claim", "source", "paper", "paper_base", "paper_delta", "delta", "diff_low", "diff_high",
                      "p_holm", "mde", "verdict"]
    # each model/dataset's paper claims, then its control claims
    return _sorted(pd.DataFrame(rows, columns=columns), ["model", "dataset"])


def _paper_delta(model: str, dataset: str, method: str, base: str) -> tuple[float, float, float]:
    paper, paper_base = paper_acc(model, dataset, method), paper_acc(model, dataset, base)
    if paper is None or paper_base is None:
        return math.nan, math.nan, math.nan
    return paper, paper_base, round(paper - paper_base, 2)  # both printed to 2 decimals


def _paper_claim(row: pd.Series, keys: list[str]) -> dict:
    paper, paper_base, paper_delta = _paper_delta(row["model"], row["dataset"], row["method"], "gs")
    known = not math.isnan(paper_delta)
    sign = int(np.sign(paper_delta)) if known else 1
    return {**{c: row[c] for c in keys}, "claim": f"{row['method']} {SIGNS[sign]} gs",
            "source": "paper Table 1" if known else "paper (no Table 1 cell)",
            "paper": paper, "paper_base": paper_base, "paper_delta": paper_delta, "delta": row["delta_vs_gs"],
            "diff_low": row["diff_low"], "diff_high": row["diff_high"], "p_holm": row["p_holm"], "mde": row["mde"],
            # sign 0 (the paper prints equal numbers): any significant difference contradicts it
            "verdict": _verdict(sign * row["delta_vs_gs"], row["p_holm"], row["mde"], "reproduced", "contradicted")}


def _control_claim(row: pd.Series, keys: list[str]) -> dict:
    paper, paper_base, paper_delta = _paper_delta(row["model"], row["dataset"], row["method"], row["control"])
    return {**{c: row[c] for c in keys}, "claim": f"STDP helps: {row['method']} > {row['control']}",
            "source": "controls", "paper": paper, "paper_base": paper_base, "paper_delta": paper_delta,
            **{c: row[c] for c in ("delta", "diff_low", "diff_high", "p_holm", "mde")},
            "verdict": _verdict(row["delta"], row["p_holm"], row["mde"], "reproduced", "contradicted")}


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


def write_tables(df: pd.DataFrame, out_dir: Path | str, name: str,
                 exts: tuple[str, ...] = ("csv", "md", "tex"), note: str = "") -> list[Path]:
    """Write name.csv (full precision), name.md and name.tex (readable) into out_dir (those of exts);
    note (e.g. scale_note(runs)) is the markdown's first line."""
    out_dir = Path(out_dir)
    shown = (_display_verdicts if "claim" in df else _display_controls if "verdict" in df else _display)(df)
    header = "| " + " | ".join(shown.columns) + " |\n|" + "---|" * len(shown.columns) + "\n"
    body = "".join("| " + " | ".join(row) + " |\n" for row in shown.itertuples(index=False))
    preamble = f"{note}\n\n" if note else ""
    texts = {"csv": lambda: df.to_csv(index=False), "md": lambda: preamble + header + body,
             "tex": lambda: shown.to_latex(index=False, escape=True)}
    paths = [out_dir / f"{name}.{ext}" for ext in exts]
    for path, ext in zip(paths, exts):
        records.atomic_write_bytes(path, texts[ext]().encode())
    return paths


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
