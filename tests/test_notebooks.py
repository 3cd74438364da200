"""The notebooks: their structure rules, 01_train's parameters, and 01_train under papermill.

Executing every notebook with its defaults is nbval's job (run from the repository root):
    pytest --nbval-lax notebooks --sanitize-with tests/nbval_sanitize.cfg
"""
import ast
import io
import json
import tokenize
from dataclasses import fields
from pathlib import Path

import nbformat
import pytest
import torch

import eicil.nb
import eicil.plots
import eicil.stdp
from eicil.config import TYPES as CONFIG_TYPES, Config, ConfigError

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
EXPECTED = ["00_quickstart", "01_train", "02_table1", "03_table2_k", "04_figure2", "05_stdp_anatomy", "06_findings"]
TYPES = {"int": int, "float": float, "str": str, "bool": bool}


def load(path: Path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    return nb


def comments(source: str) -> dict[int, str]:
    """Line number -> text of the `#` comment on that line."""
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    return {t.start[0]: t.string.lstrip("#").strip() for t in tokens if t.type == tokenize.COMMENT}


def parameters(nb) -> dict[str, tuple[str, object, str]]:
    """name -> (annotation, value, comment) of the one cell tagged `parameters`; asserts its rules."""
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{len(tagged)} cells tagged parameters"
    assert tagged[0].cell_type == "code"
    source = tagged[0].source
    notes = comments(source)
    out = {}
    for node in ast.parse(source).body:
        line = source.splitlines()[node.lineno - 1]
        assert isinstance(node, ast.AnnAssign) and node.simple and isinstance(node.target, ast.Name), \
            f"not a flat typed assignment: {line!r}"
        assert node.lineno == node.end_lineno, f"spans several lines: {line!r}"
        assert isinstance(node.annotation, ast.Name) and node.annotation.id in TYPES, f"type not a scalar: {line!r}"
        assert isinstance(node.value, ast.Constant), f"value not a literal: {line!r}"
        value = node.value.value
        assert type(value) is TYPES[node.annotation.id], f"value does not match its type: {line!r}"
        assert notes.get(node.lineno), f"no comment: {line!r}"
        assert node.target.id not in out, f"{node.target.id} declared twice"
        out[node.target.id] = (node.annotation.id, value, notes[node.lineno])
    # nothing but those assignments: no stray statements, comment-only lines or blank-line tricks
    assert len([ln for ln in source.splitlines() if ln.strip()]) == len(out)
    return out


def test_every_notebook_is_there():
    assert [p.stem for p in NOTEBOOKS] == EXPECTED


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_rules(path):
    nb = load(path)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    cells = nb.cells
    # 1: title and how to run it in batch; 2: imports only; 3: parameters; 4: starts with check_parameters
    assert cells[0].cell_type == "markdown" and cells[0].source.startswith("# ")
    assert f"papermill notebooks/{path.name}" in cells[0].source
    assert cells[1].cell_type == "code"
    imports = ast.parse(cells[1].source).body
    assert imports and all(isinstance(n, (ast.Import, ast.ImportFrom)) for n in imports)
    assert any(isinstance(n, ast.Import) and any(a.name.startswith("eicil") for a in n.names) for n in imports)
    assert "parameters" in cells[2].metadata.get("tags", [])
    params = parameters(nb)
    assert params
    assert cells[3].cell_type == "code"
    assert cells[3].source.splitlines()[0] == "eicil.nb.check_parameters()"
    for cell in cells:
        if cell.cell_type != "code":
            continue
        assert cell.outputs == [] and cell.execution_count is None, "committed outputs"
        for node in ast.walk(ast.parse(cell.source)):
            assert not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)), \
                f"logic belongs in eicil/, not in a notebook: {ast.unparse(node)[:60]}"


def config_comments() -> dict[str, str]:
    import inspect
    source = inspect.getsource(Config)
    notes = comments(source)
    tree = ast.parse(source).body[0]
    return {n.target.id: notes.get(n.lineno, "") for n in tree.body if isinstance(n, ast.AnnAssign)}


def test_train_notebook_parameters_are_config_fields():
    params = parameters(load(ROOT / "notebooks" / "01_train.ipynb"))
    assert list(params) == ["profile"] + [f.name for f in fields(Config)]
    assert params["profile"][:2] == ("str", "cpu")
    notes = config_comments()
    for f in fields(Config):
        kind, value, comment = params[f.name]
        assert kind == CONFIG_TYPES[f.name], f.name
        assert value == f.default and type(value) is type(f.default), f.name
        assert comment == notes[f.name], f.name


