import math
import warnings

import pytest
from scipy import stats as sps

from eicil.stats import diff_ci, holm, mde, summarize, welch_p


def test_summarize_matches_hand_computation():
    s = summarize([1.0, 2.0, 3.0])
    half = sps.t.ppf(0.975, 2) * 1.0 / math.sqrt(3)  # std of 1,2,3 is exactly 1
    assert (s["mean"], s["std"], s["n"]) == (2.0, 1.0, 3)
    assert s["ci_low"] == pytest.approx(2.0 - half)
    assert s["ci_high"] == pytest.approx(2.0 + half)
    assert s["ci_low"] < s["mean"] < s["ci_high"]


def test_summarize_interval_agrees_with_scipy():
    values = [0.3, 0.9, 0.4, 0.7, 0.65]
    s = summarize(values)
    low, high = sps.t.interval(0.95, len(values) - 1, loc=s["mean"], scale=sps.sem(values))
    assert (s["ci_low"], s["ci_high"]) == pytest.approx((low, high))


def test_single_value_has_no_spread():
    s = summarize([0.7])
    assert s["mean"] == 0.7 and s["n"] == 1
    assert all(math.isnan(s[key]) for key in ("std", "ci_low", "ci_high"))


def test_welch_matches_hand_computation_and_is_symmetric():
    # t = -3 / sqrt(1/3 + 1/3), Welch-Satterthwaite df = 4
    expected = 2 * sps.t.sf(3 / math.sqrt(2 / 3), 4)
    assert welch_p([1, 2, 3], [4, 5, 6]) == pytest.approx(expected)
    assert welch_p([4, 5, 6], [1, 2, 3]) == pytest.approx(expected)
    a, b = [0.91, 0.90, 0.93, 0.92], [0.88, 0.90, 0.87]
    assert welch_p(a, b) == pytest.approx(sps.ttest_ind(a, b, equal_var=False).pvalue)


def test_welch_identical_groups_give_p_one():
    assert welch_p([1.0, 2.0, 3.0], [1.0, 2.0, 3.0]) == pytest.approx(1.0)


def test_welch_untestable_cases_are_nan_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert math.isnan(welch_p([0.9], [0.8, 0.85]))
        assert math.isnan(welch_p([0.9, 0.9], [0.8, 0.8]))
        assert math.isnan(welch_p([0.9, 0.9], [0.9, 0.9]))
        assert welch_p([0.9, 0.9, 0.9], [0.8, 0.85, 0.82]) < 0.05


def test_holm_known_example():
    # sorted: 0.005*4=0.02, 0.01*3=0.03, 0.03*2=0.06, 0.04*1=0.04 -> raised to 0.06 (monotone)
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_holm_caps_at_one_and_passes_nan_through():
    assert holm([0.5, 0.6]) == [1.0, 1.0]
    adjusted = holm([0.01, math.nan, 0.04])
    assert adjusted[0] == pytest.approx(0.02) and adjusted[2] == pytest.approx(0.04)
    assert math.isnan(adjusted[1])
    assert holm([]) == []


def _power(delta, std_a, n_a, std_b, n_b, alpha=0.05):
    # Two-sided Welch test written out here, independently of eicil.stats: Welch-Satterthwaite df,
    # then the noncentral t beyond either critical value.
    va, vb = std_a ** 2 / n_a, std_b ** 2 / n_b
    df = (va + vb) ** 2 / (va ** 2 / (n_a - 1) + vb ** 2 / (n_b - 1))
    crit = sps.t.ppf(1 - alpha / 2, df)
    nc = delta / math.sqrt(va + vb)
    return sps.nct.sf(crit, df, nc) + sps.nct.cdf(-crit, df, nc)


def test_mde_has_the_asked_power():
    for args in [(1.0, 5, 1.0, 5), (0.2, 3, 0.2, 3), (0.3, 3, 1.5, 8), (0.0, 4, 0.5, 3), (1.0, 2, 1.0, 2)]:
        delta = mde(*args)
        assert _power(delta, *args) == pytest.approx(0.8, abs=1e-6), args
        assert _power(0.9 * delta, *args) < 0.8 < _power(1.1 * delta, *args)
    assert _power(mde(1.0, 5, 1.0, 5, power=0.9), 1.0, 5, 1.0, 5) == pytest.approx(0.9, abs=1e-6)
    assert _power(mde(1.0, 5, 1.0, 5, alpha=0.01), 1.0, 5, 1.0, 5, alpha=0.01) == pytest.approx(0.8, abs=1e-6)


def test_mde_known_values():
    # Textbook two-sample sizes (equal n and std, so Welch's df is the pooled 2n - 2): 64 per group
    # detect d = 0.5 with power 0.80146 and 17 per group detect d = 1 with power 0.8070 (Cohen 1988;
    # G*Power), so the MDE lies just below each d.
    assert _power(0.5, 1.0, 64, 1.0, 64) == pytest.approx(0.80146, abs=1e-5)
    assert 0.495 < mde(1.0, 64, 1.0, 64) < 0.5
    assert 0.98 < mde(1.0, 17, 1.0, 17) < 1.0
    # Large n: the t-test becomes the z-test, MDE = (z_0.975 + z_0.8) * SE
    se = math.sqrt(2 / 10_000)
    assert mde(1.0, 10_000, 1.0, 10_000) == pytest.approx((sps.norm.ppf(0.975) + sps.norm.ppf(0.8)) * se, rel=1e-3)
    # The MDE is in the data's unit: it scales with the spread
    assert mde(3.0, 5, 3.0, 5) == pytest.approx(3 * mde(1.0, 5, 1.0, 5))
    assert mde(1.0, 4, 1.0, 6) == pytest.approx(mde(1.0, 6, 1.0, 4))


def test_mde_untestable_is_nan():
    assert math.isnan(mde(1.0, 1, 1.0, 5))
    assert math.isnan(mde(math.nan, 1, 1.0, 5))
    assert math.isnan(mde(0.0, 3, 0.0, 3))


def test_diff_ci_agrees_with_scipy_welch_interval():
    a, b = [91.0, 91.2, 91.4], [89.0, 89.5, 89.4, 89.1]
    delta, low, high = diff_ci(a, b)
    ci = sps.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert delta == pytest.approx(91.2 - 89.25)
    assert (low, high) == pytest.approx((ci.low, ci.high))
    # by hand for equal groups: df = 4, half-width t_0.975(4) * sqrt(2 * 0.04 / 3)
    delta, low, high = diff_ci([91.0, 91.2, 91.4], [89.0, 89.2, 89.4])
    half = sps.t.ppf(0.975, 4) * math.sqrt(2 * 0.04 / 3)
    assert (delta, low, high) == pytest.approx((2.0, 2.0 - half, 2.0 + half))


def test_diff_ci_without_spread_keeps_the_difference():
    delta, low, high = diff_ci([0.9], [0.8, 0.85])
    assert delta == pytest.approx(0.075) and math.isnan(low) and math.isnan(high)
    assert all(math.isnan(v) for v in diff_ci([0.9, 0.9], [0.8, 0.8])[1:])
    assert all(math.isnan(v) for v in diff_ci([], [0.8, 0.85]))


def test_mde_with_two_runs_a_side_is_finite_and_large():
    """Welch df near 1 (n = 2 each, unequal spreads): scipy's noncentral t returns nan far in the tail."""
    m = mde(0.5, 2, 20.0, 2)
    se = math.sqrt(0.25 / 2 + 400 / 2)
    assert math.isfinite(m) and m > 4 * se
