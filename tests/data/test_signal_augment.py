"""Signal augmentations on (B, C, T): identity at p=0, seeded, time shift shared with label sequences, masks, MixUp."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cnnlab.core.errors import ConfigError
from cnnlab.data.augment import Compose, MixUp
from cnnlab.data.signal_augment import FreqMask, Jitter, Scale, TimeMask, TimeShift, signal_preset

ALL = [Scale, Jitter, TimeShift, TimeMask, FreqMask]


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _batch() -> torch.Tensor:
    return torch.randn(16, 16, 64, generator=_gen(42))


@pytest.mark.parametrize("cls", ALL)
def test_shape_dtype_kept_and_seeded(cls: type) -> None:
    x = _batch()
    a, b = cls(p=1.0)(x, _gen(3)), cls(p=1.0)(x, _gen(3))
    assert a.shape == x.shape and a.dtype == x.dtype and torch.equal(a, b)
    assert not torch.equal(a, cls(p=1.0)(x, _gen(4)))  # another seed, another draw


@pytest.mark.parametrize("cls", ALL)
def test_p_zero_is_identity(cls: type) -> None:
    x = _batch()
    assert torch.equal(cls(p=0.0)(x, _gen(1)), x)


def test_scale_is_one_factor_per_sample_in_range() -> None:
    x = _batch()
    ratio = Scale(0.5, 2.0, p=1.0)(x, _gen()) / x
    per_sample = ratio[:, :1, :1]
    torch.testing.assert_close(ratio, per_sample.expand_as(ratio))
    assert ((per_sample >= 0.5) & (per_sample <= 2.0)).all()


def test_jitter_noise_scales_with_each_channel_spread() -> None:
    x = torch.randn(64, 2, 2000, generator=_gen(5)) * torch.tensor([[0.01], [50.0]])
    noise = Jitter(sigma=0.2, p=1.0)(x, _gen()) - x
    expected = 0.2 * x.numpy().std(axis=-1)  # numpy's std, ddof 0, per sample and channel
    np.testing.assert_allclose(noise.numpy().std(axis=-1), expected, rtol=0.1)


def test_time_shift_moves_labels_like_torch_roll() -> None:
    x = _batch()
    labels = torch.randint(0, 5, (16, 64), generator=_gen(7))
    shift = TimeShift(max_fraction=0.25, p=0.7)
    out, moved = Compose([Scale(p=1.0), shift]).pair(x, labels, _gen(9))
    # Redraw the same parameters independently: Scale's draw comes first from the same generator.
    generator = _gen(9)
    factors = Scale(p=1.0).draw(x.shape, generator)["factor"]
    steps = shift.draw(x.shape, generator)["shift"].tolist()
    assert any(steps) and not all(steps) and max(map(abs, steps)) <= 16
    for i, step in enumerate(steps):
        torch.testing.assert_close(out[i], torch.roll(x[i] * factors[i], step, dims=-1))
        assert torch.equal(moved[i], torch.roll(labels[i], step, dims=-1))


def test_masks_leave_targets_alone_in_pair() -> None:
    x, labels = _batch(), torch.arange(64).repeat(16, 1)
    _, same = Compose([TimeMask(p=1.0), FreqMask(p=1.0), Jitter(p=1.0)]).pair(x, labels, _gen())
    assert torch.equal(same, labels)


def test_freq_mask_zeroes_whole_channel_rows() -> None:
    x = torch.ones(32, 20, 50)
    out = FreqMask(max_fraction=0.3, p=1.0)(x, _gen(2))
    zero_rows = (out == 0).all(dim=2)  # (B, C)
    assert torch.equal(zero_rows, (out == 0).any(dim=2))  # no partial rows
    widths = zero_rows.sum(1)
    assert widths.max() <= 6 and widths.max() > 0
    for row in zero_rows:  # one contiguous span of channels
        index = torch.nonzero(row).flatten()
        assert len(index) == 0 or index[-1] - index[0] + 1 == len(index)


def test_time_mask_zeroes_one_span_of_steps() -> None:
    out = TimeMask(max_fraction=0.2, p=1.0)(torch.ones(32, 3, 100), _gen(4))
    zero_steps = (out == 0).all(dim=1)
    assert torch.equal(zero_steps, (out == 0).any(dim=1))
    assert 0 < zero_steps.sum(1).max() <= 20


def test_mixup_on_series() -> None:
    x, y = _batch(), torch.arange(16) % 3
    mixed, soft = MixUp(alpha=0.4, num_classes=3)(x, y, _gen(6))
    params = MixUp(alpha=0.4, num_classes=3).draw(x.shape, _gen(6))
    lam, perm = float(params["lam"]), params["perm"]
    assert mixed.shape == (16, 16, 64) and mixed.dtype == torch.float32
    torch.testing.assert_close(mixed, lam * x + (1 - lam) * x[perm])
    one_hot = np.eye(3)[y.numpy()]
    np.testing.assert_allclose(soft.numpy(), lam * one_hot + (1 - lam) * one_hot[perm.numpy()], rtol=1e-6)


def test_presets_and_bad_options() -> None:
    assert signal_preset("none").transforms == []
    assert [type(t) for t in signal_preset("series").transforms] == [Scale, Jitter, TimeShift]
    with pytest.raises(ConfigError, match="use none, series, audio"):
        signal_preset("images")
    with pytest.raises(ConfigError, match="p must be"):
        Jitter(p=1.5)
    with pytest.raises(ConfigError, match="max_fraction"):
        TimeMask(max_fraction=2.0)
