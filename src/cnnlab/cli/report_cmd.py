"""``cnnlab report``: (re)write a run folder's self-contained HTML report."""

from __future__ import annotations

from pathlib import Path

import typer


def report(run_dir: Path = typer.Argument(..., help="Run folder (runs/classify/<name>-<n>).")) -> None:
    """Write RUN_DIR/report.html: curves, LR, samples, confusion, per-class table, calibration, mistakes, model,
    config, machine and timings, all in one file (figures embedded)."""
    from cnnlab.report.html import write_report

    typer.echo(f"Report: {write_report(run_dir)}")
