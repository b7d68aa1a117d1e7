"""3-D scans: reading NIfTI / ``.npy`` volumes, checking they share a grid, tissue labels, leak-free patches.

:func:`read_volume` gives a float32 ``(D, H, W)`` array and what the file says about its grid (shape, voxel
size, orientation codes such as ``('R', 'A', 'S')``). NIfTI needs the optional ``nibabel`` package
(``pip install nibabel``), imported only when a NIfTI file is read. Volumes that must line up voxel for
voxel (a scan and its label maps) are checked with :func:`check_same_grid`. For one-subject segmentation
(the MNI152 template) :func:`tissue_labels` turns grey/white-matter probability maps into a label volume,
:func:`slab_split` holds out a contiguous block of slices, and :func:`random_patches` draws training
patches from the other slices only. :func:`load_volume_folder` reads class folders of whole volumes into a
:class:`~cnnlab.data.signals.SignalSet` of kind ``volume``.

>>> volume = np.arange(4 * 5 * 6, dtype=np.float32).reshape(4, 5, 6)
>>> split = slab_split(volume.shape[2], held_fraction=0.34)
>>> split.held, split.train
(range(2, 4), (range(0, 2), range(4, 6)))
>>> x, y, corners = random_patches(volume, np.ones((4, 5, 6), dtype=np.int64), 2, 5, torch.Generator(), split.train)
>>> tuple(x.shape), tuple(y.shape), sorted(set(corners[:, 2].tolist()) & set(split.held))
((5, 1, 2, 2, 2), (5, 2, 2, 2), [])
"""

from __future__ import annotations

import zlib
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from cnnlab.core.errors import ConfigError, DataError
from cnnlab.data.cache import ProblemLog
from cnnlab.data.images import natural_key
from cnnlab.data.signals import SignalSet

NIFTI_SUFFIXES = (".nii", ".nii.gz")
VOLUME_SUFFIXES = (*NIFTI_SUFFIXES, ".npy")
"""File endings (lower case) read as volumes."""

_REGRID_FIX = (
    "resample and reorient them to one grid first, e.g. nibabel.as_closest_canonical(img) for the orientation "
    "and nibabel.processing.resample_from_to(img, reference) for the shape"
)


def _is_volume_file(path: Path) -> bool:
    return path.is_file() and not path.name.startswith(".") and path.name.lower().endswith(VOLUME_SUFFIXES)


def _nibabel(where: str) -> ModuleType:
    try:
        import nibabel
    except ImportError:
        raise ConfigError(
            "reading NIfTI needs the nibabel package",
            where=where,
            fix="pip install nibabel (or pip install 'cnnlab[volumes]'), or save the volume as .npy",
        ) from None
    return nibabel


def _as_3d(array: np.ndarray, where: str) -> np.ndarray:
    while array.ndim > 3 and array.shape[-1] == 1:  # (D, H, W, 1) as some NIfTI writers store it
        array = array[..., 0]
    if array.ndim != 3 or 0 in array.shape:
        raise DataError(
            f"expected a 3-D volume (D, H, W), got shape {array.shape}",
            where=where,
            fix="store one 3-D scan per file",
        )
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
        raise DataError(f"volume values are {array.dtype}, not numbers", where=where, fix="store numbers")
    array = array.astype(np.float32, copy=False)
    if not np.isfinite(array).all():
        raise DataError("volume holds NaN or infinite values", where=where, fix="replace them (np.nan_to_num)")
    return array


