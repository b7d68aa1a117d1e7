"""Reference fixtures from REAL Keras 3 (TensorFlow backend) for ``tests/keras/`` (issue 24).

Regenerate (deterministic; the files come out the same on a rerun with the same versions):

    /work/kerasref/bin/python benchmarks/keras_reference.py

``/work/kerasref`` is a venv OUTSIDE the repo with ``tensorflow-cpu`` and ``keras`` (Keras 3); see
docs/keras.md. Never run this in the project's venv. It writes to ``tests/keras/fixtures/``:

- ``keras_mnist_convnet.npz``    (a) the classic MNIST convnet: weights, a 4x28x28x1 input, ``predict``, params
- ``keras_residual_block.npz``   (b) functional residual block with BatchNormalization (non-trivial moving stats)
- ``keras_conv1d.npz``           (c) Conv1D(4,5) / MaxPooling1D / Flatten / Dense(3) on (50, 2)
- ``keras_conv3d.npz``           (d) Conv3D(4,3) / GlobalAveragePooling3D / Dense(2) on (8, 8, 8, 1)
- ``keras_mnist_convnet_summary.txt`` (e) ``model.summary()`` of (a), as a 120-column terminal shows it
- ``keras_to_categorical.npz``   (f) ``to_categorical([0, 2, 1], 3)``
- ``keras_sgd_one_epoch.npz``    (g) one epoch of SGD(0.01) on (a) WITHOUT Dropout (Dropout would make it random)
- ``keras_activations.npz``      (h) LeakyReLU / ELU / ReLU(max_value, negative_slope, threshold) / PReLU outputs
- ``keras_sample_weight.npz``    (i) evaluate with sample_weight, fit with class_weight and with sample_weight +
  validation_split, from fixed weights (the weighted loss and its updates)
- ``keras_directory.npz``        (j) flow_from_directory and image_dataset_from_directory on a generated folder of
  lossless images (which files each finds, and the pixels with each interpolation / aspect option)
- ``keras_nested.npz``           (k) models nested in models (Sequential, model.add, functional in functional,
  MobileNetV2 at 96x96): per-row names, types and parameter counts, total / trainable / non-trainable counts
- ``keras_activation_model.npz`` (l) Chollet's activation model over (a): the outputs of its first four layers

Every model .npz holds ``weight_00``, ``weight_01``, ... in ``model.get_weights()`` order and Keras layouts
(Conv2D kernel ``(kh, kw, in, out)``, Dense kernel ``(in, out)``), ``weight_names`` (``layer/variable``),
``x`` (float32 input), ``y`` (``model.predict(x)``), ``count_params`` and the versions that made them.
"""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

# Before keras is imported: backend, a wide terminal for summary(), quiet deterministic TensorFlow.
os.environ["KERAS_BACKEND"] = "tensorflow"
os.environ["COLUMNS"] = "120"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["TF_DETERMINISTIC_OPS"] = "1"

import tempfile

import keras
import numpy as np
import tensorflow as tf
from keras import layers
from keras.src.legacy.preprocessing.image import ImageDataGenerator
from PIL import Image

SEED = 24
OUT = Path(__file__).resolve().parents[1] / "tests" / "keras" / "fixtures"
MAX_BYTES = 200_000


def versions() -> dict[str, str]:
    """What made the fixtures."""
    return {
        "keras_version": keras.__version__,
        "backend": keras.backend.backend(),
        "tensorflow_version": tf.__version__,
        "numpy_version": np.__version__,
        "python_version": sys.version.split()[0],
    }


def weight_arrays(model: keras.Model) -> dict[str, np.ndarray]:
    """``weight_NN`` in ``get_weights()`` order, plus their ``layer/variable`` names."""
    out: dict[str, np.ndarray] = {f"weight_{i:02d}": w for i, w in enumerate(model.get_weights())}
    out["weight_names"] = np.array([v.path for v in model.weights])
    return out


