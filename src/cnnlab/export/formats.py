"""Export a model to ONNX, TorchScript or safetensors, and check the file against the PyTorch output.

Every export is verified before it is written: the exported model is loaded back with the runtime a
consumer would use (onnxruntime, ``torch.jit.load``, ``safetensors`` into a fresh copy of the network)
and its logits on seeded sample batches of several sizes (the batch axis is dynamic) must equal the
eager PyTorch logits within ``atol + rtol * |reference|``. The card (labels, preprocessing,
verification) is written beside the model.

>>> import tempfile
>>> from cnnlab.models import create_model
>>> from cnnlab.export.card import ModelCard
>>> card = ModelCard(name="cnn_small", classes=("a", "b"), input_size=(1, 28, 28), mean=(0.5,), std=(0.25,))
>>> result = export_model(create_model("cnn_small", num_classes=2, in_chans=1), card, tempfile.mkdtemp(),
...     "safetensors")
>>> result.path.name, result.card_path.name, result.card.verification["passed"]
('model.safetensors', 'model.safetensors.json', True)
"""

from __future__ import annotations

import copy
import io
import json
import logging
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from cnnlab.core.errors import CnnlabError, ConfigError, DataError
from cnnlab.core.rundir import atomic_write_bytes
from cnnlab.export.card import ModelCard, card_path, save_card

FORMATS = {"onnx": ".onnx", "torchscript": ".torchscript.pt", "safetensors": ".safetensors"}
"""Export formats and the suffix of the file each writes."""

VERIFY_BATCHES = (1, 3)  # batch sizes checked: one, and one the export never saw (it traces with 2)
ATOL, RTOL = 1e-4, 1e-3
_ONNX_FIX = "pass the .onnx that `cnnlab export` wrote (export again if the file was damaged)"

Runner = Callable[[np.ndarray], np.ndarray]  # float32 (B, C, H, W) -> logits (B, K)


class ExportError(CnnlabError, RuntimeError):
    """An export failed, or the exported model does not reproduce the PyTorch output."""


@dataclass(frozen=True)
class ExportResult:
    """Where the model and its card were written, and the card itself (with the verification)."""

    path: Path
    card_path: Path
    card: ModelCard


def export_model(
    model: nn.Module,
    card: ModelCard,
    out_dir: str | Path,
    fmt: str = "onnx",
    stem: str = "model",
    samples: np.ndarray | None = None,
) -> ExportResult:
    """Export ``model`` (eval mode) as ``fmt`` into ``out_dir/<stem><suffix>``, verify it, write the card.

    ``samples`` are extra preprocessed inputs ``(B, C, H, W)`` (e.g. real images) checked on top of the
    seeded random batches. Nothing is written when the verification fails (:class:`ExportError`).
    """
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format '{fmt}'", where="--format", fix=f"use one of {', '.join(FORMATS)}")
    model = model.eval()
    data = _EXPORTERS[fmt](model, card)
    verification = verify(eager_runner(model), _LOADERS[fmt](data, model), card, samples)
    verification["runtime"] = _RUNTIMES[fmt]()
    out = Path(out_dir)
    path = out / f"{stem}{FORMATS[fmt]}"
    card = card.with_export(fmt, path.name, verification)
    if fmt == "safetensors":  # the header carries the card too, so the weights file alone says what it is
        data = _safetensors_bytes(model, card)
    atomic_write_bytes(path, data)
    return ExportResult(path, save_card(card, card_path(path)), card)


def verify(
    reference: Runner,
    exported: Runner,
    card: ModelCard,
    samples: np.ndarray | None = None,
    batch_sizes: Sequence[int] = VERIFY_BATCHES,
    atol: float = ATOL,
    rtol: float = RTOL,
) -> dict[str, Any]:
    """Compare two runners on seeded inputs (and ``samples``); raises :class:`ExportError` on a mismatch.

    >>> card = ModelCard(name="x", classes=("a", "b"), input_size=(1, 2, 2), mean=(0.0,), std=(1.0,))
    >>> net = lambda x: x.reshape(len(x), -1)[:, :2]
    >>> verify(net, net, card)["max_abs_diff"]
    0.0
    >>> verify(net, lambda x: net(x) + 0.1, card)
    Traceback (most recent call last):
    ...
    cnnlab.export.formats.ExportError: exported model differs from PyTorch: max |diff| 0.1 > tolerance ...
    """
    generator = np.random.default_rng(0)
    batches = [generator.standard_normal((n, *card.input_size)).astype(np.float32) for n in batch_sizes]
    if samples is not None:
        batches.append(np.ascontiguousarray(samples, dtype=np.float32))
    max_diff, excess, agree, total = 0.0, -np.inf, 0, 0
    for x in batches:
        want, got = reference(x), exported(x)
        if got.shape != want.shape:
            raise ExportError(
                f"exported model gives shape {tuple(got.shape)} for input {tuple(x.shape)}; "
                f"PyTorch gives {tuple(want.shape)}",
                where="verification",
                fix="the batch axis may not be dynamic; report the model name",
            )
        diff = np.abs(got - want)
        max_diff = max(max_diff, float(diff.max()))
        excess = max(excess, float((diff - (atol + rtol * np.abs(want))).max()))  # > 0: out of tolerance
        if want.ndim == 2:  # class scores: does the exported model pick the same class?
            agree += int((got.argmax(1) == want.argmax(1)).sum())
            total += len(x)
    report = {
        "passed": excess <= 0,
        "max_abs_diff": max_diff,
        "atol": atol,
        "rtol": rtol,
        "batch_sizes": [len(x) for x in batches],
        "top1_agreement": agree / total if total else None,  # None: not class scores (a detector's boxes)
    }
    if not report["passed"]:
        raise ExportError(
            f"exported model differs from PyTorch: max |diff| {max_diff:.3g} > tolerance (atol {atol}, rtol {rtol})",
            where="verification",
            fix="nothing was written; try another format or opset, and report the model name",
        )
    return report


