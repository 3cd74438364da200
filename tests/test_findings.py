"""eicil.findings: the run records as one table, the cell of runs and controls it picks, the curves it
averages, its figure and its explorer; and notebook 06's defaults and answers against the committed records."""
import ast
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import nbformat
import pytest

from eicil import findings, records

ROOT = Path(__file__).resolve().parent.parent
K2 = ["gs", "{inh}", "gs", "{inh}"]  # K=2 over 4 epochs: every second epoch is the partner's
INH = {"gs": "gs", "gsgi": "stdp-bw-gs", "gsgi-shrink": "shrink-bw-gs", "gsni": "null"}


def write_run(root: Path, method: str, k: int, seed: int, accs: list[float], stdp_lr: float = 1.0,
              dose: float | None = None, rho: float = 0.0) -> None:
    name = f"{method}-k{k}-lr{stdp_lr}-rho{rho}-s{seed}"
    schedule = [m.format(inh=INH[method]) for m in K2] if k == 2 else ["gs"] * len(accs)
    config = {"model": "csnn", "dataset": "digits", "method": method, "k": k, "seed": seed,
              "epochs": len(accs), "stdp_lr": stdp_lr, "weight_dep": "clamp", "stdp_norm": True,
              "stdp_dose": rho, "width": 0.5, "train_subset": 0, "timesteps": 4, "handoff": "last"}
    records.write_json(root / name / "config.json", {"config": config})
    records.write_metrics(root / name / "metrics.csv", [row for epoch, (mech, acc) in enumerate(zip(schedule, accs), 1)
                                                       for row in (
        {"epoch": epoch, "mechanism": mech, "split": "test", "metric": "acc", "value": acc},
        {"epoch": epoch, "mechanism": mech, "split": "val", "metric": "acc", "value": 0.0},  # never read
    )])
    records.write_json(root / name / "summary.json", {"status": "complete", "test_acc": accs[-1],
                                                      "stdp_dose": dose})


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    dose = root / "dose"
    write_run(dose, "gs", 2, 0, [0.4, 0.5, 0.6, 0.7])
    write_run(dose, "gs", 2, 1, [0.6, 0.7, 0.8, 0.9])
    for seed in (0, 1):
        write_run(dose, "gsgi", 2, seed, [0.5, 0.3, 0.8, 0.9 + seed / 20], dose=2.0 + seed)
        write_run(dose, "gsgi-shrink", 2, seed, [0.5, 0.2, 0.8, 0.95], dose=2.0)
        write_run(dose, "gsni", 2, seed, [0.5, 0.5, 0.6, 0.6])
    write_run(dose, "gsgi", 2, 0, [0.5, 0.5, 0.6, 0.7], stdp_lr=0.1, dose=0.5)
    write_run(dose, "gsgi-shrink", 2, 0, [0.1] * 4, stdp_lr=0.1, dose=0.5)  # another dose: not a control of lr 1
    write_run(dose, "gsni", 5, 0, [0.1] * 4)  # another K: not a control of K=2
    write_run(root / "other", "gs", 5, 0, [0.1] * 4)  # another study: not a control of runs/dose
    return findings.load(root, studies=("dose", "other"))


PICK = dict(dataset="digits", model="csnn", method="gsgi", k=2, dose="clamp, stdp_lr 1")


def test_load_joins_each_epoch_to_its_run(data):
    assert len(data) == 12 * 4  # every run, every epoch, test accuracy only
    gs = data[(data["method"] == "gs") & (data["study"] == "dose") & (data["seed"] == 1)]
    assert gs["epoch_acc"].tolist() == pytest.approx([60, 70, 80, 90])  # percent
    assert gs["test_acc"].tolist() == pytest.approx([90] * 4)
    assert set(gs["k"]) == {findings.NO_K} and set(gs["dose"]) == {findings.NO_STDP}
    gsgi = data[(data["method"] == "gsgi") & (data["seed"] == 1)]
    assert set(gsgi["dose"]) == {"clamp, stdp_lr 1"} and set(gsgi["stdp_dose"]) == {3.0}
    assert gsgi["mechanism"].tolist() == ["gs", "stdp-bw-gs", "gs", "stdp-bw-gs"]


