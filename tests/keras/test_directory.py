"""Folders of images as Keras 3.15 reads them: which files ``flow_from_directory`` and
``image_dataset_from_directory`` take, and the pixels each gives with each interpolation, checked against
``fixtures/keras_directory.npz`` (written by REAL Keras from the same generated folder, see
``benchmarks/keras_reference.py`` fixture (j)) and against the ants/bees folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnlab.core.errors import ConfigError
from cnnlab.keras.preprocessing.image import FLOW_FROM_DIRECTORY_FORMATS, ImageDataGenerator, load_img
from cnnlab.keras.utils import ALLOWLIST_FORMATS, _index_directory, image_dataset_from_directory

FIXTURE = Path(__file__).parent / "fixtures" / "keras_directory.npz"


def _pattern(shape: tuple[int, ...], salt: int) -> np.ndarray:
    """The fixture script's deterministic uint8 'noise' (a copy of benchmarks/keras_reference.py's)."""
    index = np.arange(int(np.prod(shape)), dtype=np.uint64).reshape(shape)
    return (((index * np.uint64(2654435761) + np.uint64(salt * 40503)) % np.uint64(2**32)) >> np.uint64(24)).astype(
        np.uint8
    )


def image_folder(root: Path) -> Path:
    """The folder fixture (j) was made from (a copy of benchmarks/keras_reference.py's ``image_folder``)."""
    (root / "cats").mkdir(parents=True)
    (root / "dogs" / "sub").mkdir(parents=True)
    Image.fromarray(_pattern((9, 13, 3), 1)).save(root / "cats" / "a.png")
    Image.fromarray(_pattern((12, 7, 3), 2)).save(root / "cats" / "b.bmp")
    Image.fromarray(_pattern((10, 10), 3), "L").save(root / "cats" / "c.gif")
    Image.fromarray(_pattern((8, 8, 3), 4)).save(root / "cats" / "d.webp", lossless=True)
    Image.fromarray(_pattern((11, 6, 4), 5), "RGBA").save(root / "dogs" / "e.png")
    Image.fromarray(_pattern((6, 14, 3), 6)).save(root / "dogs" / "f.tif")
    Image.fromarray(_pattern((10, 5, 3), 7)).save(root / "dogs" / "g.ppm")
    Image.fromarray(_pattern((15, 9), 8), "L").save(root / "dogs" / "sub" / "h.png")
    (root / "dogs" / "notes.txt").write_text("not an image", encoding="utf-8")
    return root


@pytest.mark.parametrize(
    ("case", "options"),
    [
        ("nearest", {}),
        ("bilinear", {"interpolation": "bilinear"}),
        ("keep_aspect", {"keep_aspect_ratio": True}),
        ("grayscale", {"color_mode": "grayscale"}),
    ],
)
def test_flow_from_directory_finds_and_decodes_the_files_keras_does(tmp_path, capsys, case, options):
    keras = np.load(FIXTURE)
    root = image_folder(tmp_path / "folder")
    it = ImageDataGenerator().flow_from_directory(
        root, target_size=(7, 5), class_mode="sparse", batch_size=64, shuffle=False, **options
    )
    assert capsys.readouterr().out == "Found 6 images belonging to 2 classes.\n"  # no gif, no webp, no txt
    assert it.filenames == keras[f"flow_{case}_files"].tolist()
    assert it.classes.tolist() == keras[f"flow_{case}_classes"].tolist()
    x, y = it[0]
    assert x.dtype == keras[f"flow_{case}_x"].dtype and np.array_equal(x, keras[f"flow_{case}_x"])  # bit for bit
    assert y.tolist() == keras[f"flow_{case}_classes"].tolist()


@pytest.mark.parametrize(
    ("case", "options"),
    [
        ("bilinear", {}),
        ("nearest", {"interpolation": "nearest"}),
        ("crop", {"crop_to_aspect_ratio": True}),
        ("pad", {"pad_to_aspect_ratio": True}),
    ],
)
def test_image_dataset_from_directory_finds_and_resizes_as_keras_does(tmp_path, case, options):
    keras = np.load(FIXTURE)
    root = image_folder(tmp_path / "folder")
    data = image_dataset_from_directory(root, image_size=(7, 5), batch_size=64, shuffle=False, verbose=False, **options)
    assert [str(Path(p).relative_to(root)) for p in data.file_paths] == keras[f"ids_{case}_files"].tolist()  # gif yes
    x, labels = next(iter(data))
    expected = keras[f"ids_{case}_x"]
    assert x.dtype == expected.dtype and labels.tolist() == keras[f"ids_{case}_labels"].tolist()
    np.testing.assert_allclose(x, expected, rtol=0, atol=2e-4)  # TensorFlow's float32 resize, unrounded


def test_the_suffix_lists_are_keras_3_15s():
    # keras.src.legacy.preprocessing.image.Iterator.white_list_formats and keras.src.utils.image_dataset_utils.
    assert FLOW_FROM_DIRECTORY_FORMATS == ("png", "jpg", "jpeg", "bmp", "ppm", "tif", "tiff")
    assert ALLOWLIST_FORMATS == (".bmp", ".gif", ".jpeg", ".jpg", ".png")


def test_interpolation_defaults_and_bad_names(tmp_path):
    Image.fromarray(_pattern((6, 6, 3), 9)).save(tmp_path / "a.png")
    small = np.asarray(load_img(tmp_path / "a.png", target_size=(3, 3)))
    assert np.array_equal(small, np.asarray(Image.open(tmp_path / "a.png").resize((3, 3), Image.Resampling.NEAREST)))
    with pytest.raises(ConfigError, match="Invalid interpolation method 'cubic'"):
        load_img(tmp_path / "a.png", target_size=(3, 3), interpolation="cubic")
    with pytest.raises(ConfigError, match="save_to_dir is not supported"):
        ImageDataGenerator().flow_from_directory(tmp_path, save_to_dir=tmp_path)
    with pytest.raises(ConfigError, match="'bilinear' \\(Keras' default\\) or 'nearest'"):
        image_dataset_from_directory(tmp_path, interpolation="area")


@pytest.mark.data
def test_the_ants_and_bees_folder_gives_kerass_counts(shared_data, capsys):
    """Real Keras 3.15.1 on this folder: flow_from_directory finds 244 training images (the .gif is not among
    its suffixes), image_dataset_from_directory 245 (it takes the .gif)."""
    train = shared_data / "hymenoptera" / "train"
    it = ImageDataGenerator().flow_from_directory(train, target_size=(16, 16), class_mode="binary", batch_size=32)
    assert it.samples == 244 and not any(name.endswith(".gif") for name in it.filenames)
    assert capsys.readouterr().out.startswith("Found 244 images belonging to 2 classes.")
    files, _, classes = _index_directory(train, None, False, "test")  # the listing alone: no need to decode again
    assert len(files) == 245 and classes == ["ants", "bees"] and any(f.name == "imageNotFound.gif" for f in files)


def test_the_transfer_notebook_dataset_calls_run_as_written(tmp_path):
    """`from tensorflow.keras.preprocessing import image_dataset_from_directory`, `.prefetch(AUTOTUNE)`,
    `.take(1)` to show a batch: the same batches as iterating the dataset."""
    from cnnlab.keras.preprocessing import image_dataset_from_directory as from_preprocessing

    root = image_folder(tmp_path / "folder")
    data = from_preprocessing(root, image_size=(7, 5), batch_size=2, shuffle=False, verbose=False)
    assert from_preprocessing is image_dataset_from_directory and data.prefetch(buffer_size=-1) is data
    assert data.cache() is data
    (first,) = data.take(1)
    x, labels = next(iter(data))
    assert np.array_equal(first[0], x) and np.array_equal(first[1], labels)
    assert len(data.take(100)) == len(data)
    with pytest.raises(ConfigError, match="take: count must be a positive int"):
        data.take(0)


def test_the_transfer_notebook_trains_on_the_dataset_for_several_epochs_and_shows_its_images(tmp_path):
    """Each epoch of ``fit(dataset)`` is a whole new pass (it stopped after the first pass); batches answer
    TensorFlow's ``.numpy()`` (``plt.imshow(images[i].numpy().astype('uint8'))``); calling the augmentation model
    on an array augments it (``data_augmentation(tf.expand_dims(first_image, 0))``), channels-last."""
    from cnnlab import keras
    from cnnlab.keras import layers

    root = image_folder(tmp_path / "folder")
    train = image_dataset_from_directory(root, image_size=(8, 8), batch_size=3, seed=1, verbose=False)
    for images, labels in train.take(1):
        assert images[0].numpy().astype("uint8").shape == (8, 8, 3) and labels.numpy().shape == (3,)
    flip = keras.Sequential([layers.RandomFlip("horizontal")])
    first = np.asarray(images[0])
    seen = {flip(np.expand_dims(first, 0))[0].tobytes() for _ in range(20)}
    assert seen == {first.tobytes(), first[:, ::-1].tobytes()}  # flipped or not, as Keras' call does
    model = keras.Sequential([layers.Input((8, 8, 3)), layers.Flatten(), layers.Dense(2, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(train, validation_data=train, epochs=3, verbose=0)
    assert len(history.history["loss"]) == 3 and len(history.history["val_loss"]) == 3
