"""The package's floors import only downward (docs/architecture.md has the table and the why).

Every ``import cnnlab.X`` / ``from cnnlab.X import`` in src/cnnlab is parsed and its edge checked
against ALLOWED. A task folder ``tasks/<task>/`` is a unit of its own (``tasks.<task>``) and may import
every floor below it and the shared ``tasks`` files (``base``, ``config``), never another task; only
``tasks/__init__.py`` (the registration line) knows every task. Add a new unit here on purpose.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "cnnlab"

BASE = {"core"}
LOWER = BASE | {"runtime", "layers", "models", "data", "train", "explain", "report", "transfer", "export"}
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "runtime": BASE | {"layers"},  # the compile decision counts multiply-adds with layers.summary (the one counter)
    "layers": BASE,
    "models": BASE | {"layers"},
    "data": BASE | {"report"},  # figures of `data inspect` go through report.figures
    "train": BASE | {"runtime"},
    "explain": BASE | {"report"},
    "report": BASE,
    "transfer": BASE | {"models", "layers", "train", "data", "runtime"},
    "export": BASE | {"models", "layers", "data", "runtime"},
    "sequential": BASE | {"layers", "train", "data", "report"},  # History shows its curves in Jupyter
    # the Keras drop-in: Keras names and conventions over the floors below (nothing imports it)
    "keras": BASE | {"layers", "sequential", "train", "data", "models", "runtime", "transfer"},
    "tasks": BASE | {"data", "runtime", "models"},  # base.py, config.py: what every task shares
    "tasks.*": LOWER | {"tasks"},  # one task: the floors below and the shared files, never a sibling
    # the one exception, on purpose: face recognition's front-end finds faces with the detection task's
    # pretrained face detector (a recogniser is built on a detector, as in the course)
    "tasks.embed": LOWER | {"tasks", "tasks.detect"},
    "tasks.__init__": {"tasks", "tasks.*"},  # the registration line
    "serve": BASE | {"models", "layers", "data", "explain", "export", "runtime", "tasks", "tasks.__init__"},
    "explore": BASE | {"models", "layers", "data", "explain"},  # `cnnlab explore`: the page about one model
    "show": BASE | {"report", "explain"},  # notebook pictures: report's figures, explain's Grad-CAM
    "cli": {"*"},
    "__init__": {"models", "layers", "train", "explain", "data", "sequential", "core", "show"},
}


def _unit_of_path(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    if parts[0] != "tasks" or len(parts) == 1:
        return parts[0]
    if parts[1] == "__init__":
        return "tasks.__init__"
    return "tasks" if len(parts) == 2 else f"tasks.{parts[1]}"


def _unit_of_module(name: str) -> str | None:
    parts = name.split(".")
    if parts[0] != "cnnlab":
        return None
    if len(parts) == 1:
        return "__init__"
    if parts[1] != "tasks":
        return parts[1]
    if len(parts) == 2:
        return "tasks.__init__"
    return "tasks" if parts[2] in ("base", "config") else f"tasks.{parts[2]}"


def _imported_units(tree: ast.AST) -> set[str]:
    units = set()
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        units |= {unit for unit in map(_unit_of_module, names) if unit is not None}
    return units


def _allowed(unit: str) -> set[str] | None:
    if unit in ALLOWED:
        return ALLOWED[unit]
    return ALLOWED.get("tasks.*" if unit.startswith("tasks.") and unit != "tasks.__init__" else unit)


def _violations() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        unit = _unit_of_path(path)
        allowed = _allowed(unit)
        assert allowed is not None, f"{path}: new top-level unit '{unit}'; add it to ALLOWED in this test"
        for target in _imported_units(ast.parse(path.read_text(encoding="utf-8"))) - {unit}:
            task_target = target.startswith("tasks.") and target != "tasks.__init__"
            if target in ("cli", "serve") and unit != "cli":
                found.append(f"{path.relative_to(PACKAGE)}: nothing may import cnnlab.{target}")
            elif "*" not in allowed and target not in allowed and not (task_target and "tasks.*" in allowed):
                found.append(f"{path.relative_to(PACKAGE)}: {unit} -> {target} is not allowed")
    return found


def test_imports_follow_the_layer_table():
    violations = _violations()
    assert not violations, "\n".join(violations)


def test_the_checker_sees_a_forbidden_edge():
    tree = ast.parse("from cnnlab.models import create_model\nimport cnnlab.cli.app\n")
    assert _imported_units(tree) == {"models", "cli"}
    assert "models" not in ALLOWED["layers"]
    sibling = _imported_units(ast.parse("from cnnlab.tasks.segment.metrics import confusion"))
    assert sibling == {"tasks.segment"} and "tasks.segment" not in _allowed("tasks.classify")
    assert _unit_of_path(PACKAGE / "tasks" / "classify" / "pipeline.py") == "tasks.classify"
    assert _unit_of_module("cnnlab.tasks.config") == "tasks" and "tasks" in _allowed("tasks.detect")


def test_every_task_lives_in_its_own_folder():
    from cnnlab.tasks import TASKS

    for name in TASKS.names():
        assert (PACKAGE / "tasks" / name / "__init__.py").is_file(), name


def test_cnnlab_leaves_the_matplotlib_backend_alone(tmp_path):
    """Notebooks keep inline plots: importing cnnlab and drawing its figures must not switch the backend."""
    code = (
        "import matplotlib; matplotlib.use('svg'); import cnnlab, cnnlab.tasks\n"
        "from cnnlab.report.plots import plot_lr_find\n"
        f"plot_lr_find([1e-3, 1e-2], [1.0, 2.0], 1e-3, {str(tmp_path / 'lr.png')!r})\n"
        "print(matplotlib.get_backend())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "svg" and (tmp_path / "lr.png").stat().st_size > 1000
