"""Evidence for the tie rule of the best epoch (docs/method.md, Hand-off): with handoff=best, how
often does a hand-off reload an epoch older than the one just trained, and what does it cost?

Rules compared: strict '>' on validation accuracy (the first epoch of a plateau wins), '>=' (the
latest wins), and eicil's: higher accuracy, or equal accuracy and lower validation loss. csnn on
digits, cpu profile, 10 epochs, gsni and gsgi at K=5, handoff=best, plus handoff=last for scale.
    python benchmarks/tie_rule.py --seeds 5 --out runs/tie_rule --csv figures/tie_rule.csv  (~4 min, 2 cores)
"""
from __future__ import annotations

import argparse

import pandas as pd

from eicil import train as T
from eicil.config import config_from

RULES = {
    "strict >": lambda s, acc, loss: acc > s.best_val,
    "latest >=": lambda s, acc, loss: acc >= s.best_val,
    "acc, then lower loss (eicil)": T.is_better,
}


def one_run(method: str, handoff: str, seed: int, out: str, rule: str) -> dict:
    stale = []
    real = T.run_epoch

    def spy(run, progress=False):
        e = run.state.epoch
        if handoff == "best" and e > 0 and run.plan[e] != run.plan[e - 1]:
            stale.append(run.state.best_epoch < e)  # the reload goes back past the epoch just trained
        return real(run, progress)

    T.run_epoch = spy
    try:
        name = f"{method}-{handoff}-{rule.split()[0]}-s{seed}"
        r = T.train(config_from("cpu", method=method, k=5, handoff=handoff, seed=seed, out=out, name=name,
                                resume=False), progress=False)
    finally:
        T.run_epoch = real
    return {"method": method, "handoff": handoff, "rule": rule, "seed": seed, "test_acc": 100 * r["test_acc"],
            "stale_reloads": sum(stale), "handoffs": len(stale)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--seeds", type=int, default=5, help="seeds per cell")
    p.add_argument("--out", default="runs/tie_rule", help="run directories")
    p.add_argument("--csv", default=None, help="also write the summary table here")
    args = p.parse_args()
    rows = []
    for seed in range(args.seeds):
        for method in ("gsni", "gsgi"):
            for rule, fn in RULES.items():
                T.is_better = fn
                rows.append(one_run(method, "best", seed, args.out, rule))
            T.is_better = RULES["acc, then lower loss (eicil)"]
            rows.append(one_run(method, "last", seed, args.out, "acc, then lower loss (eicil)"))
    d = pd.DataFrame(rows)
    table = d.groupby(["method", "handoff", "rule"], sort=False).agg(
        test_acc_mean=("test_acc", "mean"), test_acc_std=("test_acc", "std"), n=("seed", "size"),
        stale_reloads=("stale_reloads", "sum"), handoffs=("handoffs", "sum")).reset_index()
    print(table.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    if args.csv:
        table.to_csv(args.csv, index=False, float_format="%.4f")


if __name__ == "__main__":
    main()
