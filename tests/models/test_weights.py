"""Weights as data: checksums, safe loading, in_chans/num_classes adaptation, and the errors users see."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from cnnlab.core.errors import RegistryError, WeightsError
from cnnlab.models import create_model, weight_spec, weight_specs
from cnnlab.models.weights import read_state_dict, sha256_file


@pytest.fixture
def resnet20_file(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    path = tmp_path / "my-resnet20.pt"
    torch.save(create_model("resnet20").state_dict(), path)
    return path


class Exploit:
    """Unpickling this object would create the marker file (a stand-in for arbitrary code)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (Path.write_text, (str(self.marker), "pwned"))  # type: ignore[return-value]


def test_every_spec_names_a_registered_model_and_its_parameter_count() -> None:
    for spec in weight_specs():
        with torch.device("meta"):
            model = create_model(spec.model, num_classes=spec.num_classes or None)
        counted = sum(p.numel() for n, p in model.named_parameters() if not n.startswith(spec.head_prefixes))
        assert counted == spec.num_params, spec.name
        assert len(spec.classes) == spec.num_classes, spec.name
        assert len(spec.mean) == len(spec.std) == spec.input_size[0]


def test_unknown_file_loads_strictly_and_round_trips(resnet20_file: Path) -> None:
    model = create_model("resnet20", weights=resnet20_file)
    reference = torch.load(resnet20_file, weights_only=True)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in reference.items())


def test_dataparallel_prefix_and_wrapping_dict_are_unwrapped(tmp_path: Path, resnet20_file: Path) -> None:
    state = torch.load(resnet20_file, weights_only=True)
    wrapped = tmp_path / "wrapped.th"
    torch.save({"best_prec1": 91.0, "state_dict": {f"module.{k}": v for k, v in state.items()}}, wrapped)
    assert read_state_dict(wrapped).keys() == state.keys()


def test_in_chans_sums_rgb_filters_and_num_classes_gets_a_new_head(resnet20_file: Path) -> None:
    state = torch.load(resnet20_file, weights_only=True)
    grey = create_model("resnet20", weights=resnet20_file, in_chans=1, num_classes=4)
    assert torch.equal(grey.conv1.weight, state["conv1.weight"].sum(dim=1, keepdim=True))
    assert grey.linear.weight.shape == (4, 64)
    assert torch.equal(grey.layer3[2].conv2.weight, state["layer3.2.conv2.weight"])
    # A grey image through the adapted net equals the grey image repeated into RGB through the original.
    rgb = create_model("resnet20", weights=resnet20_file).eval()
    grey.eval()
    x = torch.rand(1, 1, 32, 32)
    assert torch.allclose(grey.forward_features(x), rgb.forward_features(x.expand(1, 3, 32, 32)), rtol=1e-4, atol=1e-4)
    six = create_model("resnet20", weights=resnet20_file, in_chans=6)  # RGB filters twice, each at half weight
    assert torch.allclose(six.conv1.weight.sum(dim=1), state["conv1.weight"].sum(dim=1))


def test_known_file_name_with_wrong_checksum_is_refused(tmp_path: Path, resnet20_file: Path) -> None:
    impostor = tmp_path / weight_spec("resnet20.cifar10").file_name
    impostor.write_bytes(resnet20_file.read_bytes())
    with pytest.raises(WeightsError, match=re.escape("checksum mismatch for 'resnet20.cifar10'")) as err:
        create_model("resnet20", weights=impostor)
    assert sha256_file(impostor) in str(err.value) and str(impostor) in str(err.value)


def test_wrong_architecture_lists_the_first_mismatched_keys_and_shapes(resnet20_file: Path) -> None:
    with pytest.raises(WeightsError, match="do not fit model 'resnet32'") as err:
        create_model("resnet32", weights=resnet20_file)
    assert "missing in the file (layer1.3.conv1.weight (16, 16, 3, 3)" in str(err.value)
    with pytest.raises(WeightsError, match=r"conv1.weight file \(16, 3, 3, 3\) vs model \(64, 3, 7, 7\)"):
        create_model("resnet18", weights=resnet20_file)


def test_pickle_that_runs_code_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "marker.txt"
    evil = tmp_path / "evil.pth"
    torch.save({"conv1.weight": torch.zeros(1), "payload": Exploit(marker)}, evil)
    with pytest.raises(WeightsError, match="refused to load"):
        create_model("resnet20", weights=evil)
    assert not marker.exists()


def test_not_a_weights_file_and_missing_file(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a zip file at all")
    with pytest.raises(WeightsError, match="cannot read weights"):
        create_model("resnet20", weights=junk)
    with pytest.raises(WeightsError, match="not found"):
        create_model("resnet20", weights=tmp_path / "nothing.pth")


def test_spec_name_is_found_in_the_weights_folders(
    tmp_path: Path, resnet20_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CNNLAB_WEIGHTS", str(tmp_path / "none"))
    with pytest.raises(WeightsError, match=re.escape("resnet20-12fca82f.th for 'resnet20.cifar10' not found")) as err:
        create_model("resnet20", weights="resnet20.cifar10")
    assert "github.com/akamaster" in str(err.value)


def test_weights_for_another_model_are_named(tmp_path: Path, shared_data: Path) -> None:
    source = shared_data / "resnet-cifar10-akamaster" / "resnet20-12fca82f.th"
    if not source.is_file():
        pytest.skip("needs the shared akamaster weights")
    with pytest.raises(
        WeightsError, match=re.escape("weights 'resnet20.cifar10' are for model 'resnet20', not 'resnet56'")
    ):
        create_model("resnet56", weights=source)


def test_unknown_model_name_suggests_close_names() -> None:
    with pytest.raises(RegistryError, match=r"did you mean .*'resnet50'"):
        create_model("resnet05")
    with pytest.raises(RegistryError, match=re.escape("unknown weights 'resnet20.imagenet'")):
        weight_spec("resnet20.imagenet")
