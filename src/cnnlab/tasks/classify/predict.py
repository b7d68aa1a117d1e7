"""``cnnlab predict`` for classifiers: top-k classes of image files from a zoo model and a weights file, or from
``cnnlab train`` checkpoints (an ensemble when several, with optional test-time augmentation).

>>> import tempfile
>>> from PIL import Image
>>> from cnnlab.core.rundir import save_checkpoint
>>> from cnnlab.models import create_model
>>> folder = Path(tempfile.mkdtemp())
>>> model = create_model("cnn_small", num_classes=2, in_chans=1)
>>> save_checkpoint(folder / "best.pt", {"model": model.state_dict(), "config": {"model": {"name": "cnn_small"}},
...     "classes": ["cat", "dog"], "mean": [0.5], "std": [0.25], "input_size": [1, 28, 28]})
>>> Image.new("L", (40, 30)).save(folder / "x.png")
>>> rows = predict_checkpoints([folder / "best.pt"], [folder / "x.png"], top_k=1, precision="fp32")
>>> [row["label"] for row in rows[0]["top"]][0] in ("cat", "dog")
True
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cnnlab.core.errors import ConfigError
from cnnlab.tasks.classify.evaluate import predict_files
from cnnlab.tasks.classify.predictor import load_classifier, load_pretrained


def predict_images(
    model_name: str,
    weights: Path,
    images: list[Path],
    top_k: int = 5,
    precision: str = "auto",
    compile: str = "auto",
) -> list[dict[str, Any]]:
    """Top-``top_k`` predictions per image: ``[{"image", "top": [{"index", "label", "probability"}]}]``.

    A known weight file brings its preprocessing and class names; for any other file the model's
    default input size, the ImageNet mean/std and class indices are used (and ``"assumed": True``).
    ``precision`` and ``compile`` choose the inference path (see :func:`cnnlab.runtime.inference.fast_inference`).
    """
    classifier = load_pretrained(model_name, weights)
    probs = classifier.predict_proba(classifier.preprocess(images), precision, compile)  # (B, num_classes)
    return _top(images, probs, classifier.classes, top_k, assumed=classifier.assumed)


def predict_checkpoints(
    checkpoints: list[Path],
    images: list[Path],
    top_k: int = 5,
    tta: str = "none",
    precision: str = "auto",
    compile: str = "auto",
) -> list[dict[str, Any]]:
    """Like :func:`predict_images` for ``cnnlab train`` checkpoints or run folders: several are an
    ensemble (probabilities averaged); ``tta`` averages test-time views (see :mod:`cnnlab.tasks.classify.evaluate`)."""
    members = [load_classifier(path) for path in checkpoints]
    for member in members[1:]:
        if member.classes != members[0].classes:
            raise ConfigError(
                "ensemble members have different classes", where=member.source, fix="ensemble runs of one dataset"
            )
    probs = predict_files(members, images, tta, precision, compile)
    return _top(images, probs, members[0].classes, top_k, assumed=False)


def _top(images: list[Path], probs: Any, classes: Sequence[str], top_k: int, assumed: bool) -> list[dict[str, Any]]:
    k = min(top_k, probs.shape[1])
    results = []
    for image, (values, indices) in zip(images, zip(*probs.topk(k, dim=1), strict=True), strict=True):
        top = [
            {"index": int(i), "label": classes[i] if classes else str(int(i)), "probability": round(float(v), 6)}
            for v, i in zip(values, indices, strict=True)
        ]
        results.append({"image": str(image), "top": top, "assumed": assumed})
    return results
