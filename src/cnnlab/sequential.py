"""The Keras-style facade: ``Sequential`` and the functional ``Model`` with compile / fit / evaluate /
predict / save / load, and ``load_model_yaml`` for YAML model specs.

Layouts: **numpy arrays are NHWC** (channels last, the Keras convention) and are transposed on the
way in; **torch tensors are NCHW** and are used as they are. A grayscale numpy batch may also be
``(N, H, W)``. Shapes inside cnnlab (``input_shape``, ``Input(shape)``, layer output shapes) are
per-sample and channels-first, e.g. ``(1, 28, 28)``. Outputs of ``predict`` are numpy arrays in
the model's own layout (class scores ``(N, classes)``; image outputs stay ``(N, C, H, W)``).

``fit`` builds a :class:`cnnlab.train.Trainer` and :class:`cnnlab.data.loader.TensorLoader`s, so
training uses the trainer's fast CPU plan (channels_last, bf16 autocast where the CPU has native
bf16; ``compile(..., precision="fp32")`` switches bf16 off).

Losses: ``'sparse_categorical_crossentropy'`` (integer labels) and ``'categorical_crossentropy'``
(one-hot labels). Keras reads model outputs as probabilities unless ``from_logits=True``; here
``from_logits=None`` (the default) looks at the model: a final ``softmax`` means probabilities
(the loss is ``-log(clip(p, 1e-7, 1))``, as in Keras), anything else means logits (``cross_entropy``).

>>> import numpy as np
>>> from cnnlab.layers import Conv2D, Dense, Flatten, MaxPooling2D
>>> model = Sequential([Conv2D(4, 3, activation="relu", input_shape=(1, 8, 8)), MaxPooling2D(), Flatten(),
...                     Dense(3, activation="softmax")])
>>> [layer.name for layer in model.layers], model.output_shape
(['conv2d', 'max_pooling2d', 'flatten', 'dense'], (3,))
>>> model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
>>> x, y = np.random.rand(32, 8, 8, 1).astype("float32"), np.arange(32) % 3     # NHWC numpy
>>> history = model.fit(x, y, epochs=2, batch_size=8, validation_split=0.25, verbose=0)
>>> sorted(history.history)
['accuracy', 'loss', 'lr', 'time_s', 'val_accuracy', 'val_loss']
>>> model.predict(x[:2]).shape
(2, 3)
"""

from __future__ import annotations

import dataclasses
import difflib
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
import yaml
from torch import nn

from cnnlab.core.display import Picture, html_table
from cnnlab.core.errors import CnnlabError, ConfigError, DataError, ShapeError, WeightsError
from cnnlab.core.rundir import load_checkpoint, save_checkpoint
from cnnlab.data.loader import TensorLoader
from cnnlab.layers.base import (
    Input,
    Layer,
    Shape,
    SymbolicTensor,
    check_channels_first,
    check_choice,
    layer_from_config,
    snake_case,
)
from cnnlab.train import Callback, TrainConfig, Trainer
from cnnlab.train.callbacks import ProgressBar
from cnnlab.train.trainer import BatchSource, Logs

