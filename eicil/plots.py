"""Figures and small analyses for the notebooks in notebooks/, so the notebooks hold no logic.

Every function returns a matplotlib Figure (built without pyplot, so nothing is shown twice) or a
DataFrame; in Jupyter a Figure left as a cell's last value shows inline. Accuracies are percent.
"""
from __future__ import annotations

import base64
import io
import os
from pathlib import Path

import ipywidgets as widgets
import numpy as np
import pandas as pd
import seaborn as sns
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from torch import nn

from . import records
from .cycle import EXCITATORY, schedule
from .figures import method_color
from .stdp import WEIGHT_DEPS, delta_w, n_terms, shrink_cosine, trace, weight_dependence


def _enable_inline_figures() -> None:
    # A pyplot-free Figure only renders inline once the inline backend has registered its formatter,
    # which it does when its module is imported inside a kernel that uses it (ipykernel sets MPLBACKEND).
    if os.environ.get("MPLBACKEND", "").endswith("backend_inline"):
        try:
            import matplotlib_inline.backend_inline  # noqa: F401
        except ImportError:
            pass


_enable_inline_figures()


def figure_png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return buf.getvalue()


class ImageBox(widgets.VBox):
    """A widget box that also offers a PNG of the figure it shows, which a viewer without a live
    kernel (papermill's output, nbval, GitHub) displays in its place."""

    png: bytes = b""  # the figure shown now

    def _repr_mimebundle_(self, **kwargs):
        bundle = super()._repr_mimebundle_(**kwargs)
        if self.png:
            bundle["image/png"] = base64.b64encode(self.png).decode()
        return bundle


# --- training curves ---------------------------------------------------------------------------

def metrics_table(run_dir: str | Path) -> pd.DataFrame:
    """A run's metrics.csv as one row per epoch: epoch, mechanism, train_acc, val_acc, test_acc, ..."""
    rows = records.read_metrics(Path(run_dir) / "metrics.csv")
    if not rows:
        return pd.DataFrame(columns=["epoch", "mechanism"])
    long = pd.DataFrame(rows)
    long["name"] = long["split"] + "_" + long["metric"]
    wide = long.pivot_table(index=["epoch", "mechanism"], columns="name", values="value").reset_index()
    wide.columns.name = None
    return wide.sort_values("epoch").reset_index(drop=True)


def _shade_inhibitory(ax, table: pd.DataFrame) -> None:
    labelled = False
    for row in table.itertuples():
        if row.mechanism != EXCITATORY:
            ax.axvspan(row.epoch - 0.5, row.epoch + 0.5, color="tab:red", alpha=0.12, lw=0,
                       label=None if labelled else "inhibitory epoch")
            labelled = True


def run_curves(run_dir: str | Path) -> Figure:
    """Train, validation and test accuracy per epoch of one run; inhibitory (non-gs) epochs shaded."""
    table = metrics_table(run_dir)
    fig = Figure(figsize=(6.4, 3.6))
    ax = fig.subplots()
    if table.empty:
        ax.text(0.5, 0.5, "no epochs trained", ha="center", va="center", transform=ax.transAxes)
    else:
        _shade_inhibitory(ax, table)
        for split in ("train", "val", "test"):
            ax.plot(table["epoch"], table[f"{split}_acc"] * 100, "o-", ms=3, label=split)
        ax.legend(fontsize="small")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set(title=Path(run_dir).name, xlabel="epoch", ylabel="accuracy (%)")
    fig.tight_layout()
    return fig


def compare_runs(run_dirs: dict[str, str | Path]) -> Figure:
    """Test accuracy per epoch, a line per run (label -> run directory); hollow markers: inhibitory epochs."""
    fig = Figure(figsize=(6.4, 3.6))
    ax = fig.subplots()
    for label, run_dir in run_dirs.items():
        table = metrics_table(run_dir)
        if table.empty:
            continue
        (line,) = ax.plot(table["epoch"], table["test_acc"] * 100, "o-", ms=3, label=label)
        inh = table[table["mechanism"] != EXCITATORY]
        ax.plot(inh["epoch"], inh["test_acc"] * 100, "o", ms=9, mfc="none", color=line.get_color())
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set(xlabel="epoch", ylabel="test accuracy (%)", title="test accuracy; hollow rings: inhibitory epochs")
    ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


# --- Table 2: accuracy against K ---------------------------------------------------------------

def inhibitory_share(k: int) -> float:
    """Share of epochs trained by the inhibitory mechanism under K, read off one cycle of the schedule."""
    return sum(m != EXCITATORY for m in schedule("gsi", k, abs(k))) / abs(k)


