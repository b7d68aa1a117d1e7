"""Feature extraction with an on-disk cache, and heads trained on the cached features.

The frozen backbone runs once over the data (``model.forward_features``, eval mode, no gradients);
its feature maps ``(N, C, h, w)`` are stored under a key that hashes the backbone's weights (not the
head), the images and the transform (its ``repr``, plus the precision), so other weights, other
data or another transform never reuse an entry. Entries are a float16 ``.npy`` and a ``.json``
written atomically, the ``.json`` last (the approach of :mod:`cnnlab.data.cache`).

The head is then trained on the maps through ``model.forward_head``: every zoo model computes
``forward_head(forward_features(x))``, so training on the cache is exactly training with the
backbone frozen (BatchNorm in eval mode, no augmentation), at the cost of the head alone.

>>> import tempfile
>>> from cnnlab.models import create_model
>>> model = create_model("resnet20", num_classes=2)
>>> images = torch.randint(0, 256, (6, 3, 32, 32), dtype=torch.uint8)
>>> folder = tempfile.mkdtemp()
>>> first = extract_features(model, images, cache_dir=folder)
>>> again = extract_features(model, images, cache_dir=folder)
>>> first.maps.shape, first.from_cache, again.from_cache, torch.allclose(first.maps, again.maps)
(torch.Size([6, 64, 8, 8]), False, True, True)
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from cnnlab.core.errors import ConfigError
from cnnlab.core.rundir import atomic_write_bytes, atomic_write_text
from cnnlab.data.augment import Compose, Rescale
from cnnlab.data.loader import TensorLoader
from cnnlab.runtime.precision import plan_speed
from cnnlab.train.config import TrainConfig
from cnnlab.train.trainer import Callback, Trainer
from cnnlab.transfer.groups import freeze, layer_groups

CACHE_VERSION = 1
"""Bumped when what is stored changes, so old entries are not reused."""

Transform = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


@dataclass
class Features:
    """Backbone feature maps ``(N, C, h, w)`` float32, the cache key, and whether they came from disk."""

    maps: torch.Tensor
    key: str
    from_cache: bool = False


def default_cache_dir() -> Path:
    """``$CNNLAB_FEATURE_CACHE`` or ``~/.cache/cnnlab/features``."""
    return Path(os.environ.get("CNNLAB_FEATURE_CACHE", Path.home() / ".cache" / "cnnlab" / "features"))


def backbone_digest(model: nn.Module, before: str | None = None) -> str:
    """sha256 over the backbone's state (names, shapes, dtypes, bytes); the head is left out.

    ``before``: only the layer groups before the group starting at that module (what its input depends on).

    >>> from cnnlab.models import create_model
    >>> a, b = create_model("resnet20", num_classes=2), create_model("resnet20", num_classes=5)
    >>> b.load_state_dict({k: v for k, v in a.state_dict().items() if not k.startswith("linear")}, strict=False)
    _IncompatibleKeys(missing_keys=['linear.weight', 'linear.bias'], unexpected_keys=[])
    >>> backbone_digest(a) == backbone_digest(b)  # same backbone, other heads
    True
    """
    groups = layer_groups(model)
    starts = [g.modules[0] for g in groups]
    skip = [m for g in groups[starts.index(before) if before in starts else -1 :] for m in g.modules]
    if before is not None and before not in starts:
        raise ConfigError(f"'{before}' does not start a layer group ({', '.join(starts)})", where="backbone_digest")
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        if name.endswith("num_batches_tracked") or any(name == h or name.startswith(h + ".") for h in skip):
            continue  # the head (and the groups from `before` on), and a counter that changes no output
        digest.update(f"{name}\0{tuple(tensor.shape)}\0{tensor.dtype}\n".encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def feature_key(
    model: nn.Module, images: torch.Tensor, transform: Transform, bf16: bool, layer: str | None = None
) -> str:
    """The cache key: backbone weights (those before ``layer``) + images + transform + precision + layer."""
    digest = hashlib.sha256()
    settings = {"version": CACHE_VERSION, "transform": repr(transform), "bf16": bf16, "model": type(model).__name__}
    digest.update(json.dumps(settings | {"layer": layer}, sort_keys=True).encode())
    digest.update(backbone_digest(model, layer).encode())
    digest.update(f"{tuple(images.shape)}\0{images.dtype}\n".encode())
    digest.update(images.contiguous().numpy().tobytes())
    return digest.hexdigest()[:32]


def extract_features(
    model: nn.Module,
    images: torch.Tensor,
    transform: Transform | None = None,
    cache_dir: str | Path | None = None,
    batch_size: int = 64,
    precision: str = "auto",
    layer: str | None = None,
) -> Features:
    """``model.forward_features`` over uint8 ``images`` (N, C, H, W), read from the cache when the key matches.

    ``transform`` turns a uint8 batch into the model's input (default: scale to [0, 1]); it must be
    deterministic. With ``cache_dir=None`` nothing is stored. ``layer`` (the first module of a layer
    group) stores that module's input instead: what the frozen groups before it compute.
    """
    transform = transform or Compose([Rescale()])
    plan = plan_speed(precision, channels_last=False)
    key = feature_key(model, images, transform, plan.bf16, layer)
    entry = Path(cache_dir) / key if cache_dir is not None else None
    if entry is not None:
        cached = _load(entry)
        if cached is not None:
            return Features(cached, key, from_cache=True)
    was_training = model.training
    model.eval()
    chunks: list[torch.Tensor] = []
    hook = None
    if layer is not None:
        hook = model.get_submodule(layer).register_forward_pre_hook(lambda _, args: chunks.append(args[0].float()))
    try:
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=plan.bf16):
            for x, _ in TensorLoader(images, torch.zeros(len(images)), batch_size).batches():
                out = model.forward_features(transform(x, torch.Generator().manual_seed(0)))
                if hook is None:
                    chunks.append(out.float())
    finally:
        if hook is not None:
            hook.remove()
    model.train(was_training)
    maps = torch.cat(chunks) if chunks else torch.zeros(0)  # (N, C, h, w)
    if entry is not None:
        _store(entry, maps, images)
        maps = _load(entry) if maps.numel() else maps  # what a later run reads (float16 round trip)
    return Features(maps, key)


class FeatureTrainer(Trainer):
    """A Trainer whose batches are cached feature maps: steps call ``model.forward_head`` only.

    ``self.model`` is the whole model, so checkpoints hold the backbone and the trained head.
    """

    def logits(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """``model``'s logits for a batch of cached inputs (``model`` is the trained one or its EMA copy)."""
        with self.autocast():
            return model.forward_head(x)


