"""Shared helpers of the benchmarks: device and thread choice, synchronised timing, interleaved
repeats, and a training setup that mirrors eicil.train.train() (data, model, Adam, post neurons).

Every number the benchmarks report is a ratio against a baseline measured in the same process with
the repeats interleaved (A B A B ...), so slow drift and noisy neighbours hit both sides alike.
"""
from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass
from typing import Callable

import torch

from eicil.config import config_from
from eicil.data import build_data
from eicil.train import Run, setup, train_epoch


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
    """One model set up by eicil.train.setup(), trained epoch by epoch with eicil.train.train_epoch."""
    run: Run

    @property
    def model(self) -> torch.nn.Module:
        return self.run.model

    def n_images(self) -> int:
        return len(self.run.data.train.dataset)

    def epoch(self, mech: str) -> dict:
        return train_epoch(self.run, mech)


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
                weight_dep: str = "soft", seed: int = 0, profile: str = "cpu",
                compile: str | list[str] = "off") -> list[Setup]:
    """`copies` independent runs (model, optimiser, post neurons) with identical initial weights over
    one loader, each built by eicil.train.setup(), so each mode being compared trains its own model.
    `compile`: one --compile value for all copies, or one per copy."""
    data = load_data(dataset, batch_size, batches, device)
    modes = [compile] * copies if isinstance(compile, str) else compile
    cfgs = [config_from(profile, model=model_name, dataset=dataset, batch_size=batch_size, width=width,
                        timesteps=timesteps, amp=amp, weight_dep=weight_dep, seed=seed, device=str(device),
                        compile=mode) for mode in modes]
    return [Setup(setup(cfg, data=data)) for cfg in cfgs]  # setup() seeds: identical weights


def table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    fmt = lambda r: "  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip()
    return "\n".join([fmt(header), fmt(["-" * w for w in widths]), *map(fmt, rows)])
