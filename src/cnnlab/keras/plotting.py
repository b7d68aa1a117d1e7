"""``keras.utils.plot_model``: a picture of a model's layers and how they connect, drawn with matplotlib (Keras
needs pydot and the Graphviz program; the course's ``plot_model(model, to_file='model.png')`` runs here without
either).

Layers are boxes ranked by their longest path from the input (a residual branch sits beside the main path); an
arrow joins each layer to the layers that read its output.

>>> import tempfile
>>> from pathlib import Path
>>> from cnnlab.keras import layers, Sequential
>>> model = Sequential([layers.Conv2D(8, 3, input_shape=(28, 28, 1)), layers.Flatten(), layers.Dense(10)])
>>> path = Path(tempfile.mkdtemp()) / "model.png"
>>> _ = plot_model(model, to_file=path, show_shapes=True)
>>> path.stat().st_size > 1000
True
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cnnlab.core.errors import ConfigError
from cnnlab.keras.layers import channels_last

BOX_WIDTH, LINE, PAD, GAP, COLUMN = 3.6, 0.16, 0.14, 0.4, 4.2
"""In inches: a box's width, the height of a text line and the box's padding, the gap between ranks (rows) and
the pitch of columns."""

MAX_PIXELS = 20_000
"""The longest side of the picture: ``dpi`` is lowered to keep a deep model's image within it."""


def model_graph(model: Any) -> tuple[list[Any], list[tuple[int, ...]]]:
    """``(layers, parents)``: the model's layers in graph order and, for each, the indices of the layers it reads
    (a ``Sequential`` is a chain behind its input)."""
    nodes = getattr(model, "_nodes", None)
    if nodes is None:
        return list(model.layers), [() if i == 0 else (i - 1,) for i in range(len(model.layers))]
    layers = [model.layers[index] for index, _ in nodes]
    return layers, [tuple(parents) for _, parents in nodes]


def _ranks(parents: list[tuple[int, ...]]) -> list[int]:
    ranks: list[int] = []
    for before in parents:  # graph order: parents come first
        ranks.append(1 + max((ranks[p] for p in before), default=-1))
    return ranks


def _label(layer: Any, show_shapes: bool, show_layer_names: bool, show_activations: bool, trainable: bool) -> str:
    kind = getattr(layer, "keras_class_name", type(layer).__name__)
    if kind == "Input":
        kind = "InputLayer"
    text = f"{layer.name} ({kind})" if show_layer_names else kind
    activation = getattr(layer, "activation", None)
    if show_activations and isinstance(activation, str) and activation not in ("linear", "none"):
        text += f"\nactivation: {activation}"
    if trainable and getattr(layer, "weights", None):
        text += f"\ntrainable: {'yes' if layer.trainable else 'no'}"
    if show_shapes and getattr(layer, "output_shape", None) is not None:
        text += f"\noutput: (None, {', '.join(map(str, channels_last(layer.output_shape)))})"
    return text


