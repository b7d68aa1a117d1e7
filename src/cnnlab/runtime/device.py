"""Which device runs the model: what this machine has (:class:`Accelerators`) and ``--device`` resolved against it.

``--device`` takes ``auto`` (the first CUDA GPU, else Apple's MPS, else the CPU), ``cpu``, ``cuda``
(``cuda:0``), ``cuda:N`` or ``mps``. A device this machine cannot give is a
:class:`~cnnlab.core.errors.ConfigError` that says why (no CUDA in this torch build, no GPU visible, an
index out of range) and what to do. :func:`choose_device` also says why it chose, for the run log.

Commands that run a trained model set the device for the whole command with :func:`using_device`;
:func:`cnnlab.runtime.inference.fast_inference` runs there when it is not given a device itself, and
puts the model back where it was afterwards (:func:`placed_on`).

>>> none = Accelerators()  # what a CPU-only machine reports
>>> resolve_device("auto", none), resolve_device("cpu", none)
(device(type='cpu'), device(type='cpu'))
>>> resolve_device("cuda:1", Accelerators(cuda_built=True, cuda_names=("A100", "A100"), cuda_bf16=(True, True)))
device(type='cuda', index=1)
>>> resolve_device("cuda", none)
Traceback (most recent call last):
...
cnnlab.core.errors.ConfigError: cuda requested, but this torch build has no CUDA [--device]. Fix: install a CUDA build \
of torch or use --device cpu
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from cnnlab.core.errors import ConfigError

DEVICE_CHOICES = ("auto", "cpu", "cuda", "cuda:N", "mps")
"""What ``--device`` accepts (``cuda:N``: the N-th visible GPU, from 0)."""

_PATTERN = re.compile(r"^(auto|cpu|mps|cuda)(?::(\d+))?$")


@dataclass(frozen=True)
class Accelerators:
    """The accelerators this process can use; :meth:`detect` reads them from torch, tests build them by hand.

    ``cuda_names`` and ``cuda_bf16`` hold one entry per visible GPU (``CUDA_VISIBLE_DEVICES`` applies);
    ``cuda_bf16`` is whether that GPU computes bf16 natively (compute capability 8.0, Ampere, or newer).

    >>> Accelerators(cuda_built=True, cuda_names=("Tesla T4",), cuda_bf16=(False,)).cuda_count
    1
    """

    cuda_built: bool = False  # this torch build has CUDA
    cuda_names: tuple[str, ...] = ()
    cuda_bf16: tuple[bool, ...] = ()
    mps_built: bool = False  # this torch build has MPS (macOS builds)
    mps: bool = False  # MPS is usable here (Apple silicon, macOS 12.3+)

    @property
    def cuda_count(self) -> int:
        """How many CUDA GPUs are visible."""
        return len(self.cuda_names)

    @classmethod
    def detect(cls) -> Accelerators:
        """What torch sees in this process (device properties only: no tensor is made on a GPU)."""
        count = torch.cuda.device_count() if torch.backends.cuda.is_built() else 0
        properties = [torch.cuda.get_device_properties(i) for i in range(count)]
        return cls(
            cuda_built=torch.backends.cuda.is_built(),
            cuda_names=tuple(p.name for p in properties),
            cuda_bf16=tuple(p.major >= 8 for p in properties),
            mps_built=torch.backends.mps.is_built(),
            mps=torch.backends.mps.is_available(),
        )

    def describe(self) -> list[str]:
        """One line per device, for ``cnnlab info``.

        >>> Accelerators(cuda_built=True, cuda_names=("NVIDIA H200",), cuda_bf16=(True,)).describe()
        ['cuda:0: NVIDIA H200 (native bf16)', 'mps: not in this torch build', 'cpu: always']
        """
        if not self.cuda_built:
            lines = ["cuda: not in this torch build (a CPU-only wheel)"]
        elif not self.cuda_names:
            lines = [f"cuda: torch {torch.version.cuda or 'with CUDA'}, but no GPU visible"]
        else:
            lines = [
                f"cuda:{i}: {name} ({'native bf16' if bf16 else 'no native bf16: fp16 + GradScaler'})"
                for i, (name, bf16) in enumerate(zip(self.cuda_names, self.cuda_bf16, strict=True))
            ]
        lines.append(
            "mps: available" if self.mps else f"mps: {'not available' if self.mps_built else 'not in this torch build'}"
        )
        return [*lines, "cpu: always"]


@dataclass(frozen=True)
class DeviceChoice:
    """The device a request resolved to, and why (a line for the run log and ``cnnlab info``)."""

    device: torch.device
    reason: str


def check_device_request(request: str) -> str:
    """``request`` normalised (lower case, no spaces), or a :class:`ConfigError` when it is no device name.
    Only the spelling is checked: a run's config names the device it asked for, on any machine.

    >>> check_device_request(" CUDA:1 ")
    'cuda:1'
    >>> check_device_request("gpu")
    Traceback (most recent call last):
    ...
    cnnlab.core.errors.ConfigError: unknown device 'gpu' [--device]. Fix: use one of auto, cpu, cuda, cuda:N, mps
    """
    text = str(request).strip().lower()
    match = _PATTERN.match(text)
    if match is None or (match.group(2) is not None and match.group(1) != "cuda"):
        raise ConfigError(
            f"unknown device '{request}'", where="--device", fix=f"use one of {', '.join(DEVICE_CHOICES)}"
        )
    return text


def choose_device(request: str | torch.device = "auto", caps: Accelerators | None = None) -> DeviceChoice:
    """Resolve ``request`` (see the module doc) against ``caps`` (default: :meth:`Accelerators.detect`; a plain
    ``cpu`` request never looks at the accelerators).

    >>> gpu = Accelerators(cuda_built=True, cuda_names=("NVIDIA H200",), cuda_bf16=(True,))
    >>> choose_device("auto", gpu).reason
    'device cuda:0 (NVIDIA H200): auto picks the first CUDA GPU'
    >>> choose_device("cuda:3", gpu)
    Traceback (most recent call last):
    ...
    cnnlab.core.errors.ConfigError: cuda:3 requested, but there is 1 GPU (cuda:0) [--device]. Fix: use --device \
