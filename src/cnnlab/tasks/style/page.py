"""The style run's page: content, style and result side by side, the frames as it formed, the cost curves.

Self-contained like every cnnlab report: images are embedded (base64), nothing is fetched.
"""

from __future__ import annotations

import base64
import html
import io
import itertools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from cnnlab.core.rundir import RunDir, atomic_write_text
from cnnlab.report.figures import save_figure, subplots

MAX_FRAMES = 24  # more would make the page heavy; the frames kept are spread evenly over the run
THUMBNAIL = 360  # longer side of the input images shown


def write_page(
    run: RunDir, content: Path, styles: Sequence[Path], frames: Sequence[str], results: Mapping[str, Any]
) -> Path:
    """Write ``plots/costs.png`` and ``report.html`` for a finished style run; returns the page's path."""
    rows = run.read_metrics()
    curve = plot_costs(rows, run.plots / "costs.png") if rows else None
    kept = [frames[round(i * (len(frames) - 1) / (MAX_FRAMES - 1))] for i in range(MAX_FRAMES)] if frames else []
    kept = list(dict.fromkeys(kept))
    before, after = results["before"], results["after"]
    table = "".join(
        f"<tr><td>{name}</td><td>{before[name]:.4g}</td><td>{after[name]:.4g}</td></tr>"
        for name in ("content", "style", "tv", "total")
    )
    inputs = [("content", content)] + [
        (f"style {i + 1}" if len(styles) > 1 else "style", s) for i, s in enumerate(styles)
    ]
    figures = "".join(_figure(_image_data(path), f"{label}: {html.escape(path.name)}") for label, path in inputs)
    figures += _figure(_file_data(run.path / "result.png"), "result")
    strip = "".join(
        f'<img class="frame" src="{_file_data(run.path / name)}" title="evaluation {int(Path(name).stem)}">'
        for name in kept
    )
    title = f"cnnlab style: {html.escape(run.path.name)}"
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;color:#222}}
figure{{display:inline-block;margin:0 1em 1em 0;vertical-align:top}}figure img{{max-height:360px}}
.frame{{height:96px;margin:2px}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:3px 8px}}</style>
</head><body><h1>Neural style transfer: {html.escape(run.path.name)}</h1>
<p>{html.escape(str(results["backbone"]))}; {results["evaluations"]} evaluations in {results["seconds"]:.1f} s;
style cost {results["style_reduction"]:,.0f}x lower than the content image's.</p>
<section id="images">{figures}</section>
<section id="frames"><h2>As it formed</h2><p>Every few optimiser evaluations, coarse to fine.</p>{strip}</section>
<section id="costs"><h2>Costs</h2><table><tr><th>cost</th><th>content image</th><th>result</th></tr>{table}</table>
{_figure(_file_data(curve), "costs over time") if curve else ""}</section>
</body></html>"""
    atomic_write_text(run.report, page)
    return run.report


def plot_costs(rows: Sequence[Mapping[str, Any]], path: Path) -> Path:
    """Content, style and total cost against seconds (log scale), level changes marked."""
    fig, ax = subplots(figsize=(7, 3.5))
    seconds = [float(r["seconds"]) for r in rows]
    for key in ("total", "content", "style"):
        ax.plot(seconds, [max(float(r[key]), 1e-12) for r in rows], label=key)
    for before, row in itertools.pairwise(rows):
        if row["size"] != before["size"]:
            ax.axvline(float(row["seconds"]), color="grey", linestyle=":", linewidth=1)
            ax.text(float(row["seconds"]), ax.get_ylim()[1], f" {row['size']} px", va="top", fontsize=8)
    ax.set_yscale("log")
    ax.set_xlabel("seconds")
    ax.set_ylabel("cost")
    ax.legend()
    return save_figure(fig, path)


def _figure(src: str, caption: str) -> str:
    return f'<figure><img src="{src}" alt="{html.escape(caption)}"><figcaption>{caption}</figcaption></figure>'


def _file_data(path: Path) -> str:
    kind = "jpeg" if path.suffix.lower() in (".jpg", ".jpeg") else "png"
    return f"data:image/{kind};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def _image_data(path: Path) -> str:
    with Image.open(path) as image:
        image = image.convert("RGB")
        image.thumbnail((THUMBNAIL, THUMBNAIL))
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=85)
    return f"data:image/jpeg;base64,{base64.b64encode(buffer.getvalue()).decode('ascii')}"
