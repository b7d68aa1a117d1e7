"""``cnnlab info``: this machine, its devices, and the speed settings training will use on the chosen one (and why)."""

from __future__ import annotations

import platform

import typer
from rich.console import Console
from rich.table import Table

from cnnlab.cli.options import DEVICE_HELP


def info(
    precision: str = typer.Option("auto", help="auto | fp32 | bf16 | fp16: what training would be asked for."),
    device: str = typer.Option("auto", "--device", help=DEVICE_HELP),
) -> None:
    """Show the machine, the library versions, the devices and the speed plan for --device (precision, layout,
    threads, GPU settings) with reasons."""
    import torch

    import cnnlab
    from cnnlab.runtime.device import Accelerators
    from cnnlab.runtime.precision import BF16_FLAGS, cpu_flags, plan_speed

    flags = cpu_flags()
    caps = Accelerators.detect()
    plan = plan_speed(precision, device=device, caps=caps)
    table = Table(title="cnnlab info", show_header=False)
    table.add_row("cnnlab", cnnlab.__version__)
    table.add_row("torch", f"{torch.__version__} (oneDNN {'on' if torch.backends.mkldnn.is_available() else 'off'})")
    table.add_row("python", platform.python_version())
    table.add_row("cpu", f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads")
    simd = sorted(f for f in flags if f.startswith(("avx512", "amx", "avx2", "avx_vnni")))
    table.add_row("cpu flags", ", ".join(simd) or "unknown (no /proc/cpuinfo)")
    table.add_row("native bf16", "yes" if flags.intersection(BF16_FLAGS) else "no")
    for i, line in enumerate(caps.describe()):
        table.add_row("devices" if i == 0 else "", line)
    for i, reason in enumerate(plan.reasons):
        table.add_row(f"speed plan ({plan.device})" if i == 0 else "", reason)
    Console().print(table)
