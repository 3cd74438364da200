"""A verdict per claim the runs can speak to: the paper's Table 1 claims against gs, with the paper's
numbers beside, and "STDP helps" per row of the controls table; reproduced, contradicted or not
detected (with the smallest difference the runs could have seen) at Holm-adjusted p < 0.05.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from eicil.cells import _sorted
from eicil.paper import paper_acc

ALPHA = 0.05  # the Holm-adjusted level a verdict calls significant
UNTESTED = "not tested (n < 2 or no spread)"
COLLAPSED_VERDICT = "not tested (collapsed)"  # n < 2 because runs collapsed (cells.collapsed)
CLAIMS = ("gsgi", "gsi", "stdp-bw", "stdp-bw-gs")  # the paper's Table 1 claims: each beats gs
SIGNS = {1: ">", 0: "=", -1: "<"}


def _verdict(delta: float, p_holm: float, mde_: float, favour: str, against: str) -> str:
    """favour / against when Holm's p is below ALPHA with delta above / not above 0; otherwise the
    size of difference these runs could have seen."""
    if pd.isna(p_holm):
        return UNTESTED
    if p_holm < ALPHA:
        return favour if delta > 0 else against
    return f"not detected (MDE {mde_:.2f})"


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
                      "holm_low", "holm_high", "p_holm", "mde", "verdict"]
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
            **{c: row[c] for c in ("diff_low", "diff_high", "holm_low", "holm_high", "p_holm", "mde")},
            # sign 0 (the paper prints equal numbers): any significant difference contradicts it
            "verdict": _verdict(sign * row["delta_vs_gs"], row["p_holm"], row["mde"], "reproduced", "contradicted")}


def _control_claim(row: pd.Series, keys: list[str]) -> dict:
    paper, paper_base, paper_delta = _paper_delta(row["model"], row["dataset"], row["method"], row["control"])
    return {**{c: row[c] for c in keys}, "claim": f"STDP helps: {row['method']} > {row['control']}",
            "source": "controls", "paper": paper, "paper_base": paper_base, "paper_delta": paper_delta,
            **{c: row[c] for c in ("delta", "diff_low", "diff_high", "holm_low", "holm_high", "p_holm", "mde")},
            "verdict": (COLLAPSED_VERDICT if row["verdict"] == COLLAPSED_VERDICT else
                        _verdict(row["delta"], row["p_holm"], row["mde"], "reproduced", "contradicted"))}