def test_other_notebooks_parameters():
    sweep = {"config": ("str", ""), "runs": ("str", "runs/study"),  # the committed study's records
             "figures": ("str", "runs/study/figures"), "jobs": ("int", 2), "k": ("int", 3)}
    for name in ("02_table1", "03_table2_k", "04_figure2"):
        params = parameters(load(ROOT / "notebooks" / f"{name}.ipynb"))
        assert {k: v[:2] for k, v in params.items()} == sweep, name
    anatomy = parameters(load(ROOT / "notebooks" / "05_stdp_anatomy.ipynb"))
    assert set(anatomy) == {"seed", "timesteps", "tau_pre", "tau_post", "batch_size"}
    assert parameters(load(ROOT / "notebooks" / "00_quickstart.ipynb"))["out"][:2] == ("str", "runs/quickstart")
    findings = parameters(load(ROOT / "notebooks" / "06_findings.ipynb"))  # test_findings checks the defaults exist
    assert {k: v[0] for k, v in findings.items()} == {"records": "str", "dataset": "str", "model": "str",
                                                      "method": "str", "k": "int", "dose": "str"}
    assert findings["records"][1] == "runs"


# --- helpers the notebooks call ---------------------------------------------------------------

def test_train_config_keeps_the_profile_for_defaults():
    defaults = {f.name: getattr(Config(), f.name) for f in fields(Config)}
    smoke = eicil.nb.train_config({**defaults, "profile": "smoke"})
    assert (smoke.epochs, smoke.train_subset, smoke.timesteps) == (2, 192, 2)
    changed = eicil.nb.train_config({**defaults, "profile": "smoke", "epochs": 3, "width": 2})
    assert changed.epochs == 3 and changed.width == 2.0 and isinstance(changed.width, float)
    assert changed.timesteps == 2
    with pytest.raises(ConfigError, match="epochs must be an integer, got '3'"):
        eicil.nb.train_config({**defaults, "epochs": "3"})
    with pytest.raises(ConfigError, match="unknown profile"):
        eicil.nb.train_config({**defaults, "profile": "gpu"})


def test_from_repo_root_moves_only_from_notebooks(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT / "notebooks")
    assert eicil.nb.from_repo_root() == ROOT and Path.cwd() == ROOT
    monkeypatch.chdir(tmp_path)
    assert eicil.nb.from_repo_root() == tmp_path


def test_from_repo_root_finds_the_checkout_the_notebook_sits_in(tmp_path, monkeypatch):
    """A second clone (or a non-editable install): the root is the notebook's checkout, not the one
    eicil was installed from."""
    clone = tmp_path / "clone"
    (clone / "notebooks").mkdir(parents=True)
    (clone / "configs").mkdir()
    monkeypatch.chdir(clone / "notebooks")
    assert eicil.nb.from_repo_root() == clone.resolve()
    (tmp_path / "other" / "notebooks").mkdir(parents=True)  # a notebooks/ folder of no checkout stays put
    monkeypatch.chdir(tmp_path / "other" / "notebooks")
    assert eicil.nb.from_repo_root() == (tmp_path / "other" / "notebooks").resolve()


def test_stdp_window_matches_the_trace_rule():
    tau_pre, tau_post, w = 2.0, 100.0, 0.25
    window = eicil.plots.stdp_window(3, tau_pre, tau_post, weights=(w,), kinds=("soft",))
    dw = dict(zip(window["offset"], window["dw"]))
    for d in (1, 2, 3):  # post after pre: potentiation f_post(w) * pre trace
        assert dw[d] == pytest.approx((1 - w) * (1 - 1 / tau_pre) ** d)
        assert dw[-d] == pytest.approx(-w * (1 - 1 / tau_post) ** d)  # depression f_pre(w) * post trace
    assert dw[0] == pytest.approx((1 - w) - w)