def save(name: str, **arrays: object) -> Path:
    """One compressed .npz (no pickled objects), checked against the size cap."""
    path = OUT / name
    np.savez_compressed(path, **arrays)  # type: ignore[arg-type]
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise SystemExit(f"{path} is {size} bytes, over the {MAX_BYTES} cap")
    print(f"wrote {path.relative_to(OUT.parents[2])} ({size:,} bytes)")
    return path


def mnist_convnet(dropout: bool = True) -> keras.Sequential:
    """The classic Keras MNIST convnet (keras.io 'Simple MNIST convnet'), written the Keras 2 way."""
    stack: list[layers.Layer] = [
        layers.Conv2D(32, kernel_size=(3, 3), activation="relu", input_shape=(28, 28, 1)),
        layers.MaxPooling2D(pool_size=(2, 2)),
        layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
        layers.MaxPooling2D(pool_size=(2, 2)),
        layers.Flatten(),
    ]
    if dropout:
        stack.append(layers.Dropout(0.5))
    stack.append(layers.Dense(10, activation="softmax"))
    return keras.Sequential(stack)


def fixture_a_and_e(rng: np.random.Generator) -> list[np.ndarray]:
    """(a) the MNIST convnet and (e) its summary text; returns its weights for (g)."""
    keras.backend.clear_session()  # canonical layer names: conv2d, max_pooling2d, conv2d_1, ...
    keras.utils.set_random_seed(SEED)
    model = mnist_convnet()
    x = rng.random((4, 28, 28, 1), dtype=np.float32)
    y = model.predict(x, verbose=0)
    assert model.count_params() == 34_826, model.count_params()
    save(
        "keras_mnist_convnet.npz",
        x=x,
        y=y,
        count_params=np.int64(model.count_params()),
        layer_names=np.array([layer.name for layer in model.layers]),
        **weight_arrays(model),
        **versions(),
    )
    text = io.StringIO()
    model.summary(print_fn=text.write)
    path = OUT / "keras_mnist_convnet_summary.txt"
    path.write_text(text.getvalue(), encoding="utf-8")
    print(f"wrote {path.relative_to(OUT.parents[2])} ({path.stat().st_size:,} bytes)")
    return model.get_weights()


def fixture_b(rng: np.random.Generator) -> None:
    """(b) functional residual block: conv-BN-ReLU-conv + 1x1 shortcut, Add, GAP, Dense(5, softmax)."""
    keras.backend.clear_session()
    keras.utils.set_random_seed(SEED + 1)
    inputs = keras.Input(shape=(16, 16, 3), name="image")
    h = layers.Conv2D(8, 3, padding="same", name="conv1")(inputs)
    h = layers.BatchNormalization(name="bn1")(h)
    h = layers.ReLU(name="relu1")(h)
    h = layers.Conv2D(8, 3, padding="same", name="conv2")(h)
    shortcut = layers.Conv2D(8, 1, name="shortcut")(inputs)
    h = layers.Add(name="add")([h, shortcut])
    h = layers.GlobalAveragePooling2D(name="gap")(h)
    outputs = layers.Dense(5, activation="softmax", name="head")(h)
    model = keras.Model(inputs, outputs, name="residual_block")

    bn = model.get_layer("bn1")
    gamma, beta, mean, var = bn.get_weights()
    bn.set_weights(
        [
            rng.uniform(0.5, 1.5, gamma.shape).astype(np.float32),
            rng.normal(0.0, 0.2, beta.shape).astype(np.float32),
            rng.normal(0.0, 0.5, mean.shape).astype(np.float32),
            rng.uniform(0.5, 2.0, var.shape).astype(np.float32),
        ]
    )
    x = rng.random((4, 16, 16, 3), dtype=np.float32)
    y = model.predict(x, verbose=0)
    save(
        "keras_residual_block.npz",
        x=x,
        y=y,
        count_params=np.int64(model.count_params()),
        layer_names=np.array([layer.name for layer in model.layers]),
        bn_epsilon=np.float64(bn.epsilon),
        bn_momentum=np.float64(bn.momentum),
        **weight_arrays(model),
        **versions(),
    )