def read_volume(path: str | Path) -> tuple[np.ndarray, dict[str, Any]]:
    """A ``.nii`` / ``.nii.gz`` / ``.npy`` volume as float32 ``(D, H, W)`` and its grid ``info``: ``path``,
    ``shape``, ``zooms`` (voxel size, mm) and ``orientation`` (nibabel's ``aff2axcodes``, e.g. ``('R', 'A', 'S')``:
    axis 0 runs to the right, 1 to anterior, 2 to superior) and the stored ``dtype``. A ``.npy`` file says
    nothing about its grid: ``zooms`` and ``orientation`` are None. NIfTI intensities are scaled as the header
    says (``scl_slope``/``scl_inter``).

    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "scan.npy"
    >>> np.save(path, np.ones((2, 3, 4), dtype=np.uint8))
    >>> volume, info = read_volume(path)
    >>> volume.dtype, info["shape"], info["orientation"], info["dtype"]
    (dtype('float32'), (2, 3, 4), None, 'uint8')
    """
    path = Path(path)
    where = str(path)
    if not path.is_file():
        raise DataError("volume file not found", where=where, fix="check the path")
    name = path.name.lower()
    if name.endswith(".npy"):
        try:
            with path.open("rb") as file:
                if file.read(6) != b"\x93NUMPY":
                    raise ValueError("not a NumPy .npy file")
            raw = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            raise DataError(
                f"cannot read volume array ({exc})", where=where, fix="save it again with np.save"
            ) from None
        info = {"zooms": None, "orientation": None, "dtype": str(raw.dtype)}
        array = _as_3d(raw, where)
    elif name.endswith(NIFTI_SUFFIXES):
        nib = _nibabel(where)
        try:
            image = nib.load(path)
            raw = image.get_fdata(dtype=np.float32)
            info = {
                "zooms": tuple(float(z) for z in image.header.get_zooms()[:3]),
                "orientation": tuple(nib.aff2axcodes(image.affine)),
                "dtype": str(image.get_data_dtype()),
            }
        except (OSError, EOFError, ValueError, zlib.error, nib.filebasedimages.ImageFileError) as exc:
            raise DataError(
                f"cannot read NIfTI volume ({type(exc).__name__}: {exc})",
                where=where,
                fix="check the file is a complete .nii/.nii.gz (re-download or re-export it)",
            ) from None
        array = _as_3d(raw, where)
    else:
        raise DataError(
            f"not a volume file (expected {', '.join(VOLUME_SUFFIXES)})", where=where, fix="convert it to NIfTI or .npy"
        )
    return array, {"path": where, "shape": tuple(int(s) for s in array.shape), **info}


def check_same_grid(paths: Sequence[str | Path], infos: Sequence[dict[str, Any]]) -> None:
    """Raise a :class:`DataError` naming both files when volumes that must line up voxel for voxel (a scan and
    its label maps) differ in shape, orientation or voxel size; unknown (None) orientations and sizes match any.

    >>> a = {"shape": (4, 4, 4), "orientation": ("R", "A", "S"), "zooms": (1.0, 1.0, 1.0)}
    >>> b = dict(a, orientation=("L", "A", "S"))
    >>> try:
    ...     check_same_grid(["t1.nii", "gm.nii"], [a, b])
    ... except DataError as error:
    ...     print(error.what)
    volumes are not on one grid: t1.nii is (4, 4, 4) RAS 1x1x1 mm, gm.nii is (4, 4, 4) LAS 1x1x1 mm
    """
    if len(paths) != len(infos):
        raise DataError(f"{len(paths)} paths for {len(infos)} infos", where="check_same_grid")
    if not infos:
        return
    first, reference = str(paths[0]), infos[0]

    def describe(path: str, info: dict[str, Any]) -> str:
        orientation = "".join(info["orientation"]) if info.get("orientation") else "unknown orientation"
        zooms = f" {'x'.join(f'{z:g}' for z in info['zooms'])} mm" if info.get("zooms") else ""
        return f"{path} is {tuple(info['shape'])} {orientation}{zooms}"

    for path, info in zip(paths[1:], infos[1:], strict=True):
        differs = tuple(info["shape"]) != tuple(reference["shape"])
        if info.get("orientation") and reference.get("orientation"):
            differs |= tuple(info["orientation"]) != tuple(reference["orientation"])
        if info.get("zooms") and reference.get("zooms"):
            differs |= not np.allclose(info["zooms"], reference["zooms"], rtol=1e-3)
        if differs:
            raise DataError(
                f"volumes are not on one grid: {describe(first, reference)}, {describe(str(path), info)}",
                where=f"{first} vs {path}",
                fix=_REGRID_FIX,
            )


