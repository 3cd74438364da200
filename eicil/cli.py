"""`eicil train | sweep | report | info`: bad input ends in one line on stderr and a non-zero exit."""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import fields
from pathlib import Path

from . import cycle
from .data import DataError
from .models import MODELS
from .config import PROFILES, TYPES, Config, ConfigError, config_from, validate


def _field_help() -> dict[str, str]:
    """Help text from the comments in Config's source, so CLI and docs cannot drift apart."""
    import inspect
    out = {}
    for line in inspect.getsource(Config).splitlines():
        line = line.strip()
        if ":" in line and "#" in line and not line.startswith("#"):
            out[line.split(":")[0]] = line.split("#", 1)[1].strip()
    return out


def add_config_args(p: argparse.ArgumentParser) -> None:
    docs = _field_help()
    defaults = Config()
    for f in fields(Config):
        flag = "--" + f.name.replace("_", "-")
        default = getattr(defaults, f.name)
        by_profile = ", ".join(f"{name}: {vals[f.name]!r}" for name, vals in PROFILES.items() if f.name in vals)
        text = f"{docs.get(f.name, '')} (default: {default!r}{'; ' + by_profile if by_profile else ''})"
        if TYPES[f.name] == "bool":
            p.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=None, help=text)
        else:
            typ = {"int": int, "float": float, "str": str}[TYPES[f.name]]
            p.add_argument(flag, dest=f.name, type=typ, default=None, help=text, metavar=f.name.upper())


class Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse prints usage; one line is enough
        self.exit(2, f"eicil: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="eicil", allow_abbrev=False, description="EICIL: excitatory/inhibitory cycle learning for SNNs")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    t = sub.add_parser("train", help="train one run and write its run directory", allow_abbrev=False)
    t.add_argument("--profile", default="cpu", choices=list(PROFILES),
                   help="defaults of a fast check (smoke), an offline CPU study (cpu), the CPU recipe for "
                        "the paper's convnets on CIFAR-10 (deep) or the paper's setup (paper); options given "
                        "explicitly win (default: cpu)")
    t.add_argument("--dry-run", action="store_true", help="print the resolved config and schedule, train nothing")
    t.add_argument("--quiet", action="store_true", help="no progress bars")
    add_config_args(t)
    s = sub.add_parser("sweep", help="run notebooks/01_train.ipynb for every cell of a grid (papermill)",
                       allow_abbrev=False, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    s.add_argument("config", help="sweep YAML, e.g. configs/cpu.yaml")
    s.add_argument("--out", default="runs", help="folder of the run directories")
    s.add_argument("--profile", default=None, choices=list(PROFILES),
                   help="run the config's grid under this profile instead of its own (e.g. a CPU grid at "
                        "the paper's scale: --profile paper); default: the config's profile")
    s.add_argument("--jobs", type=int, default=1, help="runs at once (local executor); one GPU each where there are GPUs")
    s.add_argument("--executor", default="local", choices=["local", "ray"], help="local processes or a Ray cluster")
    s.add_argument("--address", default=None, help="Ray cluster address (default: start a local Ray instance)")
    s.add_argument("--retries", type=int, default=1, help="Ray: times a failed task is retried")
    s.add_argument("--cpus-per-run", type=float, default=1.0, help="Ray: CPUs each run asks for")
    s.add_argument("--gpus-per-run", type=float, default=None,
                   help="Ray: GPUs each run asks for; fractions share a GPU (default: 1 if the cluster has GPUs, else 0)")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    r = sub.add_parser("report", help="Tables 1-2, the controls, verdicts, forest plots, Figure 2 and accuracy "
                                      "against STDP dose from run directories",
                       allow_abbrev=False, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    r.add_argument("runs", help="folder holding run directories")
    r.add_argument("--figures", default=None,
                   help="where tables and figures are written (default: figures/; with --by, nothing is "
                        "written unless --figures is given)")
    r.add_argument("--k", type=int, default=5, help="K of the cycle methods in Table 1 and Figure 2")
    r.add_argument("--by", default=None,
                   help="instead of the paper's tables, print test accuracy grouped by these comma-separated "
                        "config fields (e.g. method,weight_dep,stdp_lr); with --figures, also write "
                        "FIGURES/summary_by.csv")
    i = sub.add_parser("info", help="a model's excitatory/inhibitory split per mechanism",
                       allow_abbrev=False, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    i.add_argument("model", help=f"one of {', '.join(MODELS)}")
    i.add_argument("--in-channels", type=int, default=3, help="input channels")
    i.add_argument("--num-classes", type=int, default=10, help="output classes")
    i.add_argument("--width", type=float, default=1.0, help="channel multiplier")
    i.add_argument("--hidden", type=int, default=Config.hidden, help="units of the spiking hidden Linear")
    i.add_argument("--image-size", type=int, default=32, help="input height = width (sizes csnn's head)")
    return parser


def _train(args) -> int:
    overrides = {f.name: getattr(args, f.name) for f in fields(Config) if getattr(args, f.name) is not None}
    cfg = config_from(args.profile, **overrides)
    if args.dry_run:
        validate(cfg)
        print(json.dumps({"config": cfg.__dict__, "schedule": cycle.schedule(cfg.method, cfg.k, cfg.epochs)}, indent=2))
        return 0
    from .train import Diverged, train
    try:
        summary = train(cfg, progress=not args.quiet)
    except Diverged as e:
        print(f"eicil: run diverged: {e}; see summary.json", file=sys.stderr)
        return 3
    print(f"{summary['run_dir']}: test_acc {summary['test_acc']:.4f} (at best val epoch "
          f"{summary['best_epoch']}), best_test_acc {summary['best_test_acc']:.4f}, "
          f"{summary['wall_seconds']:.1f} s")
    return 0


def _info(args) -> int:
    from .models import create_model, ei_split
    if args.model not in MODELS:
        raise ConfigError(f"unknown model {args.model!r}; choose one of {', '.join(MODELS)}")
    model = create_model(args.model, in_channels=args.in_channels, num_classes=args.num_classes,
                         width=args.width, hidden=args.hidden, image_size=args.image_size)
    for mech in [m for m, row in cycle.MECHANISMS.items() if row.move == "stdp"]:
        s = ei_split(model, mech)
        print(f"{mech:11s} inhibitory params {s['param_share_inhibitory']:6.1%} "
              f"({s['params_inhibitory']}/{s['params_total']}), layers {s['layer_share_inhibitory']:6.1%} "
              f"({s['layers_inhibitory']}/{s['layers_total']})")
    return 0


def _report(args) -> int:
    from .report import build_report, load_runs, summary_by
    if not args.by:
        result = build_report(args.runs, args.figures or "figures", k=args.k)
        print(result["summary"])
        print("wrote " + ", ".join(str(p) for p in result["files"]))
        return 0
    runs = load_runs(args.runs)
    if runs.empty:
        raise ValueError(f"no complete runs under {args.runs}")
    table = summary_by(runs, args.by.split(","))
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    if args.figures:
        Path(args.figures).mkdir(parents=True, exist_ok=True)
        table.to_csv(Path(args.figures) / "summary_by.csv", index=False)
        print(f"wrote {Path(args.figures) / 'summary_by.csv'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "train":
            return _train(args)
        if args.command == "info":
            return _info(args)
        if args.command == "sweep":
            from .sweep import main as sweep_main
            return sweep_main(args)
        if args.command == "report":
            return _report(args)
    except (ConfigError, DataError, ValueError) as e:
        print(f"eicil: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("eicil: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    return 1


if __name__ == "__main__":
    sys.exit(main())