def backbone_tail(model: nn.Module, start: str, probe: torch.Tensor) -> tuple[str, ...] | None:
    """Names of the modules that turn ``start``'s input into ``forward_features``' output, if it is such a chain.

    The model's children (the items of a container when ``start`` is one of them) are recorded in the
    order ``forward_features(probe)`` calls them; those from ``start`` on form the tail, returned when
    replaying them gives ``forward_features``' output, else ``None`` (work done between the children,
    such as a functional activation). ``probe`` is a batch of model inputs.

    >>> from cnnlab.models import create_model
    >>> model = create_model("efficientnet_lite0", num_classes=2)
    >>> tail = backbone_tail(model, "_blocks.15", torch.randn(2, 3, 64, 64))
    >>> tail  # the dropout and the classifier belong to the head
    ('_blocks.15', '_conv_head', '_bn1', '_head_act')
    >>> backbone_tail(model, "_blocks.0", torch.randn(2, 3, 64, 64)) is not None
    True
    """
    sequence: dict[str, nn.Module] = {}
    for name, child in model.named_children():
        inside = start.startswith(name + ".")
        sequence |= {f"{name}.{n}": m for n, m in child.named_children()} if inside else {name: child}
    if start not in sequence:
        return None
    called: list[str] = []
    captured: list[torch.Tensor] = []
    hooks = [m.register_forward_hook(lambda *_, n=name: called.append(n)) for name, m in sequence.items()]
    hooks.append(sequence[start].register_forward_pre_hook(lambda _, args: captured.append(args[0])))
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            target = model.forward_features(probe)
            if start not in called:
                return None
            chain = tuple(called[called.index(start) :])
            x = captured[0]
            for name in chain:
                x = sequence[name](x)
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    same = x.shape == target.shape and torch.allclose(x, target, rtol=1e-4, atol=1e-6 * float(target.abs().max()))
    return chain if same else None


