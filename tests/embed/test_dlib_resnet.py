"""dlib's ResNet-29 face embedder (face-api.js' weights, ``shared/data/face-models``): the layer sizes against
hand arithmetic, the down block against face-api.js' shortcut rule worked by hand, the chip maker against
scipy's linear interpolation, the weight file's keys and parameter count against its README, and the
embeddings against ORL identities (README: 97.5% leave-one-out 1-NN on all 400, scored here by scikit-learn)
and against one stored embedding.

The stored embedding ``fixtures/dlib_embedding.npy`` is the port's output for :func:`synthetic_face` (no dataset
image is kept in the repository), made once with the real weights::

    np.save("tests/embed/fixtures/dlib_embedding.npy", embed(net, [synthetic_face()])[0])
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.ndimage import map_coordinates
from scipy.spatial.distance import pdist, squareform
from sklearn.model_selection import LeaveOneOut, cross_val_score
from sklearn.neighbors import KNeighborsClassifier

from cnnlab.core.errors import ConfigError, DataError, ShapeError, WeightsError
from cnnlab.models.embed.dlib_resnet import (
    FILE_NAME,
    MEAN_RGB,
    MIN_SIZE,
    DlibResNet29,
    ResidualBlock,
    dlib_chip,
    dlib_resnet29,
    find_weights,
    load_dlib_resnet29,
    resize_bilinear_tf,
)

pytestmark = pytest.mark.usefixtures("one_thread")  # small tensors: faster on one thread of a shared machine

FIXTURE = Path(__file__).parent / "fixtures" / "dlib_embedding.npy"


@pytest.fixture(scope="module")
def net(shared_data: Path) -> DlibResNet29:
    return load_dlib_resnet29(shared_data / "face-models" / FILE_NAME)


def embed(net: DlibResNet29, crops: list[np.ndarray]) -> np.ndarray:
    with torch.no_grad():
        return net(torch.stack([dlib_chip(crop) for crop in crops])).numpy()


def synthetic_face(height: int = 120, width: int = 100) -> np.ndarray:
    """A cartoon face (skin oval, eyes, brows, nose, mouth on a blue-grey background), uint8 RGB, made with
    arithmetic only, so it is the same on every machine."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    y, x = 2 * y / (height - 1) - 1, 2 * x / (width - 1) - 1  # both in [-1, 1]

    def oval(cx: float, cy: float, rx: float, ry: float) -> np.ndarray:
        return ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1

    image = np.stack([90 + 30 * y, 100 + 30 * y, 120 + 20 * y], axis=-1)
    image[oval(0, 0.05, 0.72, 0.9)] = (205, 165, 135)
    image *= (1 - 0.15 * x**2)[..., None]  # shading towards the cheeks
    for side in (-1, 1):
        image[oval(0.32 * side, -0.38, 0.2, 0.05)] = (70, 50, 40)  # brow
        image[oval(0.3 * side, -0.2, 0.15, 0.07)] = (245, 245, 240)  # eye white
        image[oval(0.3 * side, -0.2, 0.06, 0.06)] = (40, 30, 30)  # iris
    image[oval(0, 0.12, 0.06, 0.2) & (x > 0)] = (170, 130, 105)  # the nose's shadow
    image[oval(0, 0.47, 0.3, 0.08)] = (150, 60, 65)  # mouth
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


# --- the network -----------------------------------------------------------------------------------------------


