import math
import warnings

import pytest
from scipy import stats as sps

from eicil.stats import holm, summarize, welch_p


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
