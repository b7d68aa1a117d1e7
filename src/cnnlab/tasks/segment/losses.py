"""Segmentation losses ``(logits (B, K, H, W), targets (B, H, W) int) -> scalar``, by name in :data:`LOSSES`
(the ``--loss`` choices)."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from cnnlab.core.registry import Registry

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

LOSSES: Registry[LossFn] = Registry("segmentation loss")
"""Losses ``(logits (B, K, H, W), targets (B, H, W) int) -> scalar``; ``--loss`` choices come from here."""

_EPS = 1.0  # Dice smoothing: an empty class in a batch gives loss 0, not 0/0


@LOSSES.register("ce")
def cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-pixel softmax cross-entropy (the U-Net paper's loss, without its border weight map)."""
    return F.cross_entropy(logits, targets.long())


@LOSSES.register("bce")
def binary_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Sigmoid BCE per class map against one-hot targets (for two classes: a binary mask per map).

    >>> round(binary_cross_entropy(torch.zeros(1, 2, 1, 1), torch.zeros(1, 1, 1)).item(), 4)  # log 2
    0.6931
    """
    one_hot = F.one_hot(targets.long(), logits.shape[1]).permute(0, 3, 1, 2).to(logits.dtype)  # (B, K, H, W)
    return F.binary_cross_entropy_with_logits(logits, one_hot)


@LOSSES.register("dice")
def dice_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """1 - soft Dice of the softmax probabilities, per class over the batch, averaged over classes.

    >>> perfect = torch.tensor([[[[9.0, -9.0]], [[-9.0, 9.0]]]])  # predicts [0, 1] confidently
    >>> dice_loss(perfect, torch.tensor([[[0, 1]]])).item() < 1e-3
    True
    """
    probs = logits.softmax(dim=1)  # (B, K, H, W)
    one_hot = F.one_hot(targets.long(), logits.shape[1]).permute(0, 3, 1, 2).to(probs.dtype)
    overlap = (probs * one_hot).sum(dim=(0, 2, 3))  # (K,)
    total = probs.sum(dim=(0, 2, 3)) + one_hot.sum(dim=(0, 2, 3))
    return 1 - ((2 * overlap + _EPS) / (total + _EPS)).mean()


@LOSSES.register("bce_dice")
def bce_dice_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """BCE + Dice: pixel-wise calibration plus a direct push on region overlap (thin classes)."""
    return binary_cross_entropy(logits, targets) + dice_loss(logits, targets)


@LOSSES.register("focal")
def focal_loss(logits: torch.Tensor, targets: torch.Tensor, gamma: float = 2.0) -> torch.Tensor:
    """Focal loss (Lin et al. 2017): cross-entropy scaled by ``(1 - p_true) ** gamma``; ``gamma=0`` is CE.

    >>> x, y = torch.randn(2, 3, 4, 4), torch.randint(0, 3, (2, 4, 4))
    >>> torch.allclose(focal_loss(x, y, gamma=0.0), cross_entropy(x, y))
    True
    """
    log_p = F.log_softmax(logits, dim=1).gather(1, targets.long()[:, None])[:, 0]  # (B, H, W) log p_true
    return (-((1 - log_p.exp()) ** gamma) * log_p).mean()
