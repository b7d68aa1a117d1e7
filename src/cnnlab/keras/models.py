"""Keras models (``keras.models``): ``Sequential``, the functional ``Model`` and ``load_model``, with
Keras' conventions, built on :mod:`cnnlab.sequential` and trained by :class:`cnnlab.train.Trainer`.

What you write is Keras: arrays are channels-last ``(N, H, W, C)`` (numpy, lists, or torch tensors
in the same layout), ``fit`` returns a ``History`` with Keras' keys, ``evaluate`` returns the loss
alone without metrics and ``[loss, metric, ...]`` with them (``return_dict=True``: a dict),
``predict`` returns numpy arrays (image outputs channels-last), and ``summary()`` prints Keras'
table. Inside, the model computes channels-first like torch: the data is transposed once on the
way in, and a cnnlab batch source (``TensorLoader``) is used as it is (NCHW).

Training runs under the mixed-precision policy (:mod:`cnnlab.keras.mixed_precision`: cnnlab's CPU
plan, bfloat16 where the processor has it, unless set to Keras' ``"float32"``), with Keras' defaults:
batch size 32, ``validation_split`` holding out the *last* fraction of the samples (before
shuffling), the optimizer's state kept from one ``fit`` to the next, ``sample_weight`` /
``class_weight`` weighting the loss as Keras does. Keras callbacks (:mod:`cnnlab.keras.callbacks`) see
Keras' log names. A model is also a layer: it nests in a ``Sequential`` or a functional graph, as a
``keras.applications`` base does.

``model.save(path)`` writes cnnlab's own safe format (a torch checkpoint of plain data: no pickled
code runs on load) whatever the suffix, so ``model.save("model.keras")`` or ``"model.h5"`` work,
but Keras cannot read the file and :func:`load_model` cannot read Keras' files. The file holds the
optimizer's state too; your own layer classes come back through ``custom_objects``.

>>> import numpy as np
>>> from cnnlab.keras import layers
>>> model = Sequential()
>>> model.add(layers.Conv2D(4, (3, 3), activation="relu", input_shape=(8, 8, 1)))
>>> model.add(layers.MaxPooling2D((2, 2)))
>>> model.add(layers.Flatten())
>>> model.add(layers.Dense(3, activation="softmax"))
>>> model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
>>> x, y = np.random.rand(40, 8, 8, 1).astype("float32"), np.arange(40) % 3
>>> history = model.fit(x, y, epochs=2, batch_size=8, validation_split=0.2, verbose=0)
>>> sorted(history.history), history.epoch
(['accuracy', 'loss', 'val_accuracy', 'val_loss'], [0, 1])
>>> loss, accuracy = model.evaluate(x, y, verbose=0)
>>> model.predict(x[:2], verbose=0).shape, model.count_params()
((2, 3), 151)
"""

from __future__ import annotations

import dataclasses
import json
import math
import warnings
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

import cnnlab.sequential as cs
from cnnlab.core.errors import ConfigError, DataError, ShapeError, WeightsError
from cnnlab.core.rundir import load_checkpoint, save_checkpoint
from cnnlab.keras import losses as keras_losses
from cnnlab.keras import metrics as keras_metrics
from cnnlab.keras import mixed_precision
from cnnlab.keras import optimizers as keras_optimizers
from cnnlab.keras.application_outputs import InnerOutput
from cnnlab.keras.applications import Application
from cnnlab.keras.callbacks import Callback, accuracy_name, keras_logs, to_trainer_callback
from cnnlab.keras.layers import (
    Input,
    KerasLayer,
    _as_plain,
    channels_first,
    channels_last,
    keras_shape,
    layer_from_config,
)
from cnnlab.keras.layers import Layer as CustomLayer
from cnnlab.keras.progress import KerasProgbar
from cnnlab.keras.saving import get_registered_name, get_registered_object
from cnnlab.keras.weight_lists import WeightLists, find_layer
from cnnlab.layers.base import Input as CnnlabInput
from cnnlab.layers.base import SymbolicTensor
from cnnlab.train import Callback as TrainerCallback
from cnnlab.train import TrainConfig, Trainer
from cnnlab.train.trainer import Batch, BatchSource, Logs

SAVE_FORMAT = "cnnlab-keras-model/1"
WEIGHTS_FORMAT = "cnnlab-keras-weights/1"
_KERAS_BATCH_SIZE = 32  # Keras' default for fit
# The layers use Keras' initialisation; the learning rate stays where callbacks put it; compile sets the
# precision from the mixed-precision policy (cnnlab's CPU plan unless set to Keras' "float32").
_TRAIN_CONFIG = TrainConfig(epochs=1, batch_size=_KERAS_BATCH_SIZE, schedule="constant", precision="fp32")


@dataclass
class History(cs.History):
    """What ``fit`` returns, as Keras' ``History``: ``history`` maps Keras' log names (``loss``, ``accuracy``,
    ``val_loss``, ``val_accuracy``, ...) to one value per epoch; ``epoch`` counts from 0."""

    params: dict[str, Any] = field(default_factory=dict)
    model: Any = field(default=None, repr=False)


@dataclass(frozen=True)
class _Compiled:
    loss: keras_losses.LossLike
    metrics: tuple[keras_metrics.Metric, ...]
    config: TrainConfig
    saved: dict[str, Any] | None  # loss and metrics as plain data for save(); None with custom objects


def _log_key(metric: keras_metrics.Metric) -> str:
    """The Trainer, its progress bar and the Keras-callback adapter call accuracy ``acc``
    (:func:`cnnlab.keras.callbacks.keras_logs` renames it back); other metrics keep their names."""
    return "acc" if metric.name in ("accuracy", "acc") else metric.name


