"""Why eicil.train.setup() flushes subnormal floats to zero on CPU.

A run that collapses under a shrinkage control (shrink-bw-gs at the deep study's dose) decays its
conv weights to ~1e-21 (measured on a ResNet-18 checkpoint after 2 epochs); products of such
weights and BatchNorm's variances of their outputs are subnormal, and x86 CPUs compute subnormals
many times slower. This times a shrink-bw-gs epoch (eicil.train.train_epoch) of a spiking ResNet-18
(width 0.125, T=2, fake 3x32x32) with
torch.set_flush_denormal off and on, first with its initial weights, then with every conv weight
scaled by --scale, weights restored before each epoch; repeats interleaved, medians, 1 thread.

    python benchmarks/bench_denormal.py    # < 1 min; output kept in figures/bench_denormal_cpu.txt

A synthetic collapse understates the real one: forward, backward and the gradient and weight norms
on the collapsed checkpoint ran 6.3x faster flushed (3 steps each way, batch 64, 1 thread).
"""
from __future__ import annotations

import argparse
import copy

import torch

from common import interleaved, make_setups, median, set_threads, table

MECH = "shrink-bw-gs"  # the control that collapsed: conv weights step along -w by STDP's size


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch-size", type=int, default=32, help="batch size (default: 32)")
    p.add_argument("--batches", type=int, default=3, help="batches per epoch (default: 3)")
    p.add_argument("--scale", type=float, default=1e-20, help="factor on every conv weight of the collapsed case (default: 1e-20)")
    p.add_argument("--repeats", type=int, default=3, help="timed interleaved rounds after one warm-up round (default: 3)")
    args = p.parse_args()
    device = torch.device("cpu")  # flush_denormal is a CPU setting
    threads = set_threads(None, device)
    (s,) = make_setups("resnet18", "fake", batch_size=args.batch_size, batches=args.batches, width=0.125,
                       timesteps=2, device=device, copies=1, profile="deep", compile="off")
    healthy = copy.deepcopy(s.model.state_dict())
    collapsed = {k: v * args.scale if k.endswith("weight") and v.dim() == 4 else v for k, v in healthy.items()}

    def epoch(weights: dict, flush: bool):
        def fn():
            s.model.load_state_dict(weights)
            torch.set_flush_denormal(flush)
            s.epoch(MECH)
        return fn

    rows = []
    for name, weights in (("initial weights", healthy), (f"conv weights x{args.scale:g}", collapsed)):
        times = interleaved({"off": epoch(weights, False), "on": epoch(weights, True)}, args.repeats, device)
        off, on = median(times["off"]), median(times["on"])
        rows.append([name, f"{off / on:.2f}x"])
    print(f"{MECH} epoch, resnet18 width 0.125, T=2, {args.batches} batches of {args.batch_size}, {threads} thread(s):")
    print(table(rows, ["weights", "time with flush off / on"]))


if __name__ == "__main__":
    main()
