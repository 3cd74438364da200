"""One trainer for every mechanism: the optimiser (Adam or SGD) for backprop, plain steps for STDP.

`train(config_from(...))` writes a run directory (see records.py) and returns its summary. It is
four steps, each usable alone (benchmarks and notebooks build a `Run` with `setup` and drive
`train_epoch` themselves): `setup` builds data, model, optimiser and the STDP pairs; `resume` loads
a checkpoint; `run_epoch` trains and scores one epoch; `record` writes the run's records. A run
whose folder already holds a checkpoint continues from it; a complete run is not repeated.
"""
from __future__ import annotations

import math
import random
import time
import warnings
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from spikingjelly.activation_based import functional
from tqdm.auto import tqdm

from . import cycle, records
from .config import RUN_IRRELEVANT, Config, ConfigError, run_name, validate
from .data import Data, build_data
from .models import NeuronConfig, create_model, ei_split
from .stdp import SpikeRecorder, move, post_neurons, shrink_cosine, stdp_deltas, stdp_step_lr


class Diverged(RuntimeError):
    pass


@dataclass
class RunState:
    """What a checkpoint carries besides model, optimiser and scheduler."""
    epoch: int = 0  # epochs completed
    best_val: float = -1.0  # validation accuracy of the best epoch so far
    best_val_loss: float = math.inf  # its validation loss: breaks ties of accuracy
    best_epoch: int = 0
    test_at_best: float = 0.0  # test accuracy at the best epoch: the headline number
    best_test: float = 0.0  # best test accuracy over epochs: the paper's likely protocol
    wall: float = 0.0  # seconds spent training and scoring
    best_model: dict | None = None  # state_dict of the best epoch (what handoff=best reloads)
    rows: list = field(default_factory=list)  # metrics.csv so far


@dataclass
class Run:
    cfg: Config
    run_dir: Path
    device: torch.device
    data: Data
    model: torch.nn.Module
    net: torch.nn.Module  # `model`, or its torch.compile wrapper (same parameters)
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LRScheduler
    plan: list[str]  # the mechanism of each epoch
    pairs: dict  # every synapse some mechanism trains with STDP -> its post neuron
    recorder: SpikeRecorder  # hooks on every pair, installed before compiling; all off between epochs
    state: RunState

    @cached_property
    def names(self) -> dict:
        return {m: name for name, m in self.model.named_modules()}


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def encode(x: torch.Tensor, timesteps: int) -> torch.Tensor:
    """Direct encoding: [B, C, H, W] -> [T, B, C, H, W] without copying."""
    return x.unsqueeze(0).expand(timesteps, *x.shape)


def autocast(cfg: Config, device: torch.device):
    return torch.autocast(device.type, torch.bfloat16, enabled=cfg.amp)


# torch.compile pays off on the CPU for the paper's convnets (docs/decisions.md, Compile); csnn's
# epochs are too short to repay compiling, and no GPU has measured it yet.
COMPILE_HELPS = {"cpu": ("resnet18", "vgg11", "ei_net")}


def use_compile(cfg: Config, device: torch.device) -> bool:
    if cfg.compile != "auto":
        return cfg.compile == "on"
    return cfg.model in COMPILE_HELPS.get(device.type, ())


def make_optimizer(cfg: Config, model: torch.nn.Module, batches: int):
    """(optimiser, scheduler, steps_per_batch): the scheduler steps per batch or per epoch."""
    if cfg.optimizer == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=0.9, nesterov=True,
                              weight_decay=cfg.weight_decay)
    else:
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.lr_schedule == "cosine":
        return opt, torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(cfg.epochs, 1))
    total = max(cfg.epochs * batches, 1)
    warm = round(cfg.warmup * total)

    def factor(i: int) -> float:  # lr/10 -> lr over the warm-up, then linearly down to 0 at the end
        return 0.1 + 0.9 * i / warm if i < warm else max(total - i, 0) / max(total - warm, 1)
    return opt, torch.optim.lr_scheduler.LambdaLR(opt, factor)


