"""How the package is laid out: units (rooms), import arrows between them, the largest files, and the places
outside ``tasks/`` that name a task. Issue 18 measures the renovation with it, before and after.

    python benchmarks/architecture_metrics.py                 # this checkout
    python benchmarks/architecture_metrics.py OLD/src/cnnlab  # another tree (e.g. `git archive` of a commit)

A unit is a top-level module or subpackage of ``cnnlab`` (``tasks/<task>/`` counts as one unit each);
an arrow is "some file of unit A imports unit B". A task is *named* where a string literal equals a
task's name ("classify", "segment") in code outside ``tasks/`` (docstrings and comments excluded).
"""

from __future__ import annotations

import argparse
import ast
from collections import Counter
from pathlib import Path

TASK_NAMES = {"classify", "segment"}


def unit_of(path: Path, root: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    if parts[0] == "tasks" and len(parts) > 2:
        return f"tasks.{parts[1]}"
    return parts[0]


def imported(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    units = set()
    for name in names:
        parts = name.split(".")
        if parts[0] == "cnnlab" and len(parts) > 1:
            units.add(f"tasks.{parts[2]}" if parts[1] == "tasks" and len(parts) > 2 else parts[1])
    return units


def docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                ids.add(id(first.value))
    return ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(__file__).resolve().parents[1] / "src" / "cnnlab"
    parser.add_argument("root", nargs="?", type=Path, default=default)
    root = parser.parse_args().root.resolve()
    files = sorted(root.rglob("*.py"))
    arrows: set[tuple[str, str]] = set()
    lines: Counter[str] = Counter()
    named: list[str] = []
    for path in files:
        text = path.read_text(encoding="utf-8")
        tree = ast.parse(text)
        unit = unit_of(path, root)
        arrows |= {(unit, target) for target in imported(tree) if target != unit}
        lines[str(path.relative_to(root))] = text.count("\n")
        if unit.startswith("tasks") or unit == "tasks":
            continue
        skip = docstrings(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and node.value in TASK_NAMES and id(node) not in skip:
                named.append(f"{path.relative_to(root)}:{node.lineno}")
    units = sorted({unit_of(p, root) for p in files})
    print(f"tree: {root}")
    print(f"units (rooms): {len(units)}: {', '.join(units)}")
    print(f"import arrows between units: {len(arrows)}")
    print(f"files: {len(files)}, lines: {sum(lines.values()):,}")
    print("largest five files: " + ", ".join(f"{name} {n}" for name, n in lines.most_common(5)))
    print(f"task names as literals outside tasks/: {len(named)} in {len({n.split(':')[0] for n in named})} files")
    for place in named:
        print(f"  {place}")


if __name__ == "__main__":
    main()
