"""The run report: one self-contained HTML file per run, built from the run folder's files only.

Every figure is a PNG embedded as base64, the style sheet is inline, and nothing is fetched, so
the file can be mailed or archived alone. Training curves and the LR schedule are drawn here from
``metrics.csv``; the other figures and tables come from what ``train`` and ``evaluate`` wrote
(``results.json``, ``evaluation.json``, ``plots/*.png``, ``model_summary.txt``, ``config.yaml``).
A section whose files are missing says which command adds them.

>>> import tempfile
>>> from cnnlab.core.rundir import RunDir, atomic_write_text
>>> run = RunDir.create(tempfile.mkdtemp(), "classify", "tiny")
>>> atomic_write_text(run.config, "model:\\n  name: cnn_small\\n")
>>> page = write_report(run.path).read_text()
>>> page.count('<section id="'), "cnnlab evaluate" in page
(12, True)
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from cnnlab.core.rundir import RunDir, atomic_write_text
from cnnlab.report.artefacts import EVALUATION_FILE, MODEL_SUMMARY_FILE, RESULTS_FILE, Plot
from cnnlab.report.plots import plot_lr_schedule, plot_training_curves

SECTIONS: tuple[tuple[str, str], ...] = (
    ("overview", "Overview"),
    ("curves", "Training curves"),
    ("lr", "Learning-rate schedule"),
    ("samples", "Sample inputs and augmented samples"),
    ("confusion", "Confusion matrix"),
    ("per-class", "Per-class metrics"),
    ("calibration", "Calibration"),
    ("mistakes", "Worst mistakes with Grad-CAM"),
    ("tta", "Test-time augmentation and ensembles"),
    ("model", "Model summary"),
    ("config", "Resolved config"),
    ("machine", "Machine and timings"),
)
"""``(id, heading)`` of every report section, in page order."""

DETECT_SECTIONS: tuple[tuple[str, str], ...] = (
    ("overview", "Overview"),
    ("curves", "Training curves"),
    ("lr", "Learning-rate schedule"),
    ("per-class", "Average precision per class"),
    ("pr", "Precision-recall curves"),
    ("confusion", "Detection confusion matrix"),
    ("worst", "Images with the most errors"),
    ("model", "Model summary"),
    ("config", "Resolved config"),
    ("machine", "Machine and timings"),
)
"""The sections of a detection run's report (``task: detect``)."""

EMBED_SECTIONS: tuple[tuple[str, str], ...] = (
    ("overview", "Overview"),
    ("curves", "Training curves"),
    ("lr", "Learning-rate schedule"),
    ("verification", "Verification on held-out people (ROC, EER, threshold)"),
    ("distances", "Same-person and different-person distances"),
    ("identification", "Identification"),
    ("embedding", "The embedding space"),
    ("hardest", "Hardest pairs with Grad-CAM"),
    ("model", "Model summary"),
    ("config", "Resolved config"),
    ("machine", "Machine and timings"),
)
"""The sections of an embedding run's report (``task: embed``)."""

SEQUENCE_SECTIONS: tuple[tuple[str, str], ...] = (
    ("overview", "Overview"),
    ("curves", "Training curves"),
    ("lr", "Learning-rate schedule"),
    ("samples", "Training samples"),
    ("confusion", "Confusion matrix"),
    ("per-class", "Per-class metrics"),
    ("cams", "Where the model looked (Grad-CAM over time, or over the clip or volume)"),
    ("model", "Model summary"),
    ("config", "Resolved config"),
    ("machine", "Machine and timings"),
)
"""The sections of a sequence run's report (``task: sequence``: series, audio, clips, volumes)."""

TASK_SECTIONS = {"detect": DETECT_SECTIONS, "embed": EMBED_SECTIONS, "sequence": SEQUENCE_SECTIONS}
"""Report sections of the tasks whose page differs from the classifier's."""


def write_report(run_dir: str | Path) -> Path:
    """Draw the curves from ``metrics.csv``, build the page and write ``report.html`` into the run folder."""
    run = RunDir.open(run_dir)
    rows = run.read_metrics()
    if rows:
        plot_training_curves(rows, run.plots / Plot.CURVES)
        plot_lr_schedule(rows, run.plots / Plot.LR)
    atomic_write_text(run.report, build_report(run))
    return run.report


def build_report(run: RunDir) -> str:
    """The report of ``run`` as one HTML string (figures already in ``plots/`` are embedded)."""
    page = _Page(run)
    sections = TASK_SECTIONS.get(page.task, SECTIONS)
    body = "\n".join(
        f'<section id="{key}">\n<h2>{html.escape(title)}</h2>\n{page.section(key)}\n</section>'
        for key, title in sections
    )
    nav = " ".join(f'<a href="#{key}">{html.escape(title)}</a>' for key, title in sections)
    name = html.escape(run.path.name)
    return _TEMPLATE.format(title=f"cnnlab run {name}", heading=name, nav=nav, body=body)