def setup(cfg: Config, data: Data | None = None) -> Run:
    """Everything a run needs, freshly initialised from cfg.seed; `data` replaces build_data()."""
    validate(cfg)
    device = pick_device(cfg.device)
    set_seed(cfg.seed)
    # A collapsing run's weights decay to ~1e-21 and their products go subnormal, which x86 CPUs
    # compute 2-6x slower (benchmarks/bench_denormal.py); flushed to zero they cost nothing.
    torch.set_flush_denormal(True)
    if data is None:
        data = build_data(cfg.dataset, data_root=cfg.data_root, download=cfg.download,
                          batch_size=cfg.batch_size, val_fraction=cfg.val_fraction, seed=cfg.seed,
                          augment=cfg.augment, train_subset=cfg.train_subset, test_subset=cfg.test_subset,
                          num_workers=cfg.num_workers, pin_memory=device.type == "cuda")
    ncfg = NeuronConfig(cfg.v_threshold, cfg.surrogate_alpha, cfg.detach_reset)
    model = create_model(cfg.model, in_channels=data.in_channels, num_classes=data.num_classes,
                         width=cfg.width, hidden=cfg.hidden, stem=cfg.stem, ncfg=ncfg,
                         image_size=data.image_size).to(device)
    opt, sched = make_optimizer(cfg, model, len(data.train))
    x = encode(next(iter(data.train))[0][:2].to(device), cfg.timesteps)
    pairs = post_neurons(model, x, cycle.all_stdp_targets(model))
    functional.reset_net(model)
    recorder = SpikeRecorder(pairs)
    recorder.record([])
    net = torch.compile(model) if use_compile(cfg, device) else model
    return Run(cfg, Path(cfg.out) / run_name(cfg), device, data, model, net, opt, sched,
               cycle.schedule(cfg.method, cfg.k, cfg.epochs), pairs, recorder, RunState())


def resume(run: Run) -> bool:
    """Load the run folder's last checkpoint into run; False when there is none."""
    path = run.run_dir / "checkpoints" / "last.pt"
    if not (run.cfg.resume and path.exists()):
        return False
    ck = records.load_checkpoint(path)
    run.model.load_state_dict(ck["model"])
    run.opt.load_state_dict(ck["opt"])
    run.sched.load_state_dict(ck["sched"])
    run.state = RunState(**ck["state"])
    return True


@contextmanager
def mechanism(run: Run, mech: str):
    """The recorder of the synapses a mechanism moves by STDP or by its matched shrinkage (None when
    there are none) for one epoch, with the synapses whose backprop update it drops kept out of
    backprop until the epoch ends."""
    targets = cycle.recorded(run.model, mech)
    frozen = cycle.frozen(run.model, mech)
    for m in frozen:
        m.weight.requires_grad_(False)
    run.recorder.record(targets)
    try:
        yield run.recorder if targets else None
    finally:
        run.recorder.record([])
        run.recorder.clear()
        for m in frozen:
            m.weight.requires_grad_(True)


def adam_reference(rows: list[dict]) -> dict:
    """{layer name: the optimiser's mean step per batch on it} in the latest epoch that moved it."""
    ref = {}
    for r in rows:
        if r["split"] == "dose" and r["metric"].startswith("adam:") and r["value"] > 0:
            ref[r["metric"].split(":", 1)[1]] = r["value"]
    return ref


def dose_size(run: Run, syn, opt_step: torch.Tensor | None, ref: dict, lr_now: float, device) -> torch.Tensor:
    """The norm of one STDP (or shrinkage) step under stdp_dose RHO: RHO x the optimiser's step on
    the same weights in this batch; where the mechanism keeps the optimiser off them, its mean step
    per batch in the latest epoch that moved them; before any such epoch, lr x sqrt(number of
    weights) (every weight moved by the lr: Adam's nominal step)."""
    rho = run.cfg.stdp_dose
    if opt_step is not None:
        return rho * opt_step
    step = ref.get(run.names[syn])  # ref: adam_reference() of the epochs before this one
    return torch.tensor(rho * (step if step else lr_now * math.sqrt(syn.weight.numel())), device=device)


