"""How runs fall into the cells of a table or figure: the settings that split them, the paper's row
order and the one K a cycle method is shown at. Shared by the tables, verdicts, figures and report.
"""
from __future__ import annotations

import pandas as pd

from eicil import cycle
from eicil.config import RUN_IRRELEVANT, TYPES
from eicil.cycle import METHODS, PAPER_METHODS

# Rows follow the paper's order (its Table 1 lists models and methods this way), not the alphabet.
ORDER = {column: {name: i for i, name in enumerate(names)} for column, names in {
    "model": ("resnet18", "vgg11", "ei_net", "csnn"),
    "dataset": ("cifar10", "cifar100", "mnist", "digits", "fake"),
    # the paper's methods in its order, then the controls in registry order
    "method": PAPER_METHODS + tuple(m for m in METHODS if m not in PAPER_METHODS),
}.items()}
ORDER["control"] = ORDER["method"]
# Config fields that say what a run computed, beyond the named columns and the seed.
# The config's stdp_dose (the RHO a run was told to take) is the column stdp_dose_set: the column
# stdp_dose is the dose the run measured (summary.json).
SET_DOSE = "stdp_dose_set"
SETTINGS = [SET_DOSE if name == "stdp_dose" else name for name in TYPES
            if name not in RUN_IRRELEVANT and name not in ("model", "dataset", "method", "k", "seed")]


def split_settings(runs: pd.DataFrame) -> list[str]:
    """Settings that take more than one value among the runs: each becomes a key column of a table,
    so runs that differ in anything but the seed never share a cell."""
    return [c for c in SETTINGS if c in runs.columns and runs[c].dropna().nunique() > 1]


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
