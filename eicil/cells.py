"""How runs fall into the cells of a table or figure: the settings that split them, the paper's row
order and the one K a cycle method is shown at. Shared by the tables, verdicts, figures and report.
"""
from __future__ import annotations

import math

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


def uses_setting(method: str, column: str) -> bool:
    """Whether a method's runs use the setting of a column (cycle.relevant, by the config's name)."""
    return cycle.relevant(method, "stdp_dose" if column == SET_DOSE else column)


# A run collapsed when it fell (its last epoch at least COLLAPSE_DROP below its best) to below
# half-way between chance and gs's accuracy (gs of the same model, data and scale; the run's own best
# epoch where no gs was run), or never left chance (no epoch AT_CHANCE above it): its weights ran
# away or were driven to zero, so its accuracy (at the last epoch, or at the best-validation epoch,
# often one before any STDP) says nothing about its method at that setting. Collapsed runs are
# counted apart and kept out of every mean, interval and test.
CHANCE = {"digits": 0.1, "mnist": 0.1, "cifar10": 0.1, "cifar100": 0.01}  # 1 / classes; fake: 0
COLLAPSE_DROP = 0.05  # a smaller fall (a fraction) is seed noise, not a collapse
AT_CHANCE = 0.02  # a run whose best epoch is less than this (a fraction) above chance never learned


def collapsed(last_acc: float, best_acc: float, reference: float, dataset: str) -> bool:
    """Whether a run whose test accuracy (fractions) was last_acc at its last epoch and best_acc at
    its best collapsed against the reference accuracy; a run without epochs (nan) did not."""
    if math.isnan(last_acc) or math.isnan(reference):
        return False
    chance = CHANCE.get(dataset, 0.0)
    if chance and best_acc < chance + AT_CHANCE:  # never left chance (a dataset of known chance only)
        return True
    return last_acc < (chance + reference) / 2 and best_acc - last_acc >= COLLAPSE_DROP


def collapsed_mask(runs: pd.DataFrame) -> pd.Series:
    """True for the runs load_runs marked collapsed (none where the frame has no such column)."""
    if "collapsed" not in runs:
        return pd.Series(False, runs.index)
    return runs["collapsed"].fillna(False).astype(bool)


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
