"""One trainer for every mechanism: Adam for backprop weights, plain SGD steps for STDP weights.

`train(Config(...))` writes a run directory (see records.py) and returns its summary. A run
whose folder already holds a checkpoint continues from it; a complete run is not repeated.
"""
from __future__ import annotations

import math
import random
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from spikingjelly.activation_based import functional
from tqdm.auto import tqdm

from . import cycle, records
from .data import DATASETS, build_data
from .models import MODELS, NeuronConfig, create_model, ei_split, stdp_layers
from .stdp import WEIGHT_DEPS, SpikeRecorder, post_neurons, stdp_step


class ConfigError(ValueError):
    """A setting a user can fix; its message is one line."""


@dataclass
class Config:
    model: str = "csnn"  # csnn | resnet18 | vgg11 | ei_net
    dataset: str = "digits"  # digits | fake | mnist | cifar10 | cifar100
    data_root: str = "data"  # folder holding torchvision's dataset files
    download: bool = False  # fetch mnist/cifar when missing (needs a network)
    method: str = "gs"  # gs | stdp-bw | stdp-conv | stdp-bw-gs | gsi | gsgi | gsni
    k: int = 5  # cycle ratio of gsi/gsgi/gsni: K>0 one inhibitory epoch in K, K<0 one gs in |K|
    epochs: int = 10  # training epochs
    timesteps: int = 4  # T: direct encoding feeds the image at each of T steps
    batch_size: int = 64  # examples per step
    lr: float = 1e-3  # Adam learning rate, cosine-annealed over the epochs
    width: float = 1.0  # channel multiplier of the model
    hidden: int = 128  # units of the spiking hidden Linear (the stdp-bw layer)
    stem: str = "cifar"  # resnet18 stem: cifar (3x3) or imagenet (7x7 s2 + max-pool)
    stdp_lr: float = 0.01  # SGD step size on the normalised STDP update, scaled like the Adam lr
    stdp_norm: bool = True  # divide the summed STDP update by its number of terms
    weight_dep: str = "clamp"  # clamp (released code's f(w)) | soft (paper Eq. 5)
    tau_pre: float = 2.0  # pre-synaptic trace time constant, in time steps
    tau_post: float = 100.0  # post-synaptic trace time constant, in time steps
    handoff: str = "last"  # on a mechanism change: last (continue) | best (reload best-val weights)
    val_fraction: float = 0.1  # share of the training set held out for model selection
    train_subset: int = 0  # train on this many examples (0: all), for quick checks
    augment: bool = False  # the paper's crops/flips/rotations (never flips digits)
    seed: int = 0  # seeds weights, validation split and data order
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    amp: bool = False  # bf16 autocast on CUDA
    compile: bool = False  # torch.compile the model (CUDA; off unless it measurably helps)
    num_workers: int = 0  # DataLoader worker processes
    v_threshold: float = 1.0  # IF threshold
    surrogate_alpha: float = 4.0  # sigmoid surrogate steepness
    detach_reset: bool = False  # detach the reset from the graph
    out: str = "runs"  # parent folder of run directories
    name: str = ""  # run folder name; empty: derived from model, dataset, method, K, seed
    resume: bool = True  # continue an interrupted run found in the run folder


PROFILES = {
    "smoke": dict(epochs=2, train_subset=192, timesteps=2, width=0.5, hidden=32),
    "cpu": dict(),
    "paper": dict(model="resnet18", dataset="cifar10", epochs=350, batch_size=64, lr=1e-3,
                  timesteps=4, seed=230, augment=True, hidden=256, handoff="best", num_workers=4),
}


