"""Every notebook under notebooks/ runs top to bottom in a fresh Jupyter kernel, and its checks hold.

A notebook's checked outputs are ``assert`` lines in its cells (an accuracy above a floor, a shape the course
gives), so a failing check fails the cell and this test. Notebooks that read ``../shared/data`` say so in their
metadata (``"cnnlab": {"needs_shared_data": true}``) and are skipped without it.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.conftest import SHARED_DATA

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
PATHS = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


@pytest.mark.slow
@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_notebook_runs_and_its_checks_hold(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    notebook = nbformat.read(path, as_version=4)
    if notebook.metadata.get("cnnlab", {}).get("needs_shared_data") and not SHARED_DATA.is_dir():
        pytest.skip(f"{path.name} reads the shared datasets at {SHARED_DATA} (set CNNLAB_SHARED_DATA)")
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code"), "commit it unrun"
    monkeypatch.setenv("CNNLAB_SHARED_DATA", str(SHARED_DATA))
    monkeypatch.setenv("CNNLAB_RUNS", str(tmp_path / "runs"))  # run folders the notebook makes go here
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    client = nbclient.NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}
    )
    started = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - started
    outputs = [out for cell in notebook.cells if cell.cell_type == "code" for out in cell.outputs]
    assert not [out for out in outputs if out.output_type == "error"]
    shown = {kind for out in outputs for kind in out.get("data", {})}
    assert shown & {"text/html", "image/png"}, "a notebook shows at least one table or picture"
    print(f"{path.name}: {seconds:.1f} s")
