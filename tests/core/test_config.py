from dataclasses import dataclass, field
from typing import Literal

import pytest

from cnnlab.core.config import from_dict, load_yaml, replace, save_yaml, to_dict
from cnnlab.core.errors import ConfigError


@dataclass(frozen=True)
class Inner:
    lr: float = 0.1
    mode: Literal["a", "b"] = "a"
    clip: float | None = None


@dataclass(frozen=True)
class Outer:
    name: str = "x"
    size: tuple[int, int] = (28, 28)
    inner: Inner = field(default_factory=Inner)


def test_yaml_round_trip(tmp_path):
    config = Outer(name="run", size=(32, 32), inner=Inner(lr=0.5, mode="b", clip=1.0))
    save_yaml(config, tmp_path / "c.yaml")
    assert load_yaml(Outer, tmp_path / "c.yaml") == config
    assert to_dict(config)["size"] == [32, 32]


def test_ints_become_floats_and_types_are_checked():
    assert from_dict(Inner, {"lr": 1}).lr == 1.0
    with pytest.raises(ConfigError, match="expected float"):
        from_dict(Inner, {"lr": "fast"})
    with pytest.raises(ConfigError, match="one of 'a', 'b'"):
        from_dict(Inner, {"mode": "c"})


def test_unknown_key_names_the_closest(tmp_path):
    (tmp_path / "bad.yaml").write_text("inner:\n  lrr: 3\n")
    with pytest.raises(ConfigError, match="did you mean 'lr'"):
        load_yaml(Outer, tmp_path / "bad.yaml")


def test_replace_ignores_none_and_checks():
    config = Outer()
    assert replace(config, name=None) == config
    assert replace(config, name="y").name == "y"
    with pytest.raises(ConfigError):
        replace(config, size=(1, 2, 3))
