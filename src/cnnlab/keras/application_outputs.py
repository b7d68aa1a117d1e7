"""The outputs of an application's inner layers as tensors of a functional graph (Keras' ``base.input``,
``base.get_layer("block5_conv4").output``): a model over them returns those activations, sharing the
application's weights, as the course's style-transfer and feature-visualisation code builds it.

An inner output is a one-input layer, :class:`InnerOutput`, that runs the application on the graph's input and
keeps what one torch module produced (a forward hook). When a model has several of them over the same
application, the first one of a forward pass runs the network once for all (stopping after the last one needed)
and the others take their tensors from it.

Which torch module gives a Keras layer's output depends on the net: VGG16 / VGG19 (a Keras ``Conv2D`` layer is
torch's convolution and the ReLU after it, so its output is the ReLU's; a ``block*_pool`` is torch's max-pooling);
the other nets' inner outputs are refused with what to use instead.

>>> import numpy as np
>>> from cnnlab import keras
>>> vgg = keras.applications.VGG19(weights=None, include_top=False, input_shape=(64, 64, 3))
>>> names = ["block1_conv1", "block3_conv1", "block5_conv1"]
>>> extractor = keras.Model([vgg.input], [vgg.get_layer(name).output for name in names])
>>> [a.shape for a in extractor.predict(np.zeros((1, 64, 64, 3), "float32"), verbose=0)]
[(1, 64, 64, 64), (1, 16, 16, 256), (1, 4, 4, 512)]
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from cnnlab.core.errors import ConfigError
from cnnlab.keras.application_layers import vgg_layers
from cnnlab.keras.weight_lists import WeightLists
from cnnlab.layers.base import Layer, Shape

if TYPE_CHECKING:
    from cnnlab.keras.applications import Application

__all__ = ["InnerOutput", "output_modules"]


def output_modules(model: str, net: nn.Module) -> dict[str, nn.Module]:
    """Keras' inner layer name -> the torch module whose output is that layer's output, for the nets that have
    them (VGG16, VGG19); an empty dict for the others."""
    if model not in ("vgg16", "vgg19"):
        return {}
    return {name: output for name, _, output in vgg_layers(net)}


class _Enough(Exception):
    """Raised by a hook once every inner output a forward pass needs is kept: the rest of the net is skipped."""


class InnerOutput(WeightLists, Layer):
    """The output of ``application``'s inner layer ``name`` (its torch ``module``), computed from the input image.

    Its weights are the application's (``count_params`` of a model over several inner outputs counts each weight
    once); a model holding one cannot be saved (save the application's model, or its weights).
    """

    def __init__(self, application: Application, name: str, module: nn.Module, keras_class_name: str) -> None:
        super().__init__(name=name)
        self.application = application
        self.keras_class_name = keras_class_name
        self.__dict__["_module"] = module  # the application owns it: not a second sub-module path

    # ----- Keras' layer face --------------------------------------------------------------------------
    @property
    def trainable(self) -> bool:
        return self.application.trainable

    @trainable.setter
    def trainable(self, value: bool) -> None:
        self.application.trainable = value

    @property
    def weights(self) -> list[torch.Tensor]:
        """The application's weights up to this layer, in Keras' order."""
        layers = self.application.layers
        end = next(i for i, layer in enumerate(layers) if layer.name == self.name)
        return [w for layer in layers[: end + 1] for w in layer.weights]

    def get_config(self) -> dict[str, Any]:
        raise ConfigError(
            f"a model over the inner layer '{self.name}' of the application '{self.application.name}' cannot be "
            "saved or rebuilt from a config",
            fix="save the application itself (or its weights) and build the model over it again after loading",
        )

    # ----- computing --------------------------------------------------------------------------------
    def compute_output_shape(self, input_shape: Shape) -> Shape:
        if input_shape != self.application.input_shape:
            self.fail(f"takes the application's input {self.application.input_shape}; received {input_shape}")
        shape = next(layer.output_shape for layer in self.application.layers if layer.name == self.name)
        assert shape is not None
        return shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shared = self.application.__dict__.get("_inner_pass")
        if shared is None or shared[0]() is not x or self.name not in shared[1]:
            shared = (weakref.ref(x), self._run_once(x))
            self.application.__dict__["_inner_pass"] = shared
        return shared[1].pop(self.name)

    def _run_once(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """One pass of the application on ``x``, keeping the output of every inner layer a model has asked for."""
        if not self.application.built:  # its first build runs the net once on zeros: not with the hooks on
            self.application.build(tuple(x.shape[1:]))
        wanted: dict[int, str] = {id(t._module): t.name for t in self.application.inner_outputs()}
        kept: dict[str, torch.Tensor] = {}

        def keep(module: nn.Module, args: Any, out: torch.Tensor) -> None:
            kept[wanted[id(module)]] = out
            if len(kept) == len(wanted):
                raise _Enough

        hooks = [t._module.register_forward_hook(keep) for t in self.application.inner_outputs()]
        try:
            self.application(x)
        except _Enough:
            pass
        finally:
            for hook in hooks:
                hook.remove()
        return kept
