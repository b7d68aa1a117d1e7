import pytest

from cnnlab.core.errors import RegistryError
from cnnlab.core.registry import Registry


def test_register_twice_is_an_error():
    registry: Registry[int] = Registry("thing")
    registry.add("a", 1)
    with pytest.raises(RegistryError, match="already registered"):
        registry.add("a", 2)
    assert registry.get("a") == 1


def test_unknown_name_suggests_close_names():
    registry: Registry[int] = Registry("model")
    for name in ("resnet18", "resnet34", "vgg16"):
        registry.add(name, 0)
    with pytest.raises(RegistryError) as info:
        registry.get("resnet19")
    message = str(info.value)
    assert "did you mean 'resnet18'" in message
    assert "vgg16" in message  # the known names are listed too
    assert registry.names() == ["resnet18", "resnet34", "vgg16"]
