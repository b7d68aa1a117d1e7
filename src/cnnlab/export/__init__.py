"""Export to ONNX / TorchScript / safetensors, verified against PyTorch, with a model card beside the file.

>>> sorted(FORMATS)
['onnx', 'safetensors', 'torchscript']
"""

from cnnlab.export.card import ModelCard, card_path, load_card, save_card
from cnnlab.export.formats import (
    FORMATS,
    ExportError,
    ExportResult,
    eager_runner,
    export_model,
    onnx_bytes,
    onnx_session,
    verify,
)

__all__ = [
    "FORMATS",
    "ExportError",
    "ExportResult",
    "ModelCard",
    "card_path",
    "eager_runner",
    "export_model",
    "load_card",
    "onnx_bytes",
    "onnx_session",
    "save_card",
    "verify",
]
