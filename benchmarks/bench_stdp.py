"""What STDP costs in eicil, as ratios measured in one process (repeats interleaved, medians).

(a) eicil.stdp.delta_w against spikingjelly's STDPLearner(step_mode="m").step(on_grad=False) on a
    CIFAR-like layer (64->64 3x3 conv, padding 1, 16x16 maps, T=4, batch 8): speed-up and error.
(b) wall time of an `stdp-bw-gs` epoch over a `gs` epoch (eicil.train.train_epoch, Adam, the
    recorder built as eicil.train.train() builds it) for csnn on digits and resnet18 on fake
    CIFAR-sized data. Goal (issue): at most 1.3x.
(c) peak memory of `stdp-bw-gs` training steps over `gs` steps. Goal: at most 1.25x.

Uses CUDA when available (or --device). `--quick` is a ~1-minute version.
    python benchmarks/bench_stdp.py [--quick] [--device cpu|cuda] [--sections a b c]
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys

import torch

from eicil.config import Config
from spikingjelly.activation_based import layer, learning
from torch import nn

from common import make_setups, median, pick_device, set_threads, sync, table, timed
from eicil.stdp import delta_w, weight_dependence

TAU_PRE, TAU_POST = 2.0, 100.0  # eicil.config.Config defaults
EPOCH_GOAL, MEM_GOAL = 1.3, 1.25


# ---------------------------------------------------------------------------------------- (a)
def bench_delta_w(args, device) -> list[dict]:
    torch.manual_seed(0)
    c, s, b, t = args.channels, args.size, args.stdp_batch, args.timesteps
    conv = layer.Conv2d(c, c, 3, padding=1, bias=False, step_mode="m").to(device)
    with torch.no_grad():
        conv.weight.mul_(30)  # |w| up to ~1.25, so clamp(w, -1, 1) really clips some weights
    pre = (torch.rand(t, b, c, s, s, device=device) < args.spike_rate).float()
    post = (torch.rand(t, b, c, s, s, device=device) < args.spike_rate).float()
    out = []
    for dep in ("soft", "clamp"):
        f_pre, f_post = weight_dependence(dep)
        sn = nn.Identity()
        learner = learning.STDPLearner("m", conv, sn, TAU_PRE, TAU_POST, f_pre=f_pre, f_post=f_post)
        res = {}

        def reference():
            res["ref"] = learner.step(on_grad=False)

        def eicil():
            res["got"] = delta_w(conv, pre, post, tau_pre=TAU_PRE, tau_post=TAU_POST, f_pre=f_pre, f_post=f_post)

        t_ref, t_got = [], []
        for i in range(1 + args.repeats_a):  # first round is warm-up
            learner.reset()  # fresh traces: the learner otherwise carries them across sequences
            with torch.no_grad():  # the forward pass records pre/post; it is not part of the step
                conv(pre)
                sn(post)
            tr, tg = timed(reference, device), timed(eicil, device)
            if i:
                t_ref.append(tr)
                t_got.append(tg)
        learner.close()
        ref, got = res["ref"], res["got"]
        err = (got - ref).abs().max().item()
        out.append({"weight_dep": dep, "t_spikingjelly": median(t_ref), "t_eicil": median(t_got),
                    "speedup": median([a / g for a, g in zip(t_ref, t_got)]),
                    "max_abs_err": err, "max_rel_err": err / ref.abs().max().item()})
    return out


# ---------------------------------------------------------------------------------------- (b)
def bench_epochs(args, device, model: str, dataset: str, batch_size: int, batches: int,
                 width: float) -> dict:
    gs, stdp = make_setups(model, dataset, batch_size=batch_size, batches=batches, width=width,
                           timesteps=args.timesteps, device=device, copies=2, weight_dep=args.weight_dep)
    gs.epoch("gs"), stdp.epoch("stdp-bw-gs")  # warm-up
    t_gs, t_stdp = [], []
    for _ in range(args.repeats):  # interleaved: gs stdp gs stdp ...
        t_gs.append(timed(lambda: gs.epoch("gs"), device))
        t_stdp.append(timed(lambda: stdp.epoch("stdp-bw-gs"), device))
    return {"model": model, "dataset": dataset, "batch_size": batch_size, "batches": len(gs.run.data.train),
            "width": width, "t_gs": median(t_gs), "t_stdp": median(t_stdp),
            "ratio": median([s / g for s, g in zip(t_stdp, t_gs)])}


# ---------------------------------------------------------------------------------------- (c)
# What is measured: the memory a training step needs beyond the model, data and optimizer object,
# i.e. peak minus what is held after setup. STDP's extra cost is spikes kept alive by the recorder
# through backward plus stdp_step's temporaries (traces, padding, concatenations); both land in
# this growth, and subtracting the setup keeps the ~0.4 GB of CPU library code out of the ratio.
# CUDA: torch.cuda.max_memory_allocated after reset_peak_memory_stats, minus memory_allocated
#   after setup; the ratio of totals (params included) is printed too.
# CPU: there is no allocator peak counter, so each mode runs in a fresh subprocess (no allocator
#   state carried over from the other mode) that builds the model, data and Adam, resets the
#   kernel's RSS high-water mark (/proc/self/clear_refs <- 5; getrusage's ru_maxrss cannot be reset,
#   and import-time peaks would hide the step), then runs the steps and reports VmHWM - VmRSS_before.
#   MALLOC_MMAP_THRESHOLD_ is fixed at 128 KiB so glibc serves every tensor-sized block by mmap and
#   returns it on free (its default threshold grows after frees and would keep freed tensors
#   resident in the heap, so RSS would overstate what is live).
def _rss_kib() -> dict:
    with open("/proc/self/status") as f:
        return {k: int(v.split()[0]) for k, v in (line.split(":", 1) for line in f) if k in ("VmRSS", "VmHWM")}


def mem_child(spec: dict) -> None:
    device = torch.device("cpu")
    set_threads(spec["threads"], device)
    out = []
    for model, dataset, batch_size, width in spec["cases"]:
        (setup,) = make_setups(model, dataset, batch_size=batch_size, batches=spec["steps"], width=width,
                               timesteps=spec["timesteps"], device=device, copies=1,
                               weight_dep=spec["weight_dep"])
        gc.collect()
        with open("/proc/self/clear_refs", "w") as f:  # Linux >= 4.0: high-water mark := current RSS
            f.write("5")
        before = _rss_kib()["VmRSS"]
        setup.epoch(spec["mode"])
        out.append({"before_kib": before, "peak_kib": _rss_kib()["VmHWM"]})
        del setup
        gc.collect()
    print(json.dumps(out))


def peak_memory_cpu(args, cases) -> list[dict]:
    """One child process per mode (import costs ~8 s on a busy CPU), measuring every case in turn."""
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": str(128 * 1024)}
    res = {}
    for mode in ("gs", "stdp-bw-gs"):
        spec = dict(cases=cases, steps=args.mem_steps, timesteps=args.timesteps, weight_dep=args.weight_dep,
                    threads=args.threads, mode=mode)
        proc = subprocess.run([sys.executable, __file__, "--mem-child", json.dumps(spec)], env=env,
                              capture_output=True, text=True, check=False)
        if proc.returncode:
            raise RuntimeError(f"memory child {mode} failed:\n{proc.stderr[-2000:]}")
        res[mode] = [(r["before_kib"] * 1024, r["peak_kib"] * 1024)
                     for r in json.loads(proc.stdout.strip().splitlines()[-1])]
    rows = []
    for (model, *_), (b0, p0), (b1, p1) in zip(cases, res["gs"], res["stdp-bw-gs"]):
        rows.append({"model": model, "method": "RSS high-water mark growth over setup, one fresh process per mode",
                     "base_mib": b0 / 2**20, "gs_mib": (p0 - b0) / 2**20, "stdp_mib": (p1 - b1) / 2**20,
                     "ratio": (p1 - b1) / (p0 - b0), "ratio_total": p1 / p0})
    return rows


def peak_memory_cuda(args, device, model, dataset, batch_size, width) -> dict:
    res = {}
    for mode in ("gs", "stdp-bw-gs"):
        gc.collect()
        torch.cuda.empty_cache()
        (setup,) = make_setups(model, dataset, batch_size=batch_size, batches=args.mem_steps, width=width,
                               timesteps=args.timesteps, device=device, copies=1, weight_dep=args.weight_dep)
        sync(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        setup.epoch(mode)
        sync(device)
        res[mode] = (base, torch.cuda.max_memory_allocated(device))
        del setup
    (b0, p0), (b1, p1) = res["gs"], res["stdp-bw-gs"]
    return {"model": model, "method": "torch.cuda.max_memory_allocated growth over setup",
            "base_mib": b0 / 2**20, "gs_mib": (p0 - b0) / 2**20, "stdp_mib": (p1 - b1) / 2**20,
            "ratio": (p1 - b1) / (p0 - b0), "ratio_total": p1 / p0}


# ---------------------------------------------------------------------------------------- main
def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="~1-minute version: fewer repeats, smaller resnet18 "
                   "on CPU (default: off, full run, a few minutes on 2 CPU cores)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default: auto = cuda if available)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: 1 on CPU, since "
                   "shared cores make multi-threaded timings erratic; torch's default on CUDA; 0 = torch's default)")
    p.add_argument("--sections", nargs="+", default=["a", "b", "c"], choices=["a", "b", "c"],
                   help="which parts to run (default: a b c)")
    p.add_argument("--timesteps", type=int, default=4, help="T (default: 4)")
    p.add_argument("--weight-dep", default=Config().weight_dep, choices=["soft", "clamp"],
                   help=f"weight dependence used in (b) and (c) (default: {Config().weight_dep}, eicil's Config default); "
                        "(a) always runs both")
    g = p.add_argument_group("(a) delta_w vs spikingjelly")
    g.add_argument("--channels", type=int, default=64, help="conv in = out channels (default: 64)")
    g.add_argument("--size", type=int, default=16, help="feature map height = width (default: 16)")
    g.add_argument("--stdp-batch", type=int, default=8, help="batch size (default: 8)")
    g.add_argument("--spike-rate", type=float, default=0.2, help="firing probability of the random "
                   "pre and post spikes (default: 0.2)")
    g.add_argument("--repeats-a", type=int, default=None, help="timed repeats after one warm-up (default: 5; quick: 2)")
    g = p.add_argument_group("(b) epoch time and (c) memory")
    g.add_argument("--repeats", type=int, default=None, help="interleaved epoch pairs after one warm-up "
                   "pair (default: 5; quick: 2)")
    g.add_argument("--csnn-batch-size", type=int, default=64, help="csnn batch on digits (default: 64, "
                   "eicil's default; an epoch is the whole digits training split, 21 batches)")
    g.add_argument("--width", type=float, default=None, help="resnet18 channel multiplier (default: 1.0 on "
                   "CUDA; 0.5 on CPU, quick 0.25: width 1.0 takes ~5 s a step on one CPU core)")
    g.add_argument("--batch-size", type=int, default=None, help="resnet18 batch on fake 3x32x32 data "
                   "(default: 64 on CUDA, 16 on CPU)")
    g.add_argument("--batches", type=int, default=None, help="resnet18 batches per epoch (default: 10 on "
                   "CUDA, 3 on CPU, quick CPU 2)")
    g.add_argument("--mem-steps", type=int, default=3, help="training steps per memory measurement (default: 3)")
    p.add_argument("--mem-child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    return args


def fill_defaults(args, device):
    cuda = device.type == "cuda"
    q = args.quick
    args.repeats_a = args.repeats_a or (2 if q else 5)
    args.repeats = args.repeats or (2 if q else 5)
    args.width = args.width or (1.0 if cuda else 0.25 if q else 0.5)
    args.batch_size = args.batch_size or (64 if cuda else 16)
    args.batches = args.batches or (10 if cuda else 2 if q else 3)


def main(argv=None):
    args = parse(argv)
    if args.mem_child:
        return mem_child(json.loads(args.mem_child))
    device = pick_device(args.device)
    threads = set_threads(args.threads, device)
    fill_defaults(args, device)
    print(f"device {device}{' ' + torch.cuda.get_device_name(device) if device.type == 'cuda' else ''}, "
          f"torch {torch.__version__}, {threads} CPU thread(s), T={args.timesteps}, "
          f"{'quick' if args.quick else 'full'} run")
    if device.type == "cuda":
        print(f"cudnn.allow_tf32={torch.backends.cudnn.allow_tf32} (delta_w's convolution_backward "
              "runs in TF32 when True; spikingjelly's elementwise reference does not)")
    final = []

    if "a" in args.sections:
        print(f"\n(a) delta_w vs spikingjelly STDPLearner('m').step(on_grad=False): "
              f"{args.channels}->{args.channels} conv3x3 pad 1, {args.size}x{args.size}, T={args.timesteps}, "
              f"batch {args.stdp_batch}, spike rate {args.spike_rate}, median of {args.repeats_a}")
        rows = bench_delta_w(args, device)
        print(table([[r["weight_dep"], f"{r['t_spikingjelly'] * 1e3:.1f}", f"{r['t_eicil'] * 1e3:.2f}",
                      f"{r['speedup']:.1f}x", f"{r['max_abs_err']:.2e}", f"{r['max_rel_err']:.2e}"] for r in rows],
                    ["weight_dep", "spikingjelly ms", "delta_w ms", "speed-up", "max abs err",
                     "max rel err (/max|ref|)"]))
        for r in rows:
            final.append([f"delta_w speed-up, {r['weight_dep']}", f"{r['speedup']:.1f}x", "-", "-"])
            final.append([f"delta_w max rel err, {r['weight_dep']}", f"{r['max_rel_err']:.1e}", "-", "-"])

    cases = [("csnn", "digits", args.csnn_batch_size, 0, 1.0),
             ("resnet18", "fake", args.batch_size, args.batches, args.width)]
    if "b" in args.sections:
        print(f"\n(b) epoch wall time, stdp-bw-gs over gs (train_epoch + Adam, weight_dep {args.weight_dep}), "
              f"median of {args.repeats} interleaved pairs")
        rows = [bench_epochs(args, device, *c) for c in cases]
        print(table([[r["model"], r["dataset"], r["width"], r["batch_size"], r["batches"],
                      f"{r['t_gs']:.3f}", f"{r['t_stdp']:.3f}", f"{r['ratio']:.2f}x",
                      "yes" if r["ratio"] <= EPOCH_GOAL else "NO"] for r in rows],
                    ["model", "data", "width", "batch", "batches", "gs s", "stdp-bw-gs s", "ratio",
                     f"<= {EPOCH_GOAL}x"]))
        for r in rows:
            final.append([f"epoch time stdp-bw-gs/gs, {r['model']}", f"{r['ratio']:.2f}x", f"<= {EPOCH_GOAL}x",
                          "yes" if r["ratio"] <= EPOCH_GOAL else "NO"])

    if "c" in args.sections:
        print(f"\n(c) peak memory of {args.mem_steps} training steps, stdp-bw-gs over gs")
        if device.type == "cuda":
            rows = [peak_memory_cuda(args, device, m, d, bs, w) for m, d, bs, _, w in cases]
        else:
            rows = peak_memory_cpu(args, [(m, d, bs, w) for m, d, bs, _, w in cases])
        print(f"method: {rows[0]['method']}")
        print(table([[r["model"], f"{r['base_mib']:.0f}", f"{r['gs_mib']:.1f}", f"{r['stdp_mib']:.1f}",
                      f"{r['ratio']:.2f}x", f"{r['ratio_total']:.2f}x",
                      "yes" if r["ratio"] <= MEM_GOAL else "NO"] for r in rows],
                    ["model", "setup MiB", "gs step +MiB", "stdp step +MiB", "ratio (growth)",
                     "ratio (total)", f"<= {MEM_GOAL}x"]))
        for r in rows:
            final.append([f"peak memory stdp-bw-gs/gs, {r['model']}", f"{r['ratio']:.2f}x", f"<= {MEM_GOAL}x",
                          "yes" if r["ratio"] <= MEM_GOAL else "NO"])

    print("\nsummary")
    print(table(final, ["check", "value", "goal", "met"]))


if __name__ == "__main__":
    main()
