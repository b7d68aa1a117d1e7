"""Every ``../shared/data/...`` path a README or docs command names exists, so copied commands run.

Shell variables set in the same code block (``D=../shared/data/...`` then ``$D/image``) are expanded.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
ASSIGNMENT = re.compile(r"^\s*([A-Z]\w*)=(\S+)")
SHARED_PATH = re.compile(r"(?:\$\{?([A-Z]\w*)\}?|\.\./shared/data)(/[\w./-]*)?")


def shell_blocks(text: str) -> list[list[str]]:
    """The lines of each fenced code block, except those marked as plain text (```text: trees, logs)."""
    blocks = re.findall(r"```([a-z]*)\n(.*?)```", text, flags=re.DOTALL)
    return [block.splitlines() for language, block in blocks if language != "text"]


def shared_paths(lines: list[str]) -> list[str]:
    """``../shared/data`` paths in a block's lines, with the block's variables expanded."""
    variables: dict[str, str] = {}
    found = []
    for line in lines:
        if match := ASSIGNMENT.match(line):
            variables[match[1]] = match[2]
            continue
        for match in SHARED_PATH.finditer(line):
            name, rest = match[1], (match[2] or "").rstrip(".")
            base = variables.get(name, "") if name else "../shared/data"
            if base.startswith("../shared/data"):
                found.append(base + rest)
    return found


def test_shell_paths_expand_variables() -> None:
    lines = ["D=../shared/data/isbi/train", "cnnlab inspect $D/image --masks ${D}/label ../shared/data/mnist", "$HOME"]
    assert shared_paths(lines) == [
        "../shared/data/isbi/train/image",
        "../shared/data/isbi/train/label",
        "../shared/data/mnist",
    ]


@pytest.mark.data
@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_commands_name_existing_shared_paths(doc: Path, shared_data: Path) -> None:
    paths = [p for block in shell_blocks(doc.read_text(encoding="utf-8")) for p in shared_paths(block)]
    missing = [p for p in paths if not (shared_data / p.removeprefix("../shared/data").lstrip("/")).exists()]
    assert not missing, f"{doc.name} names paths that do not exist: {missing}"


def cnnlab_commands(lines: list[str]) -> list[list[str]]:
    """``cnnlab ...`` command lines of a block (continuations joined, comments dropped), as shell words."""
    joined = " ".join(line.rstrip("\\") if line.endswith("\\") else line + "\n" for line in lines)
    commands = []
    for line in joined.splitlines():
        words = shlex.split(line, comments=True)
        if words[:1] == ["cnnlab"]:
            commands.append(words[1:])
    return commands


def test_every_cnnlab_option_in_readme_and_docs_exists() -> None:
    import typer.main

    from cnnlab.cli.app import app

    root = typer.main.get_command(app)
    checked = 0
    for doc in DOCS:
        for block in shell_blocks(doc.read_text(encoding="utf-8")):
            for words in cnnlab_commands(block):
                command, rest = root, words
                while rest and rest[0] in getattr(command, "commands", {}):
                    command, rest = command.commands[rest[0]], rest[1:]
                known = {"--help", *(opt for param in command.params for opt in param.opts + param.secondary_opts)}
                unknown = [w.split("=")[0] for w in rest if w.startswith("--") and w.split("=")[0] not in known]
                assert not unknown, f"{doc.name}: cnnlab {' '.join(words)}: no such option {unknown}"
                checked += 1
    assert checked > 20
