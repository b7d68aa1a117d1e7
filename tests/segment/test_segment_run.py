"""Training end to end: the loss falls on synthetic shapes; CLI train, then predict masks and overlays."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cnnlab.cli.app import main
from cnnlab.core.errors import ConfigError
from cnnlab.data.loader import TensorLoader
from cnnlab.models import create_model
from cnnlab.tasks.segment.losses import LOSSES
from cnnlab.tasks.segment.trainer import SegmentationTrainer
from cnnlab.train.config import TrainConfig


def shapes(n: int, size: int = 32, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Noisy images of a bright disc and a dark square on grey; masks 0 background, 1 disc, 2 square."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    images = np.zeros((n, 1, size, size), np.uint8)
    masks = np.zeros((n, size, size), np.uint8)
    for i in range(n):
        cy, cx = rng.integers(8, size - 8, 2).tolist()
        r = int(rng.integers(4, 7))
        disc = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
        top, left = rng.integers(0, size - 8, 2)
        square = np.zeros_like(disc)
        square[top : top + 7, left : left + 7] = True
        masks[i][square] = 2
        masks[i][disc] = 1
        picture = 120 + rng.normal(0, 15, (size, size))
        picture[masks[i] == 1] += 90
        picture[masks[i] == 2] -= 90
        images[i, 0] = np.clip(picture, 0, 255)
    return torch.from_numpy(images), torch.from_numpy(masks)


@pytest.mark.parametrize(
    "loss", ["ce", *(pytest.param(name, marks=pytest.mark.slow) for name in ("bce", "dice", "bce_dice", "focal"))]
)
def test_loss_falls_and_accuracy_rises_on_synthetic_shapes(loss):
    torch.manual_seed(0)
    images, masks = shapes(16)
    x = (images.float() / 255 - 0.5) / 0.25
    net = create_model("unet", num_classes=3, in_chans=1, depth=2, base_width=8, padding="same")
    config = TrainConfig(epochs=6, batch_size=8, lr=1e-2, precision="fp32", monitor="val_dice")
    trainer = SegmentationTrainer(net, config, loss_fn=LOSSES.get(loss), class_names=["bg", "disc", "square"])
    history = trainer.fit(TensorLoader(x, masks, batch_size=8, shuffle=True, target_kind="mask"))
    assert history[-1]["loss"] < 0.9 * history[0]["loss"]
    assert trainer.evaluate(TensorLoader(x, masks, batch_size=8, target_kind="mask"))["acc"] > history[0]["acc"]


def _write(folder: Path, images: torch.Tensor, masks: torch.Tensor | None = None) -> list[Path]:
    folder.mkdir(parents=True)
    paths = []
    for i, image in enumerate(images):
        path = folder / f"{i}.png"
        Image.fromarray(image[0].numpy() if masks is None else masks[i].numpy() * 255).save(path)
        paths.append(path)
    return paths


def test_cli_trains_a_binary_segmenter_then_predict_writes_masks_and_overlays(tmp_path, capsys):
    images, masks = shapes(8, size=32)
    binary = (masks == 1).to(torch.uint8)  # disc vs the rest, saved as 0/255
    _write(tmp_path / "images", images)
    _write(tmp_path / "masks", images, binary)
    config = tmp_path / "run.yaml"
    config.write_text("task: segment\nsegment:\n  crop: 16\n  depth: 2\n  base_width: 4\n  tile: 16\n  margin: 4\n")
    code = main(
        [
            "train", "--task", "segment", "--data", str(tmp_path / "images"), "--masks", str(tmp_path / "masks"),
            "--model", "unet", "--loss", "bce_dice", "--epochs", "2", "--config", str(config),
            "--val-fraction", "0.25", "--runs-dir", str(tmp_path / "runs"),
        ]
    )  # fmt: skip
    assert code == 0
    run = tmp_path / "runs" / "segment" / "unet-1"
    results = json.loads((run / "results.json").read_text())
    assert len(results["per_image"]) == 2 and 0 <= results["held_out_dice_foreground"] <= 1
    assert (run / "plots" / "heldout.png").is_file() and (run / "checkpoints" / "best.pt").is_file()
    odd = tmp_path / "odd.png"
    Image.fromarray(np.full((21, 27), 90, np.uint8)).save(odd)  # no 2**depth grid: tiles make it work
    capsys.readouterr()
    assert main(["predict", str(run), str(odd), "--out", str(tmp_path / "pred")]) == 0
    mask = np.asarray(Image.open(tmp_path / "pred" / "odd_mask.png"))
    overlay = Image.open(tmp_path / "pred" / "odd_overlay.png")
    assert mask.shape == (21, 27) and set(np.unique(mask).tolist()) <= {0, 255}
    assert overlay.size == (27, 21) and overlay.mode == "RGB"
    assert "odd_mask.png" in capsys.readouterr().out


def test_images_of_different_sizes_get_a_size_chosen_and_said(tmp_path, capsys):
    """A newcomer's folder: photos of several sizes (it stopped with 'pass size=(height, width)')."""
    rng = np.random.default_rng(0)
    for folder in ("images", "masks"):
        (tmp_path / folder).mkdir()
    for i, (w, h) in enumerate([(40, 30), (52, 36), (36, 44), (48, 48)]):
        mask = np.zeros((h, w), np.uint8)
        y, x = rng.integers(2, 12, 2)
        mask[y : y + 12, x : x + 12] = 255
        Image.fromarray(np.where(mask > 0, 200, 40).astype(np.uint8)).save(tmp_path / "images" / f"{i}.png")
        Image.fromarray(mask).save(tmp_path / "masks" / f"{i}.png")
    config = tmp_path / "run.yaml"
    config.write_text("task: segment\nsegment:\n  depth: 2\n  base_width: 4\n")
    args = ["train", "--data", str(tmp_path / "images"), "--masks", str(tmp_path / "masks"), "--epochs", "1"]
    assert main([*args, "--config", str(config), "--runs-dir", str(tmp_path / "runs")]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "image size 32x32: the images range from 30 to 52 px (--img-size sets it)" in out
    run = tmp_path / "runs" / "segment" / "unet-1"
    assert "image size 32x32" in (run / "log.txt").read_text()


def test_a_checkpoint_names_its_task(tmp_path):
    from cnnlab.tasks import task_of

    torch.save({"task": "classify"}, tmp_path / "model.pt")
    torch.save({"config": {"task": "segment"}}, tmp_path / "seg.pt")
    torch.save({"model": {}}, tmp_path / "round1.pt")  # round-1 classifier checkpoints name no task
    assert task_of(tmp_path / "model.pt").name == "classify"
    assert task_of(tmp_path / "seg.pt").name == "segment"
    assert task_of(tmp_path / "round1.pt").name == "classify"
    with pytest.raises(ConfigError, match="no run folder or checkpoint"):
        task_of(tmp_path)


def test_final_scores_come_from_the_ema_weights_in_eval_mode(tmp_path):
    """With weight EMA on, the held-out scores are those of the averaged model in eval mode (round 1 scored
    the raw weights). A slow EMA (0.999 over a few steps) stays near the initial weights, so the two differ."""
    from cnnlab.core.rundir import load_checkpoint
    from cnnlab.tasks.config import eval_transform, load_run_config
    from cnnlab.tasks.segment import SegmentRunConfig, run_segmentation
    from cnnlab.tasks.segment.metrics import confusion, scores_from_confusion
    from cnnlab.tasks.segment.model import build_model
    from cnnlab.tasks.segment.tiling import predict_tiled

    images, masks = shapes(8, size=32)
    binary = (masks == 1).to(torch.uint8)
    _write(tmp_path / "images", images)
    _write(tmp_path / "masks", images, binary)
    overrides = {
        "data": {"source": str(tmp_path / "images"), "val_fraction": 0.25, "aug": "none"},
        "segment": {"masks": str(tmp_path / "masks"), "crop": 16, "depth": 2, "base_width": 4, "tile": 16, "margin": 4},
        "train": {"epochs": 3, "batch_size": 2, "ema_decay": 0.999, "precision": "fp32", "lr": 1e-2},
    }
    results = run_segmentation(load_run_config(SegmentRunConfig, None, overrides), runs_dir=tmp_path / "runs")
    state = load_checkpoint(Path(results["run_dir"]) / "checkpoints" / "last.pt")
    held = [i for i in range(8) if f"{i}.png" in results["held_out_images"]]

    def scores(weights: dict) -> dict:
        net = build_model("unet", 2, 1, state["model_options"])
        net.load_state_dict(weights)
        x = eval_transform(tuple(state["mean"]), tuple(state["std"]))(images[held])
        with torch.inference_mode():
            preds = predict_tiled(net.eval(), x, 16, 4).argmax(1)
        return scores_from_confusion(confusion(preds, binary[held], 2), ["background", "foreground"])

    ema = {k.removeprefix("module."): v for k, v in state["ema"].items() if k.startswith("module.")}
    assert results["held_out_acc"] == pytest.approx(scores(ema)["acc"])
    assert scores(ema)["acc"] != pytest.approx(scores(state["model"])["acc"])  # the test can tell them apart
