"""The method: mechanisms (what one epoch does), methods (which mechanism each epoch uses), K and
the hand-off names. docs/method.md states the same in prose; `stdp.py` holds the STDP rule.

`MECHANISMS` is the one table of what each mechanism trains. The trainer, the recorder set-up,
`models.ei_split`, the report and the plots all read it, so a new mechanism is one row here.
"""
from __future__ import annotations

from dataclasses import dataclass

from torch import nn


@dataclass(frozen=True)
class Mechanism:
    targets: str  # synapses treated specially: "" none | "hidden" the spiking hidden Linear | "convs" every Conv2d
    move: str  # what moves the targets besides backprop: "stdp" | "shrink" (a step of STDP's size along -w) | "none"
    backprop_on_targets: bool  # backprop (Adam) still updates the targets
    optimizer_steps: bool  # Adam steps at all; False: forward/backward only (BN statistics still move)


EXCITATORY = "gs"
MECHANISMS = {
    "gs": Mechanism("", "none", True, True),
    "stdp-bw": Mechanism("hidden", "stdp", False, True),
    "stdp-conv": Mechanism("convs", "stdp", False, True),
    "stdp-bw-gs": Mechanism("convs", "stdp", True, True),
    "null": Mechanism("", "none", True, False),  # what the released code's "STDP" epochs did
    # Controls that isolate STDP (docs/method.md, Controls): the same targets frozen, or moved by a
    # weight decay whose step matches the STDP step's size, layer by layer and batch by batch.
    "frozen-bw": Mechanism("hidden", "none", False, True),
    "frozen-conv": Mechanism("convs", "none", False, True),
    "shrink-bw": Mechanism("hidden", "shrink", False, True),
    "shrink-conv": Mechanism("convs", "shrink", False, True),
    "shrink-bw-gs": Mechanism("convs", "shrink", True, True),
}
SINGLE = tuple(m for m in MECHANISMS if m != "null")  # methods that use one mechanism every epoch
CYCLES = {  # cycle method -> the partner of gs
    "gsi": "stdp-bw", "gsgi": "stdp-bw-gs", "gsni": "null",
    "gsi-frozen": "frozen-bw", "gsi-shrink": "shrink-bw", "gsgi-shrink": "shrink-bw-gs",
}
METHODS = SINGLE + tuple(CYCLES)
PAPER_METHODS = ("gs", "stdp-bw", "stdp-conv", "stdp-bw-gs", "gsi", "gsgi")
# Each STDP method's isolating controls: the runs that differ from it only by STDP.
CONTROLS = {
    "stdp-bw": ("frozen-bw", "shrink-bw"),
    "stdp-conv": ("frozen-conv", "shrink-conv"),
    "stdp-bw-gs": ("gs", "shrink-bw-gs"),
    "gsi": ("gsi-frozen", "gsi-shrink", "gsni"),
    "gsgi": ("gs", "gsgi-shrink", "gsni"),  # gsgi minus its STDP steps is gs; gsni also drops Adam's
}
HANDOFFS = ("last", "best")  # on a mechanism change: continue, or reload the best-validation weights

# Settings that change what a run computes only for some methods; elsewhere they are unused defaults,
# so the report and the sweep neither split nor name runs by them.
STDP_SETTINGS = ("stdp_lr", "stdp_dose", "stdp_norm", "weight_dep", "tau_pre", "tau_post")
CYCLE_SETTINGS = ("k", "handoff")


def check_method(method: str) -> str:
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    return method


def check_k(k: int) -> int:
    if not isinstance(k, int) or isinstance(k, bool) or abs(k) < 2:
        raise ValueError(f"K must be an integer with |K| >= 2, got {k!r}")
    return k


def check_handoff(handoff: str) -> str:
    if handoff not in HANDOFFS:
        raise ValueError(f"handoff must be {' or '.join(HANDOFFS)}, got {handoff!r}")
    return handoff


def uses_k(method: str) -> bool:
    """K (and the hand-off) only shape the schedule of a cycle method."""
    return method in CYCLES


def inhibitory(method: str) -> str:
    """The non-gs mechanism a method uses (gs for gs): whose E:I split a run records."""
    return CYCLES.get(method, method)


def uses_stdp(method: str) -> bool:
    """Whether the method computes STDP updates (to apply them, or to match a shrinkage step to them)."""
    return MECHANISMS[inhibitory(method)].move in ("stdp", "shrink")


def relevant(method: str, setting: str) -> bool:
    """Whether a config setting can change what a run of this method computes (True for an
    unknown method: validation names that one)."""
    if method not in METHODS:
        return True
    if setting in CYCLE_SETTINGS:
        return uses_k(method)
    if setting in STDP_SETTINGS:
        return uses_stdp(method)
    return True


def schedule(method: str, k: int, epochs: int) -> list[str]:
    """The mechanism of each epoch.

    K > 0: one inhibitory epoch in every K; K < 0: one gs epoch in every |K|, the rest
    inhibitory. The minority mechanism comes last in each cycle (K=5: gs gs gs gs I; K=-3: I I gs).
    """
    check_method(method)
    if epochs < 0:
        raise ValueError(f"epochs must be >= 0, got {epochs}")
    if not uses_k(method):
        return [method] * epochs
    check_k(k)
    inh = CYCLES[method]
    cycle = [EXCITATORY] * (k - 1) + [inh] if k > 0 else [inh] * (-k - 1) + [EXCITATORY]
    return [cycle[e % len(cycle)] for e in range(epochs)]


def stdp_targets(model: nn.Module, mechanism: str) -> list[nn.Module]:
    """The synapses a mechanism treats specially; `model` ends in fc_hidden -> IF -> fc_out."""
    kind = MECHANISMS[mechanism].targets
    if kind == "hidden":
        return [model.fc_hidden]
    if kind == "convs":
        return [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    return []


def recorded(model: nn.Module, mechanism: str) -> list[nn.Module]:
    """The synapses whose spikes a mechanism records: its targets where STDP (or a step matched to
    STDP's size) moves them."""
    return stdp_targets(model, mechanism) if MECHANISMS[mechanism].move != "none" else []


def all_stdp_targets(model: nn.Module) -> list[nn.Module]:
    """Every synapse some mechanism treats specially, each once, in module order."""
    wanted = {id(m) for mech in MECHANISMS for m in stdp_targets(model, mech)}
    return [m for m in model.modules() if id(m) in wanted]


def frozen(model: nn.Module, mechanism: str) -> list[nn.Module]:
    """The synapses whose backprop update a mechanism drops."""
    return [] if MECHANISMS[mechanism].backprop_on_targets else stdp_targets(model, mechanism)
