"""Grad-CAM on real ImageNet weights: on the dog+cat photo the cat map and the dog map light up different animals.

In ``gradcam-samples/both.png`` the bull mastiff sits in the upper half and the tiger cat lies in the
lower half, so the two maps must peak in different halves (rows < 112 vs >= 112 of the 224 crop).
"""

from __future__ import annotations

import pytest
import torch

from cnnlab.cli.app import main
from cnnlab.explain import GradCAM, GradCAMPlusPlus
from cnnlab.tasks.classify.predictor import load_pretrained

TIGER_CAT = 282
DOG_BREEDS = range(151, 269)  # ImageNet classes 151 (Chihuahua) .. 268 (Mexican hairless)
WEIGHTS = "efficientnet-lite0-imagenet/efficientnet-lite0-57934424.pth"
IMAGE = "gradcam-samples/both.png"


def _peak_row(heatmap: torch.Tensor) -> int:
    return int(heatmap.argmax()) // heatmap.shape[1]


@pytest.mark.data
@pytest.mark.slow
def test_cat_and_dog_maps_peak_in_different_halves(shared_data):
    clf = load_pretrained("efficientnet_lite0", shared_data / WEIGHTS)
    x = clf.preprocess([shared_data / IMAGE])  # (1, 3, 224, 224)
    probs = clf.predict_proba(x)[0]
    dog = max(DOG_BREEDS, key=lambda c: float(probs[c]))
    assert dog == 243 and clf.classes[dog] == "bull mastiff"  # the README's top-1
    half = x.shape[-2] // 2
    for cam_type in (GradCAM, GradCAMPlusPlus):
        with cam_type(clf.model) as cam:  # the contract's default layer, the head activation
            maps = cam(x.expand(2, -1, -1, -1), target=[TIGER_CAT, dog])
        cat_row, dog_row = _peak_row(maps[0]), _peak_row(maps[1])
        assert cat_row >= half > dog_row, (cam_type.__name__, cat_row, dog_row)
        # most of each map's mass lies in its animal's half, not just the single peak
        assert maps[0, half:].sum() > maps[0, :half].sum() and maps[1, :half].sum() > maps[1, half:].sum()


@pytest.mark.data
@pytest.mark.slow
def test_the_command_explains_a_class_by_name(shared_data, tmp_path, capsys):
    args = ["explain", "--model", "efficientnet_lite0", "--weights", str(shared_data / WEIGHTS)]
    assert main([*args, str(shared_data / IMAGE), "--class", "tiger cat", "--out", str(tmp_path)]) == 0
    line = capsys.readouterr().out.strip()
    assert "tiger cat (class 282, p=0.0" in line and (tmp_path / "both_gradcam_tiger-cat.png").is_file()
