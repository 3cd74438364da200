"""Helpers a notebook calls, so notebooks hold no logic of their own."""
from __future__ import annotations

import ast
from pathlib import Path


def _assigned(source: str) -> set[str]:
    names = set()
    for node in ast.parse(source).body:
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        names |= {t.id for t in targets if isinstance(t, ast.Name)}
    return names


def _history() -> list[str]:
    """Non-empty cell sources this kernel ran, oldest first; empty outside IPython."""
    try:
        from IPython import get_ipython
    except ImportError:
        return []
    ip = get_ipython()
    return [c for c in ip.history_manager.input_hist_raw if c.strip()] if ip is not None else []


def _injected_index(history: list[str]) -> int | None:
    """Index of papermill's injected cell (it starts with '# Parameters'), if any."""
    found = [i for i, c in enumerate(history) if c.lstrip().startswith("# Parameters")]
    return found[-1] if found else None


def check_parameters() -> None:
    """Fail when papermill injected a parameter the notebook's parameters cell does not declare.

    papermill only warns about unknown parameters; a misspelled name would silently run the
    defaults. The injected cell follows the parameters cell in the kernel's input history. Run
    interactively (nothing injected), this checks nothing.
    """
    history = _history()
    i = _injected_index(history)
    if not i:
        return
    unknown = sorted(_assigned(history[i]) - _assigned(history[i - 1]))
    if unknown:
        declared = ", ".join(sorted(_assigned(history[i - 1])))
        raise ValueError(f"unknown notebook parameter(s): {', '.join(unknown)}; this notebook takes: {declared}")


def injected_parameters() -> set[str]:
    """Names papermill injected into this kernel; empty when run interactively."""
    history = _history()
    i = _injected_index(history)
    return _assigned(history[i]) if i is not None else set()


def from_repo_root() -> Path:
    """Make the repository root the working directory when a notebook runs from notebooks/.

    Jupyter and nbval start a notebook's kernel in the notebook's folder; papermill and the sweep
    start it in the caller's. The notebooks' relative defaults (runs/..., configs/...) mean the
    repository root, so only a working directory that is a checkout's notebooks/ (one beside a
    configs/ folder) moves up; the checkout is found from the notebook's folder, never from where
    eicil is installed. Any other working directory is kept, so a relative `out` handed over by
    `eicil sweep` still means the folder the sweep looks in. Returns the working directory.
    """
    import os

    here = Path.cwd().resolve()
    if here.name == "notebooks" and (here.parent / "configs").is_dir():
        os.chdir(here.parent)
    return Path.cwd()


def train_config(params: dict):
    """The Config a training notebook's parameters ask for: config_from(profile, **overrides).

    `params` is the notebook's namespace (globals()): `profile` plus one variable per Config field.
    A field overrides the profile when papermill injected it (`-p epochs 10` with profile smoke means
    10 epochs, even though 10 is Config's default) or when its value differs from Config's default (an
    edit in the parameters cell). A field left at Config's default keeps the profile's value, so
    `-p profile smoke` alone gets the smoke settings.
    """
    from .config import TYPES, Config, coerce, config_from

    defaults = Config()
    injected = injected_parameters()
    overrides = {}
    for name in TYPES:
        if name not in params:
            continue
        value = coerce(name, params[name])  # `-p width 1` arrives as an int
        default = getattr(defaults, name)
        if name in injected or value != default or type(value) is not type(default):
            overrides[name] = value
    return config_from(params.get("profile", "cpu"), **overrides)


def print_epoch(row: dict) -> None:
    """An `on_epoch` callback for train(): one line per epoch (notebooks run with progress=False)."""
    print(f"epoch {row['epoch']:>3} {row['mechanism']:<10} loss {row['train_loss']:.3f}  "
          f"acc train {row['train_acc']:.3f} val {row['val_acc']:.3f} test {row['test_acc']:.3f}", flush=True)