def k_curve(table: pd.DataFrame, k: int | None = None) -> Figure:
    """Accuracy against K from a table2() frame: a panel per (model, dataset), a line per method.

    K sits on the x axis in order of its inhibitory share (K=5: 20% ... K=-5: 80%); error bars are the
    95% CI over seeds (none where n=1); crosses are the paper's numbers where it has them; a dotted
    line marks K=k.
    """
    panels = list(table[["model", "dataset"]].drop_duplicates().itertuples(index=False))
    fig = Figure(figsize=(4.8 * max(1, len(panels)), 3.8))
    axes = fig.subplots(1, max(1, len(panels)), squeeze=False).flat
    if not panels:
        axes[0].text(0.5, 0.5, "no cycle-method runs", ha="center", va="center", transform=axes[0].transAxes)
        return fig
    for ax, (model, dataset) in zip(axes, panels):
        panel = table[(table["model"] == model) & (table["dataset"] == dataset)]
        ks = sorted({int(v) for v in panel["k"]}, key=lambda v: (inhibitory_share(v), -v))
        pos = {v: i for i, v in enumerate(ks)}
        methods = list(dict.fromkeys(panel["method"]))
        for j, method in enumerate(methods):
            rows = panel[panel["method"] == method].copy()
            rows["x"] = [pos[int(v)] + (j - (len(methods) - 1) / 2) * 0.08 for v in rows["k"]]
            rows = rows.sort_values("x")
            err = np.vstack([(rows["mean"] - rows["ci_low"]).fillna(0), (rows["ci_high"] - rows["mean"]).fillna(0)])
            drawn = ax.errorbar(rows["x"], rows["mean"], yerr=err, fmt="o-", ms=4, capsize=3, label=method,
                                color=method_color(method))
            paper = rows[rows["paper"].notna()]
            if len(paper):
                ax.plot(paper["x"], paper["paper"].astype(float), "x", ms=7, color=drawn[0].get_color(),
                        label=f"{method} (paper)")
        if k is not None and k in pos:
            ax.axvline(pos[k], ls=":", color="grey", lw=1)
        ax.set_xticks(range(len(ks)), [f"K={v}\n{inhibitory_share(v):.0%} inh." for v in ks], fontsize="small")
        ax.set(title=f"{model} / {dataset}", ylabel="test accuracy (%)")
        ax.legend(fontsize="small")
    fig.suptitle("mean over seeds, bars: 95% CI (n>1); x: share of inhibitory epochs", fontsize="small")
    fig.tight_layout()
    return fig


# --- STDP anatomy --------------------------------------------------------------------------------

def active_neurons(spikes: torch.Tensor, count: int) -> list[int]:
    """Indices of `count` neurons of a [T, n] spike train that fire most, preferring ones that also stay silent
    at some step (a neuron firing at every step shows no timing)."""
    fired = spikes.float().sum(0)
    steps = spikes.shape[0]
    score = torch.where(fired < steps, fired, fired - steps)  # always-on neurons last
    return torch.argsort(score, descending=True, stable=True)[:count].tolist()


def spike_trains(pre: torch.Tensor, post: torch.Tensor, tau_pre: float, tau_post: float) -> Figure:
    """Spikes (bars) and their traces (lines) of a few pre-synaptic (left) and post-synaptic (right)
    neurons; pre and post are [T, n] for one sample."""
    n = max(pre.shape[1], post.shape[1])
    fig = Figure(figsize=(9, 1.3 * n + 0.6))
    axes = fig.subplots(n, 2, sharex=True, squeeze=False)
    t = np.arange(pre.shape[0])
    for col, (spikes, tau, side) in enumerate(((pre, tau_pre, "pre"), (post, tau_post, "post"))):
        tr = trace(spikes.float(), tau)
        for i in range(n):
            ax = axes[i, col]
            if i >= spikes.shape[1]:
                ax.set_visible(False)
                continue
            ax.bar(t, spikes[:, i].numpy(), width=0.15, color="black", label="spike")
            ax.plot(t, tr[:, i].numpy(), "o-", ms=3, color="tab:blue" if side == "pre" else "tab:orange",
                    label=f"trace (tau={tau:g})")
            ax.set_ylabel(f"{side} {i}", fontsize="small")
            if i == 0:
                ax.set_title(f"{side}-synaptic neurons", fontsize="small")
                ax.legend(fontsize="x-small", loc="upper left")
        axes[-1, col].set_xlabel("time step t")
        axes[-1, col].xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout()
    return fig