class _Page:
    """Reads the run folder once and renders each section."""

    def __init__(self, run: RunDir) -> None:
        self.run = run
        self.rows = run.read_metrics()
        self.config = yaml.safe_load(run.config.read_text(encoding="utf-8")) or {}
        self.results = _json(run.path / RESULTS_FILE)
        self.evaluation = _json(run.path / EVALUATION_FILE)
        self.renderers: dict[str, Callable[[], str]] = {
            "overview": self.overview,
            "curves": lambda: self.figure(Plot.CURVES, "training and validation loss and accuracy", "train"),
            "lr": lambda: self.figure(Plot.LR, "learning rate per epoch", "train"),
            "samples": self.samples,
            "confusion": self.confusion,
            "per-class": self.per_class,
            "calibration": self.calibration,
            "mistakes": lambda: self.figure(Plot.MISTAKES, "highest-loss mistakes and their Grad-CAM", "evaluate"),
            "tta": self.tta,
            "model": lambda: self.text_file(MODEL_SUMMARY_FILE, "train"),
            "config": lambda: self.text_file("config.yaml", "train"),
            "machine": self.machine,
        }
        self.task = self.config.get("task", "classify")
        if self.task == "detect":
            self.renderers |= {
                "per-class": self.average_precision,
                "pr": lambda: self.figure(Plot.PR_CURVES, "precision-recall per class at IoU 0.5", "evaluate"),
                "confusion": lambda: self.figure(
                    Plot.DETECTION_CONFUSION, "rows: true class, columns: predicted; background included", "evaluate"
                ),
                "worst": lambda: self.figure(
                    Plot.WORST_IMAGES, "predictions in colour with scores, missed boxes in white", "evaluate"
                ),
            }
        if self.task == "sequence":
            self.renderers |= {
                "samples": lambda: self.figure(Plot.SAMPLES, "training samples as the model sees them", "train"),
                "cams": lambda: self.figure(
                    Plot.SIGNAL_CAMS, "worst mistakes and right answers; red: what counted for the class", "evaluate"
                ),
            }
        if self.task == "embed":
            self.renderers |= {
                "verification": self.verification,
                "distances": lambda: self.figure(
                    Plot.DISTANCES, "pair distances: same person vs different people, with the threshold", "evaluate"
                ),
                "identification": self.identification,
                "embedding": lambda: self.figure(
                    Plot.EMBEDDING_2D, "embeddings in 2-D, one colour per person", "evaluate"
                ),
                "hardest": lambda: self.figure(
                    Plot.HARDEST_PAIRS, "farthest same-person and nearest different-person pairs", "evaluate"
                ),
            }

    def section(self, key: str) -> str:
        return self.renderers[key]()

    def overview(self) -> str:
        model, data = self.config.get("model") or {}, self.config.get("data") or {}
        facts = [
            ("model", model.get("name")),
            ("data", data.get("source")),
            ("epochs trained", len(self.rows) or None),
            ("training time", _seconds(self.results.get("fit_seconds"))),
        ]
        scored = ("_acc", "map50", "coco_ap", "coco_ap50", "coco_ap75", "_auc", "_eer", "_top1")
        facts += [(key.replace("_", " "), _number(v)) for key, v in self.results.items() if key.endswith(scored)]
        if self.evaluation and self.task not in TASK_SECTIONS:
            facts += [
                ("evaluated on", f"{self.evaluation.get('title')} ({self.evaluation.get('images', 0):,} images)"),
                (f"accuracy ({self._variant()})", _percent(self.evaluation.get("accuracy"))),
                (f"top-{self.evaluation.get('top_k')} accuracy", _percent(self.evaluation.get("top_k_accuracy"))),
                ("mean loss", _number(self.evaluation.get("loss"))),
                ("calibration error (ECE)", _percent(self.evaluation.get("ece"))),
            ]
        return _table(["", ""], [[k, v] for k, v in facts if v is not None])

    def _variant(self) -> str:
        variants = self.evaluation.get("variants") or []
        return variants[-1]["name"] if variants else "trained model"

    def samples(self) -> str:
        samples = self.figure(Plot.SAMPLES, "training images", "train")
        augmented = self.figure(Plot.AUGMENTED, "the same images after training augmentation", "train")
        return f'<div class="pair">{samples}{augmented}</div>'

    def confusion(self) -> str:
        counts = self.figure(Plot.CONFUSION, "confusion matrix, counts", "evaluate")
        shares = self.figure(Plot.CONFUSION_NORMALIZED, "confusion matrix, % of the true class", "evaluate")
        out = f'<div class="pair">{counts}{shares}</div>'
        pairs = self.evaluation.get("most_confused") or []
        if pairs:
            out += "<h3>Most-confused pairs</h3>" + _table(
                ["true", "predicted as", "images"], [[p["true"], p["predicted"], p["count"]] for p in pairs]
            )
        return out

    def per_class(self) -> str:
        scores = self.evaluation.get("per_class")
        if not scores:
            return self.missing("evaluate")
        rows = [
            [name, _number(p), _number(r), _number(f), n]
            for name, p, r, f, n in zip(
                self.evaluation["classes"],
                scores["precision"],
                scores["recall"],
                scores["f1"],
                scores["support"],
                strict=True,
            )
        ]
        macro = self.evaluation["macro"]
        rows.append(
            ["macro average", *(_number(macro[k]) for k in ("precision", "recall", "f1")), sum(scores["support"])]
        )
        return _table(["class", "precision", "recall", "F1", "images"], rows)

    def average_precision(self) -> str:
        """A detection run's AP per class in each convention (``evaluation.json``'s labelled scores)."""
        scores = self.evaluation.get("scores")
        if not scores:
            return self.missing("evaluate")
        conventions = self.evaluation.get("conventions", {})
        columns = ("voc07_ap50", "voc_ap50", "coco_ap", "coco_ap50", "coco_ap75")
        classes = [k.removeprefix("num_gt_") for k in scores if k.startswith("num_gt_")]
        rows = [[c, *(_number(scores.get(f"{m}_{c}")) for m in columns), scores.get(f"num_gt_{c}")] for c in classes]
        rows.append(
            [
                "mean",
                *(_number(scores.get(m.replace("_ap", "_map") if m.startswith("voc") else m)) for m in columns),
                "",
            ]
        )
        notes = "".join(f"<li><code>{html.escape(k)}</code>: {html.escape(v)}</li>" for k, v in conventions.items())
        header = ["class", "VOC07 11-point AP@0.5", "VOC all-point AP@0.5", "COCO AP@[.5:.95]", "COCO AP@0.5",
                  "COCO AP@0.75", "boxes"]  # fmt: skip
        title = html.escape(str(self.evaluation.get("title", "")))
        return f"<p>{title}</p>" + _table(header, rows) + f"<ul>{notes}</ul>"

    def verification(self) -> str:
        """An embedder's verification numbers (``evaluation.json``) and its ROC."""
        v = self.evaluation.get("verification")
        if not v:
            return self.missing("evaluate")
        chosen = v["threshold"]
        rows = [
            ["people / images", f"{self.evaluation['verification_people']} / {self.evaluation['verification_images']}"],
            ["pairs same / different", f"{v['pairs']['genuine']:,} / {v['pairs']['impostor']:,}"],
            ["ROC AUC", _number(v["auc"])],
            ["equal error rate (EER)", _percent(v["eer"])],
            *[[f"TAR at FAR {far}", _percent(at["tar"])] for far, at in v["tar_at_far"].items()],
            [f"threshold ({chosen['chosen']})", _number(chosen["value"])],
            ["TAR / FAR at the threshold", f"{_percent(chosen['tar'])} / {_percent(chosen['far'])}"],
        ]
        if v.get("siamese_head"):
            head = v["siamese_head"]
            rows.append(["siamese head: balanced pair accuracy", _percent(head["balanced_accuracy"])])
        if v.get("kfold_accuracy"):
            k = v["kfold_accuracy"]
            rows.append(["10-fold pair accuracy (LFW protocol)", f"{_percent(k['mean'])} +- {_percent(k['std'])}"])
        title = html.escape(str(self.evaluation.get("title", "")))
        return f"<p>{title}</p>" + _table(["", ""], rows) + self.figure(Plot.ROC, "TAR against FAR", "evaluate")

    def identification(self) -> str:
        """Top-1 identification of training people's new photos and of new people by enrolment."""
        found = self.evaluation.get("identification")
        if not found:
            return self.missing("evaluate")
        rows = []
        for key, value in found.items():
            if "top1" in value:
                what = f"training people: {value['probes']} held-out photos vs a gallery of {value['gallery']}"
                rows.append([what, _percent(value["top1"])])
            elif "accuracy" in value:
                shots = key.split("_")[2]
                rows.append([f"new people: {shots} enrolment photo(s) each, {value['probes']} probes",
                             _percent(value["accuracy"])])  # fmt: skip
        return _table(["identification", "top-1 accuracy"], rows)

    def calibration(self) -> str:
        if not self.evaluation:
            return self.missing("evaluate")
        text = (
            f"<p>Expected calibration error: <b>{_percent(self.evaluation['ece'])}</b> "
            f"({len(self.evaluation['reliability']['count'])} equal-width confidence bins).</p>"
        )
        return text + self.figure(Plot.RELIABILITY, "reliability diagram", "evaluate")

    def tta(self) -> str:
        variants = self.evaluation.get("variants") or []
        if not variants:
            return self.missing("evaluate", "with --tta flip and/or --ensemble CKPT")
        base = variants[0]["accuracy"]
        rows = [
            [
                v["name"],
                _percent(v["accuracy"]),
                f"{100 * (v['accuracy'] - base):+.2f} pt",
                _percent(v.get("ece")),
                _seconds(v.get("seconds")),
            ]
            for v in variants
        ]
        return _table(["variant", "accuracy", "gain", "ECE", "wall time"], rows)

    def machine(self) -> str:
        out = ""
        for label, record in (("training", self.results), ("evaluation", self.evaluation)):
            info = record.get("machine")
            if info:
                out += f"<h3>{label.capitalize()}</h3>" + _table(
                    ["", ""], [[k.replace("_", " "), _plain(v)] for k, v in info.items()]
                )
        if self.rows:
            times = [float(row["time_s"]) for row in self.rows if row.get("time_s")]
            out += "<h3>Epoch times</h3>" + _table(
                ["epoch", "seconds"], [[row["epoch"], row.get("time_s", "")] for row in self.rows]
            )
            if times:
                out += f"<p>Total {_seconds(sum(times))}, mean {sum(times) / len(times):.1f} s per epoch.</p>"
        return out or self.missing("train")

    def figure(self, name: str, caption: str, command: str) -> str:
        path = self.run.plots / name
        if not path.is_file():
            return self.missing(command)
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        alt = html.escape(caption)
        return f'<figure><img src="data:image/png;base64,{data}" alt="{alt}"><figcaption>{alt}</figcaption></figure>'

    def text_file(self, name: str, command: str) -> str:
        path = self.run.path / name
        if not path.is_file():
            return self.missing(command)
        return f"<pre>{html.escape(path.read_text(encoding='utf-8'))}</pre>"

    def missing(self, command: str, options: str = "") -> str:
        if command == "train":
            return '<p class="missing">Not recorded for this run (<code>cnnlab train</code> writes it).</p>'
        hint = html.escape(f"cnnlab {command} {self.run.path}" + (f" {options}" if options else ""))
        return f'<p class="missing">Not available for this run yet; <code>{hint}</code> adds it.</p>'


