"""What the committed studies found, for notebook 06: their run records as one table, the test-accuracy
curves of a chosen cell of runs beside its matched controls, small tables of the same, and dropdowns
to choose the cell.

Nothing here trains: everything is read from run records (config.json, metrics.csv, summary.json)
through eicil.report. Accuracies are percent and differences percentage points.
"""
from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import ipywidgets as widgets
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from . import cells, report
from .cycle import CONTROLS, EXCITATORY, relevant, uses_stdp
from .figures import METHOD_STYLE
from .plots import ImageBox, _enable_inline_figures, figure_png
from .stats import summarize

_enable_inline_figures()  # so a Figure left as a cell's value shows inline

STUDIES = ("study", "dose", "dose_data", "study_deep")  # the committed sweeps, folders of runs/
CHOICES = ("dataset", "model", "method", "k", "dose")  # each narrows the options of the ones after it
NO_K = 0  # the K of a method without a cycle (0 is never a real K)
NO_STDP = "no STDP"  # the dose of a method that takes no STDP step
# What a control shares with the chosen runs, where the control uses the setting at all
# (dose: its STDP settings; k: its cycle); the scale settings keep a study's arms apart.
MATCH = ("study", "dataset", "model", "k", "dose", "width", "train_subset", "epochs", "timesteps")
ORDER = {
    "dataset": ("digits", "mnist", "cifar10", "cifar100", "fake"),
    "model": ("csnn", "ei_net", "resnet18", "vgg11"),
    "method": tuple(cells.ORDER["method"]),  # the report's order: the paper's methods, then the controls
}


def load(records: str | Path = "runs", studies: tuple[str, ...] = STUDIES) -> pd.DataFrame:
    """A row per (run, epoch) of every complete run under records/<study>.

    Columns: the run's, from report.load_runs (`test_acc`: the summary's test accuracy at the
    best-validation epoch, `stdp_dose`: the dose the run measured), plus `study`, `dose` (a name for
    its STDP settings, or NO_STDP), `epoch`, `mechanism` and `epoch_acc` (that epoch's test accuracy).
    `k` is NO_K for a method without a cycle.
    """
    frames = []
    for study in studies:
        root = Path(records) / study
        runs, curves = report.load_runs(root), report.load_curves(root, keep_collapsed=True)
        keys = [c for c in curves.columns if c in runs.columns]  # what tells runs apart, seed included
        data = runs.merge(curves.rename(columns={"value": "epoch_acc"}), on=keys, validate="one_to_many")
        if len(data) != len(curves):  # every epoch must find its run, or curves would go missing silently
            raise ValueError(f"{root}: {len(curves) - len(data)} epochs match no run")
        frames.append(data.assign(study=study))
    if not frames:
        raise ValueError(f"no studies given to load from {records}")
    data = pd.concat(frames, ignore_index=True)
    data["k"] = data["k"].fillna(NO_K).astype(int)
    data["dose"] = [_dose_name(r) for r in data.itertuples()]
    for col in ("test_acc", "epoch_acc"):
        data[col] = data[col] * 100
    return data


def _dose_name(run) -> str:
    if not uses_stdp(run.method):
        return NO_STDP
    # a run told a normalised dose (stdp_dose RHO > 0) sets its step by it, not by stdp_lr
    rho = getattr(run, cells.SET_DOSE, None)
    name = f"{run.weight_dep}, " + (f"RHO {rho:g}" if pd.notna(rho) and rho > 0 else f"stdp_lr {run.stdp_lr:g}")
    # stdp_norm off is the released code's coupling: the raw sum of the update, not its mean
    return f"{name}, raw sum" if pd.notna(run.stdp_norm) and not bool(run.stdp_norm) else name