def stdp_window(steps: int, tau_pre: float, tau_post: float,
                weights: tuple[float, ...] = (-0.5, 0.25, 0.75),
                kinds: tuple[str, ...] = ("soft", "clamp")) -> pd.DataFrame:
    """delta_w of one synapse (Linear(1, 1)) for a single pre spike and a single post spike.

    offset = t_post - t_pre runs over -steps..steps; the sequence is 2*steps+1 long with the pre spike
    in the middle. One row per (weight_dep, w, offset).
    """
    rows = []
    length = 2 * steps + 1
    for kind in kinds:
        f_pre, f_post = weight_dependence(kind)
        for w in weights:
            syn = nn.Linear(1, 1, bias=False)
            with torch.no_grad():
                syn.weight.fill_(w)
            for offset in range(-steps, steps + 1):
                pre = torch.zeros(length, 1, 1)
                post = torch.zeros(length, 1, 1)
                pre[steps] = 1
                post[steps + offset] = 1
                dw = delta_w(syn, pre, post, tau_pre=tau_pre, tau_post=tau_post, f_pre=f_pre, f_post=f_post)
                rows.append({"weight_dep": kind, "w": w, "offset": offset, "dw": dw.item()})
    return pd.DataFrame(rows)


def window_figure(window: pd.DataFrame) -> Figure:
    """The STDP window from stdp_window(): a panel per weight dependence, a line per weight."""
    kinds = list(dict.fromkeys(window["weight_dep"]))
    fig = Figure(figsize=(5 * len(kinds), 3.6))
    axes = fig.subplots(1, len(kinds), squeeze=False, sharey=True).flat
    for ax, kind in zip(axes, kinds):
        panel = window[window["weight_dep"] == kind]
        for w, curve in panel.groupby("w"):
            ax.plot(curve["offset"], curve["dw"], "o-", ms=3, label=f"w = {w:g}")
        if panel["w"].nunique() == 1:  # one weight: colour the update by its direction against -w
            w, x, dw = panel["w"].iloc[0], panel["offset"].to_numpy(), panel["dw"].to_numpy()
            ax.fill_between(x, dw, 0, where=dw * w < 0, color="tab:green", alpha=0.3, label="shrinks |w| (along −w)")
            ax.fill_between(x, dw, 0, where=dw * w > 0, color="tab:red", alpha=0.3, label="grows |w|")
        ax.axhline(0, color="grey", lw=0.8)
        ax.axvline(0, color="grey", lw=0.8, ls=":")
        ax.set(title=f"weight dependence: {kind}", xlabel="t_post - t_pre (time steps)", ylabel="delta_w")
        ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


def window_explorer(steps: int = 8, tau_pre: float = 2.0, tau_post: float = 100.0, weight_dep: str = "clamp",
                    w: float = 0.5) -> ImageBox:
    """Sliders for tau_pre, tau_post and the weight's value and a choice of weight dependence,
    redrawing the STDP window of that one weight, its update coloured by direction against -w.

    Returns an ipywidgets box; without a live kernel it shows its starting state as a static image."""
    from IPython.display import Image, display

    controls = dict(
        tau_pre=widgets.FloatSlider(value=tau_pre, min=1.0, max=20.0, step=0.5, description="tau_pre"),
        tau_post=widgets.FloatSlider(value=tau_post, min=1.0, max=200.0, step=1.0, description="tau_post"),
        weight_dep=widgets.Dropdown(options=list(WEIGHT_DEPS), value=weight_dep, description="f(w)"),
        w=widgets.FloatSlider(value=w, min=-1.5, max=1.5, step=0.05, description="w"),
    )
    shown = widgets.Output()
    box = ImageBox([widgets.HBox(list(controls.values())), shown])

    def draw(tau_pre: float, tau_post: float, weight_dep: str, w: float) -> None:
        box.png = figure_png(window_figure(stdp_window(steps, tau_pre, tau_post, weights=(w,), kinds=(weight_dep,))))
        shown.clear_output(wait=True)
        with shown:
            display(Image(box.png))

    widgets.interactive_output(draw, controls)
    return box