class _KerasTrainer(Trainer):
    """The Trainer with a Keras loss (``loss(y_true, y_pred, sample_weight)``), Keras metrics and the Keras
    optimizer's torch optimizer (kept across ``fit`` calls). A batch may carry a third tensor: the sample
    weights, which weight the loss as Keras does (the metrics stay unweighted, as Keras' ``metrics=``)."""

    def __init__(
        self,
        model: nn.Module,
        config: TrainConfig,
        compiled: _Compiled | None,
        optimizer: torch.optim.Optimizer | None,
        callbacks: Sequence[TrainerCallback],
    ) -> None:
        self.keras_loss = None if compiled is None else compiled.loss
        # One group with every parameter: a frozen model (predict, evaluate) still gets its unused optimizer.
        super().__init__(
            model,
            config,
            loss_fn=None if self.keras_loss is None else lambda out, y: self.weighted_loss(out, y, None),
            callbacks=callbacks,
            param_groups=[{"params": list(model.parameters())}],
        )
        if optimizer is not None:
            self.optimizer = optimizer
        self.keras_metrics = () if compiled is None else compiled.metrics

    def weighted_loss(self, out: torch.Tensor, y: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
        """Keras' batch loss: per-sample losses times their weights, summed, over the batch size."""
        loss = self.keras_loss
        assert loss is not None
        if isinstance(loss, keras_losses.Loss):
            return loss(y, out, weights)
        return keras_losses.reduce_weighted(loss(y, out), weights)  # a function: per-sample values or a scalar

    def _metric_logs(self, y: torch.Tensor, out: torch.Tensor) -> Logs:
        return {_log_key(m): m(y, out).float().mean() for m in self.keras_metrics}

    def train_step(self, batch: Batch) -> Logs:
        x, y = self.prepare(batch)
        out = self.logits(self.model, x).float()
        loss = self.weighted_loss(out, y, _batch_weights(batch, out.device))
        self.optimise(loss)
        return {"loss": loss.detach(), **self._metric_logs(y, out.detach())}

    def eval_step(self, batch: Batch) -> Logs:
        x, y = self.prepare(batch)
        out = self.logits(self.eval_model, x).float()
        loss = self.weighted_loss(out, y, _batch_weights(batch, out.device))
        return {"loss": loss, **self._metric_logs(y, out)}


def _batch_weights(batch: Batch, device: torch.device) -> torch.Tensor | None:
    """A batch's sample weights (its third tensor, if any) on the device the outputs are on."""
    return batch[2].to(device) if len(batch) > 2 and batch[2] is not None else None


class _WeightedLoader:
    """Array batches with their sample weights, ``(x, y, w)``, in the order a ``TensorLoader`` over the same
    arrays would give (it shuffles the sample indices)."""

    def __init__(
        self,
        inputs: torch.Tensor,
        targets: torch.Tensor,
        weights: torch.Tensor,
        batch_size: int,
        shuffle: bool = False,
        seed: int = 0,
    ) -> None:
        self.loader = cs._loader(inputs, torch.arange(len(inputs)), batch_size, shuffle, seed)
        self.targets, self.weights = targets, weights

    def __len__(self) -> int:
        return len(self.loader)

    def batches(self, epoch: int = 0, start: int = 0) -> Iterator[Batch]:
        for x, index in self.loader.batches(epoch, start):
            yield x, self.targets[index], self.weights[index]


class _ClassWeighted:
    """A batch source whose ``(x, y)`` batches get sample weights from ``class_weight`` (training data only)."""

    def __init__(self, source: BatchSource, class_weight: dict[int, float]) -> None:
        self.source, self.class_weight = source, class_weight

    def __len__(self) -> int:
        return len(self.source)

    def batches(self, epoch: int = 0, start: int = 0) -> Iterator[Batch]:
        for batch in self.source.batches(epoch, start):
            if len(batch) > 2 and batch[2] is not None:
                raise ConfigError("fit: You cannot `class_weight` and `sample_weight` at the same time.")
            yield batch[0], batch[1], _class_weights(batch[1], self.class_weight, "fit")


def _class_weights(targets: torch.Tensor, class_weight: dict[int, float], what: str) -> torch.Tensor:
    """Keras' ``class_weight_to_sample_weights``: the class of each label (the argmax of one-hot rows, the
    rounded value of ``(N,)`` or ``(N, 1)`` labels) looked up in ``class_weight``; classes missing get 1.0."""
    labels = targets.detach().cpu()
    if labels.dim() > 1:
        labels = labels.argmax(dim=1) if labels.shape[1] != 1 else labels[:, 0]
    if labels.dim() != 1:
        raise ConfigError(
            f"{what}: class_weight needs one class label per sample; these targets have shape {tuple(targets.shape)}",
            fix="pass sample_weight=... with one weight per sample instead",
        )
    classes = labels.float().round().long().tolist()
    return torch.tensor([float(class_weight.get(c, 1.0)) for c in classes], dtype=torch.float32)


def _check_class_weight(class_weight: Any) -> dict[int, float]:
    if not isinstance(class_weight, dict) or not all(
        isinstance(k, int | np.integer) and isinstance(v, int | float | np.number) for k, v in class_weight.items()
    ):
        raise ConfigError(
            f"fit: class_weight must be a dict mapping class indices to weights. Received: {class_weight!r}",
            fix="e.g. class_weight={0: 1.0, 1: 5.0}",
        )
    return {int(k): float(v) for k, v in class_weight.items()}


def _sample_weights(sample_weight: Any, n: int, what: str) -> torch.Tensor:
    """One float32 weight per sample from an array ``(N,)`` or ``(N, 1)``."""
    weights = np.asarray(sample_weight.detach().cpu() if isinstance(sample_weight, torch.Tensor) else sample_weight)
    if weights.ndim == 2 and weights.shape[1] == 1:
        weights = weights[:, 0]
    if weights.ndim != 1 or weights.dtype.kind not in "biuf":
        raise ConfigError(
            f"{what}: sample_weight must hold one number per sample, shape (N,). Received shape {weights.shape}",
            fix="e.g. sample_weight=np.ones(len(x))",
        )
    if len(weights) != n:
        raise DataError(f"{what}: x has {n} samples but sample_weight has {len(weights)}", fix="pass aligned arrays")
    return torch.from_numpy(weights.astype(np.float32))


_GENERATOR_WARNING = (
    "`Model.{name}_generator` is deprecated and will be removed in a future version. "
    "Please use `Model.{name}`, which supports generators."
)
"""TensorFlow's Keras 2 warning for the ``*_generator`` methods, word for word."""


class _GeneratorSource:
    """A Keras generator as a batch source: ``steps`` batches per epoch, from an indexable sequence
    (``data[i]``, then ``data.on_epoch_end()``, as ``keras.utils.Sequence`` and ``ImageDataGenerator.flow``),
    a dataset iterated afresh each epoch (an iterable with a length, not an iterator: what
    ``image_dataset_from_directory`` returns, as a ``tf.data.Dataset``), or an iterator pulled on across epochs."""

    def __init__(self, data: Any, steps: int | None, convert: Callable[[Any], Batch], what: str) -> None:
        self.data, self.convert, self.what = data, convert, what
        self.indexable = hasattr(data, "__getitem__") and hasattr(data, "__len__")
        self.reiterable = not self.indexable and hasattr(data, "__len__") and not hasattr(data, "__next__")
        self._epochs_begun = 0
        if steps is None:
            if not hasattr(data, "__len__"):
                raise ConfigError(
                    f"{what}: a generator without a length needs the number of batches per epoch",
                    fix="pass steps_per_epoch (validation_steps, steps) = samples // batch_size",
                )
            steps = len(data)
        if isinstance(steps, float) and math.isfinite(steps) and steps > 0:
            steps = math.ceil(steps)  # Keras 2's `steps_per_epoch=len(x) / 32`: its loop ran while steps < that
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ConfigError(f"{what}: the number of steps must be a number >= 1. Received: {steps!r}")
        self.steps = steps
        self._iterator = None if self.indexable else iter(data)
        self._pending: list[Batch] = []

    def first(self) -> Batch:
        """The first batch (to build the model from); an iterator's batch is kept for the first epoch."""
        if self.indexable:
            return self.convert(self.data[0])
        batch = self._next()
        self._pending.append(batch)
        return batch

    def _next(self) -> Batch:
        if self._pending:
            return self._pending.pop()
        try:
            return self.convert(next(self._iterator))
        except StopIteration:
            raise DataError(
                f"{self.what}: the generator ran out of batches",
                fix="make it loop forever (ImageDataGenerator.flow does) or ask for fewer steps",
            ) from None

    def __len__(self) -> int:
        return self.steps

    def batches(self, epoch: int = 0, start: int = 0) -> Iterator[Batch]:
        if self.reiterable and self._epochs_begun:  # a dataset: each epoch is a new pass over it
            self._iterator, self._pending = iter(self.data), []
        self._epochs_begun += 1
        for step in range(start, self.steps):
            yield self.convert(self.data[step % len(self.data)]) if self.indexable else self._next()
        if hasattr(self.data, "on_epoch_end"):
            self.data.on_epoch_end()


def _is_generator(x: Any) -> bool:
    """A Python generator, iterator or Keras-style sequence (not an array, list or cnnlab batch source)."""
    if x is None or isinstance(x, np.ndarray | torch.Tensor | list | tuple) or hasattr(x, "__array__"):
        return False
    return hasattr(x, "__next__") or hasattr(x, "__iter__") or hasattr(x, "__getitem__")


def _refuse(what: str, **arguments: Any) -> None:
    """Keras arguments with no cnnlab counterpart must be left at Keras' default (None)."""
    for name, value in arguments.items():
        if value is not None:
            raise ConfigError(f"{what}: {name} is not supported. Received: {name}={value!r}", fix=f"drop {name}")


class _KerasModel(WeightLists):
    """compile / fit / evaluate / predict / save / summary / weights with Keras' conventions; mixed into
    :class:`Sequential` and :class:`Model` over their cnnlab classes (which hold the layers and the graph).

    A model is also a layer, as in Keras: it goes into a ``Sequential`` (``Sequential([conv_base, ...])``,
    ``model.add(conv_base)``) or is called on a tensor of a functional graph (``inner(inputs)``); the outer
    model trains it as part of itself, ``summary()`` shows it as one row with its parameter count, and
    ``conv_base.trainable = False`` freezes it (its BatchNormalization layers then run in inference mode).
    """

    layers: Sequence[KerasLayer]
    input_shape: tuple[int, ...] | None
    output_shape: tuple[int, ...] | None
    name: str | None
    default_name = "model"
    #: The layer protocol of :class:`cnnlab.layers.Layer` (one input), so a model nests in another.
    multi_input: ClassVar[bool] = False
    #: The type Keras' ``summary()`` shows for this model when it is a layer of another.
    keras_class_name: ClassVar[str] = "Model"

    def _keras_init(self, trainable: bool) -> None:
        self.optimizer: keras_optimizers.Optimizer | None = None
        self.stop_training = False  # EarlyStopping sets it; the callback adapter then stops the Trainer
        self._keras: _Compiled | None = None
        self._trainable = True
        if not trainable:  # layers keep their own flags unless the whole model is frozen
            self.trainable = False

    # ----- compile / fit / evaluate / predict ------------------------------------------------------
    def compile(
        self,
        optimizer: str | keras_optimizers.Optimizer = "rmsprop",
        loss: str | keras_losses.LossLike | None = None,
        metrics: Sequence[str | keras_metrics.Metric | keras_metrics.MetricFn] | None = None,
        loss_weights: Any = None,
        weighted_metrics: Any = None,
        run_eagerly: bool = False,
        steps_per_execution: int = 1,
        jit_compile: bool | str = "auto",
    ) -> None:
        """Choose the optimizer (Keras' default ``'rmsprop'``), the loss and the metrics.

        ``jit_compile=True`` trains a ``torch.compile``-d model; the default runs eagerly, as ``run_eagerly``.
        Compiling again starts a new optimizer state.
        """
        _refuse("compile", loss_weights=loss_weights, weighted_metrics=weighted_metrics)
        if self.multi_output:
            raise ConfigError(
                f"compile: cnnlab.keras trains models with one output; this one has {len(self.outputs)}",
                fix="use it for predict (it returns a list of arrays, one per output), or build a model per output",
            )
        if steps_per_execution != 1:
            raise ConfigError(f"compile: steps_per_execution must be 1. Received: {steps_per_execution}")
        if loss is None:
            raise ConfigError("compile: a loss is needed", fix="e.g. loss='sparse_categorical_crossentropy'")
        if isinstance(metrics, str) or not isinstance(metrics, Sequence | None):
            raise ConfigError(f"compile: metrics must be a list. Received: {metrics!r}", fix="metrics=['accuracy']")
        opt = keras_optimizers.get(optimizer)
        opt.reset()
        loss_fn = keras_losses.get(loss)
        metric_list = tuple(keras_metrics.get(m) for m in metrics or ())
        names = [keras_metrics.serialize(m) for m in metric_list]
        saved = None
        if isinstance(loss_fn, keras_losses.Loss) and None not in names:
            saved = {"loss": loss_fn.get_config(), "metrics": names}
        config = dataclasses.replace(
            _TRAIN_CONFIG,
            grad_clip=opt.global_clipnorm,
            compile=jit_compile is True and not run_eagerly,
            precision=mixed_precision.trainer_precision(),
        )
        self.optimizer = opt
        self._keras = _Compiled(loss_fn, metric_list, config, saved)
        if self.built:  # as Keras, the optimizer is made here, not in fit (torch's first one imports for ~2 s)
            opt.build(self.parameters())

    def fit(
        self,
        x: Any = None,
        y: Any = None,
        batch_size: int | None = None,
        epochs: int = 1,
        verbose: int | str = "auto",
        callbacks: Sequence[Callback] | None = None,
        validation_split: float = 0.0,
        validation_data: Any = None,
        shuffle: bool = True,
        class_weight: Any = None,
        sample_weight: Any = None,
        initial_epoch: int = 0,
        steps_per_epoch: int | None = None,
        validation_steps: int | None = None,
        validation_batch_size: int | None = None,
        validation_freq: int = 1,
    ) -> History:
        """Train for ``epochs`` on arrays ``x, y``, a generator of ``(x, y)`` or ``(x, y, sample_weight)`` batches
        (with ``steps_per_epoch`` unless it has a length), or a cnnlab batch source (``y=None``).

        ``validation_split`` holds out the last fraction of the arrays (before shuffling);
        ``validation_data`` (``(x_val, y_val)``, ``(x_val, y_val, w_val)``, a generator or a batch source) takes
        precedence over it, as in Keras. ``verbose``: 1 or ``'auto'`` Keras' ``Epoch k/N`` and a bar per epoch,
        2 one line per epoch, 0 nothing (:mod:`cnnlab.keras.progress`). ``initial_epoch``
        goes on from an earlier fit: epochs ``initial_epoch`` .. ``epochs - 1`` run, so numbered in the callbacks
        and in ``History.epoch`` (the transfer notebook's ``fit(..., epochs=10, initial_epoch=history.epoch[-1])``).

        ``sample_weight`` (one weight per sample of the arrays; split with them by ``validation_split``) or
        ``class_weight`` (``{class: weight}``, training data only; classes not in it weigh 1) multiply each
        sample's loss; the batch loss is their sum over the batch size, as Keras computes it.

        >>> from cnnlab.keras import layers
        >>> model = Sequential([layers.Dense(1, activation="sigmoid", input_shape=(2,))])
        >>> model.compile(optimizer="sgd", loss="binary_crossentropy")
        >>> x, y = np.array([[0.0, 1.0], [1.0, 0.0]], "float32"), np.array([0, 1])
        >>> history = model.fit(x, y, class_weight={0: 1.0, 1: 5.0}, verbose=0)
        >>> round(model.evaluate(x, y, sample_weight=np.array([0.0, 2.0]), verbose=0), 6) == round(
        ...     float(-np.log(model.predict(x[1:], verbose=0)[0, 0])), 6)      # (0 * loss_0 + 2 * loss_1) / 2
        True
        """
        compiled = self._keras_compiled("fit")
        if class_weight is not None and sample_weight is not None:
            raise ConfigError(
                "fit: You cannot `class_weight` and `sample_weight` at the same time.",
                fix="fold the class weights into sample_weight, or pass one of them",
            )
        class_weights = None if class_weight is None else _check_class_weight(class_weight)
        if validation_freq != 1:
            raise ConfigError(
                f"fit: validation_freq is not supported. Received: validation_freq={validation_freq}",
                fix="validate every epoch (validation_freq=1)",
            )
        if isinstance(initial_epoch, bool) or not isinstance(initial_epoch, int) or initial_epoch < 0:
            raise ConfigError(f"fit: initial_epoch must be an int >= 0. Received: {initial_epoch!r}", fix="e.g. 5")
        if not 0 <= validation_split < 1:
            raise ConfigError(f"fit: validation_split must be in [0, 1). Received: {validation_split}", fix="e.g. 0.1")
        batch_size = _check_batch_size(batch_size)
        train, held_out = self._train_source(
            x, y, batch_size, shuffle, validation_split, steps_per_epoch, compiled, sample_weight, class_weights
        )
        val = held_out
        if validation_data is not None:
            val = self._evaluation_source(
                validation_data, None, validation_batch_size, validation_steps, "validation_data"
            )
        adapter = to_trainer_callback(list(callbacks or ()), self, initial_epoch)
        assert self.optimizer is not None
        torch_optimizer = self.optimizer.build(self.parameters())
        if epochs > initial_epoch:  # Keras trains epochs initial_epoch .. epochs - 1 (none when there are none)
            config = dataclasses.replace(compiled.config, epochs=epochs - initial_epoch, batch_size=batch_size)
            keys = ["loss", *(_log_key(m) for m in compiled.metrics)]
            progress = KerasProgbar(_verbosity(verbose), keys, accuracy_name(self), epochs, initial_epoch)
            self._trainer(config, [progress, adapter], torch_optimizer).fit(train, val)
        rows: list[dict[str, float]] = adapter.history
        history = {key: [row[key] for row in rows if key in row] for key in dict.fromkeys(k for r in rows for k in r)}
        params = {"verbose": verbose, "epochs": epochs, "steps": len(train)}
        epoch_numbers = list(range(initial_epoch, initial_epoch + len(rows)))
        return History(history=history, epoch=epoch_numbers, params=params, model=self)

    def evaluate(
        self,
        x: Any = None,
        y: Any = None,
        batch_size: int | None = None,
        verbose: int | str = "auto",
        sample_weight: Any = None,
        steps: int | None = None,
        return_dict: bool = False,
    ) -> float | list[float] | dict[str, float]:
        """The mean loss (and metrics) over ``x, y``: a float without metrics, else ``[loss, metric, ...]``
        in the order compiled; ``return_dict=True`` gives ``{"loss": ..., "accuracy": ...}``.

        ``sample_weight`` (arrays only) weights each sample's loss as in ``fit``; the metrics stay unweighted,
        as Keras' ``metrics=`` are."""
        compiled = self._keras_compiled("evaluate")
        source = self._evaluation_source(x, y, batch_size, steps, "evaluate", sample_weight)
        result = keras_logs(self._trainer(compiled.config, []).evaluate(source), accuracy_name(self))
        if verbose:
            print(f"{len(source)}/{len(source)} - " + " - ".join(f"{k}: {v:.4f}" for k, v in result.items()))
        if return_dict:
            return result
        values = list(result.values())
        return values[0] if len(values) == 1 else values

    def predict(
        self, x: Any, batch_size: int | None = None, verbose: int | str = "auto", steps: int | None = None
    ) -> np.ndarray:
        """Model outputs as a float32 numpy array; image outputs are channels-last ``(N, H, W, C)``.

        ``x``: arrays, a generator of batches (``x`` or ``(x, y)``), or a cnnlab batch source. No compile needed.
        """
        config = self._keras.config if self._keras is not None else _TRAIN_CONFIG

        def convert(item: Any) -> Batch:
            inputs = self._inputs(item[0] if isinstance(item, tuple | list) else item, "predict")
            return _as_float(inputs), torch.zeros(len(inputs))

        source: Any
        if cs._is_batch_source(x):
            cs._check_not_empty(x, "predict")
            self._build_from(next(iter(x.batches()))[0])
            source = x
        elif _is_generator(x):
            source = _GeneratorSource(x, steps, convert, "predict")
            source.first()
        else:
            inputs = self._inputs(x, "predict")
            cs._check_not_empty(inputs, "predict")
            source = cs._loader(inputs, torch.zeros(len(inputs)), batch_size or config.eval_batch_size)
        return _keras_outputs(self._trainer(config, []).predict(source))

    def fit_generator(self, generator: Any, *args: Any, **kwargs: Any) -> History:
        """Keras 2's name for ``fit`` on a generator (TensorFlow's Keras warned it was deprecated; Keras 3 removed
        it): the same as ``fit(generator, ...)``, with TensorFlow's warning."""
        warnings.warn(_GENERATOR_WARNING.format(name="fit"), DeprecationWarning, stacklevel=2)
        return self.fit(generator, *args, **kwargs)

    def evaluate_generator(self, generator: Any, *args: Any, **kwargs: Any) -> Any:
        """Keras 2's ``evaluate_generator``: ``evaluate(generator, ...)``, with TensorFlow's warning."""
        warnings.warn(_GENERATOR_WARNING.format(name="evaluate"), DeprecationWarning, stacklevel=2)
        return self.evaluate(generator, *args, **kwargs)

    def predict_generator(self, generator: Any, *args: Any, **kwargs: Any) -> np.ndarray:
        """Keras 2's ``predict_generator``: ``predict(generator, ...)``, with TensorFlow's warning."""
        warnings.warn(_GENERATOR_WARNING.format(name="predict"), DeprecationWarning, stacklevel=2)
        return self.predict(generator, *args, **kwargs)

    def predict_classes(self, x: Any, *args: Any, **kwargs: Any) -> None:
        """Removed from Keras in TensorFlow 2.6: an error that says what replaced it."""
        raise ConfigError(
            "predict_classes was removed from Keras (TensorFlow 2.6)",
            fix="np.argmax(model.predict(x), axis=-1) for a softmax output, "
            "(model.predict(x) > 0.5).astype('int32') for a sigmoid one",
        )

    def train_on_batch(
        self, x: Any, y: Any = None, sample_weight: Any = None, class_weight: Any = None, return_dict: bool = False
    ) -> float | list[float] | dict[str, float]:
        """One optimiser step on this batch (the optimizer's state carries over, as in ``fit``); returns the
        batch's loss (and metrics) as ``evaluate`` does: a float, ``[loss, metric, ...]`` or a dict.

        >>> from cnnlab.keras import layers
        >>> model = Sequential([layers.Dense(1, activation="sigmoid", input_shape=(2,))])
        >>> model.compile(optimizer="sgd", loss="binary_crossentropy", metrics=["accuracy"])
        >>> x, y = np.array([[0.0, 1.0], [1.0, 0.0]], "float32"), np.array([0, 1])
        >>> sorted(model.train_on_batch(x, y, return_dict=True))
        ['accuracy', 'loss']
        """
        length = len(x) if hasattr(x, "__len__") else None
        history = self.fit(
            x, y, batch_size=length, epochs=1, verbose=0, shuffle=False, sample_weight=sample_weight,
            class_weight=class_weight,
        ).history  # fmt: skip
        result = {key: values[-1] for key, values in history.items() if not key.startswith("val_")}
        if return_dict:
            return result
        values = list(result.values())
        return values[0] if len(values) == 1 else values

    def test_on_batch(
        self, x: Any, y: Any = None, sample_weight: Any = None, return_dict: bool = False
    ) -> float | list[float] | dict[str, float]:
        """``evaluate`` on this one batch."""
        length = len(x) if hasattr(x, "__len__") else None
        return self.evaluate(x, y, batch_size=length, verbose=0, sample_weight=sample_weight, return_dict=return_dict)

    def predict_on_batch(self, x: Any) -> np.ndarray:
        """``predict`` on this one batch (the course's ``img_to_encoding`` calls it)."""
        return self.predict(x, batch_size=len(x) if hasattr(x, "__len__") else None, verbose=0)

    def get_layer(self, name: str | None = None, index: int | None = None) -> Any:
        """A layer by ``name`` or by ``index`` (Keras' order of ``model.layers``)."""
        return find_layer(self.layers, name, index)

    # ----- the graph: Keras' model.input / model.output ------------------------------------------------
    def _graph(self) -> tuple[SymbolicTensor, list[SymbolicTensor]]:
        """``(input, outputs)`` of the graph: a functional model's from its making, a ``Sequential``'s once built."""
        ends = self.__dict__.get("_graph_ends")
        if ends is None:
            raise ConfigError(
                f"{self.label} has no defined input or output yet",
                fix="give it an input shape (Input(shape=...) first, or input_shape= on the first layer) and a layer",
            )
        return ends

    @property
    def input(self) -> SymbolicTensor:
        """The graph's input tensor (Keras' ``model.input``): with layers' ``output`` it makes a new model over the
        same layers and weights, e.g. one that returns intermediate activations (see :class:`Model`)."""
        return self._graph()[0]

    @property
    def inputs(self) -> list[SymbolicTensor]:
        """``[model.input]``: a cnnlab.keras model has one input."""
        return [self.input]

    @property
    def output(self) -> SymbolicTensor | list[SymbolicTensor]:
        """The graph's output tensor (a list for a model with several outputs)."""
        outputs = self._graph()[1]
        return outputs[0] if len(outputs) == 1 else outputs

    @property
    def outputs(self) -> list[SymbolicTensor]:
        """The graph's output tensors, as a list."""
        return list(self._graph()[1])

    @property
    def metrics_names(self) -> list[str]:
        """``['loss', 'accuracy', ...]``: the names ``evaluate`` returns values for."""
        compiled = self._keras_compiled("metrics_names")
        return ["loss", *keras_logs({_log_key(m): 0.0 for m in compiled.metrics}, accuracy_name(self))]

    # ----- building and data ---------------------------------------------------------------------
    def build(self, input_shape: Sequence[int | None]) -> tuple[int, ...]:
        """``model.build((None, H, W, C))`` as in Keras (a per-sample channels-first shape is cnnlab's own call)."""
        shape = tuple(input_shape)
        if shape and shape[0] is None:
            shape = channels_first(keras_shape(shape[1:], "build", "input_shape"))
        return super().build(shape)

    def _keras_compiled(self, what: str) -> _Compiled:
        if self._keras is None:
            raise ConfigError(f"{what}: the model is not compiled", fix="call model.compile(optimizer, loss, metrics)")
        return self._keras

    def _trainer(
        self,
        config: TrainConfig,
        callbacks: Sequence[TrainerCallback],
        optimizer: torch.optim.Optimizer | None = None,
    ) -> _KerasTrainer:
        return _KerasTrainer(self, config, self._keras, optimizer, callbacks)

    def _inputs(self, x: Any, what: str) -> torch.Tensor:
        """Keras' channels-last data as the model's channels-first tensor (builds the model from it)."""
        array = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
        if self.input_shape is not None and array.ndim >= 1:
            expected = channels_last(self.input_shape)
            grey = expected[-1] == 1 and array.shape[1:] == expected[:-1]  # (N, H, W) for (H, W, 1)
            if array.shape[1:] != expected and not grey:
                raise ShapeError(
                    f"{what}: the model takes input of shape (None, {', '.join(map(str, expected))}) "
                    f"(channels-last, as in Keras); received {array.shape}",
                    fix=f"pass arrays as (N, {', '.join(map(str, expected))}); "
                    "channels-first arrays become channels-last with np.moveaxis(x, 1, -1)",
                )
        tensor = cs.to_nchw(array, self.input_shape, what)
        self._build_from(tensor)
        return tensor

    def _targets(self, y: Any, what: str) -> torch.Tensor:
        """Labels in Keras' layout as the loss takes them (checked against the output shape)."""
        if y is None:
            raise ConfigError(f"{what}: y is missing", fix="pass labels as y, or a generator of (x, y) batches as x")
        t = y.detach().cpu() if isinstance(y, torch.Tensor) else torch.as_tensor(np.asarray(y))
        loss = self._keras_compiled(what).loss
        if isinstance(loss, keras_losses.Loss):
            return loss.prepare_targets(t, self.output_shape, what)
        t = t.float() if t.is_floating_point() else t  # a custom loss: channels-first like the output
        return t.movedim(-1, 1) if t.dim() >= 3 else t

    def _batch(self, item: Any, what: str) -> Batch:
        """One ``(x, y)`` or ``(x, y, sample_weight)`` batch of a generator, converted."""
        if not isinstance(item, tuple | list) or len(item) not in (2, 3):
            raise DataError(f"{what}: a generator must yield (x, y) batches", fix="yield (x_batch, y_batch)")
        inputs = self._inputs(item[0], what)
        targets = self._targets(item[1], what)
        if len(inputs) != len(targets):
            raise DataError(f"{what}: a batch has {len(inputs)} inputs but {len(targets)} labels")
        if len(item) == 3 and item[2] is not None:
            return _as_float(inputs), targets, _sample_weights(item[2], len(inputs), what)
        return _as_float(inputs), targets

    def _arrays(self, x: Any, y: Any, what: str) -> tuple[torch.Tensor, torch.Tensor]:
        inputs = self._inputs(x, what)
        targets = self._targets(y, what)
        if len(inputs) != len(targets):
            raise DataError(f"{what}: x has {len(inputs)} samples but y has {len(targets)}", fix="pass aligned x and y")
        cs._check_not_empty(inputs, what)
        return inputs, targets

    def _train_source(
        self,
        x: Any,
        y: Any,
        batch_size: int,
        shuffle: bool,
        validation_split: float,
        steps: int | None,
        compiled: _Compiled,
        sample_weight: Any = None,
        class_weight: dict[int, float] | None = None,
    ) -> tuple[BatchSource, BatchSource | None]:
        """The training batches, and the held-out last ``validation_split`` of arrays (else None)."""
        if cs._is_batch_source(x) or _is_generator(x):
            if y is not None or validation_split:
                raise ConfigError(
                    "fit: with a generator or batch source as x, give neither y nor validation_split",
                    fix="it yields (x, y) batches; pass validation_data for validation",
                )
            if sample_weight is not None:
                raise ConfigError(
                    "fit: sample_weight is for arrays; a generator yields its weights",
                    fix="yield (x, y, sample_weight) batches",
                )
            source: BatchSource
            if cs._is_batch_source(x):
                cs._check_not_empty(x, "fit", "training samples")
                self._build_from(next(iter(x.batches()))[0])
                source = x
            else:
                source = _GeneratorSource(x, steps, lambda item: self._batch(item, "fit"), "fit")
                source.first()
            return (source if class_weight is None else _ClassWeighted(source, class_weight)), None
        if steps is not None:
            raise ConfigError("fit: steps_per_epoch is for generators", fix="drop it; arrays are split by batch_size")
        inputs, targets = self._arrays(x, y, "fit")
        n = len(inputs)
        weights = None if sample_weight is None else _sample_weights(sample_weight, n, "fit")
        split_at = math.floor(n * (1.0 - validation_split)) if validation_split else n  # Keras' rounding
        if not 0 < split_at <= n or (validation_split and split_at == n):
            raise DataError(
                f"fit: validation_split={validation_split} of {n} samples leaves no training or no validation data",
                fix="use more samples or another validation_split",
            )
        seed = compiled.config.seed
        train_weights = weights[:split_at] if weights is not None else None
        if class_weight is not None:
            train_weights = _class_weights(targets[:split_at], class_weight, "fit")
        train: BatchSource
        if train_weights is None:
            train = cs._loader(inputs[:split_at], targets[:split_at], batch_size, shuffle, seed)
        else:
            train = _WeightedLoader(inputs[:split_at], targets[:split_at], train_weights, batch_size, shuffle, seed)
        held_out: BatchSource | None = None
        if split_at < n:  # the held-out part keeps its sample weights (Keras splits them with the arrays)
            batch = compiled.config.eval_batch_size
            held_out = (
                cs._loader(inputs[split_at:], targets[split_at:], batch)
                if weights is None
                else _WeightedLoader(inputs[split_at:], targets[split_at:], weights[split_at:], batch)
            )
        return train, held_out

    def _evaluation_source(
        self, x: Any, y: Any, batch_size: int | None, steps: int | None, what: str, sample_weight: Any = None
    ) -> BatchSource:
        if cs._is_batch_source(x) or _is_generator(x):
            if sample_weight is not None:
                raise ConfigError(
                    f"{what}: sample_weight is for arrays; a generator yields its weights",
                    fix="yield (x, y, sample_weight) batches",
                )
            if cs._is_batch_source(x):
                cs._check_not_empty(x, what)
                return x
            source = _GeneratorSource(x, steps, lambda item: self._batch(item, what), what)
            source.first()
            return source
        if isinstance(x, tuple) and y is None:
            if len(x) not in (2, 3):
                raise ConfigError(f"{what}: give (x_val, y_val) or (x_val, y_val, sample_weight_val)")
            x, y, sample_weight = x[0], x[1], x[2] if len(x) == 3 else None
        inputs, targets = self._arrays(x, y, what)
        batch = batch_size or self._keras_compiled(what).config.eval_batch_size
        if sample_weight is None:
            return cs._loader(inputs, targets, batch)
        return _WeightedLoader(inputs, targets, _sample_weights(sample_weight, len(inputs), what), batch)

    def get_config(self) -> dict[str, Any]:
        """The architecture as plain data: cnnlab's model config, with nested models, applications and your
        own layers (their class's name and ``get_config()``) as Keras saves them."""
        config = super().get_config()  # type: ignore[misc]
        config["layers"] = [_layer_config(layer) for layer in self.layers]
        config["trainable"] = self.trainable
        return config

    # ----- a model as a layer of another --------------------------------------------------------------
    @property
    def built(self) -> bool:
        """Whether the input shape is known (and with it every weight)."""
        return self.input_shape is not None

    @property
    def label(self) -> str:
        """``Sequential 'sequential'``: how errors name this model."""
        return f"{self.keras_class_name} '{self.name}'" if self.name else self.keras_class_name

    def fail(self, problem: str, fix: str | None = None) -> None:
        """Raise a :class:`ShapeError` naming this model."""
        raise ShapeError(f"{self.label}: {problem}", fix=fix)

    def __call__(self, inputs: Any, *args: Any, **kwargs: Any) -> Any:
        """On a tensor of a functional graph (``Input(...)`` or a layer's output): this model as one layer of
        the graph (a new symbolic tensor); on a torch tensor: the forward pass (channels-first)."""
        first = inputs[0] if isinstance(inputs, list | tuple) and inputs else inputs
        if isinstance(first, SymbolicTensor | CnnlabInput):
            items = list(inputs) if isinstance(inputs, list | tuple) else [inputs]
            if len(items) != 1:
                self.fail(f"takes one input, got a list of {len(items)}")
            parent = items[0].output if isinstance(items[0], CnnlabInput) else items[0]
            return SymbolicTensor(self.build(parent.shape), self, (parent,))  # type: ignore[arg-type]
        if isinstance(inputs, np.ndarray):
            return self._call_eagerly(inputs, kwargs.pop("training", None))
        return super().__call__(inputs, *args, **kwargs)  # type: ignore[misc]

    def _call_eagerly(self, x: np.ndarray, training: bool | None) -> np.ndarray:
        """``model(array)`` as Keras runs it: channels-last in and out, no gradients; without ``training``,
        Dropout and BatchNormalization infer while the random preprocessing layers (``RandomFlip``, ...) still
        transform, as Keras' do by default (the course shows ``data_augmentation(image)`` this way)."""
        from cnnlab.keras.preprocessing_layers import _RandomLayer

        inputs = _as_float(self._inputs(x, "calling the model"))
        was_training = self.training
        self.train(bool(training))
        if training is None:
            for module in self.modules():
                if isinstance(module, _RandomLayer):
                    module.train()
        try:
            with torch.no_grad():
                out = super().__call__(inputs)  # type: ignore[misc]
        finally:
            self.train(was_training)
        return _keras_outputs(out)

    # ----- weights ---------------------------------------------------------------------------------
    @property
    def trainable(self) -> bool:
        """``model.trainable = False`` freezes every layer (as in Keras; compile again before ``fit``)."""
        return self._trainable

    @trainable.setter
    def trainable(self, value: bool) -> None:
        self._trainable = bool(value)
        for layer in self.layers:
            layer.trainable = self._trainable

    @property
    def weights(self) -> list[torch.Tensor]:
        """Every layer's weights in Keras' layouts, in layer order; a weight two layers share (the inner outputs
        of one application) once."""
        seen: set[tuple[int, tuple[int, ...]]] = set()
        found = []
        for w in (w for layer in self.layers for w in layer.weights):
            key = (w.data_ptr(), tuple(w.shape))
            if key not in seen:
                seen.add(key)
                found.append(w)
        return found

    def count_params(self) -> int:
        """Number of weight values (BatchNormalization's moving statistics included, as Keras counts)."""
        self._require_built("count_params")
        return super().count_params()  # type: ignore[no-any-return]

    def _require_built(self, what: str) -> None:
        if self.input_shape is None:
            raise ShapeError(
                f"{what}: the model is not built yet",
                fix="give input_shape=(H, W, C) to the first layer, start with Input(shape=...), or call fit first",
            )

    # ----- summary ---------------------------------------------------------------------------------
    def summary(self, print_fn: Callable[[str], Any] | None = None, show_trainable: bool = False) -> None:
        """Print Keras' table: ``Layer (type)``, ``Output Shape`` (channels-last, batch ``None``), ``Param #``,
        then total, trainable and non-trainable parameters (moving statistics are non-trainable). A nested
        model or application is one row (``vgg16 (Functional)``) with all its parameters, as in Keras."""
        name = self.name or self.default_name
        print_summary(name, self.layers, self.weights, self.trainable_weights, print_fn, show_trainable)

    # ----- saving ----------------------------------------------------------------------------------
    def save(self, filepath: str | Path, overwrite: bool = True) -> None:
        """Save architecture, weights, compile settings and the optimizer's state (Adam's moments, its step
        count) to one file in cnnlab's safe format (whatever the suffix: ``.keras`` and ``.h5`` are names only);
        :func:`load_model` reads it, and the loaded model trains on as the saved one would, as in Keras. A model
        compiled with custom functions loads uncompiled (without its optimizer state)."""
        path = Path(filepath)
        if path.exists() and not overwrite:
            raise ConfigError(f"save: {path} exists", fix="pass overwrite=True or another path")
        self._require_built("save")
        compiled = None
        if self._keras is not None and self._keras.saved is not None and self.optimizer is not None:
            compiled = {**self._keras.saved, "optimizer": self.optimizer.get_config()}
            live = self.optimizer.built_optimizer
            if live is not None:  # trained: its torch state, keyed by the index in model.parameters()
                compiled["optimizer_state"] = live.state_dict()
        state = {k: v.contiguous() for k, v in self.state_dict().items()}
        save_checkpoint(
            path, {"format": SAVE_FORMAT, "config": self.get_config(), "state_dict": state, "compile": compiled}
        )

    def save_weights(self, filepath: str | Path, overwrite: bool = True) -> None:
        """Save the weights alone (cnnlab's safe format); :meth:`load_weights` reads them into the same architecture."""
        path = Path(filepath)
        if path.exists() and not overwrite:
            raise ConfigError(f"save_weights: {path} exists", fix="pass overwrite=True or another path")
        self._require_built("save_weights")
        state = {k: v.contiguous() for k, v in self.state_dict().items()}
        save_checkpoint(path, {"format": WEIGHTS_FORMAT, "state_dict": state})

    def load_weights(self, filepath: str | Path) -> None:
        """Load weights written by :meth:`save_weights` (or a whole model written by :meth:`save`)."""
        self._require_built("load_weights")
        checkpoint = _read(filepath, (WEIGHTS_FORMAT, SAVE_FORMAT))
        self.load_state_dict(checkpoint["state_dict"])

    @classmethod
    def load(cls, path: str | Path) -> Any:
        """``load_model(path)``, insisting on this class."""
        model = load_model(path)
        if not isinstance(model, cls):
            raise WeightsError(f"the file holds a {type(model).__name__}, not a {cls.__name__}", where=str(path))
        return model


class Sequential(_KerasModel, cs.Sequential):
    """``keras.Sequential``: a stack of :mod:`cnnlab.keras.layers`, built from a list or with ``add``.

    >>> from cnnlab.keras import layers
    >>> model = Sequential([layers.Input(shape=(28, 28, 1)), layers.Conv2D(32, 3, activation="relu")])
    >>> model.add(layers.Flatten())
    >>> lines = []
    >>> model.summary(print_fn=lines.append)
    >>> lines[4].split()
    ['conv2d', '(Conv2D)', '(None,', '26,', '26,', '32)', '320']
    """

    default_name = "sequential"

    def __init__(
        self, layers: Sequence[KerasLayer] | None = None, trainable: bool = True, name: str | None = None
    ) -> None:
        super().__init__(name=name)
        self._keras_init(trainable)
        # The graph Keras keeps for a built Sequential (plain attributes: not sub-modules of the model).
        self.__dict__["_graph_start"] = None
        self.__dict__["_linked"] = []
        for layer in layers or ():
            self.add(layer)

    keras_class_name = "Sequential"

    def add(self, layer: KerasLayer | _KerasModel | Application) -> None:
        """Append a layer, a model (``Sequential``, functional ``Model``) or an application (built at once when
        the input shape is known).

        >>> from cnnlab.keras import layers
        >>> conv_base = Sequential([layers.Conv2D(4, 3, input_shape=(8, 8, 3)), layers.MaxPooling2D()])
        >>> conv_base.trainable = False
        >>> model = Sequential()
        >>> model.add(conv_base)
        >>> model.add(layers.Flatten())
        >>> model.add(layers.Dense(1, activation="sigmoid"))
        >>> [layer.name for layer in model.layers], model.count_params(), len(model.trainable_weights)
        (['sequential', 'flatten', 'dense'], 149, 2)
        """
        _check_keras_layers([layer], "Sequential")
        if layer is self:
            raise ConfigError("Sequential: a model cannot be added to itself", fix="add its layers instead")
        if isinstance(layer, _KerasModel):  # not a cnnlab Layer: the steps of cnnlab's add, for a model
            if isinstance(layer, Model) and layer.name is None:
                layer.name = _unique_name("functional", {other.name for other in self.layers})
            cs.assign_names([layer], taken={other.name for other in self.layers})  # type: ignore[list-item]
            if not len(self.layers) and self.input_shape is None and layer.input_shape is not None:
                self.input_shape = self.output_shape = layer.input_shape
            self.layers.append(layer)  # type: ignore[arg-type]
            if self.output_shape is not None:
                self.output_shape = layer.build(self.output_shape)
        else:
            super().add(layer)  # type: ignore[arg-type]
        if isinstance(layer, CnnlabInput):
            self.__dict__["_graph_start"] = layer
        if not self._trainable:  # a frozen model freezes what it takes; otherwise each keeps its own flags
            layer.trainable = False
        self._link()

    def build(self, input_shape: Sequence[int | None]) -> tuple[int, ...]:
        out = super().build(input_shape)
        self._link()
        return out

    def _link(self) -> None:
        """Keras' graph of a built ``Sequential``: an ``Input`` and each layer called on the one before, so
        ``layer.output`` and ``model.input`` work as in Keras (the layers keep the tensors of their first call)."""
        if self.input_shape is None:
            return
        if self._graph_start is None:
            self.__dict__["_graph_start"] = Input(shape=channels_last(self.input_shape))
        while len(self._linked) < len(self.layers):
            previous = self._linked[-1] if self._linked else self._graph_start.output
            self._linked.append(self.layers[len(self._linked)](previous))
        if self._linked:
            self.__dict__["_graph_ends"] = (self._graph_start.output, [self._linked[-1]])


class Model(_KerasModel, cs.Model):
    """``keras.Model(inputs, outputs)``: a functional graph from one ``Input`` to one output.

    >>> from cnnlab.keras import layers
    >>> inputs = layers.Input(shape=(16, 16, 8))
    >>> x = layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    >>> x = layers.Add()([inputs, layers.Conv2D(8, 3, padding="same")(x)])      # a residual block
    >>> model = Model(inputs, layers.Dense(10)(layers.GlobalAveragePooling2D()(x)))
    >>> model.predict(np.zeros((2, 16, 16, 8), "float32"), verbose=0).shape
    (2, 10)
    """

    default_name = "functional"
    keras_class_name = "Functional"

    def __init__(
        self, inputs: Any = None, outputs: Any = None, name: str | None = None, trainable: bool = True
    ) -> None:
        if inputs is None or outputs is None:
            raise ConfigError(
                "Model needs inputs and outputs; subclassing Model (a call method) is not supported",
                fix="x = Input(shape=...); y = layers.Dense(...)(x); Model(x, y)",
            )
        _name_nested_models(outputs)
        super().__init__(inputs, outputs, name=name)
        _check_keras_layers(self.layers, "Model")
        self._keras_init(trainable)


def _unique_name(base: str, taken: set[str | None]) -> str:
    name, i = base, 0
    while name in taken:
        i += 1
        name = f"{base}_{i}"
    return name


def _name_nested_models(outputs: Any) -> None:
    """Unnamed functional models inside a graph get Keras' name ``functional`` (``functional_1``, ...)."""
    try:
        nodes = cs._topological_order(cs._outputs(outputs))
    except ConfigError:
        return  # cnnlab's Model reports it
    taken = {node.layer.name for node in nodes}
    for node in nodes:
        if isinstance(node.layer, Model) and node.layer.name is None:
            node.layer.name = _unique_name("functional", taken)
            taken.add(node.layer.name)


def _check_keras_layers(layers: Sequence[Any], where: str) -> None:
    for layer in layers:
        if not isinstance(layer, KerasLayer | _KerasModel | Application | InnerOutput):
            raise ConfigError(
                f"{where} takes cnnlab.keras.layers (Keras' channels-last conventions); "
                f"received {type(layer).__module__}.{type(layer).__name__}",
                fix="import the layer from cnnlab.keras.layers (cnnlab.layers go into cnnlab.sequential models)",
            )


def print_summary(
    name: str,
    layers: Sequence[Any],
    weights: Sequence[torch.Tensor],
    trainable_weights: Sequence[torch.Tensor],
    print_fn: Callable[[str], Any] | None = None,
    show_trainable: bool = False,
) -> None:
    """Keras' ``summary()`` table for ``layers`` (each with ``name``, ``keras_class_name`` or a class, an
    ``output_shape`` channels-first or None, ``built``, ``count_params()``, ``weights``, ``trainable``)."""
    header = ["Layer (type)", "Output Shape", "Param #", *(["Trainable"] if show_trainable else [])]
    rows = []
    for layer in layers:
        shape = (
            "?" if layer.output_shape is None else f"(None, {', '.join(map(str, channels_last(layer.output_shape)))})"
        )
        params = f"{layer.count_params():,}" if layer.built else "0 (unbuilt)"
        kind = getattr(layer, "keras_class_name", type(layer).__name__)  # a nested model: its Keras type
        flag = "-" if not layer.weights else "Y" if layer.trainable else "N"  # Keras: '-' without weights
        rows.append([f"{layer.name} ({kind})", shape, params, flag])
    widths = [max(len(row[i]) for row in [header, *rows]) + 4 for i in range(len(header))]
    width = sum(widths)

    def line(cells: Sequence[str]) -> str:
        return " " + "".join(c.ljust(w) for c, w in zip(cells, widths, strict=False)).rstrip()

    total = sum(w.numel() for w in weights)
    trainable = sum(w.numel() for w in trainable_weights)
    lines = [
        f'Model: "{name}"',
        "_" * width,
        line(header),
        "=" * width,
        *(line(row) for row in rows),
        "=" * width,
        f"Total params: {total:,} ({_memory(total)})",
        f"Trainable params: {trainable:,} ({_memory(trainable)})",
        f"Non-trainable params: {total - trainable:,} ({_memory(total - trainable)})",
        "_" * width,
    ]
    for text in lines:
        (print_fn or print)(text)


def _keras_outputs(out: torch.Tensor | list[torch.Tensor]) -> np.ndarray | list[np.ndarray]:
    """A model's output as Keras gives it: numpy, image-like outputs ``(N, C, ...)`` channels-last, others as they
    are; a list of arrays for a model with several outputs."""
    if isinstance(out, list):
        return [_channels_last_output(o) for o in out]
    return _channels_last_output(out)


def _channels_last_output(out: torch.Tensor) -> np.ndarray:
    array = out.detach().cpu().numpy()
    return np.ascontiguousarray(np.moveaxis(array, 1, -1)) if array.ndim >= 3 else array


def _as_float(inputs: torch.Tensor) -> torch.Tensor:
    """uint8 images as float32 values 0..255 (as Keras feeds them); arrays get this per batch from their loader."""
    return inputs if inputs.is_floating_point() else inputs.float()


def _verbosity(verbose: int | str) -> int:
    """Keras' ``verbose``: ``'auto'`` is 1 (a bar per epoch), 2 a line per epoch, 0 nothing."""
    if verbose == "auto":
        return 1
    if verbose not in (0, 1, 2):  # True / False are 1 / 0, as in Keras
        raise ConfigError(f"verbose must be 'auto', 0, 1 or 2. Received: verbose={verbose!r}", fix="verbose=1")
    return int(verbose)


def _check_batch_size(batch_size: int | None) -> int:
    if batch_size is None:
        return _KERAS_BATCH_SIZE
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch_size must be an int >= 1. Received: {batch_size!r}", fix="e.g. 32")
    return batch_size


def _batch_shape(shape: Sequence[int]) -> str:
    """Keras' way of printing a shape with its batch axis: ``(None, 26, 26, 32)``."""
    return f"(None, {', '.join(map(str, shape))})"


def _memory(count: int) -> str:
    """Float32 size of ``count`` values as Keras prints it (1024-based)."""
    size, units = count * 4.0, ["B", "KB", "MB", "GB", "TB"]
    for unit in units:
        if size < 1024 or unit == units[-1]:
            return f"{size:.2f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def _read(path: str | Path, formats: tuple[str, ...]) -> dict[str, Any]:
    """A checkpoint written by this module; Keras' own files and other cnnlab files are refused by name."""
    path = Path(path)
    if path.is_file():
        with path.open("rb") as f:
            head = f.read(8)
        keras_zip = zipfile.is_zipfile(path) and "config.json" in zipfile.ZipFile(path).namelist()
        if head == b"\x89HDF\r\n\x1a\n" or keras_zip:
            raise WeightsError(
                "this is a file written by Keras itself (HDF5 or .keras); cnnlab.keras reads only files it saved",
                where=str(path),
                fix="rebuild the model in cnnlab.keras and train it, or copy the weights over with set_weights",
            )
    checkpoint = load_checkpoint(path)
    if checkpoint.get("format") not in formats:
        raise WeightsError(
            f"not a file saved by cnnlab.keras (format {checkpoint.get('format')!r})",
            where=str(path),
            fix="cnnlab.sequential models load with cnnlab.sequential.BaseModel.load",
        )
    return checkpoint


def _layer_config(layer: Any) -> dict[str, Any]:
    """One entry of a model config: a nested model's config, a custom layer's class and Keras config, or a
    built-in layer's config."""
    if isinstance(layer, _KerasModel):
        return layer.get_config()
    if isinstance(layer, CustomLayer):
        cls = type(layer)
        config = layer.get_config()
        try:
            json.dumps(config)
        except (TypeError, ValueError):
            raise ConfigError(
                f"save: {cls.__name__}.get_config() of layer '{layer.name}' holds values that are not plain data "
                f"(numbers, strings, lists, dicts): {config!r}",
                fix="return plain values from get_config (e.g. float(x), list(shape))",
            ) from None
        return {
            "custom_layer": {"class_name": cls.__name__, "registered_name": get_registered_name(cls)},
            "config": _as_plain(config),
        }
    return layer.get_config()


def _layer_from_config(
    config: dict[str, Any], custom_objects: dict[str, Any] | None, where: str | None
) -> KerasLayer | Sequential | Model:
    if "class" in config:
        return model_from_config(config, custom_objects, where)
    if "custom_layer" in config:
        found, layer = config["custom_layer"], config["config"]
        cls = get_registered_object(found["registered_name"], custom_objects)
        name = found["class_name"]
        if cls is None:
            raise ConfigError(
                f"layer '{layer.get('name')}' is of the custom class '{name}', which load_model cannot rebuild "
                "without the class itself",
                where=where,
                fix=f"pass custom_objects={{'{name}': {name}}} to load_model (or decorate the class with "
                "@keras.saving.register_keras_serializable())",
            )
        if not (isinstance(cls, type) and issubclass(cls, CustomLayer)):
            raise ConfigError(
                f"custom_objects['{name}'] must be a subclass of cnnlab.keras.layers.Layer; received {cls!r}",
                where=where,
            )
        return cls.from_config(dict(layer))
    return layer_from_config(config)


def model_from_config(
    config: dict[str, Any], custom_objects: dict[str, Any] | None = None, where: str | None = None
) -> Sequential | Model:
    """Rebuild a model (without weights) from its ``get_config()``; ``custom_objects`` maps the class names of
    your own layers to their classes."""
    layers = [_layer_from_config(c, custom_objects, where) for c in config["layers"]]
    trainable = bool(config.get("trainable", True))
    if config.get("class") == "Sequential":
        model = Sequential(layers, name=config.get("name"), trainable=trainable)  # type: ignore[arg-type]
        if model.input_shape is None and config.get("input_shape"):
            model.build(config["input_shape"])
        return model
    if config.get("class") == "Model":
        graph = cs.rebuild_graph(layers, config["nodes"], config.get("outputs"))  # type: ignore[arg-type]
        return Model(*graph, name=config.get("name"), trainable=trainable)
    raise ConfigError(f"unknown model class {config.get('class')!r}", fix="expected 'Sequential' or 'Model'")


def load_model(
    filepath: str | Path, custom_objects: dict[str, Any] | None = None, compile: bool = True, safe_mode: bool = True
) -> Sequential | Model:
    """Load a model written by ``model.save``: architecture, weights, and (``compile=True``) its compile settings
    and optimizer state. Your own layer classes come from ``custom_objects`` (``{"Scale": Scale}``) or from
    :func:`cnnlab.keras.saving.register_keras_serializable`; a missing one is an error naming it.

    >>> import tempfile, pathlib
    >>> from cnnlab.keras import layers
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "model.keras"
    >>> model = Sequential([layers.Dense(2, activation="softmax", input_shape=(3,))])
    >>> model.compile(optimizer="sgd", loss="categorical_crossentropy", metrics=["accuracy"])
    >>> model.save(path)
    >>> loaded = load_model(path)
    >>> loaded.layers[0].units, type(loaded.optimizer).__name__, loaded.metrics_names
    (2, 'SGD', ['loss', 'accuracy'])
    """
    checkpoint = _read(filepath, (SAVE_FORMAT,))
    model = model_from_config(checkpoint["config"], custom_objects, where=str(filepath))
    model.load_state_dict(checkpoint["state_dict"])
    saved = checkpoint.get("compile")
    if compile and saved is not None:
        model.compile(
            optimizer=keras_optimizers.from_config(saved["optimizer"]),
            loss=keras_losses.from_config(saved["loss"]),
            metrics=saved["metrics"],
        )
        if saved.get("optimizer_state") is not None:  # the next fit continues with the saved moments
            assert model.optimizer is not None
            model.optimizer.build(model.parameters()).load_state_dict(saved["optimizer_state"])
    return model


__all__ = ["History", "Model", "Sequential", "load_model", "model_from_config"]