def overview(data: pd.DataFrame) -> pd.DataFrame:
    """A row per study: its runs, datasets, models, methods, epochs per run and seeds per cell."""
    runs = data.drop_duplicates("path")
    cells = runs.groupby(["study", "dataset", "model", "method", "k", "dose"])["seed"].nunique()
    rows = [{"study": study, "runs": len(group),
             **{f"{c}s": ", ".join(_ordered(c, group[c].unique())) for c in ("dataset", "model", "method")},
             "epochs": ", ".join(map(str, sorted(group["epochs"].unique()))),
             "seeds per cell": ", ".join(map(str, sorted(cells[study].unique())))}
            for study, group in runs.groupby("study", sort=False)]
    return pd.DataFrame(rows).set_index("study")


def _ordered(name: str, values) -> list:
    if name == "dose":
        return sorted(values, key=_dose_key)
    if name in ORDER:
        return sorted(values, key=lambda v: (ORDER[name].index(v) if v in ORDER[name] else len(ORDER[name]), v))
    return sorted(values)


def _dose_key(dose: str) -> tuple:
    # no STDP first, then by weight dependence, the normalised update before the raw sum, RHO before
    # stdp_lr, then the size
    if dose == NO_STDP:
        return (0,)
    weight_dep, size, *raw = dose.split(", ")
    kind, value = size.split(" ")
    return (1, weight_dep, bool(raw), kind, float(value))


def _narrow(data: pd.DataFrame, picked: dict, strict: bool) -> Iterator[tuple[str, list, object]]:
    """(name, options, value) per choice in CHOICES order, each among the runs the earlier values
    leave. A value left None (or "" for dose) takes the first option; an unavailable one raises
    when strict, else also takes the first option."""
    rows, chosen = data, {}
    for name in CHOICES:
        options = _ordered(name, rows[name].unique().tolist())
        if not options:
            raise ValueError("no runs to choose from")
        value = picked.get(name)
        if value is None or value == "" or (not strict and value not in options):
            value = options[0]
        elif value not in options:
            where = ", ".join(f"{n}={v!r}" for n, v in chosen.items()) or "the records"
            raise ValueError(f"no runs with {name}={value!r} for {where}; choose from: "
                             f"{' | '.join(map(str, options))}")
        chosen[name] = value
        rows = rows[rows[name] == value]
        yield name, options, value


def choices(data: pd.DataFrame, **picked) -> dict[str, list]:
    """The options of each choice (dataset, model, method, k, dose), each narrowed by the values
    picked before it (a choice not given takes its first option). Raises ValueError naming the
    options when a picked value has no runs."""
    return {name: options for name, options, _ in _narrow(data, picked, strict=True)}


def pick(data: pd.DataFrame, **picked) -> dict:
    """Every choice resolved: the picked values, the first option for those not given. Raises
    ValueError naming the options when a picked value has no runs."""
    return {name: value for name, _, value in _narrow(data, picked, strict=True)}


def controls_of(method: str) -> tuple[str, ...]:
    """The methods drawn beside `method`: gs (the paper's baseline), then its isolating controls."""
    return tuple(m for m in dict.fromkeys(("gs", *CONTROLS.get(method, ()))) if m != method)


def matched(data: pd.DataFrame, **picked) -> pd.DataFrame:
    """The rows of the chosen cell of runs and of each control run that matches it (same study,
    data, model and scale; same K and STDP settings where the control uses them), with `line` (the
    method) and `role` ("chosen" or "control"). Raises ValueError for a choice no run has."""
    cell = pick(data, **picked)
    chosen = data.loc[(data[list(CHOICES)] == pd.Series(cell)).all(axis=1)]
    # gs of runs/study and of runs/dose_data are the same runs twice: keep one study's, the larger set
    study = chosen.groupby("study")["path"].nunique().idxmax()
    chosen = chosen[chosen["study"] == study]
    first = chosen.iloc[0]
    frames = [chosen.assign(line=cell["method"], role="chosen")]
    for control in controls_of(cell["method"]):
        match = data["method"] == control
        for col in MATCH:
            if (uses_stdp(control) if col == "dose" else relevant(control, col)):
                match &= data[col].isna() if pd.isna(first[col]) else data[col] == first[col]
        frames.append(data[match].assign(line=control, role="control"))
    return pd.concat(frames, ignore_index=True)


