"""Batched augmentation: geometry shared with masks, PCA colour against numpy, Keras names, test-time crops."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cnnlab.core.errors import ConfigError
from cnnlab.data import augment
from cnnlab.data.augment import (
    TRANSFORMS,
    ColorJitter,
    Compose,
    CutMix,
    Cutout,
    HorizontalFlip,
    MixUp,
    Normalize,
    PCAColor,
    RandomAffine,
    RandomCrop,
    RandomErasing,
    RandomResizedCrop,
    RandomRotation,
    RandomShear,
    RandomShift,
    RandomZoom,
    Rescale,
    VerticalFlip,
    from_keras,
    from_spec,
)
from cnnlab.data.loader import TensorLoader
from cnnlab.data.presets import PRESETS
from cnnlab.data.testtime import CenterCrop, FiveCrop, Resize, ResizePad, TenCrop


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


GEOMETRIC = [
    HorizontalFlip(),
    VerticalFlip(),
    RandomCrop(padding=3),
    RandomCrop(size=(10, 14), padding=2, pad_mode="reflect"),
    RandomRotation(30, fill="nearest"),
    RandomShear(20, fill="reflect"),
    RandomZoom(0.3, keep_aspect=False),
    RandomShift(0.2, 0.1),
    RandomAffine(degrees=25, translate=(0.1, 0.1), shear=10, zoom=(0.8, 1.2), fill="nearest"),
    RandomAffine(degrees=10, hflip=0.5, vflip=0.5),
    RandomResizedCrop((12, 16), scale=(0.2, 1.0)),
]


@pytest.mark.parametrize("transform", GEOMETRIC, ids=lambda t: type(t).__name__)
def test_geometry_moves_image_and_mask_together(transform: object) -> None:
    """The image is its own mask: channels hold each pixel's (row, col), the mask its index.

    After the transform, the bilinearly sampled image says where every output pixel came from,
    and the nearest-sampled mask must name a source pixel at most half a pixel away from that.
    """
    b, h, w = 6, 18, 22
    rows, cols = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    image = torch.stack([rows, cols]).float().expand(b, 2, h, w).contiguous() + 1  # +1: 0 means padding
    index = (rows * w + cols + 1).expand(b, 1, h, w).contiguous()  # (B, 1, H, W) int64 labels
    out, mask = Compose([transform]).pair(image, index, _gen(3))
    assert out.shape[-2:] == mask.shape[-2:] and mask.dtype == torch.int64
    valid = mask[:, 0] > 0
    # Pixels next to padding (or the border) mix with zeros under bilinear sampling: compare the interior only.
    valid &= -F.max_pool2d(-F.pad(valid[:, None].float(), (1, 1, 1, 1)), 3, 1)[:, 0] > 0
    source = mask[:, 0] - 1
    from_mask = torch.stack([source // w, source % w], 1).float() + 1  # (B, 2, h, w)
    error = (out - from_mask).abs().amax(1)[valid]
    assert valid.float().mean() > 0.3 and float(error.max()) <= 0.5 + 1e-3
    if isinstance(transform, HorizontalFlip | VerticalFlip | RandomCrop):
        assert torch.equal(out, from_mask * valid[:, None] + out * ~valid[:, None])


def test_same_seed_same_batch_different_seed_different() -> None:
    x = torch.randint(0, 256, (16, 3, 24, 24), dtype=torch.uint8)
    pipeline = PRESETS.get("keras-course")(None)
    assert torch.equal(pipeline(x, _gen(5)), pipeline(x, _gen(5)))
    assert not torch.equal(pipeline(x, _gen(5)), pipeline(x, _gen(6)))
    # Each image gets its own parameters: identical inputs come out different.
    same = x[:1].expand(16, 3, 24, 24)
    out = pipeline(same, _gen(1))
    assert len({tuple(o.flatten()[:200].tolist()) for o in out}) == 16


def test_rotation_direction_and_quarter_turn_is_exact() -> None:
    x = torch.arange(36, dtype=torch.uint8).reshape(1, 1, 6, 6)
    turned = RandomRotation((90, 90))(x)
    assert torch.equal(turned, torch.rot90(x, 1, dims=(-2, -1)))  # counter-clockwise, as numpy/torch rot90
    assert torch.equal(RandomAffine(hflip=1.0)(x), x.flip(-1)) and torch.equal(RandomAffine(vflip=1.0)(x), x.flip(-2))


def test_zoom_and_shift_meanings() -> None:
    x = torch.zeros(1, 1, 21, 21)
    x[0, 0, 10, 10] = 1
    x[0, 0, 10, 14] = 1
    zoomed = RandomZoom((2.0, 2.0))(x)[0, 0]
    assert zoomed[10, 18] > 0.2 and zoomed[10, 14] < 0.1  # content doubles in size about the centre
    shifted = RandomAffine(translate=(3, 0))(x, _gen(0))[0, 0]  # >= 1: pixels, up to 3 either way
    peak = int(shifted[10].argmax())
    assert abs(peak - 10) <= 3 and float(shifted.sum()) == pytest.approx(2.0, abs=1e-4)


def test_random_resized_crop_boxes_respect_scale_and_ratio() -> None:
    t = RandomResizedCrop(8, scale=(0.25, 0.5), ratio=(0.5, 2.0))
    box = t.draw(torch.Size([500, 3, 40, 60]), _gen(0))["box"]  # (top, left, h, w)
    area = box[:, 2] * box[:, 3] / (40 * 60)
    assert area.min() >= 0.24 and area.max() <= 0.51
    assert (box[:, 0] >= 0).all() and (box[:, 0] + box[:, 2] <= 40).all() and (box[:, 1] + box[:, 3] <= 60).all()
    whole = RandomResizedCrop((40, 60), scale=(1.0, 1.0), ratio=(1.5, 1.5))
    x = torch.randint(0, 256, (2, 3, 40, 60), dtype=torch.uint8)
    assert torch.equal(whole(x), x)  # the only box that fits is the image itself, resampled 1:1


@pytest.mark.parametrize("chunk_elements", [1000, 1 << 18], ids=["chunked", "one-chunk"])
def test_resampling_matches_affine_grid_reference(monkeypatch: pytest.MonkeyPatch, chunk_elements: int) -> None:
    """Chunks, the row + column grid and a folded Rescale give what F.affine_grid + F.grid_sample give at once."""
    monkeypatch.setattr(augment, "_CHUNK_ELEMENTS", chunk_elements)  # 1000: one image per chunk (and thread)
    x = torch.randint(0, 256, (7, 3, 20, 24), dtype=torch.uint8)
    masks = torch.randint(0, 5, (7, 20, 24))
    for pipeline in (PRESETS.get("keras-course")(None), Compose([Rescale(), RandomResizedCrop((12, 16))])):
        resample = pipeline.transforms[1]
        theta = resample.draw(x.shape, _gen(2))["theta"]
        grid = F.affine_grid(theta, [7, 1, *resample.output_size(x.shape)], align_corners=False)
        padding = augment._GRID_PADDING[resample.fill]
        image, mask = pipeline.pair(x, masks, _gen(2))
        reference = F.grid_sample(x.float() / 255, grid, padding_mode=padding, align_corners=False)
        assert image.dtype == torch.float32
        torch.testing.assert_close(image, reference, atol=1e-5, rtol=0)
        nearest = F.grid_sample(masks[:, None].float(), grid, mode="nearest", padding_mode=padding, align_corners=False)
        assert torch.equal(mask, nearest[:, 0].long())
    # Without a Rescale the dtype comes back: uint8 rounded (1 at most from float rounding at .5), float64 as is.
    affine = RandomAffine(degrees=30, shear=10, zoom=(0.8, 1.2), fill="reflect")
    grid = F.affine_grid(affine.draw(x.shape, _gen(4))["theta"], [7, 3, 20, 24], align_corners=False)
    reference = F.grid_sample(x.float(), grid, padding_mode="reflection", align_corners=False)
    out = affine(x, _gen(4))
    assert out.dtype == torch.uint8 and int((out.float() - reference.round()).abs().max()) <= 1
    torch.testing.assert_close(affine(x.double(), _gen(4)), reference.double(), atol=1e-3, rtol=0)


def test_pca_colour_matches_alexnet_formula_with_numpy_eigh() -> None:
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (8, 1, 12, 12))
    rgb = np.concatenate([base, (0.6 * base + rng.integers(0, 100, base.shape)), 255 - base], 1)
    images = torch.from_numpy(np.clip(rgb, 0, 255).astype(np.uint8))
    pca = PCAColor.fit(images, std=0.1)
    pixels = images.permute(1, 0, 2, 3).reshape(3, -1).numpy() / 255.0
    eigenvalues, eigenvectors = np.linalg.eigh(np.cov(pixels))
    np.testing.assert_allclose(pca.eigenvalues.numpy(), eigenvalues, rtol=1e-10, atol=1e-12)
    signs = np.sign(np.sum(pca.eigenvectors.numpy() * eigenvectors, 0))  # eigenvectors are defined up to sign
    np.testing.assert_allclose(pca.eigenvectors.numpy() * signs, eigenvectors, atol=1e-10)

    x = torch.full((4, 3, 5, 5), 0.5, dtype=torch.float64) + 0.1 * torch.rand(4, 3, 5, 5, dtype=torch.float64)
    params = pca.draw(x.shape, _gen(1))
    alpha = params["alpha"].numpy()
    assert alpha.shape == (4, 3) and 0.0 < alpha.std() < 0.3
    # Krizhevsky et al.: add [p1 p2 p3][a1 l1, a2 l2, a3 l3]^T to every pixel.
    expected = x.numpy() + np.einsum("ij,bj->bi", eigenvectors * signs, alpha * eigenvalues)[:, :, None, None]
    np.testing.assert_allclose(pca.apply(x, params).numpy(), expected, atol=1e-12)
    params = pca.draw(images.shape, _gen(2))
    offsets = 255 * np.einsum("ij,bj->bi", eigenvectors * signs, params["alpha"].numpy() * eigenvalues)
    expected_bytes = np.clip(np.rint(images.numpy() + offsets[:, :, None, None]), 0, 255)
    assert np.abs(pca.apply(images, params).numpy() - expected_bytes).max() <= 1  # float32 rounding at .5


def test_colour_jitter_against_direct_formulas() -> None:
    x = torch.rand(3, 3, 6, 6) * 0.8 + 0.1
    luma = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    gray = (x * luma).sum(1, keepdim=True)
    desaturated = ColorJitter(saturation=(0.0, 0.0))(x)
    torch.testing.assert_close(desaturated, gray.expand_as(x))
    half = ColorJitter(saturation=(0.5, 0.5))(x)
    torch.testing.assert_close(half, 0.5 * x + 0.5 * gray)
    flat = ColorJitter(contrast=(0.0, 0.0))(x)
    torch.testing.assert_close(flat, gray.mean(dim=(2, 3), keepdim=True).expand_as(x))
    assert torch.allclose(ColorJitter(hue=(0.0, 0.0))(x), x, atol=1e-6)
    gray_image = gray.expand(3, 3, 6, 6)
    assert torch.allclose(ColorJitter(hue=0.5)(gray_image, _gen(2)), gray_image, atol=1e-5)  # hue keeps gray
    full_turn = ColorJitter(hue=(1.0, 1.0))(x)
    assert torch.allclose(full_turn, x, atol=1e-5)
    red = torch.tensor([0.8, 0.2, 0.2]).view(1, 3, 1, 1)
    turned = ColorJitter(hue=(1 / 3, 1 / 3))(red)[0, :, 0, 0]
    assert int(turned.argmax()) != 0  # a third of a turn moves red to another primary
    uint8 = ColorJitter(brightness=(2.0, 2.0))(torch.tensor([[[[100, 200]]]], dtype=torch.uint8))
    assert uint8.tolist() == [[[[200, 255]]]]


def test_erasing_cutout_rescale_normalise() -> None:
    x = torch.ones(50, 1, 20, 20)
    erased = RandomErasing(p=1.0, scale=(0.1, 0.1), ratio=(1.0, 1.0))(x, _gen(0))
    assert ((erased == 0).sum(dim=(1, 2, 3)) == 36).all()  # round(sqrt(40))^2 = 6x6
    cut = Cutout(8)(x, _gen(1))
    zeros = (cut == 0).sum(dim=(1, 2, 3))
    assert zeros.max() == 64 and zeros.min() >= 16  # clipped at the border, at least a quarter stays
    half = RandomErasing(p=0.5)(x, _gen(2))
    assert 10 < int(((half == 0).flatten(1).any(1)).sum()) < 40
    u8 = torch.tensor([[[[0, 51, 255]]]], dtype=torch.uint8)
    torch.testing.assert_close(Rescale()(u8), torch.tensor([[[[0.0, 0.2, 1.0]]]]))
    torch.testing.assert_close(Normalize([0.5], [0.25])(u8), (u8.float() / 255 - 0.5) / 0.25)
    with pytest.raises(ConfigError, match="std must be positive"):
        Normalize([0.5], [0.0])


def test_mixup_and_cutmix_mix_labels_by_the_same_amount() -> None:
    x = torch.stack([torch.full((1, 10, 10), float(i)) for i in range(8)])  # image i is all i
    y = torch.arange(8)
    mixup = MixUp(alpha=0.4, num_classes=8)
    params = mixup.draw(x.shape, _gen(0))
    lam, perm = float(params["lam"]), params["perm"]
    mixed, soft = mixup(x, y, _gen(0))
    torch.testing.assert_close(mixed[:, 0, 0, 0], lam * y + (1 - lam) * perm.float())
    torch.testing.assert_close(soft, lam * F.one_hot(y, 8) + (1 - lam) * F.one_hot(perm, 8).float())
    assert 0 < lam < 1 and not torch.equal(perm, y)
    pasted, soft = CutMix(alpha=1.0, num_classes=8)(x, y, _gen(4))
    kept_fraction = (pasted == x).float().mean(dim=(1, 2, 3))
    torch.testing.assert_close(soft[torch.arange(8), y], kept_fraction)  # label weight = area kept
    assert torch.equal(CutMix(num_classes=8)(x, y, _gen(4))[0], pasted)
    with pytest.raises(ConfigError, match="num_classes"):
        MixUp()(x, y)


def test_keras_names_carry_over() -> None:
    pipeline = from_keras(
        rotation_range=40,
        width_shift_range=0.2,
        height_shift_range=5,
        shear_range=10,
        zoom_range=[0.5, 2.0],
        horizontal_flip=True,
        vertical_flip=True,
        brightness_range=(0.8, 1.2),
        fill_mode="reflect",
        rescale=1.0 / 255,
    )
    names = [type(t).__name__ for t in pipeline.transforms]
    assert names == ["Rescale", "RandomAffine", "ColorJitter"]  # flips folded into the affine resampling
    affine = pipeline.transforms[1]
    assert affine.hflip == affine.vflip == 0.5
    assert affine.degrees == (-40, 40) and affine.translate == (0.2, 5.0) and affine.shear == (-10, 10)
    assert affine.zoom == (0.5, 2.0) and not affine.keep_aspect and affine.fill == "reflect"  # Keras zoom 2 = half size
    out = pipeline(torch.randint(0, 256, (4, 3, 16, 16), dtype=torch.uint8), _gen(0))
    assert out.dtype == torch.float32 and out.min() >= 0 and out.max() <= 1
    with pytest.raises(ConfigError, match="featurewise_center"):
        from_keras(featurewise_center=True)
    with pytest.raises(ConfigError, match="zoom_range"):
        from_keras(zoom_range=1.5)


def test_spec_and_presets_come_from_registries() -> None:
    assert {"hflip", "random_crop", "affine", "color", "pca_color", "erase", "ten_crop"} <= set(TRANSFORMS.names())
    pipeline = from_spec(["vflip", {"name": "shift", "fraction_x": 0.1}, "rescale"])
    assert [type(t).__name__ for t in pipeline.transforms] == ["VerticalFlip", "RandomShift", "Rescale"]
    with pytest.raises(ConfigError, match="bad options for transform 'hflip'"):
        from_spec([{"name": "hflip", "size": 3}])
    rgb = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    for name in PRESETS.names():
        out = PRESETS.get(name)(rgb)(rgb, _gen(0))
        assert out.is_floating_point() and out.shape[:2] == (2, 3), name


def test_plugs_into_tensor_loader() -> None:
    x = torch.randint(0, 256, (20, 1, 28, 28), dtype=torch.uint8)
    loader = TensorLoader(x, torch.arange(20), batch_size=8, shuffle=True, seed=1, transform=PRESETS.get("mnist")(None))
    first = [b for b, _ in loader.batches(epoch=0)]
    second = [b for b, _ in loader.batches(epoch=0)]
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))
    assert first[0].dtype == torch.float32 and first[0].shape == (8, 1, 28, 28)


def test_test_time_transforms_against_slicing() -> None:
    x = torch.randint(0, 256, (2, 3, 30, 40), dtype=torch.uint8)
    assert Resize(15)(x).shape == (2, 3, 15, 20) and Resize((10, 10))(x).shape == (2, 3, 10, 10)
    ramp = torch.arange(40.0).expand(1, 1, 30, 40)
    # Antialiased 2x down-sampling of a ramp: each output pixel is centred between two inputs.
    torch.testing.assert_close(Resize((30, 20))(ramp)[0, 0, 0, 1:-1], torch.arange(1.0, 19.0) * 2 + 0.5)
    assert torch.equal(CenterCrop(10)(x), x[..., 10:20, 15:25])
    five = FiveCrop((10, 12))(x)
    assert five.shape == (2, 5, 3, 10, 12)
    assert torch.equal(five[:, 0], x[..., :10, :12]) and torch.equal(five[:, 3], x[..., 20:, 28:])
    assert torch.equal(five[:, 4], x[..., 10:20, 14:26])
    ten = TenCrop((10, 12))(x)
    assert torch.equal(ten[:, :5], five) and torch.equal(ten[:, 5], x.flip(-1)[..., :10, :12])
    padded = ResizePad(20, fill=7)(x)
    assert padded.shape == (2, 3, 20, 20)
    assert (padded[..., :2, :] == 7).all() and (padded[..., 18:, :] == 7).all()  # 30x40 -> 15x20, centred
    with pytest.raises(ConfigError, match="does not fit"):
        CenterCrop(50)(x)
