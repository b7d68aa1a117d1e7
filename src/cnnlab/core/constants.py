"""Facts that several floors need and that must be written once.

>>> IMAGENET_MEAN, IMAGENET_STD
((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
"""

IMAGENET_MEAN = (0.485, 0.456, 0.406)
"""Per-channel RGB mean of ImageNet-1k on the 0..1 scale (torchvision's; what most pretrained weights expect)."""
IMAGENET_STD = (0.229, 0.224, 0.225)
"""Per-channel RGB standard deviation of ImageNet-1k on the 0..1 scale."""