def test_matched_picks_the_controls_of_the_same_study_k_and_dose(data):
    lines = findings.matched(data, **PICK)
    runs = lines.drop_duplicates("path")
    assert runs.groupby("line", sort=False).size().to_dict() == {"gsgi": 2, "gs": 2, "gsgi-shrink": 2, "gsni": 2}
    assert set(runs["study"]) == {"dose"}
    assert set(runs.loc[runs["line"] == "gsgi-shrink", "stdp_lr"]) == {1.0}
    assert set(runs.loc[runs["line"] == "gsni", "k"]) == {2}
    assert runs.set_index("line")["role"].to_dict() == {"gsgi": "chosen", "gs": "control", "gsgi-shrink": "control",
                                                        "gsni": "control"}


def test_a_normalised_dose_names_the_cell_by_rho_and_matches_its_control(tmp_path):
    for method in ("gs", "gsgi", "gsgi-shrink"):
        write_run(tmp_path / "deep", method, 2, 0, [0.5, 0.5, 0.6, 0.7], dose=2.0, rho=2.0)
    write_run(tmp_path / "deep", "gsgi-shrink", 2, 0, [0.1] * 4, dose=0.2, rho=0.2)  # the other RHO: not its control
    write_run(tmp_path / "deep", "gsgi", 2, 0, [0.5] * 4, dose=0.15)  # told stdp_lr 1, not a RHO
    data = findings.load(tmp_path, studies=("deep",))
    assert findings.choices(data, method="gsgi")["dose"] == ["clamp, RHO 2", "clamp, stdp_lr 1"]
    assert set(data.loc[data["method"] == "gs", "dose"]) == {findings.NO_STDP}  # gs takes no STDP step
    runs = findings.matched(data, method="gsgi", k=2, dose="clamp, RHO 2").drop_duplicates("path")
    assert runs.groupby("line", sort=False).size().to_dict() == {"gsgi": 1, "gs": 1, "gsgi-shrink": 1}
    assert set(runs.loc[runs["line"] == "gsgi-shrink", "stdp_dose"]) == {2.0}


def test_mean_curves_average_over_seeds(data):
    curves = findings.mean_curves(findings.matched(data, **PICK)).set_index(["line", "epoch"])
    assert curves.loc[("gs", 1), "mean"] == pytest.approx(50) and curves.loc[("gs", 1), "n"] == 2
    assert curves.loc[("gsgi", 4), "mean"] == pytest.approx(92.5)
    assert curves.loc[("gsgi", 2), "mechanism"] == "stdp-bw-gs"
    assert curves.loc[("gs", 4), "ci_low"] < 80 < curves.loc[("gs", 4), "ci_high"]


def test_choices_narrow_each_choice_by_the_ones_before(data):
    assert findings.choices(data, dataset="digits", method="gsgi")["dose"] == ["clamp, stdp_lr 0.1", "clamp, stdp_lr 1"]
    gs = findings.choices(data, method="gs")
    assert gs["k"] == [findings.NO_K] and gs["dose"] == [findings.NO_STDP]
    assert findings.pick(data, method="gsni")["k"] == 2  # a choice left out takes its first option


@pytest.mark.parametrize("bad, options", [
    (dict(method="gsgx"), "gs | gsgi | gsni | gsgi-shrink"),
    (dict(method="gsgi", k=5), "2"),
    (dict(method="gsgi", k=2, dose="soft, stdp_lr 1"), "clamp, stdp_lr 0.1 | clamp, stdp_lr 1"),
])
def test_a_choice_no_run_has_raises_one_line_naming_the_options(data, bad, options):
    for call in (findings.pick, findings.matched, findings.curves_figure, findings.explorer):
        with pytest.raises(ValueError, match=r"^no runs with .*; choose from: ") as err:
            call(data, **bad)
        assert "\n" not in str(err.value) and str(err.value).endswith(options)


def test_summary_and_dose_response_compare_the_chosen_runs_with_each_control(data):
    table = findings.summary(data, **PICK)
    assert table.index.tolist() == ["gsgi", "gs", "gsgi-shrink", "gsni"]
    assert table.loc["gsgi", "test_acc"] == pytest.approx(92.5)
    assert table.loc["gsgi", "stdp_dose"] == pytest.approx(2.5)
    assert table.loc["gs", "chosen_minus_this"] == pytest.approx(92.5 - 80)
    assert table.loc["gsgi-shrink", "chosen_minus_this"] == pytest.approx(92.5 - 95)
    response = findings.dose_response(data, **{**PICK, "dose": None})
    assert response.index.tolist() == ["clamp, stdp_lr 0.1", "clamp, stdp_lr 1"]
    assert response.loc["clamp, stdp_lr 0.1", "minus gsgi-shrink"] == pytest.approx(70 - 10)
    assert response.loc["clamp, stdp_lr 1", "measured dose"] == pytest.approx(2.5)


