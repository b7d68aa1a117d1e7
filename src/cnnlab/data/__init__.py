"""Datasets, transforms, augmentation and batch loaders (imports core only)."""