def shrink_cosines(model: nn.Module, recorder, *, tau_pre: float, tau_post: float) -> pd.DataFrame:
    """cos(STDP update, -w) of every recorded synapse under each weight dependence: 1 is pure weight
    shrinkage, 0 orthogonal to w, -1 pure growth. Columns: layer, weight_dep, cos."""
    names = {m: name for name, m in model.named_modules()}
    rows = []
    for syn, pre, post in recorder.records():
        for kind in WEIGHT_DEPS:
            f_pre, f_post = weight_dependence(kind)
            dw = delta_w(syn, pre, post, tau_pre=tau_pre, tau_post=tau_post, f_pre=f_pre, f_post=f_post)
            rows.append({"layer": names.get(syn, type(syn).__name__), "weight_dep": kind,
                         "cos": shrink_cosine(dw, syn.weight).item()})
    return pd.DataFrame(rows)


def shrink_figure(cosines: pd.DataFrame) -> Figure:
    """Bars of cos(STDP update, -w) per layer, one colour per weight dependence, from shrink_cosines()."""
    layers = list(dict.fromkeys(cosines["layer"]))
    kinds = list(dict.fromkeys(cosines["weight_dep"]))
    fig = Figure(figsize=(7, 3.6))
    ax = fig.subplots()
    x = np.arange(len(layers))
    width = 0.8 / len(kinds)
    for i, kind in enumerate(kinds):
        values = cosines[cosines["weight_dep"] == kind].set_index("layer").loc[layers, "cos"]
        ax.bar(x + (i - (len(kinds) - 1) / 2) * width, values, width=width, label=kind)
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xticks(x, layers)
    ax.set(ylim=(-1.05, 1.05), ylabel="cos(STDP update, −w)",
           title="which way STDP moves the weights (1: pure shrinkage, −1: pure growth)")
    ax.legend(title="weight dependence", fontsize="small", loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    return fig


def histogram(values: torch.Tensor, title: str, xlabel: str, bins: int = 60) -> Figure:
    """A histogram of every entry of a tensor, with its mean and standard deviation in the title."""
    v = values.detach().flatten().double().numpy()
    fig = Figure(figsize=(6.4, 3.4))
    ax = fig.subplots()
    sns.histplot(v, bins=bins, color="tab:purple", ax=ax)
    ax.axvline(0, color="grey", lw=0.8)
    ax.set(title=f"{title}\nmean {v.mean():.3g}, std {v.std():.3g}, {len(v)} weights", xlabel=xlabel, ylabel="count")
    fig.tight_layout()
    return fig


def stdp_vs_backprop(model: nn.Module, recorder, *, tau_pre: float, tau_post: float,
                     weight_dep: str = "soft") -> pd.DataFrame:
    """Size of the STDP update against the backprop gradient of the same weights, per recorded synapse.

    Call after a forward pass with `recorder` attached and loss.backward(), so each weight holds its
    gradient. Columns: layer, n_terms, grad_norm, dw_norm (raw sum), dw_norm_per_term (divided by
    n_terms, as the trainer does), ratio_raw and ratio_normalised (both over grad_norm).
    """
    names = {m: name for name, m in model.named_modules()}
    f_pre, f_post = weight_dependence(weight_dep)
    rows = []
    for syn, pre, post in recorder.records():
        dw = delta_w(syn, pre, post, tau_pre=tau_pre, tau_post=tau_post, f_pre=f_pre, f_post=f_post)
        n = n_terms(syn, post)
        grad = syn.weight.grad.norm().item() if syn.weight.grad is not None else float("nan")
        raw = dw.norm().item()
        rows.append({"layer": names.get(syn, type(syn).__name__), "n_terms": n, "grad_norm": grad,
                     "dw_norm": raw, "dw_norm_per_term": raw / n, "ratio_raw": raw / grad,
                     "ratio_normalised": raw / n / grad})
    return pd.DataFrame(rows)


def ratio_figure(sizes: pd.DataFrame) -> Figure:
    """Bars (log scale) of ||grad||, ||dw|| and ||dw|| / n_terms per layer, from stdp_vs_backprop()."""
    fig = Figure(figsize=(7, 3.8))
    ax = fig.subplots()
    x = np.arange(len(sizes))
    bars = (("grad_norm", "backprop gradient"), ("dw_norm", "STDP dw (raw sum)"),
            ("dw_norm_per_term", "STDP dw / n_terms"))
    for i, (col, label) in enumerate(bars):
        ax.bar(x + (i - 1) * 0.27, sizes[col], width=0.27, label=label)
    ax.set_yscale("log")
    ax.set_xticks(x, sizes["layer"])
    ax.set(ylabel="Frobenius norm", title="update sizes of the same weights (log scale)")
    ax.legend(fontsize="small")
    fig.tight_layout()
    return fig
