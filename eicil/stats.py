"""Across-seed statistics for the tables: mean with a t-interval, Welch's test and interval of a
difference, the minimum detectable difference, Holm's correction."""
from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
from scipy import stats as sps
from scipy.integrate import quad
from scipy.optimize import brentq


def summarize(values: Sequence[float]) -> dict[str, float]:
    """Mean, sample std (ddof=1), n and a 95% Student-t interval for the mean.

    With one value there is no spread to estimate, so std and the interval are nan.
    """
    x = np.asarray(values, dtype=float)
    n = len(x)
    mean = float(x.mean()) if n else math.nan
    if n < 2:
        return {"mean": mean, "std": math.nan, "n": n, "ci_low": math.nan, "ci_high": math.nan}
    std = float(x.std(ddof=1))
    half = float(sps.t.ppf(0.975, n - 1)) * std / math.sqrt(n)
    return {"mean": mean, "std": std, "n": n, "ci_low": mean - half, "ci_high": mean + half}


def welch_p(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided Welch t-test p-value; nan when a group has n < 2 or neither group varies."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(a) < 2 or len(b) < 2 or (a.var() == 0 and b.var() == 0):
        return math.nan
    # Near-constant groups make scipy warn about precision loss; the p-value is still the answer.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(sps.ttest_ind(a, b, equal_var=False).pvalue)


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values, in input order.

    nan entries are comparisons that could not be tested: they stay nan and do not count in m.
    """
    p = np.asarray(pvalues, dtype=float)
    tested = np.flatnonzero(~np.isnan(p))
    order = tested[np.argsort(p[tested], kind="stable")]
    m = len(order)
    adjusted = np.full(len(p), math.nan)
    running = 0.0
    for rank, i in enumerate(order):
        # The running max keeps the adjusted values in the same order as the raw ones.
        running = max(running, min(1.0, (m - rank) * p[i]))
        adjusted[i] = running
    return adjusted.tolist()


def _welch_df(va: float, n_a: int, vb: float, n_b: int) -> float:
    """Welch-Satterthwaite degrees of freedom from the squared standard errors va = s_a^2/n_a, vb."""
    return (va + vb) ** 2 / (va ** 2 / (n_a - 1) + vb ** 2 / (n_b - 1))


def diff_ci(a: Sequence[float], b: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """mean(a) - mean(b) with its Welch interval; the bounds are nan where welch_p is (n < 2 in a
    group, or neither group varies), the difference only where a group is empty."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    delta = float(a.mean() - b.mean()) if len(a) and len(b) else math.nan
    if len(a) < 2 or len(b) < 2 or (a.var() == 0 and b.var() == 0):
        return delta, math.nan, math.nan
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    half = float(sps.t.ppf(0.5 + level / 2, _welch_df(va, len(a), vb, len(b)))) * math.sqrt(va + vb)
    return delta, delta - half, delta + half


def holm_interval(a: Sequence[float], b: Sequence[float], p: float, p_holm: float,
                  alpha: float = 0.05) -> tuple[float, float]:
    """The Welch interval of mean(a) - mean(b) at the level Holm's correction tests this comparison
    at, 1 - alpha * p / p_holm: it excludes 0 exactly when p_holm < alpha, so it agrees with a
    verdict drawn from p_holm (the unadjusted 95% interval may exclude 0 while p_holm does not).
    nan where the test could not run."""
    if math.isnan(p) or math.isnan(p_holm) or p_holm == 0:
        return math.nan, math.nan
    _, low, high = diff_ci(a, b, level=1 - alpha * p / p_holm)
    return low, high


def welch_power(delta: float, std_a: float, n_a: int, std_b: float, n_b: int, alpha: float = 0.05) -> float:
    """Power of the two-sided Welch t-test at alpha when the true difference of means is delta:
    the noncentral t with noncentrality delta / SE falls beyond either critical value."""
    va, vb = std_a ** 2 / n_a, std_b ** 2 / n_b
    df = _welch_df(va, n_a, vb, n_b)
    crit = float(sps.t.ppf(1 - alpha / 2, df))
    nc = delta / math.sqrt(va + vb)
    power = float(sps.nct.sf(crit, df, nc) + sps.nct.cdf(-crit, df, nc))
    if math.isnan(power):  # scipy's nct fails at df near 1: integrate over the chi-square scale instead
        beyond = lambda v: (sps.norm.sf(crit * math.sqrt(v / df) - nc)  # noqa: E731
                            + sps.norm.cdf(-crit * math.sqrt(v / df) - nc)) * sps.chi2.pdf(v, df)
        power = float(quad(beyond, 0, np.inf)[0])
    return power


def mde(std_a: float, n_a: int, std_b: float, n_b: int, alpha: float = 0.05, power: float = 0.8) -> float:
    """Minimum detectable difference of means: the true difference that the two-sided Welch t-test at
    alpha detects with the given power, for groups of these spreads and sizes (in their unit).

    nan where the test cannot run (n < 2 in a group, or neither group varies). A difference smaller
    than this that the test misses is not evidence of no effect: the runs could not have seen it.
    """
    if n_a < 2 or n_b < 2 or (std_a == 0 and std_b == 0) or math.isnan(std_a) or math.isnan(std_b):
        return math.nan
    se = math.sqrt(std_a ** 2 / n_a + std_b ** 2 / n_b)
    gap = lambda delta: welch_power(delta, std_a, n_a, std_b, n_b, alpha) - power  # noqa: E731
    high = 4 * se  # power rises with delta from alpha at 0; widen until it passes the target
    while gap(high) < 0:
        high *= 2
    return float(brentq(gap, 0.0, high, xtol=1e-12 * se, rtol=1e-12))
