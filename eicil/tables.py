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
from eicil.cells import _pick_k, _sorted, split_settings
from eicil.cycle import METHODS
from eicil.paper import paper_acc
from eicil.stats import diff_ci, holm, mde, summarize, welch_p
from eicil.verdicts import _verdict

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
SINGLE_SEED_NOTE = "n=1: demonstration, not a result"


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
