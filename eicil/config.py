"""One run's settings: the `Config` dataclass, its profiles, and validation.

Validation calls the check of the module that owns each setting (models, data, cycle, stdp), so
every rule and its message live in one place; this module adds only the types and the trainer's
own scalars. Nothing here imports the trainer.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch

from . import cycle
from .data import check_data
from .models import check_model
from .stdp import check_taus, weight_dependence


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
    lr: float = 1e-3  # peak learning rate of the optimiser
    optimizer: str = "adam"  # adam | sgd (Nesterov, momentum 0.9)
    weight_decay: float = 0.0  # L2 penalty the optimiser adds to every gradient
    lr_schedule: str = "cosine"  # cosine (stepped per epoch) | linear (warm-up, then linear decay to 0, per batch)
    warmup: float = 0.0  # linear schedule: share of all batches spent warming up from lr/10
    label_smoothing: float = 0.0  # cross-entropy label smoothing
    width: float = 1.0  # channel multiplier of the model
    hidden: int = 128  # units of the spiking hidden Linear (the stdp-bw layer)
    stem: str = "cifar"  # resnet18 stem: cifar (3x3) or imagenet (7x7 s2 + max-pool)
    stdp_lr: float = 0.01  # SGD step size on the normalised STDP update, scaled like the optimiser's lr
    stdp_dose: float = 0.0  # RHO > 0: each STDP step's norm is RHO x the optimiser's step on that layer (stdp_lr unused)
    stdp_norm: bool = True  # divide the summed STDP update by its number of terms
    weight_dep: str = "clamp"  # clamp (released code's f(w)) | soft (paper Eq. 5)
    tau_pre: float = 2.0  # pre-synaptic trace time constant, in time steps
    tau_post: float = 100.0  # post-synaptic trace time constant, in time steps
    handoff: str = "last"  # on a mechanism change: last (continue) | best (reload best-val weights)
    val_fraction: float = 0.1  # share of the training set held out for model selection
    train_subset: int = 0  # train on this many examples (0: all), for quick checks
    test_subset: int = 0  # score on this many test examples (0: all): one fixed subset for every run
    augment: bool = False  # the paper's crops/flips/rotations (never flips digits)
    seed: int = 0  # seeds weights, validation split and data order
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    amp: bool = False  # bf16 autocast (CUDA or CPU)
    compile: str = "auto"  # torch.compile the model: auto (where measured to help) | on | off
    num_workers: int = 0  # DataLoader worker processes
    v_threshold: float = 1.0  # IF threshold
    surrogate_alpha: float = 4.0  # sigmoid surrogate steepness
    detach_reset: bool = False  # detach the reset from the graph
    out: str = "runs"  # parent folder of run directories
    name: str = ""  # run folder name; empty: derived from model, dataset, method, K, seed
    resume: bool = True  # continue an interrupted run found in the run folder


PROFILES = {
    "smoke": dict(epochs=2, train_subset=192, timesteps=2, width=0.5, hidden=32, compile="off"),
    "cpu": dict(),
    # The CPU recipe for the paper's convnets on CIFAR-10 (docs/decisions.md, The deep recipe):
    # one run of 11-18 minutes on 2 CPU cores; PROFILE_MODELS holds what differs per model.
    "deep": dict(dataset="cifar10", augment=True, timesteps=2, batch_size=128, optimizer="sgd", lr=0.1,
                 weight_decay=5e-4, lr_schedule="linear", warmup=0.1, label_smoothing=0.1, val_fraction=0.02,
                 epochs=10, hidden=256),
    "paper": dict(model="resnet18", dataset="cifar10", epochs=350, batch_size=64, lr=1e-3,
                  timesteps=4, seed=230, augment=True, hidden=256, handoff="best", num_workers=4),
}

OPTIMIZERS = ("adam", "sgd")
LR_SCHEDULES = ("cosine", "linear")
COMPILE = ("auto", "on", "off")

PROFILE_MODELS = {
    # epochs sized to 11-16 minutes each on the 2-core machine that measured them, quiet
    # (docs/decisions.md, The deep recipe): vgg11 62.6%, resnet18 49.2%, ei_net 45.0%
    "deep": {"resnet18": dict(width=0.125, epochs=4), "vgg11": dict(width=0.25, epochs=4),
             "ei_net": dict(width=0.25, epochs=4)},
}

# Fields that do not change what a run computes: a run may resume under other values, and the
# report never splits runs by them.
RUN_IRRELEVANT = ("data_root", "download", "device", "compile", "num_workers", "out", "name", "resume")

TYPES = {f.name: f.type for f in fields(Config)}  # field -> "int" | "float" | "str" | "bool"
_PY = {"int": int, "float": float, "str": str, "bool": bool}
_SAID = {"int": "an integer", "float": "a number", "str": "a string", "bool": "true or false"}


def coerce(name: str, value):
    """value as the field's type (an int where a float is due becomes a float); ConfigError otherwise."""
    kind = TYPES[name]
    if kind == "float" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, _PY[kind]) and not (kind in ("int", "float") and isinstance(value, bool)):
        return value
    raise ConfigError(f"{name} must be {_SAID[kind]}, got {value!r}")