cuda:0, or --device cpu
    """
    text = check_device_request(str(request))
    if text == "cpu":
        return DeviceChoice(torch.device("cpu"), "device cpu: asked for")
    caps = Accelerators.detect() if caps is None else caps
    kind, _, index = text.partition(":")
    if kind == "auto":
        if caps.cuda_count:
            return DeviceChoice(
                torch.device("cuda", 0), f"device cuda:0 ({caps.cuda_names[0]}): auto picks the first CUDA GPU"
            )
        if caps.mps:
            return DeviceChoice(torch.device("mps"), "device mps: auto found no CUDA GPU, and Apple's MPS is here")
        return DeviceChoice(torch.device("cpu"), "device cpu: auto found no CUDA GPU and no MPS")
    if kind == "mps":
        if caps.mps:
            return DeviceChoice(torch.device("mps"), "device mps: asked for")
        why = "MPS is not available here" if caps.mps_built else "this torch build has no MPS"
        raise ConfigError(
            f"mps requested, but {why}",
            where="--device",
            fix="MPS needs macOS 12.3+ on Apple silicon and a macOS torch build; use --device cpu",
        )
    if not caps.cuda_built:
        raise ConfigError(
            f"{text} requested, but this torch build has no CUDA",
            where="--device",
            fix="install a CUDA build of torch or use --device cpu",
        )
    if not caps.cuda_count:
        raise ConfigError(
            f"{text} requested, but this torch build has CUDA and no GPU is visible",
            where="--device",
            fix="check nvidia-smi (driver) and CUDA_VISIBLE_DEVICES, or use --device cpu",
        )
    number = int(index or 0)
    if number >= caps.cuda_count:
        count = caps.cuda_count
        there = "there is 1 GPU (cuda:0)" if count == 1 else f"there are {count} GPUs (cuda:0 to cuda:{count - 1})"
        raise ConfigError(
            f"{text} requested, but {there}",
            where="--device",
            fix=f"use --device cuda:{count - 1}" + (", or --device cpu" if count == 1 else ", cuda, or cpu"),
        )
    return DeviceChoice(torch.device("cuda", number), f"device cuda:{number} ({caps.cuda_names[number]}): asked for")


def resolve_device(request: str | torch.device = "auto", caps: Accelerators | None = None) -> torch.device:
    """The :class:`torch.device` for ``request`` (``cuda`` is ``cuda:0``); see :func:`choose_device`."""
    return choose_device(request, caps).device


_current: list[torch.device] = [torch.device("cpu")]


def current_device() -> torch.device:
    """The device the running command chose (:func:`using_device`), else the CPU."""
    return _current[-1]


@contextmanager
def using_device(device: torch.device) -> Iterator[torch.device]:
    """Within the block :func:`current_device` is ``device`` (a command's ``--device``, already resolved); one
    setting for the process, so threads of a server see it too.

    >>> with using_device(torch.device("meta")):
    ...     current_device()
    device(type='meta')
    >>> current_device()
    device(type='cpu')
    """
    _current.append(torch.device(device))
    try:
        yield _current[-1]
    finally:
        _current.pop()


def model_device(model: nn.Module) -> torch.device:
    """Where ``model``'s first parameter (or buffer) is; the CPU for a model with neither.

    >>> model_device(nn.Linear(2, 2))
    device(type='cpu')
    """
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")


@contextmanager
def placed_on(model: nn.Module, device: torch.device) -> Iterator[nn.Module]:
    """``model`` on ``device`` inside the block; on exit every parameter and buffer holds the very storage it held
    before (no copy back, nothing changes for the caller). Nothing moves when the model is there already.

    >>> net = nn.BatchNorm1d(2)
    >>> weight, mean = net.weight.data_ptr(), net.running_mean
    >>> with placed_on(net, torch.device("meta")) as moved:
    ...     moved.weight.device.type, moved.running_mean.device.type
    ('meta', 'meta')
    >>> net.weight.data_ptr() == weight, net.running_mean is mean
    (True, True)
    """
    device = torch.device(device)
    if _same_device(model_device(model), device):
        yield model
        return
    # torch moves a parameter in place (its .data) or, between unlike tensor types, swaps in a new one: keep both.
    held = [(module, dict(module._parameters), dict(module._buffers)) for module in model.modules()]
    data = [(p, p.data, p.grad, None if p.grad is None else p.grad.data) for p in model.parameters()]
    model.to(device)
    try:
        yield model
    finally:
        for module, parameters, buffers in held:
            module._parameters.update(parameters)
            module._buffers.update(buffers)
        for parameter, tensor, grad, grad_data in data:
            parameter.data = tensor
            if grad is not None:
                grad.data = grad_data
            parameter.grad = grad


def to_device(value: Any, device: torch.device, non_blocking: bool = False, pin: bool = False) -> Any:
    """Tensors in ``value`` (a tensor, or lists, tuples and dicts of them) moved to ``device``; the rest as is.
    ``pin``: CPU tensors bound for a CUDA GPU are first copied into pinned (page-locked) memory, which lets a
    ``non_blocking`` copy queue behind the GPU's running work instead of waiting for it.

    >>> to_device({"x": torch.ones(1), "n": 3}, torch.device("meta"))["x"].device
    device(type='meta')
    """
    if isinstance(value, torch.Tensor):
        if pin and device.type == "cuda" and value.device.type == "cpu" and not value.is_pinned():
            value = value.pin_memory()
        return value.to(device, non_blocking=non_blocking)
    if isinstance(value, dict):
        return {key: to_device(item, device, non_blocking, pin) for key, item in value.items()}
    if type(value) in (list, tuple):
        return type(value)(to_device(item, device, non_blocking, pin) for item in value)
    return value


def _same_device(a: torch.device, b: torch.device) -> bool:
    """``cuda`` and ``cuda:0`` name the same GPU when the current one is 0."""
    if a.type != b.type:
        return False
    if a.type != "cuda" or a.index == b.index:
        return True
    current = torch.cuda.current_device() if torch.cuda.is_available() else 0
    return (a.index if a.index is not None else current) == (b.index if b.index is not None else current)
