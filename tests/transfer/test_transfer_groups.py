"""Layer groups, freezing, frozen BatchNorm and discriminative learning rates, on tiny inputs."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cnnlab.core.errors import ConfigError
from cnnlab.data.augment import Compose, HorizontalFlip, Rescale
from cnnlab.data.loader import TensorLoader
from cnnlab.models import create_model, list_models
from cnnlab.train.config import TrainConfig
from cnnlab.train.trainer import Callback, Trainer
from cnnlab.transfer import FrozenBatchNormEval, TailTrainer, fine_tune, freeze, layer_groups, param_groups


@pytest.mark.parametrize("name", list_models("classify"))
def test_groups_cover_every_parameter_once_with_the_head_last(name):
    with torch.device("meta"):  # structure only: no memory for VGG's 140M parameters
        model = create_model(name, num_classes=3)
    groups = layer_groups(model)
    assert groups[-1].name == "head" and len(groups) >= 3
    seen = [id(p) for g in groups for p in g.parameters(model)]
    assert sorted(seen) == sorted(id(p) for p in model.parameters())
    for layer in model.classifier_layers:
        assert any(layer == m or layer.startswith(m + ".") for m in groups[-1].modules)


def test_efficientnet_groups_are_stem_blocks_head_conv_and_head():
    with torch.device("meta"):
        model = create_model("efficientnet_lite0")
    groups = layer_groups(model)
    assert groups[0].modules == ("_conv_stem", "_bn0")  # the BatchNorm freezes with its conv
    assert [g.name for g in groups[1:17]] == [f"_blocks.{i}" for i in range(16)]
    assert groups[17].modules == ("_conv_head", "_bn1") and groups[18].modules == ("_fc",)


def test_freeze_counts_groups_from_the_head():
    model = create_model("resnet20", num_classes=2)
    freeze(model, trainable=0)
    assert [g.name for g in layer_groups(model) if g.trainable(model)] == ["head"]
    freeze(model, trainable=2)
    assert [g.name for g in layer_groups(model) if g.trainable(model)] == ["layer2", "layer3", "head"]
    freeze(model, trainable=99)
    assert all(p.requires_grad for p in model.parameters())
    with pytest.raises(ConfigError, match="trainable must be >= 0"):
        freeze(model, trainable=-1)


def _bn_stats(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in module.state_dict().items() if "running" in k}


@pytest.mark.parametrize("augment", [False, True], ids=["cached-frozen-groups", "full-forward"])
def test_training_changes_neither_frozen_weights_nor_frozen_batchnorm_statistics(augment):
    torch.manual_seed(0)
    model = create_model("resnet20", num_classes=2)
    frozen_part = nn.ModuleList([model.conv1, model.bn1, model.layer1, model.layer2])
    weights_before = {k: v.clone() for k, v in frozen_part.state_dict().items()}
    trained_stats_before = _bn_stats(model.layer3)
    head_before = model.linear.weight.clone()
    x = torch.randint(0, 256, (32, 3, 16, 16), dtype=torch.uint8)
    y = torch.randint(0, 2, (32,))
    trainer = fine_tune(
        model,
        (x, y),
        (x, y),
        frozen_epochs=1,
        unfrozen_epochs=2,
        unfreeze=1,
        config=TrainConfig(batch_size=8, precision="fp32", lr=1e-2),
        # With augmentation every batch runs through the frozen groups, BatchNorm included (in eval mode).
        train_transform=Compose([HorizontalFlip(), Rescale()]) if augment else None,
    )
    assert isinstance(trainer, TailTrainer) != augment
    assert len(trainer.history) == 3
    after = frozen_part.state_dict()
    for key, value in weights_before.items():  # weights, biases and BN running statistics
        assert torch.equal(after[key], value), key
    moved = _bn_stats(model.layer3)
    assert any(not torch.equal(moved[k], trained_stats_before[k]) for k in moved)  # the unfrozen BN does learn
    assert not torch.equal(model.linear.weight, head_before)


def test_frozen_batchnorm_stays_in_eval_mode_inside_the_trainer():
    model = create_model("resnet20", num_classes=2)
    freeze(model, trainable=1)
    seen: list[tuple[bool, bool]] = []

    class Spy(Callback):
        def on_batch_end(self, trainer, logs):
            seen.append((trainer.model.bn1.training, trainer.model.layer3[0].bn1.training))

    loader = TensorLoader(torch.randn(16, 3, 8, 8), torch.randint(0, 2, (16,)), batch_size=8)
    Trainer(model, TrainConfig(epochs=2, precision="fp32"), callbacks=[FrozenBatchNormEval(), Spy()]).fit(loader)
    assert seen == [(False, True)] * 4


def test_param_groups_decay_from_the_head_and_the_trainer_uses_them():
    model = create_model("resnet20", num_classes=2)
    freeze(model, trainable=2)
    groups = param_groups(model, lr=0.1, decay=0.5)
    assert [(g["name"], g["lr"]) for g in groups] == [("layer2", 0.025), ("layer3", 0.05), ("head", 0.1)]
    peaks: dict[str, float] = {}

    class Peaks(Callback):
        def on_batch_end(self, trainer, logs):
            for group in trainer.optimizer.param_groups:
                peaks[group["name"]] = max(peaks.get(group["name"], 0.0), group["lr"])

    loader = TensorLoader(torch.randn(64, 3, 8, 8), torch.randint(0, 2, (64,)), batch_size=4)
    config = TrainConfig(epochs=1, precision="fp32", lr=0.1, schedule="onecycle", warmup_fraction=0.3)
    trainer = Trainer(model, config, callbacks=[Peaks()], param_groups=groups)
    trainer.fit(loader)
    assert sum(len(g["params"]) for g in trainer.optimizer.param_groups) == sum(
        p.requires_grad for p in model.parameters()
    )
    for name, lr in (("layer2", 0.025), ("layer3", 0.05), ("head", 0.1)):  # one-cycle peaks at each group's own rate
        assert peaks[name] == pytest.approx(lr, rel=0.05), name
    with pytest.raises(ConfigError, match="decay"):
        param_groups(model, lr=0.1, decay=0)
