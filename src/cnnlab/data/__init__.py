"""Datasets, transforms, augmentation and batch loaders (imports core only).

Sources (:mod:`~cnnlab.data.datasets`) decode everything once into a uint8 ``Dataset``;
augmentation (:mod:`~cnnlab.data.augment`, :mod:`~cnnlab.data.testtime`,
:mod:`~cnnlab.data.presets`) works on whole batches and plugs into
:class:`~cnnlab.data.loader.TensorLoader` as its ``transform``.
"""

from cnnlab.data.augment import TRANSFORMS, Compose, CutMix, MixUp, from_keras, from_spec
from cnnlab.data.cache import DataWarning, Problem
from cnnlab.data.datasets import (
    Dataset,
    from_arrays,
    load_csv,
    load_image_folder,
    load_mnist,
    load_npz,
    load_segmentation,
    load_split_folders,
    open_source,
    stratified_split,
)
from cnnlab.data.elastic import ElasticDeform
from cnnlab.data.presets import PRESETS
from cnnlab.data.testtime import CenterCrop, FiveCrop, Resize, ResizePad, TenCrop

__all__ = [
    "PRESETS",
    "TRANSFORMS",
    "CenterCrop",
    "Compose",
    "CutMix",
    "DataWarning",
    "Dataset",
    "ElasticDeform",
    "FiveCrop",
    "MixUp",
    "Problem",
    "Resize",
    "ResizePad",
    "TenCrop",
    "from_arrays",
    "from_keras",
    "from_spec",
    "load_csv",
    "load_image_folder",
    "load_mnist",
    "load_npz",
    "load_segmentation",
    "load_split_folders",
    "open_source",
    "stratified_split",
]