def config_from(profile: str = "cpu", **overrides) -> Config:
    """A profile's defaults with overrides; unknown names and wrong types raise ConfigError."""
    if profile not in PROFILES:
        raise ConfigError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    unknown = sorted(set(overrides) - set(TYPES))
    if unknown:
        raise ConfigError(f"unknown setting(s): {', '.join(unknown)}")
    model = overrides.get("model", PROFILES[profile].get("model", Config.model))
    values = {**PROFILES[profile], **PROFILE_MODELS.get(profile, {}).get(model, {}), **overrides}
    return Config(**{name: coerce(name, v) for name, v in values.items()})


def validate(cfg: Config) -> Config:
    """Raise ConfigError (one line) for the first bad setting; return cfg."""
    for name in TYPES:
        coerce(name, getattr(cfg, name))
    try:
        check_model(cfg.model, cfg.width, cfg.hidden, cfg.stem)
        check_data(cfg.dataset, val_fraction=cfg.val_fraction, batch_size=cfg.batch_size,
                   train_subset=cfg.train_subset, test_subset=cfg.test_subset, num_workers=cfg.num_workers)
        cycle.check_method(cfg.method)
        cycle.check_k(cfg.k)  # a K of 0 is a typo even where the method ignores K
        cycle.check_handoff(cfg.handoff)
        cycle.schedule(cfg.method, cfg.k, cfg.epochs)
        weight_dependence(cfg.weight_dep)
        check_taus(cfg.tau_pre, cfg.tau_post)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    _need(cfg.timesteps >= 1, f"timesteps (T) must be >= 1, got {cfg.timesteps}")
    _need(cfg.lr > 0, f"lr must be > 0, got {cfg.lr}")
    _need(cfg.stdp_lr >= 0, f"stdp_lr must be >= 0, got {cfg.stdp_lr}")
    _need(cfg.stdp_dose >= 0 and math.isfinite(cfg.stdp_dose), f"stdp_dose must be >= 0 (0: use stdp_lr), got {cfg.stdp_dose}")
    _need(cfg.optimizer in OPTIMIZERS, f"optimizer must be {' or '.join(OPTIMIZERS)}, got {cfg.optimizer!r}")
    _need(cfg.lr_schedule in LR_SCHEDULES, f"lr_schedule must be {' or '.join(LR_SCHEDULES)}, got {cfg.lr_schedule!r}")
    _need(0 <= cfg.warmup < 1, f"warmup is a share of all batches, in [0, 1); got {cfg.warmup}")
    _need(0 <= cfg.label_smoothing < 1, f"label_smoothing must be in [0, 1), got {cfg.label_smoothing}")
    _need(cfg.weight_decay >= 0, f"weight_decay must be >= 0, got {cfg.weight_decay}")
    _need(cfg.compile in COMPILE, f"compile must be {', '.join(COMPILE)}, got {cfg.compile!r}")
    _need(cfg.v_threshold > 0 and cfg.surrogate_alpha > 0, "v_threshold and surrogate_alpha must be > 0")
    if cfg.device.startswith("cuda"):
        _need(torch.cuda.is_available(), f"device {cfg.device!r} asked for, but CUDA is not available here")
    else:
        _need(cfg.device in ("auto", "cpu"), f"device must be auto, cpu, cuda or cuda:N, got {cfg.device!r}")
    return cfg


def _need(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def run_name(cfg: Config) -> str:
    k = f"-k{cfg.k}" if cycle.uses_k(cfg.method) else ""
    return cfg.name or f"{cfg.model}-{cfg.dataset}-{cfg.method}{k}-s{cfg.seed}"