def fixture_c(rng: np.random.Generator) -> None:
    """(c) Conv1D(4, 5, relu) / MaxPooling1D / Flatten / Dense(3) on (50, 2)."""
    keras.backend.clear_session()
    keras.utils.set_random_seed(SEED + 2)
    model = keras.Sequential(
        [
            layers.Conv1D(4, 5, activation="relu", input_shape=(50, 2)),
            layers.MaxPooling1D(),
            layers.Flatten(),
            layers.Dense(3),
        ]
    )
    x = rng.normal(size=(4, 50, 2)).astype(np.float32)
    y = model.predict(x, verbose=0)
    save(
        "keras_conv1d.npz",
        x=x,
        y=y,
        count_params=np.int64(model.count_params()),
        layer_names=np.array([layer.name for layer in model.layers]),
        **weight_arrays(model),
        **versions(),
    )


def fixture_d(rng: np.random.Generator) -> None:
    """(d) Conv3D(4, 3, relu) / GlobalAveragePooling3D / Dense(2) on (8, 8, 8, 1)."""
    keras.backend.clear_session()
    keras.utils.set_random_seed(SEED + 3)
    model = keras.Sequential(
        [
            layers.Conv3D(4, 3, activation="relu", input_shape=(8, 8, 8, 1)),
            layers.GlobalAveragePooling3D(),
            layers.Dense(2),
        ]
    )
    x = rng.normal(size=(2, 8, 8, 8, 1)).astype(np.float32)
    y = model.predict(x, verbose=0)
    save(
        "keras_conv3d.npz",
        x=x,
        y=y,
        count_params=np.int64(model.count_params()),
        layer_names=np.array([layer.name for layer in model.layers]),
        **weight_arrays(model),
        **versions(),
    )


def fixture_f() -> None:
    """(f) ``keras.utils.to_categorical([0, 2, 1], 3)`` (its dtype as Keras returns it)."""
    save(
        "keras_to_categorical.npz",
        labels=np.array([0, 2, 1]),
        num_classes=np.int64(3),
        y=keras.utils.to_categorical([0, 2, 1], 3),
        **versions(),
    )


def fixture_g(rng: np.random.Generator, initial: list[np.ndarray]) -> None:
    """(g) one epoch of plain SGD on the convnet WITHOUT Dropout, from (a)'s weights.

    Dropout has no weights, so (a)'s ``weight_NN`` are this model's initial weights too (not stored twice,
    to keep the file under the cap). Input: ``x_uint8 / 255`` as float32; targets ``to_categorical(labels, 10)``;
    ``fit(batch_size=32, epochs=1, shuffle=False)`` = 2 steps; loss = mean categorical cross-entropy.
    """
    keras.backend.clear_session()
    keras.utils.set_random_seed(SEED + 4)
    model = mnist_convnet(dropout=False)
    model.set_weights(initial)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.01), loss="categorical_crossentropy")
    # Sparse seeded "digits" (about 25% lit pixels) so the uint8 input compresses well.
    x_uint8 = (rng.integers(1, 256, (64, 28, 28, 1)) * (rng.random((64, 28, 28, 1)) < 0.25)).astype(np.uint8)
    labels = rng.integers(0, 10, 64)
    x = x_uint8.astype(np.float32) / 255.0
    y = keras.utils.to_categorical(labels, 10)
    loss_before = float(model.evaluate(x, y, batch_size=64, verbose=0))
    history = model.fit(x, y, batch_size=32, epochs=1, shuffle=False, verbose=0)
    loss_after = float(model.evaluate(x, y, batch_size=64, verbose=0))
    after = {f"weight_after_{i:02d}": w for i, w in enumerate(model.get_weights())}
    save(
        "keras_sgd_one_epoch.npz",
        initial_weights_from=np.array("keras_mnist_convnet.npz weight_NN (the same list; Dropout has no weights)"),
        x_uint8=x_uint8,
        labels=labels,
        learning_rate=np.float64(0.01),
        batch_size=np.int64(32),
        history_loss=np.float64(history.history["loss"][0]),
        loss_before=np.float64(loss_before),
        loss_after=np.float64(loss_after),
        weight_names=np.array([v.path for v in model.weights]),
        **after,
        **versions(),
    )


