"""Keras-style layers over torch.nn, fixed kernels (Sobel, Scharr) and summary() (imports core only)."""

from cnnlab.layers.activations import ACTIVATIONS, Activation
from cnnlab.layers.base import LAYERS, Input, Layer, SymbolicTensor, layer_from_config
from cnnlab.layers.conv import Conv1D, Conv2D, Conv2DTranspose, Conv3D, DepthwiseConv2D, SeparableConv2D
from cnnlab.layers.core_layers import (
    BatchNormalization,
    Dense,
    Dropout,
    Flatten,
    Rescaling,
    SpatialDropout2D,
    UpSampling2D,
    ZeroPadding2D,
)
from cnnlab.layers.merge import Add, Concatenate
from cnnlab.layers.pooling import (
    AveragePooling1D,
    AveragePooling2D,
    AveragePooling3D,
    GlobalAveragePooling1D,
    GlobalAveragePooling2D,
    GlobalAveragePooling3D,
    GlobalMaxPooling1D,
    GlobalMaxPooling2D,
    GlobalMaxPooling3D,
    MaxPooling1D,
    MaxPooling2D,
    MaxPooling3D,
)

__all__ = [
    "ACTIVATIONS",
    "LAYERS",
    "Activation",
    "Add",
    "AveragePooling1D",
    "AveragePooling2D",
    "AveragePooling3D",
    "BatchNormalization",
    "Concatenate",
    "Conv1D",
    "Conv2D",
    "Conv2DTranspose",
    "Conv3D",
    "Dense",
    "DepthwiseConv2D",
    "Dropout",
    "Flatten",
    "GlobalAveragePooling1D",
    "GlobalAveragePooling2D",
    "GlobalAveragePooling3D",
    "GlobalMaxPooling1D",
    "GlobalMaxPooling2D",
    "GlobalMaxPooling3D",
    "Input",
    "Layer",
    "MaxPooling1D",
    "MaxPooling2D",
    "MaxPooling3D",
    "Rescaling",
    "SeparableConv2D",
    "SpatialDropout2D",
    "SymbolicTensor",
    "UpSampling2D",
    "ZeroPadding2D",
    "layer_from_config",
]
