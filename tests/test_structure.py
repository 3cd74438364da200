"""The package's shape: no import circle, no citation of files a clone lacks, declared dependencies used,
`make clean` spares committed records."""
import ast
import re
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

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


def unsafe_clean_commands(commands: str) -> list[str]:
    """The commands of a recipe that could delete a tracked file: anything but `git clean` with -X
    (only untracked ignored files) or an `rm` whose every path holds no file `git ls-files` tracks."""
    bad = []
    for line in commands.splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|")
        lexer.whitespace_split = True
        command: list[str] = []
        for token in [*lexer, ";"]:
            if token not in (";", "&&", "||", "&", "|"):
                command.append(token)
                continue
            if not command:
                continue
            flags = [t for t in command[2:] if t.startswith("-") and not t.startswith("--")]
            paths = [t for t in command[1:] if not t.startswith("-")]
            if command[:2] == ["git", "clean"]:
                safe = any("X" in f for f in flags) and not any("x" in f for f in flags)
            elif command[0] == "rm":
                safe = all(subprocess.run(["git", "ls-files", "--", p], cwd=ROOT, capture_output=True,
                                          text=True, check=True).stdout == "" for p in paths)
            else:
                safe = False
            if not safe:
                bad.append(" ".join(command))
            command = []
    return bad


def test_make_clean_never_deletes_a_tracked_file():
    """`make clean` (as `make -n` prints it) may remove caches and untracked run output, never the
    committed run records under runs/ (git-ignored, force-added)."""
    if shutil.which("make") is None:
        pytest.skip("no make")
    recipe = subprocess.run(["make", "--no-print-directory", "-n", "clean"], cwd=ROOT, capture_output=True,
                            text=True, check=True).stdout
    assert recipe.strip() and unsafe_clean_commands(recipe) == []
    # the check bites: the recipe that once deleted runs/, and a git clean that is not limited to ignored files
    assert unsafe_clean_commands("rm -rf runs .pytest_cache\ngit clean -fd runs; rm -f x") == [
        "rm -rf runs .pytest_cache", "git clean -fd runs"]
