"""keras.applications: zoo networks as layers, with local weights, heads, pooling and freezing."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cnnlab.core.errors import ConfigError
from cnnlab.keras.applications import ResNet20
from cnnlab.models.registry import create_model

X = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3)).astype(np.float32)


def test_heads_and_pooling_give_keras_shapes(one_thread):
    top = ResNet20(weights=None, input_shape=(32, 32, 3))
    probabilities = top.predict(X)
    assert probabilities.shape == (2, 10) and np.allclose(probabilities.sum(1), 1, atol=1e-5)
    assert top.activation == "softmax"
    maps = ResNet20(weights=None, include_top=False, input_shape=(32, 32, 3))
    assert maps.predict(X).shape == (2, 8, 8, 64)  # NHWC, as Keras
    assert ResNet20(weights=None, include_top=False, pooling="max").predict(X).shape == (2, 64)
    assert ResNet20(weights=None, classes=3, classifier_activation=None).predict(X).shape == (2, 3)


def test_a_frozen_base_trains_nothing_and_keeps_its_batchnorm_statistics(one_thread):
    base = ResNet20(weights=None, include_top=False, pooling="avg", input_shape=(32, 32, 3))
    base.trainable = False
    before = {k: v.clone() for k, v in base.state_dict().items()}
    base.train()(torch.rand(4, 3, 32, 32) * 255)
    assert not any(p.requires_grad for p in base.parameters())
    assert all(torch.equal(before[k], v) for k, v in base.state_dict().items())


def test_weights_the_zoo_does_not_have_are_named():
    with pytest.raises(ConfigError, match=r"resnet20 has no 'imagenet' weights.*weights='cifar10'"):
        ResNet20(weights="imagenet")


@pytest.mark.data
def test_local_cifar10_weights_match_the_zoo_model(shared_data, monkeypatch, one_thread):
    monkeypatch.setenv("CNNLAB_WEIGHTS", str(shared_data / "resnet-cifar10-akamaster"))
    app = ResNet20(classifier_activation=None)  # weights="cifar10", found locally
    zoo = create_model("resnet20", weights="resnet20.cifar10").eval()
    mean = torch.tensor(app.mean.flatten().tolist()).view(1, 3, 1, 1)
    std = torch.tensor(app.std.flatten().tolist()).view(1, 3, 1, 1)
    with torch.inference_mode():
        expected = zoo((torch.from_numpy(X).permute(0, 3, 1, 2) - mean) / std)
    assert np.allclose(app.predict(X), expected.numpy(), atol=1e-4)


def test_the_per_model_modules_and_decode_predictions_read_as_keras():
    """`keras.applications.mobilenet_v2.preprocess_input` / `.decode_predictions` (attribute or import), top-k
    best first with Keras' short names (checked against the ImageNet names of classes 281 and 282)."""
    from cnnlab.keras.applications.mobilenet_v2 import MobileNetV2, decode_predictions, preprocess_input

    from cnnlab import keras
    from cnnlab.models.imagenet_classes import IMAGENET_CLASSES

    assert MobileNetV2 is keras.applications.MobileNetV2 and keras.applications.vgg16.VGG16 is keras.applications.VGG16
    assert preprocess_input is keras.applications.resnet50.preprocess_input
    scores = np.full((2, 1000), 0.0001, np.float32)
    scores[0, [281, 282, 5]] = [0.5, 0.3, 0.1]
    scores[1, 309] = 0.9
    decoded = decode_predictions(scores, top=2)
    assert IMAGENET_CLASSES[281].startswith("tabby") and IMAGENET_CLASSES[282].startswith("tiger cat")
    assert decoded[0] == [("281", "tabby", 0.5), ("282", "tiger_cat", 0.3)]
    assert decoded[1][0] == ("309", "bee", 0.9)
    with pytest.raises(Exception, match=r"shape \(samples, 1000\)"):
        decode_predictions(np.zeros((1, 10)))