def config_from(profile: str = "cpu", **overrides) -> Config:
    if profile not in PROFILES:
        raise ConfigError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    names = {f.name for f in fields(Config)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise ConfigError(f"unknown setting(s): {', '.join(unknown)}")
    return Config(**{**PROFILES[profile], **overrides})


def validate(cfg: Config) -> None:
    def need(ok: bool, msg: str):
        if not ok:
            raise ConfigError(msg)
    need(cfg.model in MODELS, f"unknown model {cfg.model!r}; choose one of {', '.join(MODELS)}")
    need(cfg.dataset in DATASETS, f"unknown dataset {cfg.dataset!r}; choose one of {', '.join(DATASETS)}")
    need(cfg.method in cycle.METHODS, f"unknown method {cfg.method!r}; choose one of {', '.join(cycle.METHODS)}")
    need(isinstance(cfg.k, int) and abs(cfg.k) >= 2, f"K must be an integer with |K| >= 2, got {cfg.k}")
    need(cfg.epochs >= 0, f"epochs must be >= 0, got {cfg.epochs}")
    need(cfg.timesteps >= 1, f"timesteps (T) must be >= 1, got {cfg.timesteps}")
    need(cfg.batch_size >= 1, f"batch size must be >= 1, got {cfg.batch_size}")
    need(cfg.lr > 0 and cfg.stdp_lr >= 0, "lr must be > 0 and stdp_lr >= 0")
    need(cfg.width > 0 and cfg.hidden >= 1, "width must be > 0 and hidden >= 1")
    need(cfg.tau_pre >= 1 and cfg.tau_post >= 1, "tau_pre and tau_post must be >= 1 time step")
    need(cfg.weight_dep in WEIGHT_DEPS, f"unknown weight dependence {cfg.weight_dep!r}; choose {' or '.join(WEIGHT_DEPS)}")
    need(cfg.handoff in ("best", "last"), f"handoff must be best or last, got {cfg.handoff!r}")
    need(cfg.stem in ("cifar", "imagenet"), f"stem must be cifar or imagenet, got {cfg.stem!r}")
    need(0 < cfg.val_fraction < 0.5, f"val_fraction must be in (0, 0.5), got {cfg.val_fraction}")
    need(cfg.train_subset >= 0, "train_subset must be >= 0")
    if cfg.device.startswith("cuda"):
        need(torch.cuda.is_available(), f"device {cfg.device!r} asked for, but CUDA is not available here")
    else:
        need(cfg.device in ("auto", "cpu"), f"device must be auto, cpu, cuda or cuda:N, got {cfg.device!r}")


def run_name(cfg: Config) -> str:
    k = f"-k{cfg.k}" if cfg.method in cycle.CYCLES else ""
    return cfg.name or f"{cfg.model}-{cfg.dataset}-{cfg.method}{k}-s{cfg.seed}"


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


@torch.no_grad()
def evaluate(model, loader, cfg: Config, device) -> tuple[float, float]:
    model.eval()
    loss_sum, correct, n = 0.0, 0, 0
    for x, y in loader:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        with torch.autocast(device.type, torch.bfloat16, enabled=cfg.amp and device.type == "cuda"):
            out = model(encode(x, cfg.timesteps)).float()
        functional.reset_net(model)
        loss_sum += F.cross_entropy(out, y, reduction="sum").item()
        correct += (out.argmax(1) == y).sum().item()
        n += y.numel()
    return loss_sum / max(n, 1), correct / max(n, 1)


class Diverged(RuntimeError):
    pass


def stdp_pairs(model, x: torch.Tensor, timesteps: int) -> dict:
    """Every synapse some mechanism trains with STDP -> its post neuron, from one traced pass."""
    pairs = post_neurons(model, encode(x, timesteps), stdp_layers(model, "stdp-conv") + [model.fc_hidden])
    functional.reset_net(model)
    return pairs


@contextmanager
def mechanism(model, pairs: dict, mech: str):
    """The recorder of a mechanism's STDP targets (None when it has none) for one epoch, with
    STDP-only weights kept out of backprop (their gradient is never computed) until it ends."""
    targets = stdp_layers(model, mech)
    frozen = targets if mech in cycle.STDP_ONLY else []
    for m in frozen:
        m.weight.requires_grad_(False)
    recorder = SpikeRecorder({m: pairs[m] for m in targets}) if targets else None
    try:
        yield recorder
    finally:
        if recorder is not None:
            recorder.close()
        for m in frozen:
            m.weight.requires_grad_(True)


def train_epoch(model, loader, opt, cfg: Config, mech: str, recorder: SpikeRecorder | None,
                stdp_lr: float, device, progress: bool) -> dict:
    model.train()
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    stdp_change = torch.zeros((), device=device)
    n = 0
    for x, y in tqdm(loader, desc=f"  {mech}", leave=False, disable=not progress):
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        with torch.autocast(device.type, torch.bfloat16, enabled=cfg.amp and device.type == "cuda"):
            out = model(encode(x, cfg.timesteps)).float()
        loss = F.cross_entropy(out, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if recorder is not None:  # before Adam: STDP sees the weights the spikes came from
            stdp_change += stdp_step(recorder, lr=stdp_lr, tau_pre=cfg.tau_pre, tau_post=cfg.tau_post,
                                     weight_dep=cfg.weight_dep, normalise=cfg.stdp_norm)
        if mech != "null":
            opt.step()
        functional.reset_net(model)
        loss_sum += loss.detach() * y.numel()
        correct += (out.argmax(1) == y).sum()
        n += y.numel()
    loss_mean = loss_sum.item() / max(n, 1)  # one host sync per epoch
    if not math.isfinite(loss_mean):
        raise Diverged(f"training loss became {loss_mean} in a {mech} epoch")
    return {"loss": loss_mean, "acc": correct.item() / max(n, 1),
            "stdp_update": stdp_change.item() / max(len(loader), 1)}


def _check_same_run(run_dir: Path, cfg: Config) -> None:
    old = records.read_json(run_dir / "config.json")["config"]
    # epochs count: the cosine schedule and the K cycle depend on the total, so a longer run is another run
    ignore = {"resume", "device", "num_workers", "out", "data_root", "download"}
    diff = [k for k, v in asdict(cfg).items() if k not in ignore and old.get(k) != v]
    if diff:
        raise ConfigError(f"{run_dir} holds a run with other settings ({', '.join(diff)}); "
                          "use --name or --out for a new run, or --no-resume to overwrite it")


def train(cfg: Config, progress: bool = True, on_epoch: Callable[[dict], None] | None = None) -> dict:
    """Train (or resume) one run; returns summary.json's contents plus 'run_dir'."""
    validate(cfg)
    run_dir = Path(cfg.out) / run_name(cfg)
    ckpt_path = run_dir / "checkpoints" / "last.pt"
    if cfg.resume and (run_dir / "config.json").exists():
        _check_same_run(run_dir, cfg)
        if (run_dir / "summary.json").exists():
            summary = records.read_json(run_dir / "summary.json")
            if summary.get("status") == "complete" and summary.get("epochs_completed") == cfg.epochs:
                return {**summary, "run_dir": str(run_dir)}
    device = pick_device(cfg.device)
    set_seed(cfg.seed)
    data = build_data(cfg.dataset, data_root=cfg.data_root, download=cfg.download,
                      batch_size=cfg.batch_size, val_fraction=cfg.val_fraction, seed=cfg.seed,
                      augment=cfg.augment, train_subset=cfg.train_subset,
                      num_workers=cfg.num_workers, pin_memory=device.type == "cuda")
    ncfg = NeuronConfig(cfg.v_threshold, cfg.surrogate_alpha, cfg.detach_reset)
    model = create_model(cfg.model, in_channels=data.in_channels, num_classes=data.num_classes,
                         width=cfg.width, hidden=cfg.hidden, stem=cfg.stem, ncfg=ncfg).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(cfg.epochs, 1))
    plan = cycle.schedule(cfg.method, cfg.k, cfg.epochs)
    inhibitory = cycle.CYCLES.get(cfg.method, cfg.method)  # the mechanism whose E:I split is recorded

    state = {"epoch": 0, "best_val": -1.0, "best_epoch": 0, "test_at_best": 0.0, "best_test": 0.0,
             "wall": 0.0, "best_model": None, "rows": []}
    if cfg.resume and ckpt_path.exists():
        ck = records.load_checkpoint(ckpt_path)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        sched.load_state_dict(ck["sched"])
        state = ck["state"]
    records.write_json(run_dir / "config.json", {
        "config": asdict(cfg), "git": records.git_hash(), "versions": records.package_versions(),
        "schedule": plan, "ei_split": ei_split(model, inhibitory), "device": str(device),
    })

    pairs = stdp_pairs(model, next(iter(data.train))[0][:2].to(device), cfg.timesteps)
    net = torch.compile(model) if cfg.compile else model  # same parameters; `model` keeps clean state-dict keys

    def summary(status: str, message: str = "") -> dict:
        return {"status": status, "message": message, "test_acc": state["test_at_best"],
                "best_test_acc": state["best_test"], "best_val_acc": max(state["best_val"], 0.0),
                "best_epoch": state["best_epoch"], "epochs_completed": state["epoch"],
                "wall_seconds": round(state["wall"], 3), "model": cfg.model, "dataset": cfg.dataset,
                "method": cfg.method, "k": cfg.k, "seed": cfg.seed}

    bar = tqdm(range(state["epoch"], cfg.epochs), desc=run_name(cfg), disable=not progress,
               initial=state["epoch"], total=cfg.epochs)
    for epoch in bar:
        mech = plan[epoch]
        t0 = time.perf_counter()
        if cfg.handoff == "best" and epoch > 0 and mech != plan[epoch - 1] and state["best_model"]:
            model.load_state_dict(state["best_model"])
        torch.manual_seed(cfg.seed * 100_003 + epoch)  # data order and augmentation per epoch
        lr_now = opt.param_groups[0]["lr"]
        try:
            with mechanism(model, pairs, mech) as recorder:
                tr = train_epoch(net, data.train, opt, cfg, mech, recorder,
                                 cfg.stdp_lr * lr_now / cfg.lr, device, progress)
        except Diverged as e:
            records.write_json(run_dir / "summary.json", summary("diverged", str(e)))
            raise
        except torch.OutOfMemoryError:
            msg = (f"out of memory in epoch {epoch + 1} ({cfg.model}, batch {cfg.batch_size}, "
                   f"T {cfg.timesteps}); lower --batch-size, --timesteps or --width")
            records.write_json(run_dir / "summary.json", summary("failed", msg))
            raise ConfigError(msg) from None
        sched.step()
        val_loss, val_acc = evaluate(net, data.val, cfg, device)
        test_loss, test_acc = evaluate(net, data.test, cfg, device)
        state["wall"] += time.perf_counter() - t0
        e = epoch + 1
        if val_acc > state["best_val"]:
            state.update(best_val=val_acc, best_epoch=e, test_at_best=test_acc,
                         best_model={k: v.detach().clone() for k, v in model.state_dict().items()})
        state["best_test"] = max(state["best_test"], test_acc)
        state["epoch"] = e
        vals = {("train", "loss"): tr["loss"], ("train", "acc"): tr["acc"], ("train", "lr"): lr_now,
                ("train", "seconds"): time.perf_counter() - t0, ("train", "stdp_update"): tr["stdp_update"],
                ("val", "loss"): val_loss, ("val", "acc"): val_acc,
                ("test", "loss"): test_loss, ("test", "acc"): test_acc}
        state["rows"] += [{"epoch": e, "mechanism": mech, "split": s, "metric": m, "value": v}
                          for (s, m), v in vals.items()]
        records.save_checkpoint(ckpt_path, {"model": model.state_dict(), "opt": opt.state_dict(),
                                            "sched": sched.state_dict(), "state": state})
        records.write_metrics(run_dir / "metrics.csv", state["rows"])
        records.write_json(run_dir / "summary.json", summary("running" if e < cfg.epochs else "complete"))
        bar.set_postfix(mech=mech, val=f"{val_acc:.3f}", test=f"{test_acc:.3f}")
        if on_epoch is not None:
            on_epoch({"epoch": e, "mechanism": mech, **{f"{s}_{m}": v for (s, m), v in vals.items()}})
    if state["best_model"] is not None:
        records.save_checkpoint(run_dir / "checkpoints" / "best.pt", {"model": state["best_model"]})
    if cfg.epochs == 0:
        records.write_metrics(run_dir / "metrics.csv", [])
    final = summary("complete")
    records.write_json(run_dir / "summary.json", final)
    return {**final, "run_dir": str(run_dir)}
