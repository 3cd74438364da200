"""Mechanisms (what one epoch does) and methods (which mechanism each epoch uses), SPEC.md."""
from __future__ import annotations

MECHANISMS = ("gs", "stdp-bw", "stdp-conv", "stdp-bw-gs", "null")
SINGLE = ("gs", "stdp-bw", "stdp-conv", "stdp-bw-gs")
CYCLES = {"gsi": "stdp-bw", "gsgi": "stdp-bw-gs", "gsni": "null"}  # inhibitory partner of gs
METHODS = SINGLE + tuple(CYCLES)
STDP_ONLY = ("stdp-bw", "stdp-conv")  # their STDP targets get no backprop update


def check_k(k: int) -> int:
    if not isinstance(k, int) or isinstance(k, bool) or abs(k) < 2:
        raise ValueError(f"K must be an integer with |K| >= 2, got {k!r}")
    return k


def schedule(method: str, k: int, epochs: int) -> list[str]:
    """The mechanism of each epoch.

    K > 0: one inhibitory epoch in every K; K < 0: one gs epoch in every |K|, the rest
    inhibitory. The minority mechanism comes last in each cycle (K=5: gs gs gs gs I; K=-3: I I gs).
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if epochs < 0:
        raise ValueError(f"epochs must be >= 0, got {epochs}")
    if method in SINGLE:
        return [method] * epochs
    check_k(k)
    inh = CYCLES[method]
    cycle = ["gs"] * (k - 1) + [inh] if k > 0 else [inh] * (-k - 1) + ["gs"]
    return [cycle[e % len(cycle)] for e in range(epochs)]
