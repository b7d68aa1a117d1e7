"""Style transfer end to end on tiny images: the costs fall, the CLI writes its run folder, bad input is refused."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cnnlab.cli.app import main
from cnnlab.core.errors import ConfigError
from cnnlab.models import create_model
from cnnlab.tasks.style.features import StyleFeatures, default_layers, vgg_layer_names
from cnnlab.tasks.style.transfer import StyleSettings, level_sizes, stylise


def _stripes(size: int = 32) -> torch.Tensor:
    image = torch.zeros(1, 3, size, size)
    image[..., ::4, :] = 1.0
    return image


def test_adam_lowers_the_total_cost_at_every_step_on_a_32px_image() -> None:
    torch.manual_seed(0)
    net = StyleFeatures(create_model("vgg11"), ["block1_conv1", "block2_conv1", "block3_conv1"])
    content = torch.rand(1, 3, 32, 32)
    settings = StyleSettings(size=32, steps=(8,), optimizer="adam", learning_rate=0.005, beta=1e6, precision="fp32")
    result = stylise(net, content, [_stripes()], settings, content_layer="block3_conv1")
    totals = [row["total"] for row in result.history]
    assert len(totals) == 8
    assert all(later < earlier for earlier, later in itertools.pairwise(totals)), totals
    assert result.image.min() >= 0 and result.image.max() <= 1


def test_lbfgs_coarse_to_fine_reduces_style_and_returns_the_requested_size() -> None:
    torch.manual_seed(0)
    net = StyleFeatures(create_model("vgg11"), ["block1_conv1", "block2_conv1", "block3_conv1"])
    content = torch.rand(1, 3, 96, 160)
    settings = StyleSettings(size=128, steps=(10, 5), beta=1e6, precision="fp32")
    result = stylise(net, content, [_stripes(64)], settings, content_layer="block3_conv1")
    assert result.image.shape == (1, 3, 77, 128)  # aspect kept, longer side 128
    assert {row["size"] for row in result.history} == {64, 128}
    assert result.after["style"] < result.before["style"] / 2


def test_layer_names_follow_keras_vgg_and_unknown_ones_list_the_valid_ones() -> None:
    model = create_model("vgg16")
    names = vgg_layer_names(model)
    assert len([n for n in names if "conv" in n]) == 13 and names["block5_conv3"] == "features.29"
    assert default_layers(create_model("resnet18"))[1] in dict(create_model("resnet18").named_modules())
    with pytest.raises(ConfigError, match="block5_conv4") as err:
        StyleFeatures(model, ["block5_conv4"])  # VGG-16 has three convs in block 5
    assert "block5_conv3" in err.value.fix


def test_level_sizes_halve_down_to_64() -> None:
    assert level_sizes(1024, 3) == [256, 512, 1024]
    assert level_sizes(200, 3) == [100, 200]


@pytest.fixture
def images(tmp_path: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    content, style = tmp_path / "photo.jpg", tmp_path / "paint.png"
    Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(content)
    stripes = np.zeros((40, 40, 3), dtype=np.uint8)
    stripes[::4] = 255
    Image.fromarray(stripes).save(style)
    return content, style


def test_cli_writes_the_run_folder_result_frames_and_page(images: tuple[Path, Path], tmp_path: Path) -> None:
    content, style = images
    out = tmp_path / "art.png"
    args = ["style", str(content), str(style), "--size", "64", "--steps", "4", "--model", "vgg11"]
    args += ["--weights", "random", "--frame-every", "2", "--out", str(out), "--runs-dir", str(tmp_path / "runs")]
    assert main(args) == 0
    run = tmp_path / "runs" / "style" / "photo-paint-1"
    assert Image.open(run / "result.png").size == (64, 48) == Image.open(out).size
    assert sorted(p.name for p in (run / "frames").iterdir()) == ["00002.jpg", "00004.jpg"]
    page = (run / "report.html").read_text()
    assert page.count("data:image/") >= 3 + 2 + 1  # content, style, result, two frames, the cost curve
    assert not (run / "checkpoints").exists()


def test_a_small_photo_is_painted_at_its_own_size_and_the_log_says_so(
    images: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    content, style = images  # 64 x 48: the default 512 would blow it up 8 times
    args = ["style", str(content), str(style), "--steps", "2", "--model", "vgg11", "--weights", "random"]
    assert main([*args, "--runs-dir", str(tmp_path / "runs")]) == 0
    assert Image.open(tmp_path / "runs" / "style" / "photo-paint-1" / "result.png").size == (64, 48)
    assert "size 64 px: the content image's longer side (--size sets it)" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--style-layers", "block9_conv1"], "unknown layer 'block9_conv1'"),
        (["--size", "8"], "size must be 32..4096"),
        (["--optimizer", "sgd"], "unknown optimizer"),
        (["--blend", "0.5,0.5"], "style blend"),
        (["--weights", "missing.pt"], "weights file not found"),
    ],
)
def test_bad_options_fail_with_one_line_and_no_run_folder(
    images: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    content, style = images
    args = ["style", str(content), str(style), "--model", "vgg11", "--runs-dir", str(tmp_path / "runs")]
    if "--weights" not in extra:
        args += ["--weights", "random"]
    assert main([*args, *extra]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_unreadable_and_tiny_images_are_named(images: tuple[Path, Path], tmp_path: Path) -> None:
    content, style = images
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image")
    tiny = tmp_path / "tiny.png"
    Image.new("RGB", (8, 8)).save(tiny)
    base = ["--model", "vgg11", "--weights", "random", "--runs-dir", str(tmp_path / "runs")]
    assert main(["style", str(content), str(broken), *base]) == 2
    assert main(["style", str(tiny), str(style), *base]) == 2
    assert not (tmp_path / "runs").exists()
