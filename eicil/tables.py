"""Tables 1 and 2, the gsni control table and the controls table (means over seeds, spread, Welch
difference and p, Holm, MDE, the paper beside), and their csv, markdown and LaTeX files.

Accuracies are fractions in the run records and percent (differences: percentage points) in every
table.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from eicil import cycle, records
from eicil.cells import _pick_k, _sorted, collapsed_mask, split_settings, uses_setting
from eicil.cycle import METHODS
from eicil.paper import paper_acc
from eicil.stats import diff_ci, holm, holm_interval, mde, summarize, welch_p
from eicil.verdicts import COLLAPSED_VERDICT, _verdict

def _stat_columns(base: str) -> list[str]:
    # n counts the runs in the statistics, collapsed those left out of them (cells.collapsed).
    # diff_low/diff_high: the Welch 95% interval of the difference; holm_low/holm_high: the interval
    # at the level Holm's correction tests that row at, so it excludes 0 exactly when p_holm < 0.05;
    # mde: the smallest difference the test detects with 80% power (percentage points), so a miss
    # can be read as "too small to see".
    return ["mean", "std", "n", "collapsed", "ci_low", "ci_high", f"delta_vs_{base}", "diff_low", "diff_high",
            "holm_low", "holm_high", f"p_vs_{base}", "p_holm", "mde", "paper", "note"]


STAT_COLUMNS = _stat_columns("gs")
# The controls table: a method's cell, its control's cell, and the difference between them.
CONTROLS_COLUMNS = ["mean", "std", "n", "collapsed", "ci_low", "ci_high", "control_mean", "control_std",
                    "control_n", "control_collapsed", "delta", "diff_low", "diff_high", "holm_low", "holm_high",
                    "p", "p_holm", "mde", "verdict", "note"]
VERSUS = ("delta", "diff_low", "diff_high", "p", "mde")
SINGLE_SEED_NOTE = "n=1: demonstration, not a result"


def _same(column: pd.Series, value) -> pd.Series:
    return column.isna() if pd.isna(value) else column == value


def _compare(runs: pd.DataFrame, keys: list[str], metric: str, base: str = "gs",
             methods: tuple[str, ...] | None = None, need_base: bool = False) -> pd.DataFrame:
    """Statistics per cell of `keys` (rows of `methods`, default all), each compared with the runs of
    method `base` of the same model and dataset that agree on every key `base` uses (need_base: only
    the cells that have such runs). Collapsed runs are counted, not used."""
    _refuse_repeats(runs, keys)
    rows, pairs = [], []
    for cell, group in runs.groupby(keys, dropna=False, sort=False):
        info = dict(zip(keys, cell))
        base_runs = runs[_matching(runs, base, info, keys)]
        if (methods is not None and info["method"] not in methods) or (need_base and base_runs.empty):
            continue
        acc, collapsed = _kept(group, metric)
        base_acc = _kept(base_runs, metric)[0]
        versus = _versus(acc, base_acc) if info["method"] != base else dict.fromkeys(VERSUS, math.nan)
        stats = summarize(acc)
        rows.append({
            **info, **stats, "collapsed": collapsed, f"delta_vs_{base}": versus["delta"],
            "diff_low": versus["diff_low"], "diff_high": versus["diff_high"], f"p_vs_{base}": versus["p"],
            "mde": versus["mde"], "note": _note(stats["n"], collapsed, len(base_acc)),
        })
        pairs.append((acc, base_acc))
    columns = keys + [c for c in _stat_columns(base) if c not in ("holm_low", "holm_high", "p_holm", "paper")]
    table = pd.DataFrame(rows, columns=columns)
    _add_holm(table, f"p_vs_{base}", pairs)
    return _sorted(table, keys)


def _kept(runs: pd.DataFrame, metric: str) -> tuple[np.ndarray, int]:
    """The metric (percent) of the runs that did not collapse, and how many did."""
    out = collapsed_mask(runs)
    return runs.loc[~out, metric].to_numpy(float) * 100, int(out.sum())


def _note(n: int, collapsed: int, base_n: int) -> str:
    notes = [f"{collapsed} of {n + collapsed} runs collapsed"] if collapsed else []
    if 1 in (n, base_n):  # base_n 0: no baseline left (none ran, or all collapsed), not one seed
        notes.append(SINGLE_SEED_NOTE)
    return "; ".join(notes)


def _add_holm(table: pd.DataFrame, p_col: str, pairs: list[tuple[np.ndarray, np.ndarray]]) -> None:
    """p_holm across the table's rows, and each row's interval at the level Holm tests it at."""
    table["p_holm"] = holm(table[p_col]) if len(table) else []
    bounds = [holm_interval(a, b, p, ph) for (a, b), p, ph in zip(pairs, table[p_col], table["p_holm"])]
    table["holm_low"] = [lo for lo, _ in bounds]
    table["holm_high"] = [hi for _, hi in bounds]


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
        if c != "method" and uses_setting(base, c):
            match &= _same(runs[c], info[c])
    return match


def _versus(acc: np.ndarray, base_acc: np.ndarray) -> dict[str, float]:
    """acc - base_acc: the difference of means, its Welch 95% interval, Welch p and the MDE."""
    delta, low, high = diff_ci(acc, base_acc)
    return {"delta": delta, "diff_low": low, "diff_high": high, "p": welch_p(acc, base_acc),
            "mde": mde(summarize(acc)["std"], len(acc), summarize(base_acc)["std"], len(base_acc))}


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


def control(runs: pd.DataFrame, metric: str = "test_acc") -> pd.DataFrame:
    """gsi and gsgi against gsni of the same model, dataset, K and settings: the same cycle with STDP
    epochs against null epochs that update nothing. The difference is what STDP itself contributes."""
    keys = _keys(runs, "k", "method")
    table = _compare(runs, keys, metric, base="gsni", methods=("gsi", "gsgi"), need_base=True)
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
    rows, pairs = [], []
    for cell, group in runs[runs["method"].isin(list(cycle.CONTROLS))].groupby(keys, dropna=False, sort=False):
        info = dict(zip(keys, cell))
        for name in cycle.CONTROLS[info["method"]]:
            base = runs[_matching(runs, name, info, keys)]
            if len(base):
                (acc, out), (base_acc, base_out) = _kept(group, metric), _kept(base, metric)
                rows.append(_control_row(info, name, acc, out, base_acc, base_out))
                pairs.append((acc, base_acc))
    filled = [c for c in CONTROLS_COLUMNS if c not in ("holm_low", "holm_high", "p_holm", "verdict")]
    table = pd.DataFrame(rows, columns=keys + ["control"] + filled)
    _add_holm(table, "p", pairs)  # Holm needs the whole table
    table["verdict"] = [_control_verdict(r) for r in table.itertuples()]
    # a stable sort on the method's keys keeps each method's controls in cycle.CONTROLS order
    return _sorted(table, keys)[keys + ["control"] + CONTROLS_COLUMNS]


def _control_verdict(row) -> str:
    if (row.n < 2 or row.control_n < 2) and (row.collapsed or row.control_collapsed):
        return COLLAPSED_VERDICT  # untestable because its runs collapsed, not for want of seeds
    return _verdict(row.delta, row.p_holm, row.mde, "STDP helps", "STDP hurts")


def _control_row(info: dict, control: str, acc: np.ndarray, out: int, base_acc: np.ndarray, base_out: int) -> dict:
    stats, base_stats = summarize(acc), summarize(base_acc)
    notes = [_note(stats["n"], out, base_stats["n"])] + ([f"control: {base_out} of {base_stats['n'] + base_out} "
                                                          "runs collapsed"] if base_out else [])
    return {**info, "control": control, **stats, "collapsed": out, "control_mean": base_stats["mean"],
            "control_std": base_stats["std"], "control_n": base_stats["n"], "control_collapsed": base_out,
            **_versus(acc, base_acc), "note": "; ".join(n for n in notes if n)}


def _fmt(x: float, spec: str) -> str:
    return "" if pd.isna(x) else format(x, spec)


def _interval(low: float, high: float) -> str:
    return "" if pd.isna(low) else f"[{low:+.2f}, {high:+.2f}]"


def _mean_std(mean: float, std: float, n: int, collapsed: int) -> str:
    """'mean ± std (n)'; collapsed runs are counted beside n, and a cell of only those says so."""
    if n == 0 and collapsed:
        return f"collapsed ({collapsed} of {collapsed})"
    out = f" + {collapsed} collapsed" if collapsed else ""
    return f"{mean:.2f} ± {_fmt(std, '.2f') or '–'} ({n}{out})"


def _cells(table: pd.DataFrame) -> pd.DataFrame:
    """The key columns (those before 'mean') and each cell's 'mean ± std (n)' and 95% CI, as strings."""
    keys = list(table.columns[:list(table.columns).index("mean")])
    out = pd.DataFrame({c: [_fmt(v, "") for v in table[c]] for c in keys})
    out["mean ± std (n)"] = [_mean_std(r.mean, r.std, r.n, r.collapsed) for r in table.itertuples()]
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
    out["control mean ± std (n)"] = [_mean_std(r.control_mean, r.control_std, r.control_n, r.control_collapsed)
                                     for r in table.itertuples()]
    out["delta"] = [_fmt(v, "+.2f") for v in table["delta"]]
    out["95% CI of delta"] = [_interval(r.diff_low, r.diff_high) for r in table.itertuples()]
    out["Holm CI of delta"] = [_interval(r.holm_low, r.holm_high) for r in table.itertuples()]
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
    out["Holm CI"] = [_interval(r.holm_low, r.holm_high) for r in table.itertuples()]
    out["p (Holm)"] = [_fmt(v, ".3g") for v in table["p_holm"]]
    out["MDE (80%)"] = [_fmt(v, ".2f") for v in table["mde"]]
    out["verdict"] = list(table["verdict"])
    return out


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
