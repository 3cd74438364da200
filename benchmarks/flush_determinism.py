"""Not a speed benchmark: does flushing subnormal floats (eicil.train.setup, since 682f8e8) change
what a gs epoch computes? The deep study's VGG-11 runs recorded before and after that commit end
their first (gs) epoch at different test accuracies for the same seed (docs/results.md, section 5).

This trains the same seed of a deep-profile gs run for N batches of real CIFAR-10 twice, flush on
and off, and prints the largest weight difference (0.0: bit-identical) and the subnormal weights.

    python benchmarks/flush_determinism.py --model vgg11 --batches 100   # ~6 min with compile on
"""
from __future__ import annotations

import argparse

import torch

from eicil import train
from eicil.config import config_from

TINY = torch.finfo(torch.float32).tiny  # below this, a nonzero float32 is subnormal


def weights_after(model: str, batches: int, flush: bool, compile_: str, data_root: str) -> torch.Tensor:
    real = torch.set_flush_denormal
    train.torch.set_flush_denormal = lambda _on: real(flush)  # setup() asks for True; this decides
    try:
        cfg = config_from("deep", model=model, method="gs", seed=1, data_root=data_root, epochs=1,
                          train_subset=batches * 128, test_subset=256, compile=compile_)  # nothing is written
        run = train.setup(cfg)
        train.train_epoch(run, "gs")
    finally:
        train.torch.set_flush_denormal = real
    flat = torch.cat([p.detach().flatten() for p in run.model.parameters()])
    subnormal = int(((flat.abs() < TINY) & (flat != 0)).sum())
    print(f"{model} flush {'on ' if flush else 'off'}: {subnormal} subnormal weights", flush=True)
    return flat


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="vgg11", help="deep-profile model (default: vgg11)")
    p.add_argument("--batches", type=int, default=100, help="training batches of 128 (default: 100)")
    p.add_argument("--compile", default="on", choices=("on", "off"), help="torch.compile (default: on)")
    p.add_argument("--data-root", default="data", help="torchvision CIFAR-10 folder (default: data)")
    a = p.parse_args()
    on, off = (weights_after(a.model, a.batches, f, a.compile, a.data_root) for f in (True, False))
    diff = (on - off).abs().max().item()
    print(f"{a.model}: max |weight difference| after {a.batches} batches, flush on vs off: {diff}")


if __name__ == "__main__":
    main()
