"""The feature cache: reused for the same backbone, data and transform (no backbone call), rebuilt otherwise."""

from __future__ import annotations

import pytest
import torch

from cnnlab.data.augment import Compose, Normalize, Rescale
from cnnlab.models import create_model
from cnnlab.train.config import TrainConfig
from cnnlab.transfer import TransferConfig, extract_features, fit_transfer, set_mlp_head, train_head


class CountingBackbone:
    """Counts ``forward_features`` calls on one model instance."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.calls = 0
        original = model.forward_features

        def counted(x: torch.Tensor) -> torch.Tensor:
            self.calls += 1
            return original(x)

        model.forward_features = counted  # type: ignore[method-assign]


@pytest.fixture
def images() -> torch.Tensor:
    return torch.randint(0, 256, (12, 3, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))


def test_second_extraction_with_the_same_key_runs_no_backbone(tmp_path, images):
    model = create_model("resnet20", num_classes=2)
    counter = CountingBackbone(model)
    first = extract_features(model, images, cache_dir=tmp_path, batch_size=5, precision="fp32")
    assert counter.calls == 3 and not first.from_cache  # 12 images in batches of 5
    again = extract_features(model, images, cache_dir=tmp_path, batch_size=5, precision="fp32")
    assert counter.calls == 3 and again.from_cache and again.key == first.key
    assert torch.allclose(again.maps, first.maps)
    with torch.inference_mode():  # the cached maps are the backbone's output (float16 storage)
        model.eval()
        direct = model.forward_features(images.float() / 255)
    assert torch.allclose(first.maps, direct, atol=1e-2, rtol=1e-2)


def test_a_new_head_reuses_the_cache(tmp_path, images):
    model = create_model("resnet20", num_classes=2)
    first = extract_features(model, images, cache_dir=tmp_path, precision="fp32")
    model.reset_classifier(7)
    assert extract_features(model, images, cache_dir=tmp_path, precision="fp32").key == first.key


def test_other_weights_transform_or_data_are_not_reused(tmp_path, images):
    model = create_model("resnet20", num_classes=2)
    counter = CountingBackbone(model)
    base = extract_features(model, images, cache_dir=tmp_path, precision="fp32")
    calls = counter.calls
    other_transform = Compose([Rescale(), Normalize([0.5] * 3, [0.25] * 3)])
    assert not extract_features(model, images, other_transform, cache_dir=tmp_path, precision="fp32").from_cache
    assert not extract_features(model, images[:6], cache_dir=tmp_path, precision="fp32").from_cache
    with torch.no_grad():
        model.layer1[0].conv1.weight[0, 0, 0, 0] += 1e-3  # other backbone weights
    changed = extract_features(model, images, cache_dir=tmp_path, precision="fp32")
    assert not changed.from_cache and changed.key != base.key
    assert counter.calls == calls + 3
    assert len(list(tmp_path.glob("*.npy"))) == 4


def test_a_damaged_entry_is_rebuilt(tmp_path, images):
    model = create_model("resnet20", num_classes=2)
    first = extract_features(model, images, cache_dir=tmp_path, precision="fp32")
    (tmp_path / f"{first.key}.npy").write_bytes(b"not numpy")
    with pytest.warns(UserWarning, match="rebuilding"):
        again = extract_features(model, images, cache_dir=tmp_path, precision="fp32")
    assert not again.from_cache and torch.allclose(again.maps, first.maps)


def _separable(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=generator)
    maps = torch.randn(n, 64, 2, 2, generator=generator) * 0.5
    maps[:, 0] += (y.float() * 2 - 1)[:, None, None] * 2  # channel 0 carries the class
    return maps, y


def test_linear_and_mlp_heads_learn_from_cached_features():
    train, val = _separable(256, 0), _separable(128, 1)
    config = TrainConfig(epochs=8, batch_size=32, precision="fp32", lr=3e-2)
    linear = create_model("resnet20", num_classes=2)
    assert train_head(linear, train, val, config).history[-1]["val_acc"] >= 0.95
    mlp = create_model("resnet20", num_classes=2)
    set_mlp_head(mlp, hidden=16, num_classes=2)
    assert train_head(mlp, train, val, config).history[-1]["val_acc"] >= 0.95
    assert not any(p.requires_grad for p in mlp.layer1.parameters())


def test_features_mode_predicts_from_the_cache(tmp_path, images):
    model = create_model("resnet20", num_classes=2)
    counter = CountingBackbone(model)
    targets = torch.arange(12) % 2
    transform = Compose([Rescale()])
    config = TransferConfig(mode="features", cache_dir=str(tmp_path))
    _, predict = fit_transfer(
        model,
        config,
        TrainConfig(epochs=2, batch_size=4, precision="fp32"),
        (images, targets),
        None,
        transform,
        transform,
    )
    calls = counter.calls
    logits = predict(images)
    assert counter.calls == calls and logits.shape == (12, 2)  # the training images' features were cached
    model.eval()
    with torch.inference_mode():
        assert torch.allclose(logits, model(images.float() / 255), atol=0.05)