def _json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_plain(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _plain(value: Any) -> str:
    if isinstance(value, Mapping):
        return ", ".join(f"{k}: {_plain(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(_plain(v) for v in value)
    return "" if value is None else str(value)


def _number(value: Any) -> str | None:
    return None if value is None else f"{float(value):.4f}"


def _percent(value: Any) -> str | None:
    return None if value is None else f"{100 * float(value):.2f}%"


def _seconds(value: Any) -> str | None:
    return None if value is None else f"{float(value):.1f} s"


_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 0 auto; max-width: 1100px; padding: 1em 2em; color: #222; }}
nav {{ font-size: 0.9em; line-height: 1.8; }}
nav a {{ margin-right: 0.8em; }}
section {{ border-top: 1px solid #ddd; padding: 0.4em 0 1em; }}
figure {{ display: inline-block; margin: 0.5em 1em 0.5em 0; vertical-align: top; }}
img {{ max-width: 100%; }}
figcaption {{ font-size: 0.85em; color: #555; }}
table {{ border-collapse: collapse; margin: 0.5em 0; font-size: 0.9em; }}
td, th {{ border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: left; }}
pre {{ background: #f6f6f6; padding: 0.8em; overflow-x: auto; font-size: 0.8em; }}
.missing {{ color: #8a5a00; }}
.pair figure {{ width: 48%; margin-right: 1.5%; }}
</style>
</head>
<body>
<h1>{heading}</h1>
<nav>{nav}</nav>
{body}
<script>
// Mark every figure that the browser could not decode, so a broken report shows it (and tests can see it).
window.addEventListener("load", () => {{
  for (const img of document.images) {{
    const ok = img.complete && img.naturalWidth > 0;
    img.dataset.decoded = ok ? "yes" : "no";
    if (!ok) img.insertAdjacentHTML("afterend", '<p class="missing">image could not be decoded</p>');
  }}
}});
</script>
</body>
</html>
"""
