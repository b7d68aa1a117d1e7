"""The package's layers import only downward (see ../shared/DESIGN.md).

Every ``import cnnlab.X`` / ``from cnnlab.X import`` in src/cnnlab is parsed and its edge checked
against ALLOWED. Add a new subpackage here on purpose, with the layers it may use.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "cnnlab"

BASE = {"core"}
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "layers": BASE,
    "models": BASE | {"layers"},
    "data": BASE,
    "train": BASE,
    "explain": BASE,
    "infer_speed": BASE | {"train"},
    "inference": BASE | {"models", "data", "infer_speed"},
    "report": BASE,
    "sequential": BASE | {"layers", "train", "data"},
    "demo": BASE | {"classify", "data", "train"},
    "classify": BASE | {"models", "data", "train", "report", "explain", "transfer", "evaluate"},
    "transfer": BASE | {"models", "layers", "train", "data"},
    "segment": BASE | {"classify", "models", "layers", "train", "data", "report", "explain"},
    "evaluate": BASE | {"models", "train", "data", "report", "explain", "infer_speed"},
    "export": BASE | {"models", "layers", "data"},
    "serve": BASE | {"models", "layers", "data", "explain", "export", "evaluate", "train", "inference", "segment"},
    "cli": {"*"} - {"cli"},
    "__init__": {"models", "layers", "train", "explain", "data", "sequential", "core"},
}


def _unit(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return parts[0]


def _imported_units(tree: ast.AST) -> set[str]:
    units = set()
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for name in names:
            parts = name.split(".")
            if parts[0] == "cnnlab":
                units.add(parts[1] if len(parts) > 1 else "__init__")
    return units


def test_imports_follow_the_layer_table():
    violations = []
    for path in sorted(PACKAGE.rglob("*.py")):
        unit = _unit(path)
        allowed = ALLOWED.get(unit)
        assert allowed is not None, f"{path}: new top-level unit '{unit}'; add it to ALLOWED in this test"
        for target in _imported_units(ast.parse(path.read_text(encoding="utf-8"))) - {unit}:
            if target in ("cli", "serve") and unit != "cli":
                violations.append(f"{path.relative_to(PACKAGE)}: nothing may import cnnlab.{target}")
            elif "*" not in allowed and target not in allowed:
                violations.append(f"{path.relative_to(PACKAGE)}: {unit} -> {target} is not allowed")
    assert not violations, "\n".join(violations)


def test_the_checker_sees_a_forbidden_edge():
    tree = ast.parse("from cnnlab.models import create_model\nimport cnnlab.cli.app\n")
    assert _imported_units(tree) == {"models", "cli"}
    assert "models" not in ALLOWED["layers"]