def plot_model(
    model: Any,
    to_file: str | Path = "model.png",
    show_shapes: bool = False,
    show_dtype: bool = False,
    show_layer_names: bool = False,
    rankdir: str = "TB",
    expand_nested: bool = False,
    dpi: int = 200,
    show_layer_activations: bool = False,
    show_trainable: bool = False,
) -> Any:
    """Draw ``model`` to ``to_file`` (``.png``, ``.svg``, ``.pdf``, ``.jpg``) as Keras' ``plot_model`` does, with
    Keras 3's argument names and defaults; returns an ``IPython.display.Image`` of it in a notebook (as Keras),
    else ``None``. ``rankdir`` ``'TB'`` draws top to bottom, ``'LR'`` left to right; a nested model is one box
    (``expand_nested=True`` is refused)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    if rankdir not in ("TB", "LR"):
        raise ConfigError(f"plot_model: rankdir must be 'TB' or 'LR'. Received: rankdir={rankdir!r}")
    if expand_nested:
        raise ConfigError("plot_model: expand_nested=True is not supported", fix="plot the nested model on its own")
    built = getattr(model, "built", True) and all(getattr(layer, "built", True) for layer in model.layers)
    if not built:
        raise ConfigError(
            "plot_model: the model is not built yet", fix="give input_shape=(H, W, C) to the first layer first"
        )
    del show_dtype  # every weight and activation is float32 here
    layers, parents = model_graph(model)
    ranks = _ranks(parents)
    columns: dict[int, int] = {}
    place = []
    for rank in ranks:
        place.append((rank, columns.get(rank, 0)))
        columns[rank] = columns.get(rank, 0) + 1
    wide, deep = max(columns.values()), max(ranks) + 1
    lines = 1 + show_shapes + show_layer_activations + show_trainable
    height = lines * LINE + 2 * PAD
    pitch = height + GAP

    def centre(rank: int, column: int) -> tuple[float, float]:
        across = (column - (columns[rank] - 1) / 2) * COLUMN
        return (across, -rank * pitch) if rankdir == "TB" else (rank * COLUMN, -across * pitch / COLUMN)

    size = (wide * COLUMN + 1, deep * pitch + 1) if rankdir == "TB" else (deep * COLUMN + 1, wide * pitch + 1)
    dpi = min(dpi, int(MAX_PIXELS / max(size)))  # a ResNet-50 is some 130 inches tall
    figure, axes = plt.subplots(figsize=size)
    axes.set_axis_off()
    for child, before in enumerate(parents):
        x1, y1 = centre(*place[child])
        for parent in before:
            x0, y0 = centre(*place[parent])
            if rankdir == "TB":
                start, end = (x0, y0 - height / 2), (x1, y1 + height / 2)
            else:
                start, end = (x0 + BOX_WIDTH / 2 - 0.2, y0), (x1 - BOX_WIDTH / 2 + 0.2, y1)
            axes.annotate("", end, start, arrowprops={"arrowstyle": "->", "color": "#555555", "lw": 1})
    for layer, spot in zip(layers, place, strict=True):
        x, y = centre(*spot)
        label = _label(layer, show_shapes, show_layer_names, show_layer_activations, show_trainable)
        axes.text(
            x, y, label, ha="center", va="center", fontsize=8, family="monospace",
            bbox={"boxstyle": "round,pad=0.4", "facecolor": "#eef3fb", "edgecolor": "#3b6ea8"},
        )  # fmt: skip
    xs = [centre(*spot)[0] for spot in place]
    ys = [centre(*spot)[1] for spot in place]
    axes.set_xlim(min(xs) - BOX_WIDTH / 2 - 0.3, max(xs) + BOX_WIDTH / 2 + 0.3)
    axes.set_ylim(min(ys) - height, max(ys) + height)
    path = Path(to_file)
    path.parent.mkdir(parents=True, exist_ok=True)
    with matplotlib.rc_context({"svg.fonttype": "none"}):  # an .svg keeps its text as text
        figure.savefig(path, dpi=dpi, bbox_inches="tight")
    plt.close(figure)
    try:
        from IPython import get_ipython
        from IPython.display import Image
    except ImportError:
        return None
    if get_ipython() is None or path.suffix.lower() not in (".png", ".jpg", ".jpeg"):
        return None
    return Image(filename=str(path))


def model_to_dot(model: Any, **options: Any) -> Any:
    """Keras' pydot graph needs pydot and the Graphviz program, which cnnlab does not use: an error that says
    what draws the same picture."""
    raise ConfigError(
        "model_to_dot needs pydot and Graphviz, which cnnlab does not use",
        fix="plot_model(model, to_file='model.png', show_shapes=True), then IPython.display.Image('model.png') "
        "(or to_file='model.svg' and IPython.display.SVG('model.svg'))",
    )
