"""Networks for series, audio, clips and volumes (registered with ``task="sequence"``): channels-first
``(B, C, T)`` input for the 1-D nets (``fcn``, ``resnet1d``, ``inception_time``, ``m5``) and ``(B, C, D, H, W)``
for the 3-D ones (``video``: ``c3d_small``, ``r3d_18``, ``r2plus1d_18``; ``unet3d``, per-voxel logits)."""

from cnnlab.models.sequence import fcn, fcn_ensemble, inception_time, m5, resnet1d, unet3d, video

__all__ = ["fcn", "fcn_ensemble", "inception_time", "m5", "resnet1d", "unet3d", "video"]
