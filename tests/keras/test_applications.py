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


def test_application_layers_have_keras_names_and_counts():
    """Keras 3.15 listed 154 layers for MobileNetV2(include_top=False) (``layers[119:121]`` = block_13_pad,
    block_13_depthwise; the last three Conv_1, Conv_1_bn, out_relu) and 19 for VGG16(include_top=False)."""
    from cnnlab.keras.applications import VGG16, MobileNetV2

    names = [layer.name for layer in MobileNetV2(weights=None, include_top=False, input_shape=(96, 96, 3)).layers]
    assert len(names) == 154 and names[:2] == ["input_layer", "Conv1"]
    assert names[119:121] == ["block_13_pad", "block_13_depthwise"] and names[-3:] == [
        "Conv_1",
        "Conv_1_bn",
        "out_relu",
    ]
    vgg = [layer.name for layer in VGG16(weights=None, include_top=False, input_shape=(32, 32, 3)).layers]
    assert len(vgg) == 19 and vgg[1:4] == ["block1_conv1", "block1_conv2", "block1_pool"] and vgg[-1] == "block5_pool"


def test_the_transfer_notebook_fine_tunes_the_top_of_mobilenet_v2(one_thread):
    """The course's alpaca notebook: a frozen base, then ``base.trainable = True`` and ``layers[:120]`` frozen
    again; the frozen layers (BatchNorm's statistics included) do not move, the rest trains. Keras 3.15 left 36
    trainable weights in the base after the same freezing."""
    from cnnlab import keras
    from cnnlab.keras import layers
    from cnnlab.keras.applications import MobileNetV2

    base = MobileNetV2(input_shape=(96, 96, 3), include_top=False, weights=None)
    base.trainable = False
    inputs = keras.Input(shape=(96, 96, 3))
    x = keras.Sequential([layers.RandomFlip("horizontal")])(inputs)
    x = base(x, training=False)
    outputs = layers.Dense(1)(layers.Dropout(0.2)(layers.GlobalAveragePooling2D()(x)))
    model = keras.Model(inputs, outputs)
    assert model.layers[2] is base  # Keras 3.15's index too (TF 2's preprocess_input ops made it layers[4])
    base.trainable = True
    for layer in base.layers[:120]:
        layer.trainable = False
    assert len(base.trainable_weights) == 36
    frozen = [w.detach().clone() for layer in base.layers[:120] for w in layer.weights]
    tuned = [w.detach().clone() for layer in base.layers[120:] for w in layer.weights]
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=keras.losses.BinaryCrossentropy(from_logits=True))
    images = np.random.default_rng(0).uniform(0, 255, (8, 96, 96, 3)).astype(np.float32)
    model.fit(images, np.array([0, 1] * 4, np.float32), epochs=1, batch_size=4, verbose=0)
    after = [w for layer in base.layers[:120] for w in layer.weights]
    assert all(torch.equal(a, b) for a, b in zip(frozen, after, strict=True))
    now = [w for layer in base.layers[120:] for w in layer.weights]
    moved = [not torch.equal(a, b) for a, b in zip(tuned, now, strict=True)]
    assert sum(moved) >= 30  # weights and the unfrozen BatchNorms' statistics


def test_a_frozen_inner_batchnorm_keeps_its_statistics_while_the_others_learn_theirs(one_thread):
    from cnnlab.keras.applications import MobileNetV2

    base = MobileNetV2(weights=None, include_top=False, input_shape=(64, 64, 3))
    first, last = base.layers[2], base.layers[-2]  # bn_Conv1, Conv_1_bn
    first.trainable = False
    before = [first.module.running_mean.clone(), last.module.running_mean.clone()]
    base.train()(torch.rand(2, 3, 64, 64) * 255)
    assert torch.equal(first.module.running_mean, before[0]) and not torch.equal(last.module.running_mean, before[1])
    assert not first.module.weight.requires_grad and last.module.weight.requires_grad
    base.trainable = False
    base.trainable = True  # as in Keras, the model's flag sets every inner layer's
    assert first.trainable and first.module.weight.requires_grad


def test_application_summary_lists_keras_rows_and_counts():
    """Keras 3.15's MobileNetV2(include_top=False, input_shape=(160, 160, 3)).summary(): Conv1 (None, 80, 80, 32)
    with 864 parameters, block_1_pad (None, 81, 81, 96), totals 2,257,984 / 2,223,872 / 34,112."""
    from cnnlab.keras.applications import MobileNetV2

    lines: list[str] = []
    MobileNetV2(weights=None, include_top=False, input_shape=(160, 160, 3)).summary(print_fn=lines.append)
    rows = {line.split()[0]: line for line in lines if line.startswith(" ") and "(None" in line}
    assert len(rows) == 154 and "(None, 80, 80, 32)" in rows["Conv1"] and rows["Conv1"].rstrip().endswith("864")
    assert "(None, 81, 81, 96)" in rows["block_1_pad"] and "(ZeroPadding2D)" in rows["block_1_pad"]
    assert "Total params: 2,257,984 (8.61 MB)" in lines and "Non-trainable params: 34,112 (133.25 KB)" in lines
