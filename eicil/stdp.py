"""STDP as weight-gradient convolutions: the same numbers as spikingjelly's STDPLearner, fast.

spikingjelly's multi-step learner sums, over time steps t, batch and positions,
    dw = -f_pre(w) * tr_post[t] x s_pre[t]  +  f_post(w) * tr_pre[t] x s_post[t]
with traces tr <- tr - tr/tau + s. Because w is fixed over the sequence, the time sums move
inside, and the depression sum can be re-ordered around the post spikes:
    sum_t s_pre[t] x tr_post[t] = sum_t y[t] x s_post[t],  y = reverse-time trace of s_pre (tau_post).
Both terms then pair something with s_post, i.e. they are the weight gradient of the synapse with
grad_output = s_post over the T*B flattened batch: one `convolution_backward` (one matmul for
Linear) instead of a [B, C_out, C_in, H, W] product per kernel tap and time step.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from spikingjelly.activation_based import neuron as sj_neuron
from torch import nn

WeightFn = Callable[[torch.Tensor], torch.Tensor] | None


def trace(s: torch.Tensor, tau: float, reverse: bool = False) -> torch.Tensor:
    """Trace of a [T, ...] sequence: tr[t] = tr[t-1] - tr[t-1]/tau + s[t], tr[-1] = 0.

    reverse=True runs from the last step back: y[t] = y[t+1] - y[t+1]/tau + s[t]."""
    return _mix(trace_matrix(s.shape[0], tau, reverse, s), s)


def trace_matrix(steps: int, tau: float, reverse: bool, like: torch.Tensor) -> torch.Tensor:
    """The [T, T] matrix M with trace = M @ s: M[t, r] = (1 - 1/tau)^|t - r| on the causal side."""
    t = torch.arange(steps, device=like.device)
    lag = (t[None, :] - t[:, None]) if reverse else (t[:, None] - t[None, :])
    decay = torch.tensor(1.0 - 1.0 / tau, dtype=like.dtype, device=like.device)
    return torch.where(lag >= 0, decay ** lag.clamp(min=0), torch.zeros((), dtype=like.dtype, device=like.device))


def _mix(m: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """m @ s over the time axis: one pass over the spikes instead of T elementwise steps."""
    return (m @ s.reshape(s.shape[0], -1)).reshape(m.shape[0], *s.shape[1:])


def _weight_grad(synapse: nn.Module, x: torch.Tensor, post: torch.Tensor) -> torch.Tensor:
    """sum over T, batch and positions of post x x; x may stack several inputs on its channels."""
    out_f = synapse.weight.shape[0]
    if isinstance(synapse, nn.Linear):
        return post.reshape(-1, out_f).t() @ x.reshape(-1, x.shape[-1])
    x, post = x.flatten(0, 1), post.flatten(0, 1)
    zeros = synapse.padding_mode == "zeros"
    if not zeros:  # reflect/replicate/circular: pad explicitly, as spikingjelly does
        x = F.pad(x, synapse._reversed_padding_repeated_twice, mode=synapse.padding_mode)
    size = (out_f, x.shape[1], *synapse.kernel_size)
    return torch.nn.grad.conv2d_weight(x, size, post, stride=synapse.stride,
                                       padding=synapse.padding if zeros else 0)


def delta_w(synapse: nn.Module, pre: torch.Tensor, post: torch.Tensor, *, tau_pre: float,
            tau_post: float, f_pre: WeightFn = None, f_post: WeightFn = None) -> torch.Tensor:
    """What STDPLearner(step_mode="m").step(on_grad=False) returns for one [T, B, ...] sequence.

    pre: spikes at the synapse input; post: spikes of the post-synaptic neuron. Sums, not means.
    f_pre / f_post default to the identity f(w) = w, as spikingjelly's do.
    """
    if not isinstance(synapse, (nn.Linear, nn.Conv2d)):
        raise TypeError(f"STDP supports Linear and Conv2d, not {type(synapse).__name__}")
    if isinstance(synapse, nn.Conv2d) and (synapse.groups != 1 or any(d != 1 for d in synapse.dilation)):
        raise NotImplementedError("STDP needs groups=1 and dilation=1")
    w = synapse.weight.detach()
    f_pre, f_post = f_pre or _identity, f_post or _identity
    with torch.no_grad():
        pre, post = pre.to(w.dtype), post.to(w.dtype)
        steps = pre.shape[0]
        m_pre = trace_matrix(steps, tau_pre, False, pre)
        m_y = trace_matrix(steps, tau_post, True, pre)
        if f_pre is f_post:  # one call: potentiation minus depression share the modulation
            return f_pre(w) * _weight_grad(synapse, _mix(m_pre - m_y, pre), post)
        c = -1 if isinstance(synapse, nn.Linear) else 2  # channel axis of [T, B, ...]
        both = torch.cat([_mix(m_pre, pre), _mix(m_y, pre)], c)
        ltp, ltd = _weight_grad(synapse, both, post).chunk(2, 1)
        return f_post(w) * ltp - f_pre(w) * ltd


def _identity(w: torch.Tensor) -> torch.Tensor:
    return w


def n_terms(synapse: nn.Module, post: torch.Tensor) -> int:
    """How many (time, sample, position) terms delta_w sums: its normaliser."""
    return post.numel() // synapse.weight.shape[0]


def _clamp(w: torch.Tensor) -> torch.Tensor:
    return w.clamp(-1.0, 1.0)


def _one_minus(w: torch.Tensor) -> torch.Tensor:
    return 1.0 - w


WEIGHT_DEPS = {
    "soft": (_identity, _one_minus),  # paper Eq. 5: depression scaled by w, potentiation by 1 - w
    "clamp": (_clamp, _clamp),  # the released code's f(w) = clamp(w, -1, 1)
}


def weight_dependence(kind: str) -> tuple[WeightFn, WeightFn]:
    """(f_pre, f_post) of a weight dependence name."""
    if kind not in WEIGHT_DEPS:
        raise ValueError(f"unknown weight dependence {kind!r}; choose {' or '.join(WEIGHT_DEPS)}")
    return WEIGHT_DEPS[kind]


def check_taus(tau_pre: float, tau_post: float) -> None:
    # tau < 1 makes the decay factor 1 - 1/tau negative: traces that flip sign every step
    if not (tau_pre >= 1 and tau_post >= 1):
        raise ValueError(f"tau_pre and tau_post must be >= 1 time step, got {tau_pre} and {tau_post}")


def post_neurons(model: nn.Module, x: torch.Tensor, synapses: list[nn.Module]) -> dict:
    """Map each synapse to the first spiking neuron that runs after it (docs/method.md: its post neuron).

    Found from one forward pass in execution order, so residual and pooling layouts need no
    per-model table. The caller resets the network's state afterwards.
    """
    order: list[nn.Module] = []
    watched = set(map(id, synapses))
    hooks = [
        m.register_forward_pre_hook(lambda mod, _: order.append(mod))
        for m in model.modules()
        if id(m) in watched or isinstance(m, sj_neuron.BaseNode)
    ]
    was_training = model.training
    model.eval()  # a train-mode pass would move BatchNorm statistics
    try:
        with torch.no_grad():
            model(x)
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    found = {}
    for i, m in enumerate(order):
        if id(m) in watched and m not in found:
            nxt = next((n for n in order[i + 1:] if isinstance(n, sj_neuron.BaseNode)), None)
            if nxt is None:
                raise ValueError(f"no spiking neuron after {m}; STDP needs post-synaptic spikes")
            found[m] = nxt
    return found


class SpikeRecorder:
    """Keeps references (no copies, no autograd graph) to each synapse's input and its post neuron's
    output during a forward pass. Call `clear()` every batch.

    The hooks stay installed for the recorder's life and each synapse has an on/off switch
    (`record`): build the recorder before torch.compile wraps the model, and dynamo traces the
    hooks into the graph and guards on the switches, so every set of switches gets its own compiled
    graph (each compiled once) and a graph never skips a recording. A new recorder starts with
    every synapse switched on."""

    def __init__(self, pairs: dict):
        self.pairs = pairs
        self.synapses = list(pairs)
        self.neurons = list(dict.fromkeys(pairs.values()))
        self._syn_on = [_Switch(True) for _ in self.synapses]
        self._sn_on = [_Switch(True) for _ in self.neurons]
        self.pre: dict = {}  # synapse index -> its input spikes
        self.post: dict = {}  # neuron index -> its output spikes
        self._hooks = []
        for i, syn in enumerate(self.synapses):
            self._hooks.append(syn.register_forward_pre_hook(self._save_pre(i)))
        for j, sn in enumerate(self.neurons):
            self._hooks.append(sn.register_forward_hook(self._save_post(j)))

    def _save_pre(self, i: int):
        switch = self._syn_on[i]

        def hook(_, args):
            if switch.on:
                self.pre[i] = args[0].detach()
        return hook

    def _save_post(self, j: int):
        switch = self._sn_on[j]

        def hook(_, __, out):
            if switch.on:
                self.post[j] = out.detach()
        return hook

    def record(self, synapses) -> None:
        """Record exactly these synapses (and their post neurons) from now on; [] records nothing."""
        wanted = set(map(id, synapses))
        unknown = wanted - set(map(id, self.synapses))
        if unknown:
            raise ValueError(f"{len(unknown)} synapse(s) have no hooks in this recorder")
        for syn, switch in zip(self.synapses, self._syn_on):
            switch.on = id(syn) in wanted
        live = {id(self.pairs[s]) for s in self.synapses if id(s) in wanted}
        for sn, switch in zip(self.neurons, self._sn_on):
            switch.on = id(sn) in live

    def recording(self) -> list:
        """The synapses switched on."""
        return [syn for syn, switch in zip(self.synapses, self._syn_on) if switch.on]

    def records(self):
        """(synapse, pre [T,B,...], post [T,B,...]) for every switched-on synapse seen this pass."""
        for i, syn in enumerate(self.synapses):
            j = self.neurons.index(self.pairs[syn])
            if self._syn_on[i].on and i in self.pre and j in self.post:
                yield syn, self.pre[i], self.post[j]

    def spikes(self, synapse: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
        """(pre, post) spikes of one synapse from the last pass; KeyError when it was not recorded."""
        for syn, pre, post in self.records():
            if syn is synapse:
                return pre, post
        raise KeyError(f"no spikes recorded for {synapse}")

    def clear(self) -> None:
        self.pre.clear()
        self.post.clear()

    def close(self) -> None:
        for h in self._hooks:
            h.remove()
        self._hooks.clear()
        self.clear()


class _Switch:
    """A flag dynamo guards on (a plain attribute of a plain object)."""

    def __init__(self, on: bool):
        self.on = on


@torch.no_grad()
def stdp_deltas(recorder: SpikeRecorder, *, tau_pre: float, tau_post: float, weight_dep: str = "clamp",
                normalise: bool = True) -> dict:
    """{synapse: dw} for every recorded synapse, divided by its number of terms when `normalise`;
    clears the recorder. Computed from the weights the spikes came from."""
    f_pre, f_post = weight_dependence(weight_dep)
    deltas = {}
    for syn, pre, post in recorder.records():
        dw = delta_w(syn, pre, post, tau_pre=tau_pre, tau_post=tau_post, f_pre=f_pre, f_post=f_post)
        deltas[syn] = dw / n_terms(syn, post) if normalise else dw
    recorder.clear()
    return deltas


@torch.no_grad()
def move(synapse: nn.Module, dw: torch.Tensor, size: torch.Tensor | float, shrink: bool = False) -> None:
    """Add a step of Frobenius norm `size` to the synapse's weight: along dw, or along -w when
    `shrink` (weight decay whose strength matches the STDP step: the shrinkage control)."""
    w = synapse.weight.detach()
    direction = -w if shrink else dw
    w.add_(direction * (size / direction.norm().clamp_min(torch.finfo(w.dtype).tiny)))


@torch.no_grad()
def shrink_cosine(dw: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """cos(dw, -w): how much of an STDP update points along -w, i.e. is weight shrinkage (1: all of
    it; the rest of the step, orthogonal to w, has the norm sqrt(1 - cos^2) of the step's)."""
    tiny = torch.finfo(w.dtype).tiny
    return -(dw * w).sum() / (dw.norm() * w.norm()).clamp_min(tiny)


@torch.no_grad()
def stdp_step_lr(synapse: nn.Module, dw: torch.Tensor, lr: float, shrink: bool = False) -> torch.Tensor:
    """w <- w + lr * dw (plain SGD, momentum 0), or with shrink=True a step of the same norm along -w;
    returns the step's norm as a tensor (no host sync)."""
    size = dw.norm() * lr
    if shrink:
        move(synapse, dw, size, shrink=True)
    else:
        synapse.weight.detach().add_(dw, alpha=lr)
    return size


@torch.no_grad()
def stdp_step(recorder: SpikeRecorder, *, lr: float, tau_pre: float, tau_post: float,
              weight_dep: str = "clamp", normalise: bool = True, shrink: bool = False) -> dict:
    """`stdp_step_lr` on every recorded synapse; {synapse: norm of the step taken}."""
    deltas = stdp_deltas(recorder, tau_pre=tau_pre, tau_post=tau_post, weight_dep=weight_dep, normalise=normalise)
    return {syn: stdp_step_lr(syn, dw, lr, shrink) for syn, dw in deltas.items()}