def mean_curves(lines: pd.DataFrame) -> pd.DataFrame:
    """Test accuracy per line and epoch over seeds: mean, 95% CI (ci_low, ci_high), n, and the
    epoch's mechanism, from matched()."""
    rows = [{"line": line, "epoch": epoch, "mechanism": group["mechanism"].iloc[0],
             **summarize(group["epoch_acc"])}
            for (line, epoch), group in lines.groupby(["line", "epoch"], sort=False)]
    return pd.DataFrame(rows, columns=["line", "epoch", "mechanism", "mean", "std", "n", "ci_low", "ci_high"])


def summary(data: pd.DataFrame, **picked) -> pd.DataFrame:
    """A row per line of matched(): seeds, how many of them collapsed (cells.collapsed: these means
    keep them, as a teaching view of the records, where the report's tables leave them out), test
    accuracy at the best-validation epoch (mean, std), at the last epoch (mean), the measured STDP
    dose (mean over seeds) and the chosen runs' mean minus this line's."""
    lines = matched(data, **picked)
    runs = lines.drop_duplicates(["line", "path"])
    last = lines[lines["epoch"] == lines.groupby("path")["epoch"].transform("max")]
    table = runs.groupby("line", sort=False).agg(
        role=("role", "first"), k=("k", "first"), dose=("dose", "first"), seeds=("seed", "nunique"),
        collapsed=("collapsed", "sum"),
        test_acc=("test_acc", "mean"), test_std=("test_acc", "std"), stdp_dose=("stdp_dose", "mean"))
    table.insert(7, "last_epoch_acc", last.groupby("line", sort=False)["epoch_acc"].mean())
    table["chosen_minus_this"] = table["test_acc"].iloc[0] - table["test_acc"]
    table.iloc[0, table.columns.get_loc("chosen_minus_this")] = math.nan
    table["k"] = table["k"].astype("Int64").mask(table["k"] == NO_K)
    return table.rename_axis("method")


def dose_response(data: pd.DataFrame, weight_dep: str = "clamp", **picked) -> pd.DataFrame:
    """A row per STDP setting with this weight dependence of the chosen (dataset, model, method, k):
    the chosen method's measured dose, each line's test accuracy (best-validation epoch, mean over
    seeds), and the chosen method minus each control."""
    rows = []
    doses = choices(data, **{**picked, "dose": None})["dose"]
    for dose in [d for d in doses if d.split(",")[0] == weight_dep]:
        table = summary(data, **{**picked, "dose": dose})
        rows.append({"setting": dose, "measured dose": table["stdp_dose"].iloc[0],
                     **table["test_acc"].to_dict(),
                     **{f"minus {m}": v for m, v in table["chosen_minus_this"].iloc[1:].items()}})
    if not rows:
        raise ValueError(f"no {weight_dep!r} runs among: {', '.join(doses)}")
    return pd.DataFrame(rows).set_index("setting")


def _legend_label(row: pd.Series) -> str:
    parts = [row.name + (f" K={row['k']}" if pd.notna(row["k"]) else "")]
    if pd.notna(row["stdp_dose"]):
        parts.append(f"dose {row['stdp_dose']:.2g}")
    parts.append(f"n={row['seeds']}" + (f", {row['collapsed']} collapsed" if row["collapsed"] else ""))
    return ", ".join(parts)