def fixture_h() -> None:
    """(h) the activation layers on one seeded input ``x`` (4, 6, 6, 3): ``y_<name>`` per layer; PReLU's
    alphas (Keras' layout) are set to seeded values and stored as ``alpha_<name>``."""
    rng = np.random.default_rng(SEED + 7)
    x = (rng.normal(size=(4, 6, 6, 3)) * 3).astype(np.float32)
    out: dict[str, np.ndarray] = {"x": x}
    plain = {
        "leaky_relu_default": layers.LeakyReLU(),
        "leaky_relu_0_1": layers.LeakyReLU(negative_slope=0.1),
        "leaky_relu_alpha_0_05": layers.LeakyReLU(alpha=0.05),  # Keras 3.15 accepts it, with a warning
        "elu_default": layers.ELU(),
        "elu_0_5": layers.ELU(alpha=0.5),
        "relu_all": layers.ReLU(max_value=1.0, negative_slope=0.1, threshold=0.5),
        "relu_slope": layers.ReLU(negative_slope=0.2),
        "relu_threshold": layers.ReLU(threshold=0.3),
        "relu_max6": layers.ReLU(max_value=6.0),
        "relu_max_slope": layers.ReLU(max_value=2.0, negative_slope=0.1),
    }
    for name, layer in plain.items():
        out[f"y_{name}"] = np.asarray(layer(x))
    out["leaky_relu_default_slope"] = np.float64(layers.LeakyReLU().negative_slope)
    for name, shared in (("prelu", None), ("prelu_shared", [1, 2])):
        prelu = layers.PReLU(shared_axes=shared)
        prelu.build(x.shape)
        alpha = rng.uniform(-0.5, 0.5, prelu.get_weights()[0].shape).astype(np.float32)
        prelu.set_weights([alpha])
        out[f"alpha_{name}"], out[f"y_{name}"] = alpha, np.asarray(prelu(x))
        out[f"count_params_{name}"] = np.int64(prelu.count_params())
    save("keras_activations.npz", **out, **versions())


def fixture_i() -> None:
    """(i) weighted losses. Binary: Dense(1, sigmoid) on (12, 4), SGD(0.1), ``fit(class_weight={0: 1, 1: 5},
    batch_size=5, shuffle=False)``. Categorical: Dense(3, softmax), SGD(0.1), categorical cross-entropy with
    accuracy: ``evaluate(sample_weight=w, batch_size=5)`` and ``fit(sample_weight=w, validation_split=0.25,
    batch_size=4, shuffle=False)``. Initial weights ``*_w0``, ``*_b0``; weights after each fit."""
    rng = np.random.default_rng(SEED + 8)
    x = rng.normal(size=(12, 4)).astype(np.float32)
    y_binary = np.array([0, 1, 1, 0, 0, 0, 1, 0, 0, 1, 0, 0])
    y_class = rng.integers(0, 3, 12)
    w = rng.uniform(0.0, 3.0, 12).astype(np.float32)
    out: dict[str, np.ndarray] = {"x": x, "y_binary": y_binary, "y_class": y_class, "sample_weight": w}

    def model(units: int, activation: str, loss: str) -> keras.Sequential:
        keras.backend.clear_session()
        keras.utils.set_random_seed(SEED + 8)
        m = keras.Sequential([keras.Input((4,)), layers.Dense(units, activation=activation)])
        m.compile(optimizer=keras.optimizers.SGD(learning_rate=0.1), loss=loss, metrics=["accuracy"])
        return m

    binary = model(1, "sigmoid", "binary_crossentropy")
    out["binary_w0"], out["binary_b0"] = binary.get_weights()
    out["binary_loss_before"] = np.float64(binary.evaluate(x, y_binary, batch_size=12, verbose=0)[0])
    history = binary.fit(x, y_binary, class_weight={0: 1.0, 1: 5.0}, batch_size=5, shuffle=False, verbose=0)
    out["binary_class_weight_history_loss"] = np.float64(history.history["loss"][0])
    out["binary_class_weight_history_accuracy"] = np.float64(history.history["accuracy"][0])
    out["binary_w1"], out["binary_b1"] = binary.get_weights()

    categorical = model(3, "softmax", "categorical_crossentropy")
    out["categorical_w0"], out["categorical_b0"] = categorical.get_weights()
    one_hot = keras.utils.to_categorical(y_class, 3)
    loss, accuracy = categorical.evaluate(x, one_hot, sample_weight=w, batch_size=5, verbose=0)
    out["categorical_evaluate_weighted_loss"], out["categorical_evaluate_accuracy"] = (
        np.float64(loss),
        np.float64(accuracy),
    )
    out["categorical_evaluate_loss"] = np.float64(categorical.evaluate(x, one_hot, batch_size=5, verbose=0)[0])
    history = categorical.fit(
        x, one_hot, sample_weight=w, validation_split=0.25, batch_size=4, shuffle=False, verbose=0
    )
    for key, values in history.history.items():
        out[f"categorical_sample_weight_history_{key}"] = np.float64(values[0])
    out["categorical_w1"], out["categorical_b1"] = categorical.get_weights()
    save("keras_sample_weight.npz", **out, **versions())


