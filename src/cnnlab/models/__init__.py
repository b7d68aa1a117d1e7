"""The model zoo: import the families so their builders register themselves."""

from cnnlab.models import (
    alexnet,
    detect,
    efficientnet,
    embed,
    googlenet,
    lenet,
    mobilenet,
    nin,
    resnet,
    resnet9,
    resnet_cifar,
    segment,
    sequence,
    small,
    vgg,
)
from cnnlab.models.base import Classifier
from cnnlab.models.registry import create_model, input_options, list_models, model_entry, register_model
from cnnlab.models.weights import WeightSpec, load_weights, weight_spec, weight_specs

__all__ = [
    "Classifier",
    "WeightSpec",
    "alexnet",
    "create_model",
    "detect",
    "efficientnet",
    "embed",
    "googlenet",
    "input_options",
    "lenet",
    "list_models",
    "load_weights",
    "mobilenet",
    "model_entry",
    "nin",
    "register_model",
    "resnet",
    "resnet9",
    "resnet_cifar",
    "segment",
    "sequence",
    "small",
    "vgg",
    "weight_spec",
    "weight_specs",
]
