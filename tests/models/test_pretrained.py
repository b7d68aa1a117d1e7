"""Real pretrained weights from ../shared/data: strict loading and ImageNet predictions on real photos."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from cnnlab.data.preprocess import load_image, preprocess_image
from cnnlab.models import create_model, weight_spec
from cnnlab.models.imagenet_classes import IMAGENET_CLASSES
from cnnlab.models.weights import read_state_dict
from cnnlab.tasks.classify.predict import predict_images

pytestmark = pytest.mark.data

LITE0 = "efficientnet-lite0-imagenet/efficientnet-lite0-57934424.pth"
AKAMASTER = {"resnet20": "resnet20-12fca82f.th", "resnet56": "resnet56-4bfd9763.th"}
DOG_BREEDS = range(151, 269)  # ImageNet classes 151 (Chihuahua) .. 268 (Mexican hairless)


def test_imagenet_class_table_matches_the_shared_labels_file(shared_data: Path) -> None:
    labels = json.loads((shared_data / "imagenet-classes" / "labels_map.json").read_text())
    assert tuple(labels[str(i)] for i in range(1000)) == IMAGENET_CLASSES


def test_efficientnet_lite0_weights_load_strictly(shared_data: Path) -> None:
    state = torch.load(shared_data / LITE0, map_location="cpu", weights_only=True)
    model = create_model("efficientnet_lite0")
    assert model.load_state_dict(state, strict=True)  # all keys matched, no adaptation
    loaded = create_model("efficientnet_lite0", weights=shared_data / LITE0)
    assert torch.equal(loaded._fc.weight, state["_fc.weight"])


@pytest.mark.parametrize("name", AKAMASTER)
def test_akamaster_cifar_resnets_load_strictly(shared_data: Path, name: str) -> None:
    path = shared_data / "resnet-cifar10-akamaster" / AKAMASTER[name]
    state = read_state_dict(path)  # 'module.' stripped, {'state_dict': ...} unwrapped
    assert create_model(name).load_state_dict(state, strict=True)
    model = create_model(name, weights=path)
    assert torch.equal(model.linear.weight, state["linear.weight"])


def test_dog_and_cat_image_top5(shared_data: Path) -> None:
    [result] = predict_images(
        "efficientnet_lite0", shared_data / LITE0, [shared_data / "gradcam-samples" / "both.png"], top_k=5
    )
    top = result["top"]
    assert top[0]["index"] in DOG_BREEDS
    assert "tiger cat" in [row["label"] for row in top]


@pytest.mark.slow
def test_hymenoptera_ants_and_bees_get_their_imagenet_classes(shared_data: Path) -> None:
    spec = weight_spec("efficientnet_lite0.imagenet")
    model = create_model("efficientnet_lite0", weights=shared_data / LITE0).eval()
    rates = {}
    for folder, target in (("ants", 310), ("bees", 309)):
        files = sorted((shared_data / "hymenoptera" / "val" / folder).glob("*.jp*g"))
        hits = 0
        for start in range(0, len(files), 32):
            batch = torch.stack(
                [
                    preprocess_image(load_image(f), spec.input_size[1], spec.resize, spec.mean, spec.std)
                    for f in files[start : start + 32]
                ]
            )
            with torch.no_grad():
                hits += int((model(batch).argmax(dim=1) == target).sum())
        rates[folder] = hits / len(files)
    assert rates["ants"] >= 0.80, rates
    assert rates["bees"] >= 0.80, rates