def _pattern(shape: tuple[int, ...], salt: int) -> np.ndarray:
    """Deterministic uint8 'noise' (an integer hash of the position): the same bytes in any numpy version."""
    index = np.arange(int(np.prod(shape)), dtype=np.uint64).reshape(shape)
    return (((index * np.uint64(2654435761) + np.uint64(salt * 40503)) % np.uint64(2**32)) >> np.uint64(24)).astype(
        np.uint8
    )


def image_folder(root: Path) -> Path:
    """The folder of fixture (j), also made by tests/keras/test_real_keras.py: lossless files of every suffix on
    which Keras' two folder readers disagree (gif, webp, tif, ppm), RGBA and grey images, a nested folder, a
    text file."""
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


def fixture_j() -> None:
    """(j) the two folder readers on :func:`image_folder`, target (7, 5), unshuffled. ``flow_<case>_x`` /
    ``_files`` / ``_classes`` for flow_from_directory (class_mode='sparse'); ``ids_<case>_x`` / ``_files`` /
    ``_labels`` for image_dataset_from_directory (paths relative to the folder)."""
    out: dict[str, np.ndarray] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = image_folder(Path(tmp) / "folder")
        flow_cases = {
            "nearest": {},
            "bilinear": {"interpolation": "bilinear"},
            "keep_aspect": {"keep_aspect_ratio": True},
            "grayscale": {"color_mode": "grayscale"},
        }
        for case, options in flow_cases.items():
            it = ImageDataGenerator().flow_from_directory(
                str(root), target_size=(7, 5), class_mode="sparse", batch_size=64, shuffle=False, **options
            )
            x, _ = it[0]
            out[f"flow_{case}_x"], out[f"flow_{case}_files"] = x, np.array(it.filenames)
            out[f"flow_{case}_classes"] = it.classes
        ids_cases = {
            "bilinear": {},
            "nearest": {"interpolation": "nearest"},
            "crop": {"crop_to_aspect_ratio": True},
            "pad": {"pad_to_aspect_ratio": True},
        }
        for case, options in ids_cases.items():
            ds = keras.utils.image_dataset_from_directory(
                str(root), image_size=(7, 5), batch_size=64, shuffle=False, **options
            )
            x, labels = next(iter(ds))
            out[f"ids_{case}_x"], out[f"ids_{case}_labels"] = np.asarray(x), np.asarray(labels)
            out[f"ids_{case}_files"] = np.array([str(Path(p).relative_to(root)) for p in ds.file_paths])
    save("keras_directory.npz", **out, **versions())


