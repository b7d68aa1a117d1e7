"""What is in a dataset: counts, sizes and modes, channel statistics, problems, and sample grids.

>>> import numpy as np
>>> from cnnlab.data.datasets import from_arrays
>>> data = from_arrays(np.zeros((4, 2, 2), np.uint8), [0, 1, 1, 1])
>>> summary = summarize("all", data)
>>> summary.class_counts, summary.mean, summary.duplicates
({'0': 1, '1': 3}, [0.0], 3)
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from cnnlab.core.errors import DataError
from cnnlab.data.augment import Compose
from cnnlab.data.cache import Problem
from cnnlab.data.datasets import Dataset, open_source
from cnnlab.data.images import image_info, is_image_file
from cnnlab.report.figures import save_figure, subplots

STATS_SIZE = 224
"""Images of differing sizes are resized to this square for the statistics and the grid."""


@dataclass
class SplitSummary:
    """Everything ``cnnlab data inspect`` prints about one split."""

    name: str
    count: int
    class_counts: dict[str, int]
    sizes: Counter[tuple[int, int]]  # (width, height) as stored, before any resizing
    modes: Counter[str]
    mean: list[float]  # per channel, pixel values scaled to [0, 1]
    std: list[float]
    duplicates: int  # images that are byte-identical to an earlier one
    problems: list[Problem] = field(default_factory=list)
    resized_to: int | None = None


def channel_stats(images: torch.Tensor, chunk: int = 4096) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of uint8 images (B, C, H, W), in [0, 1] units, summed in float64.

    >>> channel_stats(torch.tensor([[[[0, 255]]]], dtype=torch.uint8))
    ([0.5], [0.5])
    """
    total = torch.zeros(images.shape[1], dtype=torch.float64)
    squares = torch.zeros_like(total)
    for start in range(0, len(images), chunk):
        part = images[start : start + chunk].double() / 255.0  # (b, C, H, W)
        total += part.sum(dim=(0, 2, 3))
        squares += (part * part).sum(dim=(0, 2, 3))
    n = max(1, images.numel() // max(1, images.shape[1]))
    mean = total / n
    std = torch.sqrt(torch.clamp(squares / n - mean * mean, min=0))
    return [round(float(m), 4) for m in mean], [round(float(s), 4) for s in std]


def _fingerprints(images: torch.Tensor) -> list[str]:
    flat = images.flatten(1).numpy()  # (N, C*H*W); also fine for N = 0
    return [hashlib.blake2b(row.tobytes(), digest_size=16).hexdigest() for row in flat]


def summarize(name: str, data: Dataset, resized_to: int | None = None) -> SplitSummary:
    """Counts, sizes/modes (from file headers where samples are files), statistics and duplicates."""
    sizes: Counter[tuple[int, int]] = Counter()
    modes: Counter[str] = Counter()
    for path in data.paths:
        if Path(path).is_file():
            size, mode = image_info(path)
            sizes[size] += 1
            modes[mode] += 1
    if not sizes and len(data):  # arrays / IDX: the tensor is the source
        sizes[(data.images.shape[-1], data.images.shape[-2])] = len(data)
        modes["L" if data.images.shape[1] == 1 else "RGB"] = len(data)
    mean, std = channel_stats(data.images)
    seen = _fingerprints(data.images)
    return SplitSummary(
        name=name,
        count=len(data),
        class_counts=data.class_counts(),
        sizes=sizes,
        modes=modes,
        mean=mean,
        std=std,
        duplicates=len(seen) - len(set(seen)),
        problems=list(data.problems),
        resized_to=resized_to,
    )


def _sizes_differ(path: Path) -> bool:
    """Whether the image files under ``path`` (a folder, or a CSV's folder) have more than one size."""
    folder = path if path.is_dir() else path.parent
    sizes = set()
    for file in folder.rglob("*"):
        if file.is_file() and is_image_file(file):
            try:
                sizes.add(image_info(file)[0])
            except DataError:
                continue  # loading reports it
            if len(sizes) > 1:
                return True
    return False


def mask_encodings(folder: str | Path) -> Counter[str]:
    """How the mask files in ``folder`` hold their classes, counted per file: ``0/255``, ``0/1``,
    ``indices 0..k`` or ``N distinct values [...]`` (raw pixel values, before any mapping).

    >>> import tempfile
    >>> from PIL import Image
    >>> folder = Path(tempfile.mkdtemp())
    >>> Image.fromarray(np.array([[0, 255]], np.uint8)).save(folder / "a.png")
    >>> Image.fromarray(np.array([[0, 2]], np.uint8)).save(folder / "b.png")
    >>> sorted(mask_encodings(folder).items())
    [('0/255', 1), ('indices 0..2', 1)]
    """
    from PIL import Image

    found: Counter[str] = Counter()
    for file in sorted(Path(folder).iterdir()):
        if not (file.is_file() and is_image_file(file)):
            continue
        try:
            with Image.open(file) as image:
                values = np.unique(np.asarray(image).astype(np.int64)).tolist()
        except OSError:
            continue  # loading the pairs reports unreadable files, with the path
        if set(values) == {0, 255}:
            found["0/255"] += 1
        elif set(values) <= {0, 1}:
            found["0/1"] += 1
        elif len(values) <= 32:  # a few distinct values: class indices (checked against the classes on loading)
            found[f"indices 0..{values[-1]}"] += 1
        else:  # in-between values: a JPEG-compressed or grayscale picture, not a mask
            found[f"{len(values)} distinct values {values[:5]} ..."] += 1
    return found


def inspect_source(
    path: str | Path, masks: str | Path | None = None, strict: bool = False
) -> tuple[dict[str, Dataset], list[SplitSummary], list[str]]:
    """Load ``path`` (any source :func:`~cnnlab.data.datasets.open_source` reads) and summarise every split.

    Returns the datasets, one summary per split, and dataset-level findings (overlap between
    splits, empty classes, strong imbalance).
    """
    path = Path(path)
    resized = STATS_SIZE if masks is None and (path.is_dir() or path.suffix == ".csv") and _sizes_differ(path) else None
    splits = open_source(path, masks=masks, size=resized, strict=strict)
    summaries = [summarize(name, data, resized) for name, data in splits.items()]
    findings: list[str] = []
    prints = {name: set(_fingerprints(data.images)) for name, data in splits.items()}
    names = list(splits)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            shared = len(prints[a] & prints[b])
            if shared:
                findings.append(f"{shared} images appear in both '{a}' and '{b}' (leak between splits)")
    for summary in summaries:
        counts = [c for c in summary.class_counts.values()]
        if summary.duplicates:
            findings.append(f"'{summary.name}': {summary.duplicates} exact duplicate images")
        if counts and min(counts) == 0:
            empty = [k for k, v in summary.class_counts.items() if v == 0]
            findings.append(f"'{summary.name}': classes with no samples: {empty}")
        elif counts and max(counts) > 5 * min(counts) and not splits[summary.name].is_segmentation:
            findings.append(
                f"'{summary.name}': imbalanced classes (largest/smallest = {max(counts) / min(counts):.1f})"
            )
    return splits, summaries, findings


def sample_grid(data: Dataset, out: str | Path, per_class: int = 8, seed: int = 0, title: str = "") -> Path:
    """Save a PNG grid: one row per class (at most 10), ``per_class`` random samples each; masks overlaid.

    >>> import numpy as np, tempfile
    >>> from cnnlab.data.datasets import from_arrays
    >>> data = from_arrays(np.random.default_rng(0).integers(0, 255, (6, 8, 8), dtype=np.uint8), [0, 1] * 3)
    >>> sample_grid(data, Path(tempfile.mkdtemp()) / "grid.png").stat().st_size > 1000
    True
    """
    generator = torch.Generator().manual_seed(seed)
    if data.is_segmentation:
        rows = [("", torch.randperm(len(data), generator=generator)[:per_class])]
    else:
        rows = []
        for label, name in enumerate(data.classes[:10]):
            members = torch.nonzero(data.targets == label).flatten()
            rows.append((name, members[torch.randperm(len(members), generator=generator)[:per_class]]))
    figure, axes = subplots(len(rows), per_class, figsize=(1.4 * per_class, 1.5 * len(rows)), squeeze=False)
    for r, (name, index) in enumerate(rows):
        for c in range(per_class):
            axis = axes[r][c]
            axis.axis("off")
            if c >= len(index):
                continue
            i = int(index[c])
            image = data.images[i].permute(1, 2, 0).numpy()  # (H, W, C)
            axis.imshow(image[..., 0] if image.shape[2] == 1 else image, cmap="gray", vmin=0, vmax=255)
            if data.is_segmentation:
                masked = np.ma.masked_equal(data.targets[i].numpy(), 0)
                axis.imshow(masked, cmap="autumn", alpha=0.35, vmin=0, vmax=max(1, len(data.classes) - 1))
            if c == 0 and name:
                axis.set_title(name, fontsize=8, loc="left")
    if title:
        figure.suptitle(title, fontsize=9)
    return save_figure(figure, out, dpi=100)


def _displayable(x: torch.Tensor) -> np.ndarray:
    """(C, H, W) uint8 or float -> (H, W) or (H, W, 3) floats in [0, 1] (normalised output is min-max scaled)."""
    y = x.float() / 255.0 if not x.is_floating_point() else x.float()
    if y.min() < 0 or y.max() > 1:
        y = (y - y.min()) / (y.max() - y.min()).clamp(min=1e-8)
    image = y.permute(1, 2, 0).numpy()
    return image[..., 0] if image.shape[2] == 1 else image


def augment_grid(
    data: Dataset,
    preset: Callable[[torch.Tensor | None], Compose],
    out: str | Path,
    samples: int = 4,
    variants: int = 6,
    seed: int = 0,
    title: str = "",
) -> Path:
    """Save a PNG: each row one real sample, then ``variants`` augmented copies (masks overlaid, same geometry).

    >>> import tempfile
    >>> from cnnlab.data.datasets import from_arrays
    >>> from cnnlab.data.presets import PRESETS
    >>> data = from_arrays(np.random.default_rng(0).integers(0, 255, (5, 28, 28), dtype=np.uint8), [0] * 5)
    >>> augment_grid(data, PRESETS.get("mnist"), Path(tempfile.mkdtemp()) / "a.png", samples=2, variants=3).suffix
    '.png'
    """
    generator = torch.Generator().manual_seed(seed)
    index = torch.randperm(len(data), generator=generator)[:samples]
    pipeline = preset(data.images if data.images.shape[1] == 3 else None)
    originals = data.images[index]  # (S, C, H, W)
    batch = originals.repeat_interleave(variants, 0)  # (S * V, C, H, W): every copy draws its own parameters
    masks = None
    if data.is_segmentation:
        augmented, masks = pipeline.pair(batch, data.targets[index].repeat_interleave(variants, 0), generator)
    else:
        augmented = pipeline(batch, generator)
    figure, axes = subplots(len(index), variants + 1, figsize=(1.6 * (variants + 1), 1.7 * len(index)), squeeze=False)
    for r in range(len(index)):
        shown = [(originals[r], data.targets[index[r]] if data.is_segmentation else None, "original")]
        shown += [
            (augmented[r * variants + v], masks[r * variants + v] if masks is not None else None, "")
            for v in range(variants)
        ]
        for c, (image, mask, label) in enumerate(shown):
            axis = axes[r][c]
            axis.axis("off")
            axis.imshow(_displayable(image), cmap="gray", vmin=0, vmax=1)
            if mask is not None:
                axis.imshow(np.ma.masked_equal(mask.numpy(), 0), cmap="autumn", alpha=0.35, vmin=0, vmax=1)
            if label and r == 0:
                axis.set_title(label, fontsize=8)
    if title:
        figure.suptitle(title, fontsize=9)
    return save_figure(figure, out, dpi=100)
