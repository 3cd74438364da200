"""What torch.compile buys the paper's convnets, and what STDP costs under it: ratios, one process.

Per model at the `deep` profile's widths and recipe (T=2, batch 128, SGD), on CIFAR-sized fake data,
three runs built by eicil.train.setup() with identical initial weights:
  eager     gs epochs, --compile off
  compiled  gs epochs, --compile on
  cycle     gsgi's K-epoch cycle (gs ... gs stdp-bw-gs), --compile on
The warm-up round runs each once (it pays every compile); then `--repeats` rounds of
eager-epoch, K compiled gs epochs, one gsgi cycle, each epoch timed. Reported, medians:
  gs img/s eager and compiled, and their ratio (goal: compiled >= 1.5x eager for resnet18, ei_net)
  stdp-bw-gs / gs: the cycle's STDP epoch over a compiled gs epoch (goal: <= 1.2x)
  gsgi / gs: the whole cycle over K compiled gs epochs

    python benchmarks/bench_compile.py [--models resnet18 vgg11 ei_net] [--batches 10] [--repeats 2] [--amp]
"""
from __future__ import annotations

import argparse
import time

import torch

from common import make_setups, median, pick_device, set_threads, table, timed
from eicil import cycle
from eicil.config import PROFILE_MODELS, PROFILES

STDP_GOAL, COMPILE_GOAL = 1.2, 1.5


def bench_model(name: str, args, device) -> dict:
    deep = {**PROFILES["deep"], **PROFILE_MODELS["deep"][name]}
    eager, compiled, cyc = make_setups(name, "fake", batch_size=deep["batch_size"], batches=args.batches,
                                       width=deep["width"], timesteps=deep["timesteps"], device=device,
                                       copies=3, profile="deep", compile=["off", "on", "on"], amp=args.amp)
    plan = cycle.schedule("gsgi", args.k, args.k)
    t0 = time.perf_counter()
    eager.epoch("gs"), compiled.epoch("gs")
    for mech in plan:
        cyc.epoch(mech)
    warm = time.perf_counter() - t0
    t_eager, t_gs, t_stdp, t_cycle, t_gs_cycle = [], [], [], [], []
    for _ in range(args.repeats):
        t_eager.append(timed(lambda: eager.epoch("gs"), device))
        gs_epochs = [timed(lambda: compiled.epoch("gs"), device) for _ in plan]
        t_gs += gs_epochs
        t_gs_cycle.append(sum(gs_epochs))
        epochs = [timed(lambda m=mech: cyc.epoch(m), device) for mech in plan]
        t_stdp += [t for t, mech in zip(epochs, plan) if mech != "gs"]
        t_cycle.append(sum(epochs))
    n = compiled.n_images()
    return {"model": name, "width": deep["width"], "images": n, "warmup_s": warm,
            "img_s_eager": n / median(t_eager), "img_s_compiled": n / median(t_gs),
            "compile_speedup": median(t_eager) / median(t_gs),
            "stdp_over_gs": median(t_stdp) / median(t_gs),
            "gsgi_over_gs": median([c / g for c, g in zip(t_cycle, t_gs_cycle)])}


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=list(PROFILE_MODELS["deep"]),
                   choices=list(PROFILE_MODELS["deep"]), help="models (default: resnet18 vgg11 ei_net)")
    p.add_argument("--batches", type=int, default=10, help="batches of 128 per timed epoch (default: 10; "
                   "fewer inflate stdp-bw-gs/gs: an STDP epoch's first batches cost more)")
    p.add_argument("--repeats", type=int, default=2, help="timed rounds after the warm-up (default: 2)")
    p.add_argument("--k", type=int, default=3, help="gsgi's cycle ratio K (default: 3, the studies' K)")
    p.add_argument("--amp", action="store_true", help="bf16 autocast in every run, as `eicil train --amp` "
                   "(default: off, fp32)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default: auto)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: 0 = torch's "
                   "default, as `eicil train` runs)")
    args = p.parse_args(argv)
    if args.batches < 1 or args.repeats < 1 or args.k < 2:
        p.error("--batches and --repeats must be >= 1 and --k >= 2")
    return args


def main(argv=None) -> None:
    args = parse(argv)
    device = pick_device(args.device)
    threads = set_threads(args.threads, device)
    print(f"device {device}, {threads} torch threads, torch {torch.__version__}; deep profile, fake 3x32x32, "
          f"{args.batches} batches/epoch, {args.repeats} rounds, gsgi K={args.k}, {'bf16 autocast' if args.amp else 'fp32'}")
    rows = [bench_model(name, args, device) for name in args.models]
    print(table([[r["model"], r["width"], f"{r['img_s_eager']:.0f}", f"{r['img_s_compiled']:.0f}",
                  f"{r['compile_speedup']:.2f}x", f"{r['stdp_over_gs']:.2f}x", f"{r['gsgi_over_gs']:.2f}x",
                  f"{r['warmup_s']:.0f}"] for r in rows],
                ["model", "width", "gs img/s eager", "gs img/s compiled", "compiled/eager",
                 "stdp-bw-gs/gs", f"gsgi/gs (K={args.k})", "warm-up s (compiles)"]))
    print(f"goals: compiled/eager >= {COMPILE_GOAL}x (resnet18, ei_net); stdp-bw-gs/gs <= {STDP_GOAL}x")


if __name__ == "__main__":
    main()
