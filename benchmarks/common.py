"""Shared helpers of the benchmarks: device and thread choice, synchronised timing, interleaved
repeats, and a training setup that mirrors eicil.train.train() (data, model, Adam, post neurons).

Every number the benchmarks report is a ratio against a baseline measured in the same process with
the repeats interleaved (A B A B ...), so slow drift and noisy neighbours hit both sides alike.
"""
from __future__ import annotations

import copy
import math
import statistics
import time
from dataclasses import dataclass
from typing import Callable

import torch

from eicil.data import build_data
from eicil.models import create_model
from eicil.train import Config, mechanism, stdp_pairs, train_epoch


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit(f"--device {name} asked for, but CUDA is not available here")
    return torch.device(name)


def set_threads(threads: int | None, device: torch.device) -> int:
    """None: 1 thread on CPU, torch's default on CUDA. On a CPU shared with other work, OpenMP's
    spin-waiting threads make multi-threaded timings erratic (we saw 25x swings on 2 busy cores);
    one thread gives stable ratios. 0: torch's default."""
    if threads is None:
        threads = 1 if device.type == "cpu" else 0
    if threads > 0:
        torch.set_num_threads(threads)
    return torch.get_num_threads()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], object], device: torch.device) -> float:
    """Wall seconds of fn(), with the device synchronised before and after."""
    sync(device)
    t0 = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - t0


def interleaved(fns: dict[str, Callable[[], object]], repeats: int, device: torch.device,
                warmup: int = 1) -> dict[str, list[float]]:
    """Run every fn `warmup` times untimed, then `repeats` rounds of A B C ...; times per name."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            times[name].append(timed(fn, device))
    return times


def median(xs: list[float]) -> float:
    return statistics.median(xs)


@dataclass
class Setup:
    """One model trained the way eicil.train.train() does it (minus logging and schedules)."""
    cfg: Config
    data: object  # eicil.data.Data
    model: torch.nn.Module
    opt: torch.optim.Optimizer
    pairs: dict  # synapse -> post neuron, as train() builds it
    device: torch.device

    def n_images(self) -> int:
        return len(self.data.train.dataset)

    def epoch(self, mech: str) -> dict:
        """One eicil.train.train_epoch of mechanism `mech`, set up by train()'s own `mechanism`."""
        with mechanism(self.model, self.pairs, mech) as recorder:
            return train_epoch(self.model, self.data.train, self.opt, self.cfg, mech, recorder,
                               self.cfg.stdp_lr, self.device, False)


def load_data(dataset: str, batch_size: int, batches: int, device: torch.device):
    """`fake` (3x32x32, 10 classes, CIFAR-10-sized) with exactly `batches` full batches, or
    `digits` with `batches` batches (0: the whole training split)."""
    n = batches * batch_size
    kw = {}
    if dataset == "fake":
        # the validation split takes 10% of fake_train; leave >= n for training
        kw = dict(fake_shape=(3, 32, 32), fake_classes=10, fake_train=math.ceil(n / 0.9) + 10,
                  fake_test=batch_size)
    return build_data(dataset, batch_size=batch_size, train_subset=n, seed=0,
                      pin_memory=device.type == "cuda", **kw)


def make_setups(model_name: str, dataset: str, *, batch_size: int, batches: int, width: float,
                timesteps: int, device: torch.device, copies: int, amp: bool = False,
                weight_dep: str = "soft", seed: int = 0) -> list[Setup]:
    """`copies` independent (model, Adam) pairs with identical initial weights over one loader,
    so each mode being compared trains its own model, as a real run would."""
    torch.manual_seed(seed)
    data = load_data(dataset, batch_size, batches, device)
    cfg = Config(model=model_name, dataset=dataset, batch_size=batch_size, width=width,
                 timesteps=timesteps, amp=amp, weight_dep=weight_dep, seed=seed)
    base = create_model(model_name, in_channels=data.in_channels, num_classes=data.num_classes,
                        width=width, hidden=cfg.hidden, stem=cfg.stem).to(device)
    x0 = next(iter(data.train))[0][:2].to(device)
    setups = []
    for _ in range(copies):
        model = copy.deepcopy(base)
        pairs = stdp_pairs(model, x0, timesteps)
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
        setups.append(Setup(cfg, data, model, opt, pairs, device))
    return setups


def table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    fmt = lambda r: "  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip()
    return "\n".join([fmt(header), fmt(["-" * w for w in widths]), *map(fmt, rows)])
