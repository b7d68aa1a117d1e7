"""Clip folders (short videos: frames over time) read into a :class:`~cnnlab.data.signals.SignalSet` of kind ``clip``.

A clip dataset is a folder with one sub-folder per class. Inside a class folder each clip is either a ``.npy``
file holding ``(T, H, W)`` (grey) or ``(T, H, W, C)`` frames, uint8 0..255 or float 0..1, or a sub-folder of
frame images (png, jpg...) taken in the natural order of their names (``2.png`` before ``10.png``). Clips come
out as float32 ``(N, C, T, H, W)`` in [0, 1]: uint8 is divided by 255, float is kept. Clips of another length
are centre-cropped or padded by repeating their last frame to ``frames``; frames of another size are resized
(bilinear) to ``size``; both default to the most common value, recorded in ``meta["chosen"]`` so prediction
can repeat it (:func:`read_clip`). Grey and colour clips in one folder all become colour.

>>> import tempfile
>>> root = Path(tempfile.mkdtemp())
>>> clips = np.zeros((4, 5, 8, 8), dtype=np.uint8)
>>> clips[:, :, 2:4, 2:4] = 255
>>> _ = save_clip_folder(root, clips, [0, 0, 1, 1], ["still", "moving"])
>>> data = load_clip_folder(root)
>>> data.kind, tuple(data.x.shape), data.classes, data.y.tolist(), data.meta["chosen"]
('clip', (4, 1, 5, 8, 8), ['moving', 'still'], [0, 0, 1, 1], {'frames': 5, 'size': (8, 8)})
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from cnnlab.core.errors import ConfigError, DataError
from cnnlab.data.cache import ProblemLog
from cnnlab.data.images import GRAY_MODES, image_info, is_image_file, natural_key, read_image
from cnnlab.data.signals import SignalSet

CLIP_SUFFIX = ".npy"
"""File suffix of a clip stored as one array (a clip can also be a folder of frame images)."""


def _visible(path: Path) -> bool:
    return not path.name.startswith(".")


def _frame_files(folder: Path) -> list[Path]:
    return sorted((p for p in folder.iterdir() if p.is_file() and is_image_file(p)), key=lambda p: natural_key(p.name))


def _clip_items(folder: Path) -> list[Path]:
    """The clips in one class folder: ``.npy`` files and sub-folders (frame folders), natural order."""
    items = [
        p for p in folder.iterdir() if _visible(p) and (p.is_dir() or (p.is_file() and p.suffix.lower() == CLIP_SUFFIX))
    ]
    return sorted(items, key=lambda p: natural_key(p.name))


def _read_npy(path: Path) -> np.ndarray:
    try:
        with path.open("rb") as file:
            if file.read(6) != b"\x93NUMPY":
                raise ValueError("not a NumPy .npy file")
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise DataError(f"cannot read clip array ({exc})", where=str(path), fix="save it again with np.save") from None
    if array.ndim == 3:
        array = array[..., None]
    if array.ndim != 4 or array.shape[-1] not in (1, 3) or 0 in array.shape:
        raise DataError(
            f"a clip array must be (T, H, W) or (T, H, W, C) with C 1 or 3, got {array.shape}",
            where=str(path),
            fix="save frames as (frames, height, width[, channels])",
        )
    if array.dtype != np.uint8 and not np.issubdtype(array.dtype, np.floating):
        raise DataError(
            f"clip values must be uint8 (0..255) or float (0..1), got {array.dtype}",
            where=str(path),
            fix="convert with .astype(np.uint8) or scale to float 0..1",
        )
    if array.dtype != np.uint8 and not np.isfinite(array).all():
        raise DataError("clip holds NaN or infinite values", where=str(path), fix="clean the array")
    return array


def _read_frames(folder: Path) -> np.ndarray:
    files = _frame_files(folder)
    if not files:
        raise DataError("frame folder holds no images", where=str(folder), fix="put png/jpg frames in it or remove it")
    channels = 1 if image_info(files[0])[1] in GRAY_MODES else 3
    frames = [read_image(f, channels=channels) for f in files]
    for f, frame in zip(files, frames, strict=True):
        if frame.shape != frames[0].shape:
            raise DataError(
                f"frame is {frame.shape[1]}x{frame.shape[0]}, the clip's first frame "
                f"{frames[0].shape[1]}x{frames[0].shape[0]}",
                where=str(f),
                fix="export every frame of a clip at one size",
            )
    return np.stack(frames)


def _read_raw(path: Path) -> np.ndarray:
    """One clip as stored: ``(T, H, W, C)`` uint8 or float."""
    if path.is_dir():
        return _read_frames(path)
    if not path.is_file():
        raise DataError("no such clip file or frame folder", where=str(path), fix="check the path")
    return _read_npy(path)


def _to_tensor(array: np.ndarray) -> torch.Tensor:
    """``(T, H, W, C)`` -> float32 ``(C, T, H, W)`` in [0, 1] (uint8 / 255, float kept)."""
    clip = torch.from_numpy(np.ascontiguousarray(array)).permute(3, 0, 1, 2)
    return clip.float() / 255.0 if array.dtype == np.uint8 else clip.float()


def fit_clip(clip: torch.Tensor, frames: int | None = None, size: int | tuple[int, int] | None = None) -> torch.Tensor:
    """A ``(C, T, H, W)`` clip with ``frames`` frames (centre crop, or repeat the last frame) and frames of
    ``size`` (bilinear); ``None`` keeps that dimension.

    >>> clip = torch.arange(4.0).view(1, 4, 1, 1).expand(1, 4, 2, 2)
    >>> fit_clip(clip, frames=2)[0, :, 0, 0].tolist(), fit_clip(clip, frames=6)[0, :, 0, 0].tolist()
    ([1.0, 2.0], [0.0, 1.0, 2.0, 3.0, 3.0, 3.0])
    >>> tuple(fit_clip(clip, size=(3, 5)).shape)
    (1, 4, 3, 5)
    """
    if frames is not None:
        length = clip.shape[1]
        if length > frames:
            start = (length - frames) // 2
            clip = clip[:, start : start + frames]
        elif length < frames:
            clip = torch.cat([clip, clip[:, -1:].expand(-1, frames - length, -1, -1)], 1)
    target = (size, size) if isinstance(size, int) else size
    if target is not None and tuple(clip.shape[2:]) != tuple(target):
        # frames as a batch: (T, C, H, W) -> resized -> back to (C, T, H, W)
        resized = F.interpolate(
            clip.transpose(0, 1).float(), size=tuple(target), mode="bilinear", align_corners=False, antialias=True
        )
        clip = resized.transpose(0, 1)
    return clip.contiguous()


def read_clip(
    path: str | Path, frames: int | None = None, size: int | tuple[int, int] | None = None, channels: int | None = None
) -> torch.Tensor:
    """One clip (a ``.npy`` file or a frame folder) as float32 ``(C, T, H, W)`` in [0, 1], fitted to ``frames``
    and ``size`` as the training set was (its ``meta["chosen"]``); ``channels=3`` repeats grey to colour.

    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "clip.npy"
    >>> np.save(path, np.full((3, 4, 4), 255, dtype=np.uint8))
    >>> clip = read_clip(path, frames=5, size=2, channels=3)
    >>> tuple(clip.shape), float(clip.max())
    ((3, 5, 2, 2), 1.0)
    """
    path = Path(path)
    clip = _to_tensor(_read_raw(path))
    if channels is not None and channels != clip.shape[0]:
        if clip.shape[0] != 1:
            raise DataError(
                f"clip has {clip.shape[0]} channels, {channels} expected",
                where=str(path),
                fix="give clips the channels the model was trained on",
            )
        clip = clip.expand(channels, -1, -1, -1)
    return fit_clip(clip, frames, size)


def _most_common(values: Sequence[object]) -> object:
    """The most frequent value; ties go to the one seen first."""
    return Counter(values).most_common(1)[0][0]


def _class_folders(root: Path) -> list[Path]:
    return sorted((p for p in root.iterdir() if p.is_dir() and _visible(p)), key=lambda p: p.name)


def load_clip_folder(
    path: str | Path, frames: int | None = None, size: int | tuple[int, int] | None = None, strict: bool = False
) -> SignalSet:
    """Read a clip folder (``root/<class>/<clip>.npy`` or ``root/<class>/<clip>/<frame>.png``).

    ``frames`` and ``size`` default to the most common length and frame size (``meta["chosen"]``). A clip
    that cannot be read is skipped with a :class:`~cnnlab.data.cache.DataWarning` and listed in
    ``meta["skipped"]`` (``strict``: a :class:`DataError` naming it); a class left with no clip is dropped.
    ``names`` are ``<class>/<clip>``; ``meta["source"]`` is the folder, ``meta["channels"]`` 1 or 3.
    """
    root = Path(path)
    if not root.is_dir():
        raise DataError("clip folder not found", where=str(root), fix="pass a folder holding one folder per class")
    if size is not None and (int(np.min(size)) < 1):
        raise ConfigError(f"size must be positive. Received: size={size}", where="load_clip_folder")
    if frames is not None and frames < 1:
        raise ConfigError(f"frames must be positive. Received: frames={frames}", where="load_clip_folder")
    log = ProblemLog(strict)
    arrays: list[np.ndarray] = []
    labels: list[int] = []
    names: list[str] = []
    classes = [p.name for p in _class_folders(root)]
    for label, name in enumerate(classes):
        for item in _clip_items(root / name):
            try:
                arrays.append(_read_raw(item))
            except DataError as error:
                log.report(error)
                continue
            labels.append(label)
            names.append(f"{name}/{item.name}")
    if not arrays:
        found = f" ({len(log.problems)} unreadable)" if log.problems else ""
        raise DataError(
            f"no clips found{found}",
            where=str(root),
            fix="put clips in root/<class>/ as .npy arrays (T, H, W[, C]) or folders of frame images",
        )
    chosen_frames = frames if frames is not None else int(_most_common([a.shape[0] for a in arrays]))
    chosen_size = (size, size) if isinstance(size, int) else size
    if chosen_size is None:
        chosen_size = _most_common([a.shape[1:3] for a in arrays])
    chosen_size = (int(chosen_size[0]), int(chosen_size[1]))
    channels = max(a.shape[-1] for a in arrays)
    x = torch.empty(len(arrays), channels, chosen_frames, *chosen_size)
    for i, array in enumerate(arrays):
        x[i] = fit_clip(_to_tensor(array), chosen_frames, chosen_size)  # grey broadcasts to colour
    return SignalSet.from_labels(
        x,
        labels,
        classes,
        names,
        kind="clip",
        meta={
            "source": str(root),
            "chosen": {"frames": chosen_frames, "size": chosen_size},
            "channels": channels,
            "skipped": [{"path": p.path, "message": p.message} for p in log.problems],
        },
    )


def is_clip_source(path: str | Path, frame_folders: bool = True) -> bool:
    """Whether ``path`` looks like a clip folder: class folders holding ``.npy`` files or (with
    ``frame_folders``) folders of frame images, and no image files directly (that is an image folder). Looks at
    names only, not contents. A folder of ``(D, H, W)`` ``.npy`` volumes looks the same: the caller says which
    it is. Frame folders (``<class>/<clip>/<frame>.png``) are laid out like image split folders
    (``train/<class>/<image>``) and nested image classes, so only the caller who knows it wants clips asks for them.

    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> _ = save_clip_folder(root, np.zeros((1, 2, 4, 4), dtype=np.uint8), [0], ["a"])
    >>> is_clip_source(root), is_clip_source(root / "a"), is_clip_source(root, frame_folders=False)
    (True, False, True)
    """
    root = Path(path)
    if not root.is_dir():
        return False
    folders = _class_folders(root)
    if not folders:
        return False
    found = False
    for folder in folders:
        for item in folder.iterdir():
            if item.is_file() and is_image_file(item):
                return False
            if item.is_file() and item.suffix.lower() == CLIP_SUFFIX:
                found = True
            elif frame_folders and item.is_dir() and _visible(item) and not found:
                found = any(is_image_file(p) for p in item.iterdir())
    return found


def save_clip_folder(
    root: str | Path, clips: np.ndarray | torch.Tensor, labels: Sequence[int] | np.ndarray, classes: Sequence[str]
) -> Path:
    """Write ``clips`` ``(N, T, H, W)`` (or ``(N, T, H, W, C)``) as ``root/<class>/<class>_<n>.npy``; returns root.

    >>> import tempfile
    >>> root = save_clip_folder(tempfile.mkdtemp(), np.zeros((2, 3, 4, 4), dtype=np.uint8), [1, 0], ["a", "b"])
    >>> sorted(str(p.relative_to(root)) for p in root.rglob("*.npy"))
    ['a/a_00001.npy', 'b/b_00000.npy']
    """
    root = Path(root)
    clips = clips.numpy() if isinstance(clips, torch.Tensor) else np.asarray(clips)
    labels = np.asarray(labels).reshape(-1)
    if clips.ndim not in (4, 5) or len(clips) != len(labels):
        raise DataError(
            f"need clips (N, T, H, W[, C]) and N labels, got {clips.shape} and {len(labels)} labels",
            where="save_clip_folder",
        )
    if len(labels) and (labels.min() < 0 or labels.max() >= len(classes)):
        raise DataError(f"labels must be 0..{len(classes) - 1}", where="save_clip_folder", fix="pass every class name")
    for name in classes:
        (root / name).mkdir(parents=True, exist_ok=True)
    width = max(5, len(str(len(clips))))
    for i, (clip, label) in enumerate(zip(clips, labels, strict=True)):
        name = classes[int(label)]
        np.save(root / name / f"{name}_{i:0{width}d}.npy", clip)
    return root