def test_stdp_vs_backprop_reports_every_recorded_synapse():
    from spikingjelly.activation_based import functional

    from eicil.cycle import stdp_targets
    from eicil.models import create_model
    from eicil.stdp import SpikeRecorder, post_neurons
    torch.manual_seed(0)
    model = create_model("csnn", in_channels=1, num_classes=10, width=0.5, hidden=16)
    x = torch.rand(4, 8, 1, 8, 8)
    synapses = stdp_targets(model, "stdp-conv") + [model.fc_hidden]
    recorder = SpikeRecorder(post_neurons(model, x, synapses))
    functional.reset_net(model)
    model(x).sum().backward()
    sizes = eicil.plots.stdp_vs_backprop(model, recorder, tau_pre=2.0, tau_post=100.0)
    recorder.close()
    assert list(sizes["layer"]) == ["features.0", "features.4", "fc_hidden"]
    assert (sizes["ratio_raw"] / sizes["ratio_normalised"]).round().tolist() == sizes["n_terms"].tolist()


# --- 01_train under papermill (what eicil sweep does) -----------------------------------------

def test_train_notebook_under_papermill(tmp_path):
    papermill = pytest.importorskip("papermill")
    out = tmp_path / "runs"
    # hidden=128 is Config's default but differs from smoke's 32: set explicitly, it must win.
    papermill.execute_notebook(str(ROOT / "notebooks" / "01_train.ipynb"), str(tmp_path / "train.ipynb"),
                               parameters={"epochs": 1, "profile": "smoke", "out": str(out), "hidden": 128},
                               kernel_name="python3", progress_bar=False, cwd=str(ROOT))
    run = out / "csnn-digits-gs-s0"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "complete" and summary["epochs_completed"] == 1
    config = json.loads((run / "config.json").read_text())["config"]
    assert (config["epochs"], config["train_subset"], config["timesteps"], config["hidden"]) == (1, 192, 2, 128)
    assert (run / "metrics.csv").exists() and (run / "checkpoints" / "best.pt").exists()
    executed = nbformat.read(tmp_path / "train.ipynb", as_version=4)
    assert any("image/png" in o.get("data", {}) for c in executed.cells for o in c.get("outputs", []))


def test_train_notebook_rejects_a_misspelled_parameter(tmp_path):
    papermill = pytest.importorskip("papermill")
    with pytest.raises(papermill.PapermillExecutionError, match="epohcs"):
        papermill.execute_notebook(str(ROOT / "notebooks" / "01_train.ipynb"), str(tmp_path / "train.ipynb"),
                                   parameters={"epohcs": 3, "profile": "smoke", "out": str(tmp_path / "runs")},
                                   kernel_name="python3", progress_bar=False, cwd=str(ROOT))
    assert not (tmp_path / "runs").exists()  # it stopped before training anything


def test_window_explorer_redraws_when_a_control_moves(monkeypatch):
    drawn = []
    real = eicil.plots.stdp_window
    monkeypatch.setattr(eicil.plots, "stdp_window", lambda *a, **kw: drawn.append((a, kw)) or real(*a, **kw))
    box = eicil.plots.window_explorer(4, 2.0, 100.0, "clamp", w=0.5)
    tau_pre, tau_post, dep, w = box.children[0].children
    assert drawn[-1] == ((4, 2.0, 100.0), {"weights": (0.5,), "kinds": ("clamp",)})  # the start, drawn once
    first = box.png
    assert first and "image/png" in box._repr_mimebundle_()  # shown without a live kernel
    tau_pre.value = 5.0
    dep.value = "soft"
    w.value = -1.0
    assert drawn[-1] == ((4, 5.0, 100.0), {"weights": (-1.0,), "kinds": ("soft",)})
    assert box.png != first


def test_shrink_cosines_read_the_direction_of_each_layer():
    """clamp's update on a layer of positive weights driven by pre-before-post spikes: cos against
    -w is the same number shrink_cosine gives for delta_w, per layer and weight dependence."""
    syn = torch.nn.Linear(3, 2, bias=False)
    with torch.no_grad():
        syn.weight.fill_(0.5)
    pre = torch.zeros(4, 1, 3)
    post = torch.zeros(4, 1, 2)
    pre[0], post[3] = 1, 1  # every pre spike before every post spike: pure potentiation, growth
    model = torch.nn.Sequential(syn)

    class Recorder:
        def records(self):
            return [(syn, pre, post)]
    table = eicil.plots.shrink_cosines(model, Recorder(), tau_pre=2.0, tau_post=100.0)
    assert list(table["weight_dep"]) == list(eicil.stdp.WEIGHT_DEPS) and set(table["layer"]) == {"0"}
    assert table.set_index("weight_dep").loc["clamp", "cos"] == pytest.approx(-1.0)  # growth along +w
    fig = eicil.plots.shrink_figure(table)
    assert len(fig.axes[0].patches) == len(eicil.stdp.WEIGHT_DEPS)