SAVE_FORMAT = "cnnlab-keras-model/1"
LOSSES = ("sparse_categorical_crossentropy", "categorical_crossentropy")
#: Keras' optimizer defaults (learning rate, weight decay, plain momentum), not the Trainer's.
OPTIMIZER_DEFAULTS: dict[str, dict[str, Any]] = {
    "adam": {"lr": 1e-3, "weight_decay": 0.0},
    "adamw": {"lr": 1e-3, "weight_decay": 0.004},
    "sgd": {"lr": 0.01, "momentum": 0.0, "nesterov": False, "weight_decay": 0.0},
}
_KERAS_NAMES = {"acc": "accuracy", "val_acc": "val_accuracy"}
_PROBABILITY_EPS = 1e-7  # Keras' epsilon for clipping probabilities before the log

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class ProbabilityCrossEntropy(nn.Module):
    """Cross-entropy for outputs that are already probabilities (a final softmax).

    >>> p = torch.tensor([[0.7, 0.2, 0.1]])
    >>> round(ProbabilityCrossEntropy()(p, torch.tensor([0])).item(), 4)   # -log(0.7)
    0.3567
    """

    def __init__(self, label_smoothing: float = 0.0) -> None:
        super().__init__()
        self.label_smoothing = label_smoothing

    def forward(self, probs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        log_p = torch.log(probs.float().clamp(_PROBABILITY_EPS, 1.0))
        loss = F.nll_loss(log_p, targets)
        if self.label_smoothing:  # same formula as torch's cross_entropy(label_smoothing=...)
            loss = (1 - self.label_smoothing) * loss - self.label_smoothing * log_p.mean(dim=1).mean()
        return loss


@dataclass
class History:
    """What ``fit`` returns, as in Keras: ``history["val_accuracy"]`` is one value per epoch. In Jupyter it
    shows its loss and accuracy curves and the last epoch's numbers.

    >>> history = History({"loss": [0.9, 0.4], "accuracy": [0.6, 0.9]}, [0, 1])
    >>> history.rows()[-1]
    {'epoch': 2, 'loss': 0.4, 'accuracy': 0.9}
    >>> "<img" in history._repr_html_() and "<td>0.9</td>" in history._repr_html_()
    True
    """

    history: dict[str, list[float]] = field(default_factory=dict)
    epoch: list[int] = field(default_factory=list)

    def rows(self) -> list[dict[str, float]]:
        """One dict per epoch (``epoch`` counted from 1), as a run folder's ``metrics.csv`` holds them."""
        epochs = max((len(values) for values in self.history.values()), default=0)
        return [{"epoch": i + 1, **{k: v[i] for k, v in self.history.items() if i < len(v)}} for i in range(epochs)]

    def _repr_html_(self) -> str:
        from cnnlab.report.plots import training_curves_figure

        rows = self.rows()
        if not rows:
            return "<p>History: no epoch trained yet.</p>"
        last = rows[-1]
        table = html_table(list(last), [[f"{v:.4g}" for v in last.values()]], caption=f"After epoch {last['epoch']}")
        return Picture.from_figure(training_curves_figure(rows))._repr_html_() + table


@dataclass(frozen=True)
class _Compiled:
    config: TrainConfig
    loss_fn: Loss
    labels: str  # "sparse" (class indices), "one_hot", or "raw" (a custom loss gets y as given)


class BaseModel(nn.Module, ABC):
    """compile / fit / evaluate / predict / save shared by :class:`Sequential` and :class:`Model`."""

    def __init__(self, name: str | None = None) -> None:
        super().__init__()
        self.name = name
        self.input_shape: Shape | None = None
        self.output_shape: Shape | None = None
        self._compiled: _Compiled | None = None
        self._optimizer_state: dict[str, Any] | None = None

    # ----- what the two model kinds provide ----------------------------------------------------
    @abstractmethod
    def build(self, input_shape: Sequence[int]) -> Shape:
        """Build every layer for the per-sample, channels-first ``input_shape``; returns the output shape."""

    @abstractmethod
    def get_config(self) -> dict[str, Any]:
        """The architecture as plain data (what ``save`` stores next to the weights)."""

    @property
    def multi_output(self) -> bool:
        """Whether the model returns a list of tensors (a functional ``Model(x, [a, b])``) rather than one."""
        return False

    @abstractmethod
    def output_layer(self) -> Layer:
        """The layer that produces the model output."""

    # ----- Keras API ---------------------------------------------------------------------------
    def compile(
        self,
        optimizer: str = "adam",
        loss: str | Loss = "sparse_categorical_crossentropy",
        metrics: Sequence[str] = ("accuracy",),
        *,
        learning_rate: float | None = None,
        from_logits: bool | None = None,
        **train_options: Any,
    ) -> None:
        """Choose optimizer ('adam', 'adamw', 'sgd' with Keras' defaults), loss and metrics.

        ``train_options`` are further :class:`cnnlab.train.TrainConfig` fields (``schedule='onecycle'``,
        ``precision='fp32'``, ``seed``, ...). The schedule is constant unless you ask. Only the
        ``'accuracy'`` metric exists: the trainer computes it for every batch.
        """
        check_choice("compile", "optimizer", optimizer, list(OPTIMIZER_DEFAULTS))
        for metric in metrics:
            check_choice("compile", "metric", metric, ["accuracy", "acc"])
        known = [f.name for f in dataclasses.fields(TrainConfig) if f.name != "optimizer"]
        for key in train_options:
            if key not in known:
                close = difflib.get_close_matches(key, known, n=1)
                hint = f"; did you mean '{close[0]}'?" if close else ""
                raise ConfigError(
                    f"compile: unknown option '{key}'{hint}", fix=f"TrainConfig fields: {', '.join(known)}"
                )
        options = {"schedule": "constant", "batch_size": 32, **OPTIMIZER_DEFAULTS[optimizer], **train_options}
        if learning_rate is not None:
            options["lr"] = learning_rate
        config = TrainConfig(optimizer=optimizer, **options)
        if callable(loss):
            self._compiled = _Compiled(config, loss, labels="raw")
        else:
            check_choice("compile", "loss", loss, LOSSES)
            probabilities = self._ends_in_softmax() if from_logits is None else not from_logits
            loss_fn = (
                ProbabilityCrossEntropy(config.label_smoothing)
                if probabilities
                else nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
            )
            labels = "one_hot" if loss == "categorical_crossentropy" else "sparse"
            self._compiled = _Compiled(config, loss_fn, labels=labels)
        self._optimizer_state = None

    def fit(
        self,
        x: Any,
        y: Any = None,
        *,
        batch_size: int | None = None,
        epochs: int = 1,
        validation_split: float = 0.0,
        validation_data: Any = None,
        callbacks: Sequence[Callback] = (),
        shuffle: bool = True,
        verbose: int = 1,
    ) -> History:
        """Train on ``x`` (numpy NHWC, torch NCHW, or a batch source such as ``TensorLoader`` with ``y=None``).

        ``validation_split`` holds out the *last* fraction of ``x``/``y`` (before shuffling), as
        Keras does; ``validation_data`` is ``(x_val, y_val)`` or a batch source. ``callbacks`` are
        :class:`cnnlab.train.Callback` objects; ``verbose=1`` adds a progress bar. Optimizer state
        carries over between ``fit`` calls; each call runs its own learning-rate schedule.
        """
        compiled = self._require_compiled("fit")
        config = dataclasses.replace(
            compiled.config, epochs=epochs, batch_size=batch_size or compiled.config.batch_size
        )
        if not 0 <= validation_split < 1:
            raise ConfigError(f"fit: validation_split must be in [0, 1). Received: {validation_split}", fix="e.g. 0.1")
        if validation_split and validation_data is not None:
            raise ConfigError("fit: give validation_split or validation_data, not both", fix="drop one of them")
        if _is_batch_source(x):
            if y is not None or validation_split:
                raise ConfigError(
                    "fit: with a batch source as x, give neither y nor validation_split",
                    fix="pass validation_data=(x_val, y_val) or another batch source",
                )
            _check_not_empty(x, "fit", "training samples")
            self._build_from(next(iter(x.batches()))[0])
            train = x
        else:
            inputs, targets = self._tensors(x, y, "fit")
            _check_not_empty(inputs, "fit", "training samples")
            n_val = int(len(inputs) * validation_split)
            if validation_split and n_val == 0:
                raise DataError(f"fit: validation_split={validation_split} of {len(inputs)} samples is empty")
            n_train = len(inputs) - n_val
            train = _loader(inputs[:n_train], targets[:n_train], config.batch_size, shuffle, config.seed)
            if n_val:
                validation_data = (inputs[n_train:], targets[n_train:])
        val = None if validation_data is None else self._eval_source(validation_data, None, "validation_data")
        trainer = self._trainer(config, [ProgressBar(), *callbacks] if verbose else list(callbacks))
        if self._optimizer_state is not None:
            trainer.optimizer.load_state_dict(self._optimizer_state)
        logs = trainer.fit(train, val)
        self._optimizer_state = trainer.optimizer.state_dict()
        return _history(logs)

    def evaluate(self, x: Any, y: Any = None, *, batch_size: int | None = None) -> dict[str, float]:
        """Mean ``loss`` and ``accuracy`` over ``x``/``y`` (numpy NHWC, torch NCHW, or a batch source)."""
        compiled = self._require_compiled("evaluate")
        source = self._eval_source(x, y, "evaluate", batch_size)
        result = self._trainer(compiled.config, []).evaluate(source)
        return {_KERAS_NAMES.get(k, k): v for k, v in result.items()}

    def predict(self, x: Any, *, batch_size: int | None = None) -> np.ndarray:
        """Model outputs for ``x`` (numpy NHWC or torch NCHW) as a float32 numpy array (no compile needed)."""
        config = self._compiled.config if self._compiled else TrainConfig()
        if _is_batch_source(x):
            source = x
            _check_not_empty(x, "predict")
            self._build_from(next(iter(x.batches()))[0])
        else:
            inputs = self._inputs(x, "predict")
            _check_not_empty(inputs, "predict")
            source = _loader(inputs, torch.zeros(len(inputs), dtype=torch.long), batch_size or config.eval_batch_size)
        return self._trainer(config, []).predict(source).numpy()

    def save(self, path: str | Path) -> None:
        """Save architecture and weights to one file (safe to load: no pickled code). Compile again after ``load``."""
        if self.input_shape is None:
            raise ShapeError(
                "cannot save a model that is not built yet", fix="give input_shape (or call fit / predict) first"
            )
        state = {k: v.contiguous() for k, v in self.state_dict().items()}
        save_checkpoint(path, {"format": SAVE_FORMAT, "config": self.get_config(), "state_dict": state})

    @classmethod
    def load(cls, path: str | Path) -> BaseModel:
        """Load a model written by :meth:`save`: ``BaseModel.load`` returns either kind, ``Sequential.load``
        and ``Model.load`` insist on theirs.

        >>> import tempfile, pathlib
        >>> from cnnlab.layers import Dense
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "m.pt"
        >>> Sequential([Dense(2, input_shape=(3,))]).save(path)
        >>> Sequential.load(path).layers[0].units
        2
        """
        checkpoint = load_checkpoint(path)
        if checkpoint.get("format") != SAVE_FORMAT:
            raise WeightsError(
                f"not a saved cnnlab Keras-style model (format {checkpoint.get('format')!r})",
                where=str(path),
                fix="load it with the tool that wrote it (training checkpoints: cnnlab.core.rundir.load_checkpoint)",
            )
        model = model_from_config(checkpoint["config"], where=str(path))
        if not isinstance(model, cls):
            raise WeightsError(f"the file holds a {type(model).__name__}, not a {cls.__name__}", where=str(path))
        model.load_state_dict(checkpoint["state_dict"])
        return model

    # ----- helpers -----------------------------------------------------------------------------
    def _ends_in_softmax(self) -> bool:
        return getattr(self.output_layer(), "activation", None) == "softmax"

    def _require_compiled(self, what: str) -> _Compiled:
        if self._compiled is None:
            raise ConfigError(
                f"{what}: the model is not compiled", fix="call model.compile(optimizer, loss, metrics) first"
            )
        return self._compiled

    def _trainer(self, config: TrainConfig, callbacks: list[Callback]) -> Trainer:
        loss_fn = self._compiled.loss_fn if self._compiled else None
        return Trainer(self, config, loss_fn=loss_fn, callbacks=callbacks)

    def _build_from(self, batch: torch.Tensor) -> None:
        if self.input_shape is None:
            self.build(tuple(batch.shape[1:]))

    def _inputs(self, x: Any, what: str) -> torch.Tensor:
        tensor = to_nchw(x, self.input_shape, what)
        self._build_from(tensor)
        return tensor

    def _tensors(self, x: Any, y: Any, what: str) -> tuple[torch.Tensor, torch.Tensor]:
        if y is None:
            raise ConfigError(f"{what}: y is missing", fix="pass labels as y, or a batch source (TensorLoader) as x")
        inputs = self._inputs(x, what)
        targets = self._targets(y, what)
        if len(inputs) != len(targets):
            raise DataError(f"{what}: x has {len(inputs)} samples but y has {len(targets)}", fix="pass aligned x and y")
        return inputs, targets

    def _targets(self, y: Any, what: str) -> torch.Tensor:
        t = y if isinstance(y, torch.Tensor) else torch.from_numpy(np.asarray(y))
        labels = self._require_compiled(what).labels
        if labels == "raw":
            return t.float() if t.dtype == torch.float64 else t
        if labels == "one_hot":
            if t.dim() != 2 or not bool(((t == 0) | (t == 1)).all() and (t.sum(dim=1) == 1).all()):
                raise DataError(
                    f"{what}: categorical_crossentropy needs one-hot labels (N, classes); got shape {tuple(t.shape)}",
                    fix="use loss='sparse_categorical_crossentropy' for integer labels",
                )
            t = t.argmax(dim=1)
        elif t.dim() == 2 and t.shape[1] == 1:
            t = t[:, 0]
        if t.dim() != 1 or (t.is_floating_point() and not bool((t == t.round()).all())):
            raise DataError(
                f"{what}: sparse_categorical_crossentropy needs integer labels (N,); got {tuple(t.shape)} {t.dtype}",
                fix="pass class indices, or compile with loss='categorical_crossentropy' for one-hot labels",
            )
        t = t.long()
        classes = self.output_shape[0] if self.output_shape else None
        if len(t) and classes is not None and (int(t.min()) < 0 or int(t.max()) >= classes):
            raise DataError(
                f"{what}: labels must be in [0, {classes}) for a {classes}-way output; "
                f"found {int(t.min())}..{int(t.max())}",
                fix="make the last layer as wide as the number of classes",
            )
        return t

    def _eval_source(self, x: Any, y: Any, what: str, batch_size: int | None = None) -> BatchSource:
        if _is_batch_source(x):
            _check_not_empty(x, what)
            return x
        if isinstance(x, tuple) and y is None and len(x) == 2:
            x, y = x
        inputs, targets = self._tensors(x, y, what)
        _check_not_empty(inputs, what)
        config = self._require_compiled(what).config
        return _loader(inputs, targets, batch_size or config.eval_batch_size)


class Sequential(BaseModel):
    """A plain stack of layers; the input shape comes from an ``Input`` first, ``input_shape=`` on the
    first layer or on the model, or the first data it sees.

    >>> from cnnlab.layers import Conv2D, Dense, Flatten
    >>> model = Sequential([Input((3, 32, 32)), Conv2D(8, 3, padding="same"), Flatten()])
    >>> model.add(Dense(10))
    >>> model.output_shape, model.layers[-1].name
    ((10,), 'dense')
    """

    def __init__(
        self, layers: Sequence[Layer] = (), *, name: str | None = None, input_shape: Sequence[int] | None = None
    ) -> None:
        super().__init__(name)
        self.layers = nn.ModuleList()
        if input_shape is not None:
            self.add(Input(input_shape))
        for layer in layers:
            self.add(layer)

    def add(self, layer: Layer) -> None:
        """Append ``layer`` (and build it at once if the input shape is known)."""
        if isinstance(layer, Input):
            if len(self.layers) or self.input_shape is not None:
                raise ConfigError("Sequential: Input must come first, and only once", fix="remove the extra Input")
            self.input_shape = self.output_shape = layer.shape
            return
        if not isinstance(layer, Layer) or layer.multi_input:
            raise ConfigError(
                f"Sequential takes single-input cnnlab layers; got {type(layer).__name__}",
                fix="use cnnlab.layers; for Add / Concatenate build a functional Model(inputs, outputs)",
            )
        assign_names([layer], taken={existing.name for existing in self.layers})
        if not len(self.layers) and self.input_shape is None and layer.input_shape is not None:
            self.input_shape = self.output_shape = layer.input_shape
        self.layers.append(layer)
        if self.output_shape is not None:
            self.output_shape = layer.build(self.output_shape)

    def build(self, input_shape: Sequence[int]) -> Shape:
        shape = tuple(int(n) for n in input_shape)
        check_channels_first(
            shape, "input shape", fix=f"use {(shape[-1], *shape[:-1])} (torch tensors: x.permute(0, 3, 1, 2))"
        )
        self.input_shape = shape
        for layer in self.layers:
            shape = layer.build(shape)
        self.output_shape = shape
        return shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.input_shape is None:
            self.build(tuple(x.shape[1:]))
        for layer in self.layers:
            x = layer(x)
        return x

    def output_layer(self) -> Layer:
        if not len(self.layers):
            raise ConfigError("Sequential: the model has no layers", fix="add layers before compiling")
        return self.layers[-1]

    def get_config(self) -> dict[str, Any]:
        return {
            "class": "Sequential",
            "name": self.name,
            "input_shape": None if self.input_shape is None else list(self.input_shape),
            "layers": [layer.get_config() for layer in self.layers],
        }


class Model(BaseModel):
    """A functional graph from ``inputs`` (an ``Input``) to ``outputs`` (what the last layer call returned).

    >>> from cnnlab.layers import Add, Conv2D, Dense, GlobalAveragePooling2D
    >>> x = Input((8, 16, 16))
    >>> y = Conv2D(8, 3, padding="same", activation="relu")(x)
    >>> y = Add()([x, Conv2D(8, 3, padding="same")(y)])     # a residual connection
    >>> model = Model(x, Dense(10)(GlobalAveragePooling2D()(y)))
    >>> model(torch.randn(2, 8, 16, 16)).shape, len(model.layers)
    (torch.Size([2, 10]), 6)
    """

    def __init__(
        self,
        inputs: Input | SymbolicTensor,
        outputs: SymbolicTensor | Sequence[SymbolicTensor],
        *,
        name: str | None = None,
    ) -> None:
        super().__init__(name)
        source, sinks = _single(inputs, "inputs"), _outputs(outputs)
        order = _topological_order(sinks)
        starts = [node for node in order if not node.parents]
        if starts != [source]:
            raise ConfigError(
                "Model: outputs must be computed from inputs alone",
                fix="pass the Input the graph starts from as inputs (one input per model)",
            )
        layers: list[Layer] = []
        for node in order:
            if all(node.layer is not seen for seen in layers):
                layers.append(node.layer)
        assign_names(layers, taken=set())
        self.layers = nn.ModuleList(layers)
        layer_index = {id(layer): i for i, layer in enumerate(layers)}
        node_index = {id(node): i for i, node in enumerate(order)}
        # Each node: (index into self.layers, indices of the parent nodes).
        self._nodes = [(layer_index[id(n.layer)], tuple(node_index[id(p)] for p in n.parents)) for n in order]
        #: The nodes the model returns, in the order of ``outputs`` (one: a tensor; several: a list).
        self._output_nodes = tuple(node_index[id(sink)] for sink in sinks)
        self.__dict__["_graph_ends"] = (source, sinks)  # the tensors it was made from (not sub-modules)
        self.input_shape = source.shape
        self.output_shapes = [sink.shape for sink in sinks]
        self.output_shape = self.output_shapes[0] if len(sinks) == 1 else None

    @property
    def multi_output(self) -> bool:
        return len(self._output_nodes) > 1

    def build(self, input_shape: Sequence[int]) -> Shape:
        if tuple(input_shape) != self.input_shape:
            raise ShapeError(f"Model: built for input {self.input_shape}, received {tuple(input_shape)}")
        if self.multi_output:
            raise ConfigError(
                f"Model: a model with {len(self._output_nodes)} outputs cannot be a layer of another model",
                fix="call it on arrays, or build the outer graph from its layers' outputs",
            )
        assert self.output_shape is not None
        return self.output_shape

    def forward(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        values: list[torch.Tensor] = []
        for layer_index, parents in self._nodes:
            if not parents:
                values.append(x)
                continue
            layer = self.layers[layer_index]
            args = [values[p] for p in parents]
            values.append(layer(args if layer.multi_input else args[0]))
        if self.multi_output:
            return [values[i] for i in self._output_nodes]
        return values[self._output_nodes[0]]

    def output_layer(self) -> Layer:
        if self.multi_output:
            raise ConfigError(
                f"Model: compile and fit train a model with one output; this one has {len(self._output_nodes)}",
                fix="use it for predict (a list of arrays), or build a model per output",
            )
        return self.layers[self._nodes[self._output_nodes[0]][0]]

    def get_config(self) -> dict[str, Any]:
        return {
            "class": "Model",
            "name": self.name,
            "layers": [layer.get_config() for layer in self.layers],
            "nodes": [[i, list(parents)] for i, parents in self._nodes],
            "outputs": list(self._output_nodes),
        }


def model_from_config(config: dict[str, Any], where: str | None = None) -> BaseModel:
    """Rebuild a model (without weights) from :meth:`BaseModel.get_config`."""
    kind = config.get("class")
    if kind == "Sequential":
        layers = [layer_from_config(c, where=f"{where}: layers[{i}]") for i, c in enumerate(config["layers"])]
        return Sequential(layers, name=config.get("name"), input_shape=config.get("input_shape"))
    if kind == "Model":
        layers = [layer_from_config(c, where=f"{where}: layers[{i}]") for i, c in enumerate(config["layers"])]
        return Model(*rebuild_graph(layers, config["nodes"], config.get("outputs")), name=config.get("name"))
    raise ConfigError(f"unknown model class {kind!r}", where=where, fix="expected 'Sequential' or 'Model'")


def rebuild_graph(
    layers: Sequence[Layer], nodes: Sequence[Sequence[Any]], outputs: Sequence[int] | None = None
) -> tuple[SymbolicTensor, SymbolicTensor | list[SymbolicTensor]]:
    """Call ``layers`` as the ``nodes`` of :meth:`Model.get_config` say; returns ``(input, outputs)`` for
    ``Model``: the ``outputs`` nodes (one: the tensor; default: the last node)."""
    tensors: list[SymbolicTensor] = []
    for layer_index, parents in nodes:
        layer = layers[layer_index]
        if not parents:
            tensors.append(layer.output)
        else:
            args = [tensors[p] for p in parents]
            tensors.append(layer(args if layer.multi_input else args[0]))
    start = next(t for t, (_, parents) in zip(tensors, nodes, strict=True) if not parents)
    ends = [tensors[i] for i in (outputs if outputs is not None else [-1])]
    return start, ends[0] if len(ends) == 1 else ends


def load_model_yaml(path: str | Path) -> Sequential:
    """Build a :class:`Sequential` from a YAML spec: ``input_shape`` (channels-first) and a list of layers.

    >>> import tempfile, pathlib
    >>> spec = pathlib.Path(tempfile.mkdtemp()) / "model.yaml"
    >>> _ = spec.write_text('''
    ... input_shape: [1, 28, 28]
    ... layers:
    ...   - {layer: Conv2D, filters: 32, kernel_size: 3, activation: relu}
    ...   - {layer: MaxPooling2D, pool_size: 2}
    ...   - {layer: Flatten}
    ...   - {layer: Dense, units: 10, activation: softmax}
    ... ''')
    >>> model = load_model_yaml(spec)
    >>> model.input_shape, [layer.output_shape for layer in model.layers]
    ((1, 28, 28), [(32, 26, 26), (32, 13, 13), (5408,), (10,)])
    """
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read model spec: {exc.strerror}", where=str(path), fix="check the path") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML: {exc}", where=str(path), fix="fix the syntax at the line shown") from None
    if isinstance(data, list):
        data = {"layers": data}
    if not isinstance(data, dict) or not isinstance(data.get("layers"), list) or not data["layers"]:
        raise ConfigError(
            "a model spec is a mapping with a non-empty 'layers' list (and usually 'input_shape')",
            where=str(path),
            fix="see cnnlab.sequential.load_model_yaml for an example",
        )
    unknown = sorted(set(data) - {"input_shape", "layers", "name"})
    if unknown:
        raise ConfigError(
            f"unknown keys {unknown} in the model spec", where=str(path), fix="use input_shape, layers, name"
        )
    layers = [layer_from_config(entry, where=f"{path}: layers[{i}]") for i, entry in enumerate(data["layers"])]
    try:
        return Sequential(layers, name=data.get("name"), input_shape=data.get("input_shape"))
    except CnnlabError as exc:  # add the file to shape errors raised while building
        raise type(exc)(exc.what, where=str(path), fix=exc.fix) from None


def to_nchw(x: Any, input_shape: Shape | None, what: str = "x") -> torch.Tensor:
    """A batch as an NCHW torch tensor: numpy is NHWC (transposed here), torch is NCHW (kept).

    uint8 stays uint8 (converted to float per batch); other numbers become float32.

    >>> to_nchw(np.zeros((5, 28, 28, 1), np.uint8), (1, 28, 28)).shape
    torch.Size([5, 1, 28, 28])
    >>> to_nchw(np.zeros((5, 28, 28)), (1, 28, 28)).shape      # grayscale without a channel axis
    torch.Size([5, 1, 28, 28])
    """
    if isinstance(x, torch.Tensor):
        tensor, layout = x, "torch tensors are NCHW"
    else:
        array = np.asarray(x)
        if array.dtype != np.uint8:
            array = array.astype(np.float32, copy=False)
        if input_shape is not None and array.ndim == len(input_shape) and input_shape[0] == 1:
            array = array[:, None]  # (N, H, W) grayscale -> (N, 1, H, W)
        elif array.ndim >= 3:
            array = np.moveaxis(array, -1, 1)  # (N, H, W, C) -> (N, C, H, W)
        tensor, layout = torch.from_numpy(np.ascontiguousarray(array)), "numpy arrays are NHWC"
    if input_shape is not None and tuple(tensor.shape[1:]) != tuple(input_shape):
        c, *spatial = input_shape
        nhwc = (*spatial, c) if spatial else (c,)
        raise ShapeError(
            f"{what}: the model takes per-sample shape {tuple(input_shape)} (channels-first) but the data has shape "
            f"{tuple(np.shape(x))} ({layout})",
            fix=f"pass numpy arrays as (N, {', '.join(map(str, nhwc))}) or torch tensors as "
            f"(N, {', '.join(map(str, input_shape))})",
        )
    return tensor


def assign_names(layers: Sequence[Layer], taken: set[str]) -> None:
    """Give unnamed layers Keras-style unique names (``conv2d``, ``conv2d_1``, ...); duplicates are errors."""
    for layer in layers:
        if layer.name is not None:
            if layer.name in taken:
                raise ConfigError(f"two layers are named '{layer.name}'", fix="layer names must be unique in a model")
            taken.add(layer.name)
    for layer in layers:
        if layer.name is None:
            base = snake_case(type(layer).__name__)
            name, i = base, 0
            while name in taken:
                i += 1
                name = f"{base}_{i}"
            layer.name = name
            taken.add(name)


def _single(value: Any, what: str) -> SymbolicTensor:
    if isinstance(value, list | tuple):
        if len(value) != 1:
            raise ConfigError(f"Model: {what} must be one tensor (got {len(value)})", fix="one input per model")
        value = value[0]
    if isinstance(value, Input):
        value = value.output
    if not isinstance(value, SymbolicTensor):
        raise ConfigError(
            f"Model: {what} must come from Input(...) and layer calls, got {type(value).__name__}",
            fix="x = Input(shape); y = Conv2D(...)(x); Model(x, y)",
        )
    return value


def _outputs(value: Any) -> list[SymbolicTensor]:
    """``outputs`` of a functional model: one tensor, or a non-empty list of them."""
    items = list(value) if isinstance(value, list | tuple) else [value]
    if not items:
        raise ConfigError("Model: outputs is empty", fix="pass the tensor (or list of tensors) the model returns")
    return [_single(item, "outputs") for item in items]


def _topological_order(sinks: SymbolicTensor | Sequence[SymbolicTensor]) -> list[SymbolicTensor]:
    """Nodes in an order where parents come before children (iterative DFS from each of ``sinks`` in turn)."""
    order: list[SymbolicTensor] = []
    seen: set[int] = set()
    for sink in [sinks] if isinstance(sinks, SymbolicTensor) else sinks:
        stack: list[tuple[SymbolicTensor, bool]] = [(sink, False)]
        while stack:
            node, expanded = stack.pop()
            if expanded:
                order.append(node)
            elif id(node) not in seen:
                seen.add(id(node))
                stack.append((node, True))
                stack.extend((parent, False) for parent in reversed(node.parents))
    return order


def _is_batch_source(x: Any) -> bool:
    return hasattr(x, "batches") and hasattr(x, "__len__")


def _check_not_empty(data: Any, what: str, samples: str = "samples") -> None:
    """Refuse data without a sample: a tensor with 0 rows or a batch source with no batch."""
    if len(data) == 0:
        why = "the batch source is empty" if _is_batch_source(data) else "x has 0 rows"
        raise DataError(f"{what}: no {samples}: {why}", fix="pass at least one sample")


def _as_float(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return batch if batch.is_floating_point() else batch.float()


def _loader(
    inputs: torch.Tensor, targets: torch.Tensor, batch_size: int, shuffle: bool = False, seed: int = 0
) -> TensorLoader:
    return TensorLoader(inputs, targets, batch_size=batch_size, shuffle=shuffle, seed=seed, transform=_as_float)


def _history(logs: list[Logs]) -> History:
    history = History()
    for row in logs:
        history.epoch.append(int(row["epoch"]))
        for key, value in row.items():
            if key != "epoch":
                history.history.setdefault(_KERAS_NAMES.get(key, key), []).append(float(value))
    return history
