import pytest

from eicil.cycle import METHODS, schedule


def test_positive_k_puts_one_inhibitory_epoch_last_in_each_cycle():
    assert schedule("gsi", 5, 10) == ["gs"] * 4 + ["stdp-bw"] + ["gs"] * 4 + ["stdp-bw"]
    assert schedule("gsgi", 3, 4) == ["gs", "gs", "stdp-bw-gs", "gs"]


def test_negative_k_puts_one_gs_epoch_last_in_each_cycle():
    assert schedule("gsi", -3, 6) == ["stdp-bw", "stdp-bw", "gs"] * 2
    assert schedule("gsni", -2, 3) == ["null", "gs", "null"]


@pytest.mark.parametrize("k", [2, 3, 4, 5, -2, -3, -4, -5])
def test_inhibitory_share(k):
    plan = schedule("gsgi", k, 60)
    share = sum(m != "gs" for m in plan) / len(plan)
    assert share == pytest.approx(1 / k if k > 0 else 1 - 1 / -k)


def test_single_methods_ignore_k():
    for m in ("gs", "stdp-bw", "stdp-conv", "stdp-bw-gs"):
        assert schedule(m, 5, 3) == [m] * 3
    assert schedule("gsi", 5, 0) == []


@pytest.mark.parametrize("k", [0, 1, -1])
def test_small_k_raises(k):
    with pytest.raises(ValueError, match=r"\|K\| >= 2"):
        schedule("gsi", k, 10)


def test_unknown_method_and_negative_epochs():
    with pytest.raises(ValueError, match="unknown method"):
        schedule("gsgl", 5, 10)
    with pytest.raises(ValueError, match="epochs"):
        schedule("gs", 5, -1)
    assert set(METHODS) == {"gs", "stdp-bw", "stdp-conv", "stdp-bw-gs", "gsi", "gsgi", "gsni",
                            "frozen-bw", "frozen-conv", "shrink-bw", "shrink-conv", "shrink-bw-gs",
                            "gsi-frozen", "gsi-shrink", "gsgi-shrink"}


def test_what_k_and_stdp_settings_matter_for():
    from eicil.cycle import relevant, uses_k, uses_stdp
    assert [m for m in METHODS if uses_k(m)] == ["gsi", "gsgi", "gsni", "gsi-frozen", "gsi-shrink", "gsgi-shrink"]
    assert [m for m in METHODS if uses_stdp(m)] == ["stdp-bw", "stdp-conv", "stdp-bw-gs", "shrink-bw", "shrink-conv",
                                                    "shrink-bw-gs", "gsi", "gsgi", "gsi-shrink", "gsgi-shrink"]
    assert not relevant("gs", "k") and not relevant("gs", "stdp_lr") and relevant("gs", "lr")
    assert relevant("gsni", "handoff") and not relevant("gsni", "weight_dep") and relevant("gsgi", "tau_post")