def onnx_bytes(model: nn.Module, input_size: Sequence[int]) -> bytes:
    """The ONNX model (torch.export-based exporter, opset 18+) with a dynamic batch axis ``batch``."""
    _require("onnxscript", "export")
    x = torch.randn(2, *input_size)  # (2, C, H, W): 2, not 1, so the exporter cannot specialise the batch axis
    with _quiet_exporter():
        program = torch.onnx.export(
            model,
            (x,),
            dynamo=True,
            input_names=["input"],
            output_names=["logits"],
            dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=65536)},),
            verbose=False,
        )
    if program is None:
        raise ExportError("torch.onnx.export returned nothing", where="onnx", fix="report the torch version")
    return program.model_proto.SerializeToString()


def onnx_session(model: bytes | str | Path, threads: int | None = None) -> Any:
    """An onnxruntime CPU session for an ONNX file or bytes (``threads``: intra-op threads, None: all cores).

    A file that is missing, or that onnxruntime cannot load, is a :class:`DataError` naming it.

    >>> import tempfile
    >>> junk = Path(tempfile.mkdtemp()) / "model.onnx"
    >>> _ = junk.write_text("not a model")
    >>> onnx_session(junk)
    Traceback (most recent call last):
    ...
    cnnlab.core.errors.DataError: not an ONNX model (could not parse it) [.../model.onnx]. Fix: ...
    """
    ort = _require("onnxruntime", "export")
    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
    if isinstance(model, bytes):
        return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    path = Path(model)
    if not path.is_file():
        raise DataError("ONNX model not found", where=str(path), fix="check the path (`cnnlab export` prints it)")
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own types (InvalidProtobuf, InvalidArgument, Fail, ...)
        detail = str(exc).split("failed:", 1)[-1].strip()
        what = (
            "not an ONNX model (could not parse it)"
            if type(exc).__name__ == "InvalidProtobuf"
            else f"onnxruntime cannot load this ONNX model ({detail})"
        )
        raise DataError(what, where=str(path), fix=_ONNX_FIX) from None


def _require(module: str, extra: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ExportError(f"{module} is not installed", where=module, fix=f"pip install 'cnnlab[{extra}]'") from None


@contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence the exporter's noise (torchvision-missing notices, deprecations inside torch), not errors."""
    logger = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            yield
    finally:
        logger.setLevel(level)


def eager_runner(model: nn.Module) -> Runner:
    """The PyTorch reference :func:`verify` compares with: numpy in, logits out, no gradients."""

    def run(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return model(torch.from_numpy(x)).numpy()

    return run


def _export_onnx(model: nn.Module, card: ModelCard) -> bytes:
    return onnx_bytes(model, card.input_size)


def _load_onnx(data: bytes, model: nn.Module) -> Runner:
    session = onnx_session(data)
    return lambda x: session.run(None, {"input": x})[0]


def _export_torchscript(model: nn.Module, card: ModelCard) -> bytes:
    with warnings.catch_warnings():
        # torch.jit is deprecated in favour of torch.export, but TorchScript is still what C++/mobile loaders read.
        warnings.filterwarnings("ignore", message=".*deprecated.*")
        traced = torch.jit.trace(model, torch.randn(2, *card.input_size))  # (2, C, H, W)
        buffer = io.BytesIO()
        torch.jit.save(traced, buffer, _extra_files={"cnnlab_card.json": json.dumps(card.to_dict())})
    return buffer.getvalue()


def _load_torchscript(data: bytes, model: nn.Module) -> Runner:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*deprecated.*")
        loaded = torch.jit.load(io.BytesIO(data), map_location="cpu")
    return eager_runner(loaded)


def _safetensors_bytes(model: nn.Module, card: ModelCard) -> bytes:
    from safetensors.torch import save

    tensors = {name: value.detach().contiguous().clone() for name, value in model.state_dict().items()}
    return save(tensors, metadata={"cnnlab_card": json.dumps(card.to_dict())})


def _export_safetensors(model: nn.Module, card: ModelCard) -> bytes:
    _require("safetensors", "export")
    return _safetensors_bytes(model, card)


def _load_safetensors(data: bytes, model: nn.Module) -> Runner:
    from safetensors.torch import load

    fresh = copy.deepcopy(model)
    for parameter in fresh.parameters():  # make sure the check cannot pass on weights that were never loaded
        parameter.data.zero_()
    fresh.load_state_dict(load(data), strict=True)
    return eager_runner(fresh.eval())


def _runtime_onnx() -> str:
    return f"onnxruntime {_require('onnxruntime', 'export').__version__}"


_EXPORTERS = {"onnx": _export_onnx, "torchscript": _export_torchscript, "safetensors": _export_safetensors}
_LOADERS = {"onnx": _load_onnx, "torchscript": _load_torchscript, "safetensors": _load_safetensors}
_RUNTIMES: dict[str, Callable[[], str]] = {
    "onnx": _runtime_onnx,
    "torchscript": lambda: f"torch.jit.load (torch {torch.__version__})",
    "safetensors": lambda: f"safetensors.torch.load into the same architecture (torch {torch.__version__})",
}
