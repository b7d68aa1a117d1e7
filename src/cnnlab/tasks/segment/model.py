"""Building a registered segmentation network from a run's model options (and checking the options)."""

from __future__ import annotations

from typing import Any

from torch import nn

from cnnlab.core.errors import ConfigError, with_article
from cnnlab.models import create_model


def build_model(name: str, num_classes: int, in_chans: int, options: dict[str, Any], **extra: Any) -> nn.Module:
    """A registered segmentation model; an option its builder does not take is a :class:`ConfigError`.

    ``extra`` holds what only training needs (``weights=``, ``encoder_weights=``); a checkpoint is
    rebuilt from ``options`` alone and then loaded.
    """
    from cnnlab.models import model_entry

    if model_entry(name).task != "segment":
        raise ConfigError(
            f"'{name}' is {with_article(model_entry(name).task)} model", where="--model", fix="use unet or unet_lite0"
        )
    try:
        return create_model(name, num_classes=num_classes, in_chans=in_chans, **extra, **options)
    except TypeError as exc:
        where = "segment (depth/base_width/padding/batch_norm)"
        raise ConfigError(f"bad model option for '{name}': {exc}", where=where) from None
