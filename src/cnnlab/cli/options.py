"""Option help and choices shared by several subcommands (choices come from the registries they name), and the
``--device`` every command that runs a model takes."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    import torch

PRECISION_HELP = "auto | fp32 | bf16: auto is bf16 + channels_last where the CPU has native bf16; fp32 is exact."
COMPILE_HELP = "auto | on | off: torch.compile the model; auto compiles when the job pays the few seconds back."
DEVICE_HELP = (
    "auto | cpu | cuda | cuda:N | mps: where the model runs; auto is the first CUDA GPU, else MPS, else the CPU."
)


def use_device(ctx: typer.Context, request: str) -> torch.device:
    """Resolve ``--device`` (a ConfigError, exit status 2, when this machine lacks it) and make it the command's
    device until the command ends (:func:`cnnlab.runtime.device.using_device`)."""
    from cnnlab.runtime.device import resolve_device, using_device

    return ctx.with_resource(using_device(resolve_device(request)))