def train_epoch(run: Run, mech: str, progress: bool = False) -> dict:
    """One pass over the training set with mechanism `mech`: loss, acc, and per STDP-target synapse
    the mean norm of the STDP (or shrinkage) step and of the optimiser's step per batch (the dose).

    Per batch: forward, backward, the STDP update from the weights the spikes came from, then the
    STDP step and the optimiser's; under stdp_dose the STDP step comes after the optimiser's, whose
    size it takes (Adam's and SGD's steps do not depend on the weights' values, so the order
    changes rounding only)."""
    cfg, device, opt = run.cfg, run.device, run.opt
    row = cycle.MECHANISMS[mech]
    per_batch = cfg.lr_schedule != "cosine"
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    stdp_sum = {syn: torch.zeros((), device=device) for syn in run.pairs}
    opt_sum = {syn: torch.zeros((), device=device) for syn in run.pairs}
    cos_sum = {}  # only the synapses this epoch computes STDP updates for
    n = 0
    ref = adam_reference(run.state.rows) if cfg.stdp_dose else {}
    with mechanism(run, mech) as recorder:
        frozen = set(cycle.frozen(run.model, mech))
        run.net.train()
        for x, y in tqdm(run.data.train, desc=f"  {mech}", leave=False, disable=not progress):
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            lr_now = opt.param_groups[0]["lr"]
            with autocast(cfg, device):
                out = run.net(encode(x, cfg.timesteps)).float()
            loss = F.cross_entropy(out, y, label_smoothing=cfg.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            deltas = stdp_deltas(recorder, tau_pre=cfg.tau_pre, tau_post=cfg.tau_post, weight_dep=cfg.weight_dep,
                                 normalise=cfg.stdp_norm) if recorder is not None else {}
            for syn, dw in deltas.items():  # against the weights the spikes came from
                cos_sum[syn] = cos_sum.get(syn, 0) + shrink_cosine(dw, syn.weight)
            if not cfg.stdp_dose:  # stdp_lr: the step needs nothing from the optimiser's
                for syn, dw in deltas.items():
                    stdp_sum[syn] += stdp_step_lr(syn, dw, cfg.stdp_lr * lr_now / cfg.lr, row.move == "shrink")
            steps = {}
            if row.optimizer_steps:
                before = {syn: syn.weight.detach().clone() for syn in run.pairs if syn not in frozen}
                opt.step()
                steps = {syn: (syn.weight.detach() - w).norm() for syn, w in before.items()}
                for syn, step in steps.items():
                    opt_sum[syn] += step
            if cfg.stdp_dose:  # RHO x the optimiser's step just taken
                for syn, dw in deltas.items():
                    size = dose_size(run, syn, steps.get(syn), ref, lr_now, dw.device)
                    move(syn, dw, size, shrink=row.move == "shrink")
                    stdp_sum[syn] += size
            if per_batch:
                run.sched.step()
            functional.reset_net(run.model)
            loss_sum += loss.detach() * y.numel()
            correct += (out.argmax(1) == y).sum()
            n += y.numel()
    if not per_batch:
        with warnings.catch_warnings():  # an epoch without optimiser steps (null) still moves the schedule
            warnings.simplefilter("ignore", UserWarning)
            run.sched.step()
    loss_mean = loss_sum.item() / max(n, 1)  # one host sync per epoch
    if not math.isfinite(loss_mean):
        raise Diverged(f"training loss became {loss_mean} in a {mech} epoch")
    batches = max(len(run.data.train), 1)
    return {"loss": loss_mean, "acc": correct.item() / max(n, 1),
            "stdp": {syn: v.item() / batches for syn, v in stdp_sum.items()},
            "adam": {syn: v.item() / batches for syn, v in opt_sum.items()},
            "cos": {syn: v.item() / batches for syn, v in cos_sum.items()}}


@torch.no_grad()
def evaluate(run: Run, loader) -> tuple[float, float]:
    """(mean loss, accuracy) of the current weights on a loader."""
    run.net.eval()
    loss_sum, correct, n = 0.0, 0, 0
    for x, y in loader:
        x, y = x.to(run.device, non_blocking=True), y.to(run.device, non_blocking=True)
        with autocast(run.cfg, run.device):
            out = run.net(encode(x, run.cfg.timesteps)).float()
        functional.reset_net(run.model)
        loss_sum += F.cross_entropy(out, y, reduction="sum").item()
        correct += (out.argmax(1) == y).sum().item()
        n += y.numel()
    return loss_sum / max(n, 1), correct / max(n, 1)


def is_better(state: RunState, val_acc: float, val_loss: float) -> bool:
    """A new best epoch: higher validation accuracy, or equal accuracy and lower validation loss.

    Small validation sets tie often; a strict '>' alone keeps the first of a plateau, so every
    hand-off on it would reload old weights. docs/method.md (Hand-off) gives the evidence."""
    return val_acc > state.best_val or (val_acc == state.best_val and val_loss < state.best_val_loss)


def run_epoch(run: Run, progress: bool = False) -> dict:
    """Train and score epoch run.state.epoch + 1; returns its metrics keyed (split, metric)."""
    cfg, state = run.cfg, run.state
    epoch, mech = state.epoch, run.plan[state.epoch]
    t0 = time.perf_counter()
    if cfg.handoff == "best" and epoch > 0 and mech != run.plan[epoch - 1] and state.best_model:
        run.model.load_state_dict(state.best_model)
    torch.manual_seed(cfg.seed * 100_003 + epoch)  # data order and augmentation per epoch
    lr_now = run.opt.param_groups[0]["lr"]
    tr = train_epoch(run, mech, progress)
    t_train = time.perf_counter() - t0
    val_loss, val_acc = evaluate(run, run.data.val)
    test_loss, test_acc = evaluate(run, run.data.test)
    state.wall += time.perf_counter() - t0
    if is_better(state, val_acc, val_loss):
        state.best_val, state.best_val_loss, state.best_epoch, state.test_at_best = val_acc, val_loss, epoch + 1, test_acc
        state.best_model = {k: v.detach().clone() for k, v in run.model.state_dict().items()}
    state.best_test = max(state.best_test, test_acc)
    state.epoch = epoch + 1
    vals = {("train", "loss"): tr["loss"], ("train", "acc"): tr["acc"], ("train", "lr"): lr_now,
            ("train", "seconds"): time.perf_counter() - t0, ("train", "train_seconds"): t_train,
            ("train", "stdp_step"): sum(tr["stdp"].values()),
            ("val", "loss"): val_loss, ("val", "acc"): val_acc,
            ("test", "loss"): test_loss, ("test", "acc"): test_acc}
    names = run.names
    for syn in run.pairs:  # the dose: step sizes on every synapse some mechanism moves by STDP
        vals[("dose", f"stdp:{names[syn]}")] = tr["stdp"][syn]
        vals[("dose", f"adam:{names[syn]}")] = tr["adam"][syn]
        vals[("dose", f"weight:{names[syn]}")] = syn.weight.detach().norm().item()
        if syn in tr["cos"]:  # only where this epoch computed STDP updates on syn
            vals[("dose", f"cos:{names[syn]}")] = tr["cos"][syn]
    state.rows += [{"epoch": state.epoch, "mechanism": mech, "split": s, "metric": m, "value": v}
                   for (s, m), v in vals.items()]
    return vals


def dose_rows(rows: list[dict]) -> dict[int, dict[str, dict[str, float]]]:
    """The metrics rows of split "dose" as {epoch: {kind (stdp, adam, weight, cos): {layer: value}}}."""
    by_epoch: dict[int, dict] = {}
    for r in rows:
        if r["split"] == "dose":
            kind, layer = r["metric"].split(":", 1)
            by_epoch.setdefault(r["epoch"], {}).setdefault(kind, {})[layer] = r["value"]
    return by_epoch


def dose(rows: list[dict]) -> tuple[float | None, float | None]:
    """(stdp_dose, stdp_rel_step) of a run from its metrics rows: over the epochs that took STDP (or
    shrinkage) steps, the mean of sum(STDP step norms) / sum(optimiser (Adam or SGD) step norms on the
    same synapses), and of sum(STDP step norms) / sum(weight norms). The optimiser's step comes from
    the same epoch, or, where the mechanism freezes those synapses, from the latest earlier epoch in
    which it moved them."""
    by_epoch = dose_rows(rows)
    doses, rels, last_adam = [], [], {}
    for epoch in sorted(by_epoch):
        d = by_epoch[epoch]
        layers = [name for name, v in d.get("stdp", {}).items() if v > 0]
        if layers:
            adam = {name: d["adam"][name] if d["adam"][name] > 0 else last_adam.get(name, 0.0) for name in layers}
            stdp = sum(d["stdp"][name] for name in layers)
            if all(adam[name] > 0 for name in layers):
                doses.append(stdp / sum(adam.values()))
            rels.append(stdp / sum(d["weight"][name] for name in layers))
        last_adam.update({name: v for name, v in d.get("adam", {}).items() if v > 0})
    mean = lambda xs: sum(xs) / len(xs) if xs else None  # noqa: E731
    return mean(doses), mean(rels)


def shrink_share(rows: list[dict]) -> float | None:
    """How much of a run's STDP movement is weight shrinkage: the mean over its STDP epochs and
    layers of cos(STDP update, -w), each weighted by that layer's STDP step norm in that epoch."""
    pairs = [(c, d.get("stdp", {}).get(layer, 0.0)) for d in dose_rows(rows).values()
             for layer, c in d.get("cos", {}).items()]
    total = sum(step for _, step in pairs)
    return sum(c * step for c, step in pairs) / total if total > 0 else None


def summary(run: Run, status: str, message: str = "") -> dict:
    s, cfg = run.state, run.cfg
    stdp_dose, stdp_rel_step = dose(s.rows)
    return {"status": status, "message": message, "test_acc": s.test_at_best, "stdp_dose": stdp_dose,
            "stdp_rel_step": stdp_rel_step, "stdp_shrink_cos": shrink_share(s.rows),
            "best_test_acc": s.best_test, "best_val_acc": max(s.best_val, 0.0),
            "best_epoch": s.best_epoch, "epochs_completed": s.epoch,
            "wall_seconds": round(s.wall, 3), "model": cfg.model, "dataset": cfg.dataset,
            "method": cfg.method, "k": cfg.k, "seed": cfg.seed}


def record(run: Run) -> None:
    """Checkpoint, metrics.csv and summary.json after an epoch, each written atomically."""
    done = run.state.epoch >= run.cfg.epochs
    records.save_checkpoint(run.run_dir / "checkpoints" / "last.pt", {
        "model": run.model.state_dict(), "opt": run.opt.state_dict(), "sched": run.sched.state_dict(),
        "state": asdict(run.state)})
    records.write_metrics(run.run_dir / "metrics.csv", run.state.rows)
    records.write_json(run.run_dir / "summary.json", summary(run, "complete" if done else "running"))


def _finished(run_dir: Path, cfg: Config) -> dict | None:
    """The summary of a complete run of the same settings in run_dir; ConfigError for other settings."""
    if not (cfg.resume and (run_dir / "config.json").exists()):
        return None
    old = records.read_json(run_dir / "config.json")["config"]
    # epochs count: the cosine schedule and the K cycle depend on the total, so a longer run is another run
    defaults = asdict(Config())  # a field added since the run started reads as its default
    diff = [k for k, v in asdict(cfg).items() if k not in RUN_IRRELEVANT and old.get(k, defaults[k]) != v]
    if diff:
        raise ConfigError(f"{run_dir} holds a run with other settings ({', '.join(diff)}); "
                          "use --name or --out for a new run, or --no-resume to overwrite it")
    path = run_dir / "summary.json"
    done = path.exists() and records.read_json(path)
    return done if done and done.get("status") == "complete" and done.get("epochs_completed") == cfg.epochs else None


def train(cfg: Config, progress: bool = True, on_epoch: Callable[[dict], None] | None = None) -> dict:
    """Train (or resume) one run; returns summary.json's contents plus 'run_dir'."""
    validate(cfg)
    run_dir = Path(cfg.out) / run_name(cfg)
    done = _finished(run_dir, cfg)
    if done:
        return {**done, "run_dir": str(run_dir)}
    run = setup(cfg)
    resume(run)
    records.write_json(run.run_dir / "config.json", {
        "config": asdict(cfg), "git": records.git_hash(), "versions": records.package_versions(),
        "schedule": run.plan, "ei_split": ei_split(run.model, cycle.inhibitory(cfg.method)),
        "device": str(run.device)})
    bar = tqdm(range(run.state.epoch, cfg.epochs), desc=run_name(cfg), disable=not progress,
               initial=run.state.epoch, total=cfg.epochs)
    for _ in bar:
        try:
            vals = run_epoch(run, progress)
        except Diverged as e:
            records.write_json(run.run_dir / "summary.json", summary(run, "diverged", str(e)))
            raise
        except torch.OutOfMemoryError:
            msg = (f"out of memory in epoch {run.state.epoch + 1} ({cfg.model}, batch {cfg.batch_size}, "
                   f"T {cfg.timesteps}); lower --batch-size, --timesteps or --width")
            records.write_json(run.run_dir / "summary.json", summary(run, "failed", msg))
            raise ConfigError(msg) from None
        record(run)
        mech = run.plan[run.state.epoch - 1]
        bar.set_postfix(mech=mech, val=f"{vals[('val', 'acc')]:.3f}", test=f"{vals[('test', 'acc')]:.3f}")
        if on_epoch is not None:
            on_epoch({"epoch": run.state.epoch, "mechanism": mech, **{f"{s}_{m}": v for (s, m), v in vals.items()}})
    if run.state.best_model is not None:
        records.save_checkpoint(run.run_dir / "checkpoints" / "best.pt", {"model": run.state.best_model})
    if cfg.epochs == 0:
        records.write_metrics(run.run_dir / "metrics.csv", [])
    final = summary(run, "complete")
    records.write_json(run.run_dir / "summary.json", final)
    return {**final, "run_dir": str(run.run_dir)}
