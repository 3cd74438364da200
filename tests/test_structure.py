"""The package's shape: no import circle, no citation of files a clone lacks, declared dependencies used."""
import ast
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "eicil"


def imports(path: Path, top_level: bool = False) -> set[str]:
    """eicil modules a module imports (relative or absolute; anywhere in the file, or at its top level)."""
    found = set()
    tree = ast.parse(path.read_text())
    for node in (tree.body if top_level else ast.walk(tree)):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level == 1 or base.startswith("eicil"):
                mod = base.removeprefix("eicil").lstrip(".")
                if mod:
                    found.add(mod.split(".")[0])
                else:
                    found |= {a.name for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("eicil.")}
    return found & {p.stem for p in PACKAGE.glob("*.py")}


def test_no_import_circle():
    graph = {p.stem: imports(p) - {p.stem} for p in PACKAGE.glob("*.py")}

    def reach(start):
        seen, todo = set(), list(graph[start])
        while todo:
            m = todo.pop()
            if m not in seen:
                seen.add(m)
                todo += graph[m]
        return seen

    circles = sorted(m for m in graph if m in reach(m))
    assert circles == [], f"modules on an import circle: {circles}"
    for user in ("sweep", "cli", "nb", "jobs", "ray_executor"):  # validating a config needs no trainer
        assert "train" not in imports(PACKAGE / f"{user}.py", top_level=True), user


def shipped_text() -> dict[Path, str]:
    files = [ROOT / "README.md", *PACKAGE.glob("*.py"), *(ROOT / "notebooks").glob("*.ipynb"),
             *(ROOT / "docs").glob("*.md"), *(ROOT / "configs").glob("*.yaml")]
    return {p: p.read_text() for p in files}


def test_nothing_cites_files_a_clone_does_not_have():
    bad = {str(p.relative_to(ROOT)): m.group(0) for p, text in shipped_text().items()
           for m in [re.search(r"SPEC\.md|\.\./shared|shared/SPEC", text)] if m}
    assert bad == {}
    assert (ROOT / "docs" / "method.md").exists()


def test_declared_dependencies_are_imported():
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    names = {re.split(r"[=<>\[ ]", d)[0].lower() for d in declared}
    module = {"scikit-learn": "sklearn", "pyyaml": "yaml", "ipykernel": None, "jupyterlab": None,
              "nbval": None, "papermill": None}  # kernels and runners are run, not imported
    code = "\n".join(t for p, t in shipped_text().items() if p.suffix in (".py", ".ipynb"))
    code += (ROOT / "tests" / "test_notebooks.py").read_text()
    for name in sorted(names):
        mod = module.get(name, name.replace("-", "_"))
        if mod is None:
            continue
        assert re.search(rf"^\s*(import|from) {mod}\b|\"import {mod}\b", code, re.M), f"{name} is declared, never imported"


def test_committed_records_hold_no_absolute_path():
    """Run records and report tables travel with the repository: paths in them are relative."""
    import subprocess
    tracked = subprocess.run(["git", "ls-files", "*.csv", "*.json"], cwd=ROOT, capture_output=True, text=True).stdout
    bad = [f for f in tracked.split() if re.search(r"[\"',](/(home|root|tmp|work|Users)/)", (ROOT / f).read_text())]
    assert bad == []
