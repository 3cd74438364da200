"""Training throughput (images/s) per model on CIFAR-10-sized fake data (3x32x32, 10 classes).

For each model, three loops over the same DataLoader, each training its own copy of the same
initial model, repeats interleaved (plain gs stdp plain gs stdp ...), medians:
  (a) plain: a bare spikingjelly training loop written here (eicil.models.create_model; forward on
      the image repeated T times, cross-entropy, backward, Adam step, functional.reset_net): the baseline
  (b) gs: eicil.train.train_epoch, mechanism gs
  (c) stdp: eicil.train.train_epoch, mechanism stdp-bw-gs (recorder as eicil.train.train() builds it)
Prints b/a (eicil's overhead over a bare loop) and c/b (what STDP costs).

    python benchmarks/bench_throughput.py                              # every model, device auto
    python benchmarks/bench_throughput.py --models resnet18 vgg11 ei_net --batch-size 64 --device cuda
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
import torch.nn.functional as F
from spikingjelly.activation_based import functional

from common import make_setups, median, pick_device, set_threads, sync, table, timed
from eicil.models import MODELS


def plain_epoch(setup, timesteps: int, amp: bool) -> None:
    """The baseline: nothing but what any spikingjelly training loop does."""
    model, opt, device = setup.run.model, setup.run.opt, setup.run.device
    model.train()
    for x, y in setup.run.data.train:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        with torch.autocast(device.type, torch.bfloat16, enabled=amp):
            out = model(x.unsqueeze(0).repeat(timesteps, 1, 1, 1, 1)).float()
        loss = F.cross_entropy(out, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        functional.reset_net(model)
    sync(device)


def bench_model(name: str, args, device) -> dict:
    plain, gs, stdp = make_setups(name, "fake", batch_size=args.batch_size, batches=args.batches,
                                  width=args.width, timesteps=args.timesteps, device=device, copies=3,
                                  amp=args.amp)
    loops = {"plain": lambda: plain_epoch(plain, args.timesteps, args.amp),
             "gs": lambda: gs.epoch("gs"),
             "stdp": lambda: stdp.epoch("stdp-bw-gs")}
    for fn in loops.values():  # warm-up (allocator, cuDNN algorithm choice, lazy Adam state)
        fn()
    times = {k: [] for k in loops}
    for _ in range(args.repeats):
        for k, fn in loops.items():
            times[k].append(timed(fn, device))
    n = gs.n_images()
    med = {k: median(v) for k, v in times.items()}
    return {"model": name, "images_per_epoch": n, "batches": len(gs.run.data.train),
            **{f"epoch_s_{k}": med[k] for k in loops},
            **{f"images_per_s_{k}": n / med[k] for k in loops},
            # per-round paired ratios of throughput, then the median: robust to drift
            "gs_over_plain": median([p / g for p, g in zip(times["plain"], times["gs"])]),
            "stdp_over_gs": median([g / s for g, s in zip(times["gs"], times["stdp"])]),
            "times": times}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS),
                   help=f"models to run (default: {' '.join(MODELS)})")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default: auto = cuda if available)")
    p.add_argument("--batch-size", type=int, default=None, help="batch size (default: 64 on CUDA, 8 on CPU)")
    p.add_argument("--batches", type=int, default=None, help="batches per epoch (default: 16 on CUDA, 2 on CPU)")
    p.add_argument("--width", type=float, default=1.0, help="channel multiplier of every model (default: 1.0)")
    p.add_argument("--timesteps", type=int, default=4, help="T (default: 4)")
    p.add_argument("--amp", action="store_true", help="bf16 autocast on CUDA in all three loops (default: off)")
    p.add_argument("--repeats", type=int, default=3, help="timed interleaved rounds after one warm-up round (default: 3)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: 1 on CPU, since shared "
                   "cores make multi-threaded timings erratic; torch's default on CUDA; 0 = torch's default)")
    p.add_argument("--json", type=Path, default=None, help="also write the numbers to this JSON file (default: none)")
    args = p.parse_args(argv)
    device = pick_device(args.device)
    threads = set_threads(args.threads, device)
    cuda = device.type == "cuda"
    args.batch_size = args.batch_size or (64 if cuda else 8)
    args.batches = args.batches or (16 if cuda else 2)
    print(f"device {device}{' ' + torch.cuda.get_device_name(device) if cuda else ''}, torch {torch.__version__}, "
          f"{threads} CPU thread(s); fake 3x32x32, 10 classes; T={args.timesteps}, batch {args.batch_size}, "
          f"{args.batches} batches/epoch, width {args.width}, amp {args.amp and cuda}; "
          f"median of {args.repeats} interleaved rounds")
    rows = []
    for name in args.models:
        r = bench_model(name, args, device)
        rows.append(r)
        print(f"  {name}: plain {r['images_per_s_plain']:.1f}  gs {r['images_per_s_gs']:.1f}  "
              f"stdp-bw-gs {r['images_per_s_stdp']:.1f} images/s", flush=True)
    print()
    print(table([[r["model"], f"{r['images_per_s_plain']:.1f}", f"{r['images_per_s_gs']:.1f}",
                  f"{r['images_per_s_stdp']:.1f}", f"{r['epoch_s_plain']:.3f}", f"{r['epoch_s_gs']:.3f}",
                  f"{r['epoch_s_stdp']:.3f}", f"{r['gs_over_plain']:.2f}", f"{r['stdp_over_gs']:.2f}"]
                 for r in rows],
                ["model", "plain img/s", "gs img/s", "stdp img/s", "plain s/ep", "gs s/ep", "stdp s/ep",
                 "b/a gs/plain", "c/b stdp/gs"]))
    print("(img/s ratios: b/a < 1 is eicil's overhead over a bare loop; c/b = 1/(epoch slow-down from STDP))")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        meta = {**{k: v for k, v in vars(args).items() if k != "json"}, "device": str(device),
                "device_name": torch.cuda.get_device_name(device) if cuda else "cpu",
                "torch": torch.__version__, "threads": threads}
        args.json.write_text(json.dumps({"settings": meta, "results": rows}, indent=2))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