def _probabilities(values: np.ndarray, name: str) -> np.ndarray:
    """A probability map as float32 in [0, 1]: integer maps and float maps above 1 are taken as 0..255."""
    values = np.asarray(values)
    top = float(values.max()) if values.size else 0.0
    if values.size and float(values.min()) < 0:
        raise DataError(f"{name} map has negative values", where=name, fix="pass probabilities 0..1 or 0..255")
    if top > 255:
        raise DataError(f"{name} map goes up to {top:g}", where=name, fix="pass probabilities 0..1 or 0..255")
    scaled = not np.issubdtype(values.dtype, np.floating) or top > 1.0 + 1e-6
    values = values.astype(np.float32)
    return values / 255.0 if scaled else values


def tissue_labels(gm: np.ndarray, wm: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Label volume (int64) from grey- and white-matter probability maps: 0 other/background, 1 grey matter,
    2 white matter.

    Each voxel takes the argmax over ``(clip(1 - gm - wm, 0, 1), gm, wm)`` (ties go to the earlier class),
    and keeps a tissue label only if that tissue's probability is at least ``threshold``; otherwise it is 0.
    ``threshold=0.5`` is the majority rule (a tissue label needs more than half the voxel), ``threshold=0``
    the plain argmax. Maps may be probabilities 0..1 or uint8 0..255 (as the MNI152 files store them; also
    when read as float, any map above 1 is taken as 0..255).

    >>> gm = np.array([[[0.6, 0.45, 0.1, 0.2]]])
    >>> wm = np.array([[[0.3, 0.40, 0.8, 0.1]]])
    >>> tissue_labels(gm, wm).tolist(), tissue_labels(gm, wm, threshold=0).tolist()
    ([[[1, 0, 2, 0]]], [[[1, 1, 2, 0]]])
    >>> tissue_labels(np.array([[[200]]], dtype=np.uint8), np.array([[[10]]], dtype=np.uint8)).tolist()
    [[[1]]]
    """
    if np.shape(gm) != np.shape(wm):
        raise DataError(
            f"grey-matter map is {np.shape(gm)}, white-matter map {np.shape(wm)}",
            where="tissue_labels",
            fix=_REGRID_FIX,
        )
    g, w = _probabilities(gm, "grey-matter"), _probabilities(wm, "white-matter")
    stacked = np.stack([np.clip(1.0 - g - w, 0.0, 1.0), g, w])
    labels = np.argmax(stacked, axis=0)
    labels[(labels > 0) & (np.max(stacked, axis=0) < threshold)] = 0
    return labels.astype(np.int64)


class Slabs(NamedTuple):
    """Slices along one axis: ``train`` (the two outer slabs) and ``held`` (the contiguous middle block)."""

    train: tuple[range, range]
    held: range


def slab_split(depth: int, held_fraction: float = 0.25) -> Slabs:
    """Split ``depth`` slices along one axis into a held-out contiguous block in the middle and the two slabs
    on either side for training. The middle is held out because at both ends of a head scan there is only
    air: the middle block holds plenty of tissue to test on, and both outer slabs still hold tissue to learn
    from. Patches for training must then lie inside one outer slab (:func:`random_patches` with
    ``within=split.train``), so no training voxel comes from a held-out slice.

    >>> slab_split(189)
    Slabs(train=(range(0, 71), range(118, 189)), held=range(71, 118))
    """
    if not 0 < held_fraction < 1:
        raise ConfigError(f"held_fraction must be between 0 and 1. Received: {held_fraction}", where="slab_split")
    held = max(1, round(depth * held_fraction))
    if depth < 3 or held >= depth:
        raise ConfigError(f"cannot split {depth} slices into train and held-out slabs", where="slab_split")
    start = (depth - held) // 2
    return Slabs((range(0, start), range(start + held, depth)), range(start, start + held))


def _allowed_corners(extent: int, size: int, within: Sequence[range] | None) -> np.ndarray:
    """(extent,) bool: patch start positions whose ``size`` slices lie inside the volume and one ``within`` range."""
    ok = np.zeros(extent, dtype=bool)
    for r in within if within is not None else [range(extent)]:
        start, stop = max(r.start, 0), min(r.stop, extent)
        if stop - start >= size:
            ok[start : stop - size + 1] = True
    return ok


def random_patches(
    volume: np.ndarray | torch.Tensor,
    labels: np.ndarray | torch.Tensor,
    size: int,
    n: int,
    generator: torch.Generator,
    within: range | Sequence[range] | None = None,
    axis: int = 2,
    foreground: float = 2 / 3,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``n`` cubic patches of ``size`` from ``volume`` ``(D, H, W)`` or ``(C, D, H, W)`` and the same boxes of
    ``labels`` ``(D, H, W)``: ``(patches (n, C, s, s, s) float32, label patches (n, s, s, s) int64, corners
    (n, 3) int64)``.

    Every patch lies wholly inside the slices ``within`` (a range or several, e.g. ``slab_split(...).train``)
    along spatial ``axis`` (0, 1 or 2 of ``(D, H, W)``; in a RAS-oriented NIfTI array axis 2 runs from feet to
    head, so slabs are stacks of axial slices); a patch never spans two ranges. A share ``foreground`` of the
    patches is centred on a voxel whose label is not 0 (fewer if there is no such voxel in reach); the rest are
    anywhere allowed. Draws come from ``generator``, so a seed repeats them.
    """
    volume = torch.as_tensor(volume, dtype=torch.float32)
    volume = volume[None] if volume.ndim == 3 else volume
    labels = torch.as_tensor(labels).long()
    if volume.ndim != 4 or tuple(labels.shape) != tuple(volume.shape[1:]):
        raise DataError(
            f"need volume (D, H, W) or (C, D, H, W) and labels (D, H, W), got {tuple(volume.shape)} and "
            f"{tuple(labels.shape)}",
            where="random_patches",
        )
    if axis not in (0, 1, 2):
        raise ConfigError(f"axis must be 0, 1 or 2. Received: axis={axis}", where="random_patches")
    ranges = [within] if isinstance(within, range) else within
    shape = tuple(labels.shape)
    ok = [_allowed_corners(extent, size, ranges if a == axis else None) for a, extent in enumerate(shape)]
    if not all(o.any() for o in ok):
        raise ConfigError(
            f"no place for a {size}^3 patch in a {shape} volume within {ranges} along axis {axis}",
            where="random_patches",
            fix="use smaller patches or a larger slab",
        )
    half = size // 2
    # a voxel may be a patch centre when its patch corner (centre - half) is allowed on every axis
    centre_ok = [np.roll(o, half) & (np.arange(len(o)) >= half) for o in ok]
    mask = labels.numpy() != 0
    mask &= centre_ok[0][:, None, None] & centre_ok[1][None, :, None] & centre_ok[2][None, None, :]
    candidates = np.flatnonzero(mask)
    n_fg = round(n * foreground) if len(candidates) else 0
    picks = candidates[torch.randint(max(len(candidates), 1), (n_fg,), generator=generator).numpy()]
    fg_corners = torch.from_numpy(np.stack(np.unravel_index(picks, shape), 1)) - half
    starts = [torch.from_numpy(np.flatnonzero(o)) for o in ok]
    rest = torch.stack([s[torch.randint(len(s), (n - n_fg,), generator=generator)] for s in starts], 1)
    corners = torch.cat([fg_corners, rest]).long()
    x = torch.empty(n, volume.shape[0], size, size, size)
    y = torch.empty(n, size, size, size, dtype=torch.long)
    for i, (d, h, w) in enumerate(corners.tolist()):
        x[i] = volume[:, d : d + size, h : h + size, w : w + size]
        y[i] = labels[d : d + size, h : h + size, w : w + size]
    return x, y, corners


def _class_folders(root: Path) -> list[Path]:
    return sorted((p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")), key=lambda p: p.name)


def load_volume_folder(
    path: str | Path, size: int | tuple[int, int, int] | None = None, strict: bool = False
) -> SignalSet:
    """Class folders of whole volumes (``root/<class>/<scan>.nii.gz`` or ``.npy``) for classification.

    Volumes keep their stored intensities and are resized (trilinear) to ``size`` (one int for a cube), by
    default the most common shape (``meta["chosen"]``). All volumes must share one orientation: another one
    is a :class:`DataError` naming the file. An unreadable file is skipped with a warning and listed in
    ``meta["skipped"]`` (``strict``: raised); a class left with no volume is dropped.

    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> for name, shape in (("a", (4, 4, 4)), ("b", (4, 4, 4)), ("b", (2, 2, 2))):
    ...     (root / name).mkdir(exist_ok=True)
    ...     np.save(root / name / f"{len(list((root / name).iterdir()))}.npy", np.ones(shape, dtype=np.float32))
    >>> data = load_volume_folder(root)
    >>> data.kind, tuple(data.x.shape), data.y.tolist(), data.meta["chosen"]
    ('volume', (3, 1, 4, 4, 4), [0, 1, 1], {'size': (4, 4, 4)})
    """
    root = Path(path)
    if not root.is_dir():
        raise DataError("volume folder not found", where=str(root), fix="pass a folder holding one folder per class")
    log = ProblemLog(strict)
    volumes: list[np.ndarray] = []
    labels: list[int] = []
    names: list[str] = []
    reference: dict[str, Any] | None = None
    classes = [p.name for p in _class_folders(root)]
    for label, name in enumerate(classes):
        files = sorted((p for p in (root / name).iterdir() if _is_volume_file(p)), key=lambda p: natural_key(p.name))
        for file in files:
            try:
                volume, info = read_volume(file)
            except DataError as error:
                log.report(error)
                continue
            if info["orientation"] is not None:
                if reference is None:
                    reference = info
                elif info["orientation"] != reference["orientation"]:
                    raise DataError(
                        f"volume is oriented {''.join(info['orientation'])}, "
                        f"{reference['path']} {''.join(reference['orientation'])}",
                        where=str(file),
                        fix=_REGRID_FIX,
                    )
            volumes.append(volume)
            labels.append(label)
            names.append(f"{name}/{file.name}")
    if not volumes:
        raise DataError(
            "no volumes found" + (f" ({len(log.problems)} unreadable)" if log.problems else ""),
            where=str(root),
            fix=f"put volumes ({', '.join(VOLUME_SUFFIXES)}) in root/<class>/",
        )
    if isinstance(size, int):
        size = (size, size, size)
    chosen = tuple(int(s) for s in size) if size is not None else Counter(v.shape for v in volumes).most_common(1)[0][0]
    if len(chosen) != 3 or min(chosen) < 1:
        raise ConfigError(f"size must be one or three positive ints. Received: size={size}", where="load_volume_folder")
    x = torch.empty(len(volumes), 1, *chosen)
    for i, volume in enumerate(volumes):
        v = torch.from_numpy(volume)[None, None]
        x[i] = (
            v[0] if v.shape[2:] == chosen else F.interpolate(v, size=chosen, mode="trilinear", align_corners=False)[0]
        )
    return SignalSet.from_labels(
        x,
        labels,
        classes,
        names,
        kind="volume",
        meta={
            "source": str(root),
            "chosen": {"size": chosen},
            "orientation": None if reference is None else reference["orientation"],
            "skipped": [{"path": p.path, "message": p.message} for p in log.problems],
        },
    )


def is_volume_source(path: str | Path) -> bool:
    """Whether ``path`` holds class folders with volume files (``.nii``, ``.nii.gz``, ``.npy``) and no sub-folders.
    Looks at names only: a folder of ``.npy`` clips looks the same, so the caller says which it is.

    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> (root / "a").mkdir()
    >>> _ = (root / "a" / "scan.nii.gz").write_bytes(b"")
    >>> is_volume_source(root), is_volume_source(root / "a")
    (True, False)
    """
    root = Path(path)
    if not root.is_dir():
        return False
    found = False
    for folder in _class_folders(root):
        for item in folder.iterdir():
            if item.is_dir() and not item.name.startswith("."):
                return False  # frame folders or nested images: not a volume folder
            found |= _is_volume_file(item)
    return found
