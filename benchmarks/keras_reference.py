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

import keras
import numpy as np
import tensorflow as tf
from keras import layers

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


if __name__ == "__main__":
    main()
