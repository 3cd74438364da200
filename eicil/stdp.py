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
    """Keeps references (no copies, no autograd graph) to each synapse's input and its post
    neuron's output during a forward pass. Call `clear()` every batch."""

    def __init__(self, pairs: dict):
        self.pairs = pairs
        self.pre: dict = {}
        self.post: dict = {}
        self._hooks = []
        for syn, sn in pairs.items():
            self._hooks.append(syn.register_forward_pre_hook(self._save_pre(syn)))
            self._hooks.append(sn.register_forward_hook(self._save_post(sn)))

    def _save_pre(self, syn):
        def hook(_, args):
            self.pre[syn] = args[0].detach()
        return hook

    def _save_post(self, sn):
        def hook(_, __, out):
            self.post[sn] = out.detach()
        return hook

    def records(self):
        """(synapse, pre [T,B,...], post [T,B,...]) for every synapse seen this pass."""
        for syn, sn in self.pairs.items():
            if syn in self.pre and sn in self.post:
                yield syn, self.pre[syn], self.post[sn]

    def clear(self) -> None:
        self.pre.clear()
        self.post.clear()

    def close(self) -> None:
        for h in self._hooks:
            h.remove()
        self._hooks.clear()
        self.clear()


@torch.no_grad()
def stdp_step(recorder: SpikeRecorder, *, lr: float, tau_pre: float, tau_post: float,
              weight_dep: str = "clamp", normalise: bool = True, shrink: bool = False) -> dict:
    """Apply w <- w + lr * dw / n_terms to every recorded synapse (plain SGD, momentum 0).

    shrink=True takes instead a step of the same Frobenius norm along -w: weight decay whose strength
    matches the STDP step, layer by layer (the shrinkage control). Returns {synapse: norm of the step
    taken} as tensors on the weights' device (no host sync)."""
    f_pre, f_post = weight_dependence(weight_dep)
    sizes = {}
    for syn, pre, post in recorder.records():
        dw = delta_w(syn, pre, post, tau_pre=tau_pre, tau_post=tau_post, f_pre=f_pre, f_post=f_post)
        if normalise:
            dw /= n_terms(syn, post)
        size = dw.norm() * lr
        if shrink:
            w = syn.weight.detach()
            dw = w * (-size / w.norm().clamp_min(torch.finfo(w.dtype).tiny))
            syn.weight.add_(dw)
        else:
            syn.weight.add_(dw, alpha=lr)
        sizes[syn] = size
    recorder.clear()
    return sizes