class TailTrainer(FeatureTrainer):
    """A Trainer on cached activations at the input of ``layer``: steps run the ``tail`` modules and the head."""

    def __init__(
        self, model: nn.Module, config: TrainConfig, *, tail: tuple[str, ...], layer: str, **options: Any
    ) -> None:
        super().__init__(model, config, **options)
        self.tail, self.layer = tail, layer  # layer: the module whose cached input the batches are

    def logits(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        with self.autocast():
            for name in self.tail:
                x = model.get_submodule(name)(x)
            return model.forward_head(x)


def train_head(
    model: nn.Module,
    train: tuple[torch.Tensor, torch.Tensor],
    val: tuple[torch.Tensor, torch.Tensor] | None = None,
    config: TrainConfig | None = None,
    callbacks: Sequence[Callback] = (),
) -> FeatureTrainer:
    """Freeze the backbone and train the head on cached ``(maps, targets)``; returns the trainer.

    >>> from cnnlab.models import create_model
    >>> model = create_model("resnet20", num_classes=2)
    >>> maps, y = torch.randn(32, 64, 2, 2), torch.randint(0, 2, (32,))
    >>> trainer = train_head(model, (maps, y), config=TrainConfig(epochs=2, batch_size=8))
    >>> len(trainer.history), model.conv1.weight.requires_grad, model.linear.weight.requires_grad
    (2, False, True)
    """
    config = config or TrainConfig()
    freeze(model, trainable=0)
    trainer = FeatureTrainer(model, replace(config, channels_last=False), callbacks=callbacks)
    loader = TensorLoader(*train, config.batch_size, shuffle=True, seed=config.seed)
    val_loader = TensorLoader(*val, config.eval_batch_size) if val is not None else None
    trainer.fit(loader, val_loader)
    return trainer


def set_mlp_head(model: nn.Module, hidden: int, num_classes: int, dropout: float = 0.2) -> None:
    """Replace the model's single linear classifier with Linear-ReLU-Dropout-Linear (``hidden`` units).

    >>> from cnnlab.models import create_model
    >>> model = create_model("resnet20")
    >>> set_mlp_head(model, 32, 3)
    >>> model(torch.zeros(1, 3, 32, 32)).shape, type(model.linear).__name__
    (torch.Size([1, 3]), 'Sequential')
    """
    names = tuple(getattr(model, "classifier_layers", ()))
    layer = model.get_submodule(names[0]) if len(names) == 1 else None
    if not isinstance(layer, nn.Linear):
        raise ConfigError(
            f"{type(model).__name__} has no single linear classifier to replace (classifier_layers={names})",
            where="set_mlp_head",
            fix="use a model whose head is one nn.Linear (ResNets, EfficientNet), or train its own head",
        )
    parent, _, attribute = names[0].rpartition(".")
    mlp = nn.Sequential(
        nn.Linear(layer.in_features, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout), nn.Linear(hidden, num_classes)
    )
    setattr(model.get_submodule(parent) if parent else model, attribute, mlp)


def _store(entry: Path, maps: torch.Tensor, images: torch.Tensor) -> None:
    buffer = io.BytesIO()
    np.save(buffer, maps.to(torch.float16).numpy(), allow_pickle=False)
    atomic_write_bytes(entry.with_suffix(".npy"), buffer.getvalue())
    meta = {"version": CACHE_VERSION, "images": list(images.shape), "maps": list(maps.shape)}
    atomic_write_text(entry.with_suffix(".json"), json.dumps(meta))


def _load(entry: Path) -> torch.Tensor | None:
    meta_path, maps_path = entry.with_suffix(".json"), entry.with_suffix(".npy")
    if not (meta_path.is_file() and maps_path.is_file()):
        return None
    try:
        meta = json.loads(meta_path.read_text())
        maps = np.load(maps_path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        warnings.warn(f"rebuilding unreadable feature cache entry {maps_path}: {exc}", stacklevel=3)
        return None
    if list(maps.shape) != meta.get("maps"):
        warnings.warn(f"rebuilding feature cache entry {maps_path}: shape differs from its .json", stacklevel=3)
        return None
    return torch.from_numpy(maps).float()