def hand_sizes(side: int) -> list[int]:
    """Map sides by hand: 7x7/2 'valid' conv, 3x3/2 'valid' max-pool, then each down block gives the 2x2 pool's
    floor(n / 2) (its conv gives floor((n - 3) / 2) + 1, padded up to that)."""
    sizes = [(side - 7) // 2 + 1]
    sizes.append((sizes[-1] - 3) // 2 + 1)
    for _ in range(4):
        sizes.append(sizes[-1] // 2)
    return sizes


def test_parameter_count_is_the_readmes() -> None:
    assert sum(p.numel() for p in DlibResNet29().parameters()) == 5_614_592


def test_map_sizes_follow_the_hand_arithmetic() -> None:
    net = DlibResNet29().eval()
    seen = {}
    for name in ("conv32_down", "conv32_3", "conv64_down", "conv128_down", "conv256_down", "conv256_down_out"):
        net.get_submodule(name).register_forward_hook(lambda m, i, o, name=name: seen.update({name: o.shape[-1]}))
    with torch.no_grad():
        assert net(torch.zeros(1, 3, 150, 150)).shape == (1, 128)
    assert hand_sizes(150) == [72, 35, 17, 8, 4, 2]
    assert list(seen.values()) == hand_sizes(150)


def test_the_smallest_side_is_where_the_last_down_block_has_three_pixels() -> None:
    # the last down block's 3x3 'valid' conv needs 3 pixels: the block input is hand_sizes(side)[-2]
    smallest = next(side for side in range(20, 300) if hand_sizes(side)[-2] >= 3)
    assert smallest == MIN_SIZE == 103
    net = DlibResNet29().eval()
    with torch.no_grad():
        assert net(torch.zeros(1, 3, 103, 161)).shape == (1, 128)  # any side from 103 up, not only squares
    with pytest.raises(ShapeError, match="at least 103"):
        net(torch.zeros(1, 3, 102, 150))
    with pytest.raises(ShapeError, match="RGB"):
        net(torch.zeros(1, 1, 150, 150))


@pytest.mark.parametrize(("height", "width"), [(8, 8), (9, 9), (8, 9)])
def test_down_block_follows_face_apis_shortcut_rule(height: int, width: int) -> None:
    torch.manual_seed(0)
    block = ResidualBlock(2, 4, down=True).eval()
    with torch.no_grad():  # the conv branch outputs exactly 1 wherever it has a pixel
        block.conv2.scale.zero_()
        block.conv2.shift.fill_(1.0)
    x = torch.rand(1, 2, height, width)
    with torch.no_grad():
        out = block(x)[0].numpy()
    pooled = x[0].numpy()[:, : height // 2 * 2, : width // 2 * 2]
    pooled = pooled.reshape(2, height // 2, 2, width // 2, 2).mean(axis=(2, 4))
    conv_rows, conv_cols = (height - 3) // 2 + 1, (width - 3) // 2 + 1  # the stride-2 'valid' conv's map
    branch = np.zeros((4, height // 2, width // 2), np.float32)
    branch[:, :conv_rows, :conv_cols] = 1.0  # zero rows/columns added at the bottom/right only
    expected = branch + np.concatenate([pooled, np.zeros_like(pooled)])  # zero channels after the pooled ones
    np.testing.assert_allclose(out, expected, atol=1e-6)


def test_builder_takes_only_the_pretrained_layout(tmp_path: Path) -> None:
    assert dlib_resnet29(pretrained=None).fc.weight.shape == (128, 256)
    with pytest.raises(ConfigError, match="num_classes must be 128"):
        dlib_resnet29(num_classes=10, pretrained=None)
    with pytest.raises(ConfigError, match="in_chans must be 3"):
        dlib_resnet29(in_chans=1, pretrained=None)
    torch.save({"fc.weight": torch.zeros(128, 256)}, tmp_path / "partial.pth")
    with pytest.raises(WeightsError, match="conv32_down"):
        dlib_resnet29(pretrained=tmp_path / "partial.pth")


def test_weights_are_searched_never_downloaded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CNNLAB_WEIGHTS", str(tmp_path / "mine"))
    monkeypatch.setenv("CNNLAB_SHARED_DATA", str(tmp_path / "shared"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)  # no ../shared/data from here
    with pytest.raises(WeightsError) as info:
        load_dlib_resnet29()
    assert FILE_NAME in str(info.value) and str(tmp_path / "mine") in str(info.value)
    assert "shared/face-models" in str(info.value) and "../shared/data/face-models" in str(info.value)
    assert not dlib_resnet29().fc.weight.eq(0.5).all()  # "auto" with no file: random weights, not an error
    found = tmp_path / "shared" / "face-models" / FILE_NAME
    found.parent.mkdir(parents=True)
    state = DlibResNet29().state_dict()
    state["fc.weight"].fill_(0.5)
    torch.save(state, found)
    assert find_weights() == found
    assert dlib_resnet29().fc.weight.eq(0.5).all()  # "auto" found and loaded it


# --- the chip --------------------------------------------------------------------------------------------------


def test_tensorflow_bilinear_resize_matches_linear_interpolation_at_i_times_scale() -> None:
    image = np.random.default_rng(0).uniform(0, 255, (3, 37, 52))
    for size in (150, 20):  # up and down
        out = resize_bilinear_tf(torch.from_numpy(image).float(), size).numpy()
        rows = np.arange(size)[:, None] * 37 / size + np.zeros((1, size))
        cols = np.arange(size)[None, :] * 52 / size + np.zeros((size, 1))
        for c in range(3):
            expected = map_coordinates(image[c], [rows, cols], order=1, mode="nearest")
            np.testing.assert_allclose(out[c], expected, atol=1e-3)


def test_chip_pads_to_a_centred_square_then_normalises() -> None:
    crop = np.full((150, 91, 3), 255, np.uint8)  # 59 columns of padding: 29 before, 30 after (face-api.js)
    chip = dlib_chip(crop).numpy()
    white = (255 - np.array(MEAN_RGB)) / 255
    black = -np.array(MEAN_RGB) / 255
    np.testing.assert_allclose(chip[:, 0, [28, 29, 119, 120]].T, [black, white, white, black], atol=1e-6)
    assert dlib_chip(np.zeros((40, 30), np.uint8)).shape == (3, 150, 150)  # grey crops become RGB
    with pytest.raises(DataError, match="uint8"):
        dlib_chip(np.zeros((40, 30, 3), np.float32))


# --- the real weights ------------------------------------------------------------------------------------------


@pytest.mark.data
def test_the_file_loads_strictly_with_the_readmes_keys(shared_data: Path, net: DlibResNet29) -> None:
    state = torch.load(shared_data / "face-models" / FILE_NAME, map_location="cpu", weights_only=True)
    assert len(state) == 117 and sum(v.numel() for v in state.values()) == 5_614_592
    assert set(state) == set(net.state_dict())
    assert not net.training
    assert isinstance(dlib_resnet29(pretrained=shared_data / "face-models" / FILE_NAME), DlibResNet29)


@pytest.mark.data
def test_the_port_reproduces_the_stored_embedding(net: DlibResNet29) -> None:
    stored = np.load(FIXTURE)
    assert stored.shape == (128,) and stored.dtype == np.float32
    np.testing.assert_allclose(embed(net, [synthetic_face()])[0], stored, atol=1e-4, rtol=0)


@pytest.mark.data
def test_orl_identities_are_nearest_neighbours(net: DlibResNet29, shared_data: Path) -> None:
    people, shots = range(1, 41, 4), range(1, 11)  # 10 people x 10 pictures, grey 92 x 112, chipped whole
    root = shared_data / "att-faces"
    crops = [np.asarray(Image.open(root / f"s{p}" / f"{i}.pgm")) for p in people for i in shots]
    labels = np.repeat(list(people), len(shots))
    vectors = embed(net, crops)
    assert 1.2 < np.linalg.norm(vectors, axis=1).mean() < 1.6  # README: not normalised, norm ~1.39 on ORL
    accuracy = cross_val_score(KNeighborsClassifier(n_neighbors=1), vectors, labels, cv=LeaveOneOut()).mean()
    assert accuracy >= 0.9, accuracy
    distances = squareform(pdist(vectors))
    same = (labels[:, None] == labels[None]) & ~np.eye(len(labels), dtype=bool)
    assert distances[same].mean() < distances[labels[:, None] != labels[None]].mean()