def curves_figure(data: pd.DataFrame, **picked) -> Figure:
    """Test accuracy per epoch of the chosen runs and their matched controls: mean over seeds, a 95%
    CI band, hollow markers on each line's non-gs (STDP, shrink, frozen or null) epochs, the
    chosen method's shaded; the legend gives each line's measured STDP dose and seeds."""
    cell = pick(data, **picked)
    lines = matched(data, **cell)
    curves, table = mean_curves(lines), summary(data, **cell)
    fig = Figure(figsize=(10, 4.4), layout="constrained")
    ax = fig.subplots()
    method = cell["method"]
    for line in table.index:  # the chosen line first; zorder draws it on top of its controls
        curve = curves[curves["line"] == line]
        color, style = METHOD_STYLE.get(line, ("black", "-"))
        chosen = line == method
        ax.fill_between(curve["epoch"], curve["ci_low"].clip(lower=0), curve["ci_high"].clip(upper=100),
                        color=color, alpha=0.12, lw=0)
        ax.plot(curve["epoch"], curve["mean"], style, color=color, lw=2.4 if chosen else 1.6,
                label=_legend_label(table.loc[line]), zorder=3 if chosen else 2)
        off = curve[curve["mechanism"] != EXCITATORY]
        ax.plot(off["epoch"], off["mean"], "o", ms=6, mfc="white", color=color, zorder=4 if chosen else 3)
    own = curves[(curves["line"] == method) & (curves["mechanism"] != EXCITATORY)]
    for i, row in enumerate(own.itertuples()):
        ax.axvspan(row.epoch - 0.5, row.epoch + 0.5, color=METHOD_STYLE.get(method, ("0.3",))[0], alpha=0.08, lw=0,
                   label=f"epochs {method} trains by {row.mechanism}" if i == 0 else None)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    title = f"{cell['model']} on {cell['dataset']}: {method}" + (f" K={cell['k']}" if cell["k"] != NO_K else "")
    title += f" ({cell['dose']})" + (" and its controls" if len(table) > 1 else "")
    ax.set(xlabel="epoch", ylabel="test accuracy (%)", title=title)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small",
              title="mean over seeds, band: 95% CI\nhollow: non-gs epochs", title_fontsize="small")
    ax.grid(alpha=0.3)
    return fig


def _dropdown_options(data: pd.DataFrame, name: str, options: list, cell: dict) -> list[tuple[str, object]]:
    """(label, value) pairs: K=0 reads "no cycle", a dose shows the chosen method's measured dose."""
    if name == "k":
        return [("no cycle" if k == NO_K else f"K={k}", k) for k in options]
    if name != "dose":
        return [(str(v), v) for v in options]
    rows = data[(data[list(CHOICES[:-1])] == pd.Series({n: cell[n] for n in CHOICES[:-1]})).all(axis=1)]
    dose = rows.drop_duplicates("path").groupby("dose")["stdp_dose"].mean()
    return [(d if pd.isna(dose.get(d)) else f"{d} (measured dose {dose[d]:.2g})", d) for d in options]


def explorer(data: pd.DataFrame, **picked) -> ImageBox:
    """Dropdowns for dataset, model, method, K and dose, each offering only what the records hold
    under the choices before it, redrawing curves_figure and summary below them.

    Returns an ipywidgets box; without a live kernel it shows its starting state as a static image.
    A picked value no run has raises ValueError before any widget is built."""
    from IPython.display import Image, display

    start = pick(data, **picked)
    controls = {name: widgets.Dropdown(description=name, layout=widgets.Layout(width="auto"))
                for name in CHOICES}
    shown = widgets.Output()
    box = ImageBox([widgets.HBox(list(controls.values())), shown])
    busy = []  # set while the dropdowns are being refilled, whose own change events are ignored

    def update(cell: dict) -> None:
        busy.append(True)
        try:
            for name, options, value in _narrow(data, cell, strict=False):
                cell[name] = value
                controls[name].options = _dropdown_options(data, name, options, cell)
                controls[name].value = value
        finally:
            busy.pop()
        box.png = figure_png(curves_figure(data, **cell))  # drawn once, shown in the widget and as its fallback
        shown.clear_output(wait=True)
        with shown:
            display(Image(box.png), summary(data, **cell).round(2))

    def changed(_) -> None:
        if not busy:
            update({name: c.value for name, c in controls.items()})

    update(start)
    for control in controls.values():
        control.observe(changed, names="value")
    return box
