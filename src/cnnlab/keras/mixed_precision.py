"""Keras' ``keras.mixed_precision``: the number format ``fit`` trains in.

Keras trains in float32 unless told otherwise. The drop-in's default policy, ``"auto"``, is cnnlab's
measured CPU plan instead: bfloat16 autocast where the processor computes bfloat16 natively (AMX or
AVX512-BF16), float32 elsewhere (``cnnlab.runtime.precision``). ``set_global_policy("float32")`` trains
exactly as Keras does; ``"mixed_bfloat16"`` asks for bfloat16 everywhere. The policy is read when a
model is compiled.

>>> set_global_policy("float32")
>>> global_policy().name, trainer_precision()
('float32', 'fp32')
>>> set_global_policy("auto")
>>> set_global_policy("mixed_float16")
Traceback (most recent call last):
...
cnnlab.core.errors.ConfigError: mixed_precision: policy 'mixed_float16' is not available on the CPU ...
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from cnnlab.core.errors import ConfigError

_PRECISIONS: dict[str, Literal["auto", "fp32", "bf16"]] = {
    "auto": "auto",
    "float32": "fp32",
    "mixed_bfloat16": "bf16",
}


@dataclass(frozen=True)
class Policy:
    """A named policy, as Keras' ``Policy("mixed_bfloat16")``.

    >>> Policy("float32").name
    'float32'
    """

    name: str

    def __post_init__(self) -> None:
        if self.name not in _PRECISIONS:
            why = "is not available on the CPU" if self.name == "mixed_float16" else "is unknown"
            raise ConfigError(
                f"mixed_precision: policy {self.name!r} {why}",
                where="set_global_policy",
                fix="use " + ", ".join(repr(n) for n in list(_PRECISIONS)[:-1]) + f" or {list(_PRECISIONS)[-1]!r}",
            )


_policy = Policy("auto")


def set_global_policy(policy: str | Policy) -> None:
    """Set the policy models compiled from now on train under (a name or a :class:`Policy`)."""
    global _policy
    _policy = policy if isinstance(policy, Policy) else Policy(policy)


def global_policy() -> Policy:
    """The policy in force."""
    return _policy


def trainer_precision() -> Literal["auto", "fp32", "bf16"]:
    """The :class:`cnnlab.train.TrainConfig` ``precision`` of the policy in force."""
    return _PRECISIONS[_policy.name]
