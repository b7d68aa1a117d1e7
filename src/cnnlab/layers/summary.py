"""``summary(model, input_shape)``: a per-layer table for any ``nn.Module``.

One forward pass with hooks on every submodule records each call's output shape; parameters,
multiply-adds and receptive fields come from :mod:`cnnlab.core.shapes`. Conv, pool and transposed
conv rows are also recomputed with the ``core.shapes`` formulas and must equal what torch produced.

>>> from torch import nn
>>> net = nn.Sequential(nn.Conv2d(3, 10, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(10 * 18 * 18, 2))
>>> s = summary(net, (3, 39, 39))
>>> [row.output_shapes[0] for row in s.layers[1:]]   # layers[0] is the whole model
[(1, 10, 37, 37), (1, 10, 37, 37), (1, 10, 18, 18), (1, 3240), (1, 2)]
>>> s.total_params == sum(p.numel() for p in net.parameters())
True
>>> s.layers[3].receptive_field   # 3x3 conv then 2x2 pool: each value sees 4x4 pixels, 2 apart
(ReceptiveField(size=4, jump=2), ReceptiveField(size=4, jump=2))
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from cnnlab.core import shapes
from cnnlab.core.display import html_table
from cnnlab.core.errors import ShapeError
from cnnlab.core.shapes import ReceptiveField

if TYPE_CHECKING:
    from rich.table import Table

Field = tuple[ReceptiveField, ...]  # one per spatial axis

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_TRANSPOSED = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
_MAX_POOLS = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d)
_AVG_POOLS = (nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d)
_ADAPTIVE_POOLS = (
    nn.AdaptiveAvgPool1d,
    nn.AdaptiveAvgPool2d,
    nn.AdaptiveAvgPool3d,
    nn.AdaptiveMaxPool1d,
    nn.AdaptiveMaxPool2d,
    nn.AdaptiveMaxPool3d,
)
_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)
_COLUMNS = ("Layer", "Type", "Output shape", "Params", "Frozen", "Mult-adds", "Memory", "RF (jump)")


@dataclass(frozen=True)
class LayerSummary:
    """One call of one module during the forward pass.

    ``trainable`` / ``frozen`` count the parameters the module owns directly (not its children's),
    the first time it runs, so the rows add up to the model's total. ``macs`` is ``None`` for
    containers (their children carry the cost); ``receptive_field`` is ``None`` where the output
    has no spatial axes, or its geometry is not a known sliding window (transposed conv, upsampling,
    an unknown layer that changes the size) or a merge with such an output.
    """

    name: str
    type: str
    depth: int
    output_shapes: tuple[tuple[int, ...], ...]
    trainable: int
    frozen: int
    macs: int | None
    memory_bytes: int
    receptive_field: Field | None
    is_leaf: bool


@dataclass(frozen=True)
class ModelSummary:
    """The result of :func:`summary`: rows, totals, and three renderings (text, rich, dict)."""

    model_type: str
    input_shape: tuple[int, ...]
    dtype: str
    layers: list[LayerSummary]
    total_params: int
    trainable_params: int
    param_bytes: int
    unused_params: int = field(default=0)

    @property
    def frozen_params(self) -> int:
        """Parameters with ``requires_grad=False``."""
        return self.total_params - self.trainable_params

    @property
    def total_macs(self) -> int:
        """Multiply-adds of one forward pass for one sample (leaf layers summed)."""
        return sum(row.macs or 0 for row in self.layers if row.is_leaf)

    @property
    def weight_macs(self) -> int:
        """Multiply-adds of the convolution and dense layers only: the convention of torchvision's model
        tables and most papers (BatchNorm's per-pixel scale and shift left out)."""
        return sum(row.macs or 0 for row in self.layers if row.is_leaf and "BatchNorm" not in row.type)

    @property
    def activation_bytes(self) -> int:
        """Bytes of every leaf layer's output for the whole batch."""
        return sum(row.memory_bytes for row in self.layers if row.is_leaf)

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-ready data: the rows and the totals."""
        layers = []
        for row in self.layers:
            data = asdict(row)
            data["output_shapes"] = [list(shape) for shape in row.output_shapes]
            data["receptive_field"] = None if row.receptive_field is None else [asdict(f) for f in row.receptive_field]
            layers.append(data)
        return {
            "model": self.model_type,
            "input_shape": list(self.input_shape),
            "dtype": self.dtype,
            "layers": layers,
            "totals": {
                "params": self.total_params,
                "trainable_params": self.trainable_params,
                "frozen_params": self.frozen_params,
                "unused_params": self.unused_params,
                "macs": self.total_macs,
                "activation_bytes": self.activation_bytes,
                "param_bytes": self.param_bytes,
            },
        }

    def table_rows(self) -> list[tuple[str, ...]]:
        """The rows as display strings, in :data:`_COLUMNS` order."""
        return [_row_cells(row) for row in self.layers]

    def footer(self) -> list[str]:
        """Totals as display lines."""
        lines = [
            f"Total params: {self.total_params:,} (trainable {self.trainable_params:,}, frozen {self.frozen_params:,})",
            f"Mult-adds per sample: {_si(self.total_macs)} ({self.total_macs:,})",
            f"Activation memory: {_bytes(self.activation_bytes)} (input {'x'.join(map(str, self.input_shape))}, "
            f"{self.dtype})",
            f"Parameter memory: {_bytes(self.param_bytes)}",
        ]
        if self.unused_params:
            lines.append(f"Params of modules not called in forward: {self.unused_params:,}")
        return lines

    def __str__(self) -> str:
        cells = [_COLUMNS, *self.table_rows()]
        widths = [max(len(row[i]) for row in cells) for i in range(len(_COLUMNS))]

        def line(row: Sequence[str]) -> str:
            cells = (c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
            return "  ".join(cells).rstrip()

        rule = "-" * len(line(["-" * w for w in widths]))
        body = [line(row) for row in cells[1:]]
        return "\n".join([self.model_type, rule, line(_COLUMNS), rule, *body, rule, *self.footer()])

    def _repr_html_(self) -> str:
        """What Jupyter shows: the table with the totals as its caption.

        >>> from torch import nn
        >>> page = summary(nn.Conv2d(1, 4, 3), (1, 8, 8))._repr_html_()
        >>> "<th>Mult-adds</th>" in page and "Total params: 40" in page
        True
        """
        caption = " · ".join([self.model_type, *self.footer()])
        return html_table(_COLUMNS, self.table_rows(), caption=caption)

    def to_rich(self) -> Table:
        """A ``rich.table.Table`` with the totals as its caption.

        >>> from torch import nn
        >>> summary(nn.Conv2d(1, 4, 3), (1, 8, 8)).to_rich().row_count
        1
        """
        from rich.table import Table

        table = Table(title=self.model_type, caption="\n".join(self.footer()), caption_justify="left")
        for i, name in enumerate(_COLUMNS):
            table.add_column(name, justify="left" if i < 3 else "right", no_wrap=True)
        for row in self.table_rows():
            table.add_row(*row)
        return table


def summary(
    model: nn.Module, input_shape: Sequence[int], batch_size: int = 1, dtype: torch.dtype | None = None
) -> ModelSummary:
    """Run one forward pass of ``batch_size`` zero samples of ``input_shape`` (no batch axis) and
    describe every module call. The model runs in eval mode without gradients; each module's
    train/eval flag is restored afterwards.

    >>> from torch import nn
    >>> s = summary(nn.Sequential(nn.Conv2d(3, 10, 3), nn.BatchNorm2d(10)), (3, 6, 6))
    >>> [(row.name, row.trainable, row.macs) for row in s.layers]
    [('', 0, None), ('0', 280, 4320), ('1', 20, 160)]
    """
    input_shape = tuple(int(n) for n in input_shape)
    if not input_shape or min(input_shape) < 1 or batch_size < 1:
        raise ShapeError(
            f"input_shape must be positive sizes without the batch axis, e.g. (3, 224, 224). "
            f"Received: input_shape={input_shape}, batch_size={batch_size}",
            where="summary()",
        )
    first = next(model.parameters(), None)
    device = first.device if first is not None else torch.device("cpu")
    dtype = dtype or (first.dtype if first is not None and first.is_floating_point() else torch.float32)
    x = torch.zeros(batch_size, *input_shape, device=device, dtype=dtype)

    tracer = _Tracer(model, spatial_rank=len(input_shape) - 1)
    tracer.track(x, tuple(ReceptiveField() for _ in input_shape[1:]))
    modes = {module: module.training for module in model.modules()}
    try:
        model.eval()
        with torch.no_grad(), tracer:
            try:
                model(x)
            except RuntimeError as err:  # say which layer could not take which input, then re-raise
                raise ShapeError(
                    str(err).splitlines()[0],
                    where=f"summary(), layer {tracer.innermost_open_call()}",
                    fix=f"check that input_shape {input_shape} (without the batch axis) is what the model expects",
                ) from err
    finally:
        for module, training in modes.items():
            module.training = training

    params = list(model.parameters())  # deduplicated by torch, as sum(p.numel()) counts them
    total = sum(p.numel() for p in params)
    counted = sum(row.trainable + row.frozen for row in tracer.rows)
    return ModelSummary(
        model_type=type(model).__name__,
        input_shape=input_shape,
        dtype=str(dtype).removeprefix("torch."),
        layers=tracer.rows,
        total_params=total,
        trainable_params=sum(p.numel() for p in params if p.requires_grad),
        param_bytes=sum(p.numel() * p.element_size() for p in params),
        unused_params=total - counted,
    )


class _Tracer:
    """Owns the hooks of one summary pass (released on exit) and what they record."""

    def __init__(self, model: nn.Module, spatial_rank: int) -> None:
        self.model = model
        self.spatial_rank = spatial_rank
        self.rows: list[LayerSummary] = []
        self._handles: list[torch.utils.hooks.RemovableHandle] = []
        # One entry per call still running: (row slot, produced index, input field, description).
        self._stack: list[tuple[int, int, Field | None, str]] = []
        self._names: dict[int, str] = {}
        self._slots: list[LayerSummary | None] = []
        # id(tensor) -> (tensor kept alive, field); None where the field is unknown (after upsampling).
        self._fields: dict[int, tuple[torch.Tensor, Field | None]] = {}
        self._produced: list[tuple[tuple[int, ...], Field | None]] = []  # (spatial size, field) in call order
        self._seen_params: set[int] = set()

    def __enter__(self) -> _Tracer:
        for name, module in self.model.named_modules():
            self._names[id(module)] = name or "(model)"
            self._handles.append(module.register_forward_pre_hook(self._pre_hook))
            self._handles.append(module.register_forward_hook(self._make_post_hook(name), with_kwargs=True))
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self.rows = [row for row in self._slots if row is not None]

    def innermost_open_call(self) -> str:
        """The module whose forward was running when an error escaped (its hook never finished)."""
        return self._stack[-1][3] if self._stack else "(before the first module)"

    def track(self, tensor: torch.Tensor, rf: Field | None) -> None:
        self._fields[id(tensor)] = (tensor, rf)
        self._produced.append((tuple(tensor.shape[2:]), rf))

    def _field_of(self, tensor: torch.Tensor | None) -> Field | None:
        if tensor is None or tensor.dim() != self.spatial_rank + 2:
            return None
        known = self._fields.get(id(tensor))
        if known is not None and known[0] is tensor:
            return known[1]
        return _merged(self._produced, tuple(tensor.shape[2:]))

    def _pre_hook(self, module: nn.Module, args: tuple[Any, ...]) -> None:
        inp = _first_tensor(args)
        shape = "x".join(map(str, inp.shape)) if inp is not None else "no tensor"
        call = f"{self._names[id(module)]} ({type(module).__name__}) on input {shape}"
        self._stack.append((len(self._slots), len(self._produced), self._field_of(inp), call))
        self._slots.append(None)

    def _make_post_hook(self, name: str) -> Callable[..., None]:
        def hook(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> None:
            slot, produced_from, in_field, _ = self._stack.pop()
            outputs = list(tensors_in(output))
            inp = _first_tensor(args)
            out = outputs[0] if outputs else None
            is_leaf = next(module.children(), None) is None
            if is_leaf and inp is not None and out is not None and "output_size" not in kwargs and len(args) == 1:
                _check_formula(name, module, inp, out)
            rf = self._output_field(module, inp, out, in_field, produced_from, is_leaf)
            if out is not None and out.dim() == self.spatial_rank + 2:
                self.track(out, rf)
            trainable = frozen = 0
            for p in module.parameters(recurse=False):
                if id(p) not in self._seen_params:
                    self._seen_params.add(id(p))
                    trainable += p.numel() if p.requires_grad else 0
                    frozen += 0 if p.requires_grad else p.numel()
            self._slots[slot] = LayerSummary(
                name=name,
                type=type(module).__name__,
                depth=len(self._stack),
                output_shapes=tuple(tuple(t.shape) for t in outputs),
                trainable=trainable,
                frozen=frozen,
                macs=_macs(module, inp, out) if is_leaf else None,
                memory_bytes=sum(t.numel() * t.element_size() for t in outputs),
                receptive_field=rf,
                is_leaf=is_leaf,
            )

        return hook

    def _output_field(
        self,
        module: nn.Module,
        inp: torch.Tensor | None,
        out: torch.Tensor | None,
        in_field: Field | None,
        produced_from: int,
        is_leaf: bool,
    ) -> Field | None:
        if out is None or out.dim() != self.spatial_rank + 2:
            return None
        known = self._fields.get(id(out))
        if known is not None and known[0] is out:  # a child made it, or the module returned its input
            return known[1]
        if not is_leaf:
            inside = [entry for entry in self._produced[produced_from:] if entry[0] == tuple(out.shape[2:])]
            if inside:
                return _merged(inside, tuple(out.shape[2:]))
            return in_field if inp is not None and inp.shape[2:] == out.shape[2:] else None
        if in_field is None or inp is None:
            return None
        rank = self.spatial_rank
        if isinstance(module, (*_CONVS, *_MAX_POOLS, *_AVG_POOLS)):
            kernel, stride = _per_axis(module.kernel_size, rank), _per_axis(module.stride, rank)
            dilation = _per_axis(getattr(module, "dilation", 1), rank)
            return tuple(f.then(k, s, d) for f, k, s, d in zip(in_field, kernel, stride, dilation, strict=True))
        if isinstance(module, _ADAPTIVE_POOLS):
            n_in, n_out = tuple(inp.shape[2:]), tuple(out.shape[2:])
            if any(n % o for n, o in zip(n_in, n_out, strict=True)):
                return None  # a plain sliding window (kernel = stride = n / o) only when it divides evenly
            return tuple(f.then(n // o, n // o) for f, n, o in zip(in_field, n_in, n_out, strict=True))
        if isinstance(module, (*_TRANSPOSED, nn.Upsample)):
            return None
        # Anything else that keeps the spatial size (activations, norms, dropout) keeps the field.
        return in_field if inp.shape[2:] == out.shape[2:] else None


def _check_formula(name: str, module: nn.Module, inp: torch.Tensor, out: torch.Tensor) -> None:
    """Recompute a conv / pool / transposed conv output size with ``core.shapes``; it must equal torch's."""
    rank = inp.dim() - 2
    sizes = tuple(inp.shape[2:])
    if type(module) in _CONVS:  # exact types: a subclass may pad in its own forward (TF-style 'same')
        kernel, stride, dilation = (_per_axis(v, rank) for v in (module.kernel_size, module.stride, module.dilation))
        pads = shapes.resolve_padding(module.padding, sizes, kernel, stride, dilation)
        expected = [shapes.conv_output_size(*a) for a in zip(sizes, kernel, stride, pads, dilation, strict=True)]
    elif type(module) in (*_MAX_POOLS, *_AVG_POOLS):
        kernel, stride, pad = (_per_axis(v, rank) for v in (module.kernel_size, module.stride, module.padding))
        dilation = _per_axis(getattr(module, "dilation", 1), rank)
        expected = [
            shapes.pool_output_size(n, k, s, p, d, module.ceil_mode)
            for n, k, s, p, d in zip(sizes, kernel, stride, pad, dilation, strict=True)
        ]
    elif type(module) in _TRANSPOSED:
        values = (module.kernel_size, module.stride, module.padding, module.output_padding, module.dilation)
        expected = [
            shapes.transposed_conv_output_size(n, *a)
            for n, *a in zip(sizes, *(_per_axis(v, rank) for v in values), strict=True)
        ]
    else:
        return
    if tuple(expected) != tuple(out.shape[2:]):
        raise ShapeError(
            f"core.shapes computes output size {tuple(expected)} but torch produced {tuple(out.shape[2:])} "
            f"for {module!r} on input size {sizes}",
            where=f"summary(), layer {name}",
            fix="this is a cnnlab bug; please report it with the layer above",
        )


def _macs(module: nn.Module, inp: torch.Tensor | None, out: torch.Tensor | None) -> int:
    """Multiply-adds for one sample, from the ``core.shapes`` formulas; 0 for layers without weights."""
    if inp is None or out is None:
        return 0
    if isinstance(module, _CONVS):
        return shapes.conv_macs(
            module.in_channels, module.out_channels, module.kernel_size, tuple(out.shape[2:]), module.groups
        )
    if isinstance(module, _TRANSPOSED):  # every input value meets the whole kernel
        return shapes.conv_macs(
            module.in_channels, module.out_channels, module.kernel_size, tuple(inp.shape[2:]), module.groups
        )
    if isinstance(module, nn.Linear):
        vectors = out[0].numel() // module.out_features  # (B, *, out): one product per leading position
        return vectors * shapes.dense_macs(module.in_features, module.out_features)
    if isinstance(module, _BATCH_NORMS):
        return shapes.batchnorm_macs(module.num_features, tuple(out.shape[2:]))
    return 0


def _first_tensor(args: tuple[Any, ...]) -> torch.Tensor | None:
    return next(tensors_in(args), None)


def tensors_in(value: Any) -> Iterator[torch.Tensor]:
    """The tensors in a hook's arguments or a module's output: a tensor, or tuples / lists / dicts of them."""
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, (tuple, list)):
        for item in value:
            yield from tensors_in(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from tensors_in(item)


def _merged(produced: Sequence[tuple[tuple[int, ...], Field | None]], size: tuple[int, ...]) -> Field | None:
    """Field of a tensor made by a functional op (``x + y``, ``torch.cat``), which hooks do not see.

    Its operands were made earlier at the same spatial size; the merge sees as far as the widest of
    them (the long branch of a residual or Inception block). Unknown if any candidate is unknown.
    """
    fields = [field for shape, field in produced if shape == size]
    if not fields or any(field is None for field in fields):
        return None
    return max(fields, key=lambda f: sum(axis.size for axis in f))


def _per_axis(value: int | Sequence[int], rank: int) -> tuple[int, ...]:
    return (value,) * rank if isinstance(value, int) else tuple(value)


def _row_cells(row: LayerSummary) -> tuple[str, ...]:
    shape = ", ".join("x".join(map(str, s)) for s in row.output_shapes) or "-"
    own = row.trainable + row.frozen
    params = f"{own:,}" if row.is_leaf or own else "-"
    frozen = f"{row.frozen:,}" if row.frozen else ""
    macs = "-" if row.macs is None else f"{row.macs:,}"
    if row.receptive_field is None:
        rf = "-"
    else:
        sizes = "x".join(str(f.size) for f in row.receptive_field)
        jumps = "x".join(str(f.jump) for f in row.receptive_field)
        if len({f.size for f in row.receptive_field}) == 1 and len({f.jump for f in row.receptive_field}) == 1:
            sizes, jumps = str(row.receptive_field[0].size), str(row.receptive_field[0].jump)
        rf = f"{sizes} ({jumps})"
    name = "  " * row.depth + (row.name or "(model)")
    return (name, row.type, shape, params, frozen, macs, _bytes(row.memory_bytes), rf)


def _si(n: int) -> str:
    """``120422400`` -> ``'120.4M'``."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f}{unit}"
    return str(n)


def _bytes(n: int) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"
