"""3-D augmentation: geometry moves label volumes with the image, p=0 is identity, seeds repeat."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cnnlab.core.errors import ConfigError
from cnnlab.data.augment import Compose, from_spec
from cnnlab.data.volume_augment import Flip3D, Intensity, Noise3D, RandomCrop3D


def _volumes(b: int = 6) -> torch.Tensor:
    """Distinct integer values everywhere, so any move shows."""
    return torch.randperm(b * 5 * 6 * 7, generator=torch.Generator().manual_seed(0)).float().view(b, 1, 5, 6, 7)


@pytest.mark.parametrize("channel_axis", [False, True])
def test_image_is_its_own_mask(channel_axis: bool) -> None:
    volume = _volumes()
    mask = volume.long() if channel_axis else volume[:, 0].long()  # (B, 1, D, H, W) or (B, D, H, W)
    pipeline = Compose([Flip3D(p=0.5), RandomCrop3D((3, 4, 5)), Intensity(p=0.0), Noise3D(0.5, p=0.0)])
    image, moved = pipeline.pair(volume, mask, torch.Generator().manual_seed(1))
    assert tuple(image.shape) == (6, 1, 3, 4, 5) and moved.dtype == torch.long
    assert tuple(moved.shape) == ((6, 1, 3, 4, 5) if channel_axis else (6, 3, 4, 5))
    assert torch.equal(image if channel_axis else image[:, 0], moved.float())


def test_flip_matches_numpy_and_only_the_chosen_axes() -> None:
    volume = _volumes()
    flip = Flip3D(axes=(2, 4), p=0.5)
    params = flip.draw(volume.shape, torch.Generator().manual_seed(2))
    out = flip.apply(volume, params).numpy()
    chosen = params["flip"].numpy()
    assert chosen.any() and not chosen.all()
    for i in range(len(volume)):
        expected = volume[i].numpy()
        for j, axis in enumerate((2, 4)):
            if chosen[i, j]:
                expected = np.flip(expected, axis - 1)
        np.testing.assert_array_equal(out[i], expected)
    clip = _volumes(1)
    np.testing.assert_array_equal(Flip3D(axes=(4,), p=1.0)(clip).numpy(), clip.numpy()[..., ::-1])


def test_crop_takes_the_drawn_box() -> None:
    volume = _volumes()
    crop = RandomCrop3D(3)
    params = crop.draw(volume.shape, torch.Generator().manual_seed(3))
    out = crop.apply(volume, params)
    for i, (d, h, w) in enumerate(params["corner"].tolist()):
        assert 0 <= d <= 2 and 0 <= h <= 3 and 0 <= w <= 4
        assert torch.equal(out[i], volume[i, :, d : d + 3, h : h + 3, w : w + 3])
    with pytest.raises(ConfigError, match="larger than the volume"):
        RandomCrop3D(6)(volume)


def test_intensity_is_one_affine_map_per_sample_within_range() -> None:
    volume = _volumes() / 200
    out = Intensity(p=1.0)(volume, torch.Generator().manual_seed(4))
    for i in range(len(volume)):
        slope, intercept = np.polyfit(volume[i].flatten().numpy(), out[i].flatten().numpy(), 1)
        assert 0.9 <= slope <= 1.1 and -0.1 <= intercept <= 0.1
        np.testing.assert_allclose(out[i].numpy(), slope * volume[i].numpy() + intercept, atol=1e-4)
    with pytest.raises(ConfigError, match="float"):
        Intensity()(volume.to(torch.uint8))


def test_noise_has_the_requested_spread_and_leaves_masks_alone() -> None:
    volume = torch.zeros(4, 1, 10, 10, 10)
    out = Noise3D((0.1, 0.2))(volume, torch.Generator().manual_seed(5))
    spreads = out.flatten(1).std(1)
    assert bool(((spreads > 0.09) & (spreads < 0.21)).all()) and spreads.max() - spreads.min() > 0.005
    image, mask = Compose([Noise3D(0.3)]).pair(volume, torch.ones(4, 10, 10, 10, dtype=torch.long))
    assert torch.equal(mask, torch.ones(4, 10, 10, 10, dtype=torch.long)) and float(image.std()) > 0.25


def test_p_zero_is_identity_and_seeds_repeat() -> None:
    volume = _volumes()
    still = Compose([Flip3D(p=0.0), Intensity(p=0.0), Noise3D(0.2, p=0.0)])
    assert torch.equal(still(volume, torch.Generator().manual_seed(6)), volume)
    pipeline = from_spec(
        ["flip3d", {"name": "random_crop3d", "size": 3}, "intensity", {"name": "noise3d", "sigma": 0.1}]
    )
    a = pipeline(volume, torch.Generator().manual_seed(7))
    b = pipeline(volume, torch.Generator().manual_seed(7))
    c = pipeline(volume, torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_refuses_2d_batches() -> None:
    with pytest.raises(ConfigError, match=r"\(B, C, D, H, W\)"):
        Flip3D()(torch.zeros(2, 1, 4, 4))