def test_figure_draws_the_chosen_line_beside_its_controls(data):
    ax = findings.curves_figure(data, **PICK).axes[0]
    labels = ax.get_legend().get_texts()
    assert [t.get_text().split(",")[0] for t in labels] == ["gsgi K=2", "gs", "gsgi-shrink K=2", "gsni K=2",
                                                             "epochs gsgi trains by stdp-bw-gs"]
    assert "dose 2.5" in labels[0].get_text() and "n=2" in labels[0].get_text()
    lines = {line.get_label(): line for line in ax.get_lines() if not line.get_label().startswith("_")}
    assert matplotlib.colors.to_hex(lines["gs, n=2"].get_color()) == matplotlib.colors.to_hex("0.45")  # grey
    assert lines["gsgi-shrink K=2, dose 2, n=2"].get_linestyle() == "--"
    assert lines["gsgi K=2, dose 2.5, n=2"].get_ydata().tolist() == pytest.approx([50, 30, 80, 92.5])
    assert len(ax.patches) == 2  # epochs 2 and 4 shaded


def test_explorer_narrows_the_later_choices_and_redraws(data, monkeypatch):
    drawn = []
    real = findings.curves_figure
    monkeypatch.setattr(findings, "curves_figure", lambda d, **cell: drawn.append(cell) or real(d, **cell))
    box = findings.explorer(data, **PICK)
    dataset, model, method, k, dose = box.children[0].children
    assert drawn == [PICK] and dose.value == "clamp, stdp_lr 1"
    assert "measured dose 2.5" in dict((v, label) for label, v in dose.options)["clamp, stdp_lr 1"]
    assert "image/png" in box._repr_mimebundle_()  # shown without a live kernel
    method.value = "gs"
    assert [v for _, v in k.options] == [findings.NO_K] and dose.value == findings.NO_STDP
    assert drawn[-1] == {**PICK, "method": "gs", "k": findings.NO_K, "dose": findings.NO_STDP}
    method.value = "gsgi"
    dose.value = "clamp, stdp_lr 0.1"
    assert drawn[-1] == {**PICK, "dose": "clamp, stdp_lr 0.1"}


# --- notebook 06 against the committed records -----------------------------------------------------

@pytest.fixture(scope="module")
def committed():
    return findings.load(ROOT / "runs")