def fixture_k() -> None:
    """(k) models inside models: per case the rows ``<case>_names`` / ``_types`` / ``_params`` of summary() and
    ``<case>_total`` / ``_trainable`` / ``_non_trainable`` (counts of values)."""
    out: dict[str, np.ndarray] = {}

    def record(case: str, model: keras.Model) -> None:
        out[f"{case}_names"] = np.array([layer.name for layer in model.layers])
        out[f"{case}_types"] = np.array([type(layer).__name__ for layer in model.layers])
        out[f"{case}_params"] = np.array([layer.count_params() for layer in model.layers])
        trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
        out[f"{case}_total"], out[f"{case}_trainable"] = np.int64(model.count_params()), np.int64(trainable)
        out[f"{case}_non_trainable"] = np.int64(model.count_params() - trainable)

    keras.backend.clear_session()
    base = keras.Sequential(
        [
            keras.Input((8, 8, 3)),
            layers.Conv2D(4, 3, activation="relu"),
            layers.BatchNormalization(),
            layers.MaxPooling2D(),
        ],
        name="conv_base",
    )
    base.trainable = False
    record(
        "sequential",
        keras.Sequential(
            [base, layers.Flatten(), layers.Dense(8, activation="relu"), layers.Dense(1, activation="sigmoid")]
        ),
    )
    added = keras.Sequential()
    added.add(keras.Input((8, 8, 3)))
    added.add(base)
    added.add(layers.Flatten())
    added.add(layers.Dense(1, activation="sigmoid"))
    record("add", added)
    inputs = keras.Input((8, 8, 3))
    inner = keras.Model(inputs, layers.GlobalAveragePooling2D()(layers.Conv2D(2, 1)(inputs)), name="inner")
    outer_in = keras.Input((8, 8, 3))
    record("functional", keras.Model(outer_in, layers.Dense(3)(inner(outer_in))))
    inner.trainable = False
    record("functional_frozen", keras.Model(outer_in, layers.Dense(3)(inner(outer_in))))
    mobilenet = keras.applications.MobileNetV2(weights=None, include_top=False, input_shape=(96, 96, 3))
    mobilenet.trainable = False
    record(
        "mobilenet",
        keras.Sequential([mobilenet, layers.GlobalAveragePooling2D(), layers.Dense(1, activation="sigmoid")]),
    )
    out["mobilenet_weight_shapes"] = np.array([str(tuple(w.shape)) for w in mobilenet.weights])
    save("keras_nested.npz", **out, **versions())


def fixture_l(weights: list[np.ndarray]) -> None:
    """(l) Chollet's activation model (Deep Learning with Python, 5.4) as Keras 3 takes it: ``Model(inputs=model.inputs,
    outputs=[layer.output for layer in model.layers[:4]])`` over (a)'s convnet and weights; ``act_0`` .. ``act_3``
    = its ``predict(x)`` (a list of four arrays) on a seeded ``x`` (3, 28, 28, 1)."""
    keras.backend.clear_session()
    model = mnist_convnet()
    model.set_weights(weights)
    activation_model = keras.Model(inputs=model.inputs, outputs=[layer.output for layer in model.layers[:4]])
    x = np.random.default_rng(SEED + 12).random((3, 28, 28, 1), dtype=np.float32)
    outputs = activation_model.predict(x, verbose=0)
    save("keras_activation_model.npz", x=x, **{f"act_{i}": out for i, out in enumerate(outputs)}, **versions())


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    tf.config.experimental.enable_op_determinism()
    rng = np.random.default_rng(SEED)
    weights_a = fixture_a_and_e(rng)
    fixture_b(rng)
    fixture_c(rng)
    fixture_d(rng)
    fixture_f()
    fixture_g(rng, weights_a)
    fixture_h()
    fixture_i()
    fixture_j()
    fixture_k()
    fixture_l(weights_a)


if __name__ == "__main__":
    main()
