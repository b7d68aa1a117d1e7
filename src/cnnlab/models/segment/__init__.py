"""Segmentation networks (registered with ``task="segment"``): U-Net and U-Net on an EfficientNet-Lite0 encoder."""

from cnnlab.models.segment import unet, unet_encoder

__all__ = ["unet", "unet_encoder"]