def notebook_defaults() -> dict:
    nb = nbformat.read(ROOT / "notebooks" / "06_findings.ipynb", as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    return {n.target.id: ast.literal_eval(n.value) for n in ast.parse(cell.source).body}


def test_notebook_defaults_pick_committed_runs(committed):
    defaults = notebook_defaults()
    cell = findings.pick(committed, **{c: defaults[c] for c in findings.CHOICES})
    assert cell == {c: defaults[c] for c in findings.CHOICES}  # each default is one the records hold


def test_the_exercise_answers_hold_in_the_records(committed):
    """Notebook 06's folded answers state these; a change of records that breaks one must change them."""
    digits = dict(dataset="digits", model="csnn", method="gsgi", k=2)
    response = findings.dose_response(committed, **digits)
    assert response["minus gs"].idxmax() == "clamp, stdp_lr 1" and response["minus gs"].max() > 3
    upto1 = response.loc[["clamp, stdp_lr 0.01", "clamp, stdp_lr 0.1", "clamp, stdp_lr 1"]]
    assert (upto1["minus gsgi-shrink"] <= 0.05).all()  # shrinkage does as well or better
    for dataset, below in (("mnist", 0.5), ("cifar10", -1.5)):
        table = findings.summary(committed, dataset=dataset, model="csnn", method="gsgi", k=3, dose="clamp, stdp_lr 1")
        assert table.loc["gs", "chosen_minus_this"] < below
    default = findings.summary(committed, **digits, dose="clamp, stdp_lr 0.01")
    assert default.loc["gsni", "chosen_minus_this"] > 5 and abs(default.loc["gs", "chosen_minus_this"]) < 1
    collapsed = findings.summary(committed, **digits, dose="soft, stdp_lr 0.1").loc["gsgi"]
    assert collapsed["test_acc"] == pytest.approx(49.0) and collapsed["last_epoch_acc"] < 40
    assert collapsed["collapsed"] == 4 and collapsed["seeds"] == 5  # counted, and named in the legend
    deep = findings.summary(committed, dataset="cifar10", model="vgg11", method="gsgi", k=2, dose="clamp, RHO 2")
    assert deep.loc["gs", "chosen_minus_this"] < -3 and abs(deep.loc["gsni", "chosen_minus_this"]) < 1.5
    assert deep.loc["gsgi-shrink", "collapsed"] == deep.loc["gsgi-shrink", "seeds"] >= 2  # every run at chance
    resnet = findings.summary(committed, dataset="cifar10", model="resnet18", method="gsgi", k=2, dose="clamp, RHO 2")
    assert resnet.loc["gs", "chosen_minus_this"] < -3 and resnet.loc["gsni", "chosen_minus_this"] > -1
    assert resnet.loc["gsgi-shrink", "collapsed"] == resnet.loc["gsgi-shrink", "seeds"] >= 2
    ei = findings.summary(committed, dataset="cifar10", model="ei_net", method="gsgi", k=2, dose="clamp, RHO 2")
    assert ei.loc["gs", "chosen_minus_this"] < -3 and abs(ei.loc["gsni", "chosen_minus_this"]) < 2.5
    assert ei.loc["gsgi-shrink", "collapsed"] == ei.loc["gsgi-shrink", "seeds"] >= 2
    for model in ("vgg11", "resnet18", "ei_net"):  # STDP in every epoch costs more than gsgi's
        every = findings.summary(committed, dataset="cifar10", model=model, method="stdp-bw-gs", k=0, dose="clamp, RHO 2")
        assert every.loc["gs", "chosen_minus_this"] < -5
        assert every.loc["shrink-bw-gs", "collapsed"] == every.loc["shrink-bw-gs", "seeds"] >= 3  # never left chance
        hidden = findings.summary(committed, dataset="cifar10", model=model, method="gsi", k=2, dose="clamp, RHO 2")
        assert abs(hidden.loc["gs", "chosen_minus_this"]) < 1.5 and hidden.loc["gsi", "seeds"] >= 2  # STDP on fc_hidden alone costs nothing
        assert hidden.loc["gsni", "chosen_minus_this"] > 5 and hidden.loc["gsi-shrink", "collapsed"] >= 1
        hidden_low = findings.summary(committed, dataset="cifar10", model=model, method="gsi", k=2, dose="clamp, RHO 0.2")
        assert abs(hidden_low.loc["gs", "chosen_minus_this"]) < 1.5 and hidden_low.loc["gsi", "seeds"] >= 3
        assert hidden_low.loc["gsi-shrink", "collapsed"] == 0 and abs(hidden_low.loc["gsi-shrink", "chosen_minus_this"]) < 1.5
        low = findings.summary(committed, dataset="cifar10", model=model, method="gsgi", k=2, dose="clamp, RHO 0.2")
        assert abs(low.loc["gs", "chosen_minus_this"]) < 1.5  # a tenth of the dose costs nothing ...
        assert low.loc["gsgi-shrink", "collapsed"] == 0 and low.loc["gsgi-shrink", "chosen_minus_this"] < 0  # ... and shrinks as well
        assert low.loc["gsgi", "seeds"] >= 3 and low.loc["gsgi-shrink", "seeds"] >= 3
        every_low = findings.summary(committed, dataset="cifar10", model=model, method="stdp-bw-gs", k=0, dose="clamp, RHO 0.2")
        assert every_low.loc["gs", "chosen_minus_this"] > -1.5  # STDP in every epoch costs nothing at RHO 0.2 ...
        control = every_low.loc["shrink-bw-gs"]  # ... and its control learns at this dose
        assert every_low.loc["stdp-bw-gs", "seeds"] >= 3 and control["seeds"] >= 3 and control["collapsed"] == 0
        if model == "vgg11":  # level with gs, and its control ends below STDP (and gs)
            assert abs(every_low.loc["gs", "chosen_minus_this"]) < 1.5 and control["chosen_minus_this"] > 1
