"""`cnnlab explain` as a user runs it: a checkpoint and images in, one heatmap PNG per image out."""

from __future__ import annotations

import pytest
from PIL import Image

from cnnlab.cli.app import main


@pytest.fixture
def run_and_images(tmp_path, fake_run):
    run, _ = fake_run(tmp_path / "run")
    images = []
    for name, colour in (("a", 30), ("b", 220)):
        image = Image.new("L", (28, 28), colour)
        image.paste(255 - colour, (6, 6, 20, 14))
        image.save(tmp_path / f"{name}.png")
        images.append(str(tmp_path / f"{name}.png"))
    return run, images


@pytest.mark.parametrize("method", ["gradcam", "gradcam++", "saliency"])
def test_writes_one_figure_per_image_and_says_where(run_and_images, tmp_path, capsys, method):
    run, images = run_and_images
    out = tmp_path / "out"
    assert main(["explain", str(run), *images, "--out", str(out), "--class", "tabby cat", "--method", method]) == 0
    printed = capsys.readouterr().out.splitlines()
    slug = method.replace("+", "p")
    files = sorted(out.iterdir())
    assert [f.name for f in files] == [f"a_{slug}_tabby.png", f"b_{slug}_tabby.png"]
    assert len(printed) == 2 and all("tabby (class 3, p=" in line for line in printed)
    assert printed[0].endswith(str(files[0]))
    with Image.open(files[0]) as png:
        assert png.format == "PNG" and png.width > png.height


def test_a_named_layer_and_the_predicted_class(run_and_images, tmp_path, capsys):
    run, images = run_and_images
    assert (
        main(
            [
                "explain",
                str(run / "checkpoints" / "best.pt"),
                images[0],
                "--layer",
                "features.1",
                "--out",
                str(tmp_path / "o"),
            ]
        )
        == 0
    )
    assert "(class " in capsys.readouterr().out and len(list((tmp_path / "o").iterdir())) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["{image}"], "need a CHECKPOINT and at least one IMAGE"),
        (["{run}", "{image}", "--layer", "featurs.4"], "did you mean features.4"),
        (["{run}", "{image}", "--class", "zebra"], "'zebra' is not one of the 4 classes"),
        (["{run}", "{image}", "--method", "saliency", "--layer", "features.4"], "takes no layer"),
        (["--model", "resnet20", "{image}"], "--model and --weights go together"),
        (["{run}", "{run}/missing.png"], "cannot read image"),
    ],
)
def test_mistakes_are_one_line_errors(run_and_images, tmp_path, capsys, args, message):
    run, images = run_and_images
    filled = [a.format(run=run, image=images[0]) for a in args]
    assert main(["explain", *filled, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
