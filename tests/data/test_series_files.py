"""Time-series readers: .ts (multichannel, missing values), UCR text, arrays, CSV, UCR folders; real UCR sets."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from cnnlab.core.errors import ConfigError, DataError
from cnnlab.data.cache import DataWarning
from cnnlab.data.series_files import (
    is_ucr_source,
    load_series_arrays,
    load_series_csv,
    load_ucr,
    read_ts,
    read_ucr_text,
)

# Three series, two channels, five steps; series 2 has a missing value in channel 2 at step 3.
CHANNELS = np.array(
    [
        [[0.5, 1.0, 1.5, 2.0, 2.5], [10, 20, 30, 40, 50]],
        [[-1, -2, -3, -4, -5], [1, 2, np.nan, 8, 16]],
        [[0, 0, 0, 0, 1], [3, 2, 1, 0, -1]],
    ]
)
LABELS = ["a", "b", "a"]


def _ts_text(channels: np.ndarray, labels: list[str], header: str = "@classLabel true b a") -> str:
    rows = [
        ":".join(",".join("?" if np.isnan(v) else repr(float(v)) for v in channel) for channel in series) + f":{label}"
        for series, label in zip(channels, labels, strict=True)
    ]
    return "\n".join(["# a comment line", "@problemName toy", "@univariate false", header, "@data", *rows]) + "\n"


@pytest.fixture
def ts_file(tmp_path: Path) -> Path:
    path = tmp_path / "toy.ts"
    path.write_text(_ts_text(CHANNELS, LABELS))
    return path


def test_ts_multichannel_missing_zero(ts_file: Path) -> None:
    data = read_ts(ts_file, missing="zero")
    assert data.x.shape == (3, 2, 5) and data.kind == "series"
    assert data.classes == ["b", "a"]  # the @classLabel order, not sorted
    assert data.y.tolist() == [1, 0, 1]
    assert data.names == ["toy:1", "toy:2", "toy:3"]
    np.testing.assert_array_equal(data.x.numpy(), np.nan_to_num(CHANNELS, nan=0.0).astype(np.float32))


def test_ts_missing_interpolate_matches_np_interp(ts_file: Path) -> None:
    data = read_ts(ts_file, missing="interpolate")
    channel = CHANNELS[1, 1]
    known = ~np.isnan(channel)
    expected = np.interp(np.arange(5), np.arange(5)[known], channel[known])
    assert expected[2] == 5.0  # halfway between 2 and 8
    np.testing.assert_allclose(data.x[1, 1].numpy(), expected)
    np.testing.assert_array_equal(data.x[0].numpy(), CHANNELS[0].astype(np.float32))


def test_ts_missing_edges_take_nearest_value(tmp_path: Path) -> None:
    path = tmp_path / "edges.ts"
    path.write_text("@data\n?,?,4,?,6,?:1\n1,2,3,4,5,6:2\n")
    assert read_ts(path, missing="interpolate").x[0, 0].tolist() == [4, 4, 4, 5, 6, 6]


def test_ts_missing_error_names_file_row_and_channel(ts_file: Path) -> None:
    with pytest.raises(DataError) as info:
        read_ts(ts_file)
    text = str(info.value)
    assert str(ts_file) in text and "row 2 (line 7)" in text and "channel 2" in text and "step 3" in text
    assert "missing='interpolate'" in text


def test_ts_sorted_numeric_classes_without_header(tmp_path: Path) -> None:
    path = tmp_path / "n.ts"
    path.write_text("@data\n1,2:10\n3,4:2\n5,6:-1\n7,8:2\n")
    data = read_ts(path)
    assert data.classes == ["-1", "2", "10"]  # numeric, not text, order
    assert [data.classes[i] for i in data.y] == ["10", "2", "-1", "2"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("", "empty"),
        ("@data\n", "no series"),
        ("1,2:a\n", "before @data"),
        ("@data\n1,2:a\n1,x2:b\n", "row 2 (line 3): value 2 is 'x2'"),
        ("@data\n1,2:a\n1,2\n", "row 2 (line 3) has no class label"),
        ("@data\n1,2:3,4:a\n1,2:b\n", "row 2 (line 3) has 1 channel(s), row 1 has 2"),
        ("@classLabel true a\n@data\n1,2:a\n1,2:b\n", "['b'] are not among the classes"),
        ("@classLabel false\n@data\n1,2\n", "no class labels"),
    ],
)
def test_ts_bad_input(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "bad.ts"
    path.write_text(body)
    with pytest.raises(DataError, match=r"bad\.ts") as info:
        read_ts(path)
    assert message in str(info.value)


def test_unequal_lengths_pad_or_error(tmp_path: Path) -> None:
    path = tmp_path / "uneq.ts"
    path.write_text("@data\n1,2,3:a\n1,2,3,4,5:b\n7,8,9:a\n")
    with pytest.warns(DataWarning, match="padded 2 of 3 series to length 5"):
        data = read_ts(path)
    assert data.x.shape == (3, 1, 5)
    assert data.x[0, 0].tolist() == [1, 2, 3, 0, 0] and data.x[1, 0].tolist() == [1, 2, 3, 4, 5]
    with pytest.raises(DataError, match=r"row 1 \(line 2\) has length \[3\], others have 5.*uneq.ts"):
        read_ts(path, unequal="error")


def test_padding_is_not_missing_and_options_are_checked(tmp_path: Path) -> None:
    path = tmp_path / "uneq.ts"
    path.write_text("@data\n1,?,3:a\n1,2,3,4,5:b\n")
    with pytest.warns(DataWarning):
        data = read_ts(path, missing="interpolate")
    assert data.x[0, 0].tolist() == [1, 2, 3, 0, 0]
    with pytest.raises(ConfigError, match="missing"):
        read_ts(path, missing="drop")  # type: ignore[arg-type]


UCR_ROWS = np.array([[-1.0, 0.25, -1.5, 3.0], [1.0, 2.0, 2.5, -0.125], [-1.0, 0.0, 1e-3, 7.0]])


@pytest.mark.parametrize(("suffix", "sep"), [(".tsv", "\t"), (".csv", ","), (".txt", "   ")])
def test_ucr_text_separators_and_label_cleaning(tmp_path: Path, suffix: str, sep: str) -> None:
    path = tmp_path / f"D_TRAIN{suffix}"
    lead = sep if sep.isspace() else ""  # UCR's own .txt files start every row with spaces
    path.write_text("".join(lead + sep.join(f"{v:.7e}" for v in row) + "\n" for row in UCR_ROWS))
    data = read_ucr_text(path)
    reference = np.loadtxt(path, delimiter=sep.strip() or None)
    assert data.classes == ["-1", "1"]
    np.testing.assert_array_equal(data.y.numpy(), (reference[:, 0] > 0).astype(int))
    np.testing.assert_allclose(data.x[:, 0].numpy(), reference[:, 1:], rtol=1e-7)


def test_ucr_text_trailing_missing_is_shorter_series(tmp_path: Path) -> None:
    path = tmp_path / "V_TRAIN.tsv"
    path.write_text("1\t1\t2\t3\n2\t4\t5\tNaN\n")
    with pytest.warns(DataWarning, match="padded 1 of 2"):
        data = read_ucr_text(path)
    assert data.x[:, 0].tolist() == [[1, 2, 3], [4, 5, 0]]


def test_ucr_text_bad_value_names_row_and_token(tmp_path: Path) -> None:
    path = tmp_path / "B_TRAIN.txt"
    path.write_text("1 0.5 0.5\n\n2 0.5 abc\n")
    with pytest.raises(DataError, match=r"row 2 \(line 3\): value 2 is 'abc'.*B_TRAIN.txt"):
        read_ucr_text(path)


def test_npz_layouts_become_channels_first(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x2, x3 = rng.normal(size=(4, 30)), rng.normal(size=(4, 30, 3))
    np.savez(tmp_path / "flat.npz", x=x2, y=np.array(["up", "down", "up", "up"]))
    np.savez(tmp_path / "keras.npz", x_train=x3, y_train=[2, 0, 2, 1], x_test=x3[:2], y_test=[[1], [2]])
    flat = load_series_arrays(tmp_path / "flat.npz")["all"]
    np.testing.assert_allclose(flat.x.numpy(), x2[:, None, :].astype(np.float32))
    assert flat.classes == ["down", "up"] and flat.y.tolist() == [1, 0, 1, 1]
    keras = load_series_arrays(tmp_path / "keras.npz")
    np.testing.assert_allclose(keras["train"].x.numpy(), np.transpose(x3, (0, 2, 1)).astype(np.float32))
    assert keras["test"].classes == ["0", "1", "2"] and keras["test"].y.tolist() == [1, 2]
    assert keras["train"].names[0] == "keras:train[0]"


def test_npy_with_labels_channels_first_and_unknown_test_label(tmp_path: Path) -> None:
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    np.save(tmp_path / "s.npy", x)
    data = load_series_arrays(tmp_path / "s.npy", labels=[5, 7], channels_last=False)["all"]
    np.testing.assert_array_equal(data.x.numpy(), x)
    assert data.classes == ["5", "7"]
    with pytest.raises(DataError, match="no labels"):
        load_series_arrays(tmp_path / "s.npy")
    np.savez(tmp_path / "k.npz", x_train=x, y_train=[0, 0], x_test=x, y_test=[0, 1])
    with pytest.raises(DataError, match=r"\['1'\] are not among the classes of the training file.*y_test"):
        load_series_arrays(tmp_path / "k.npz")


def test_npz_missing_values_follow_the_option(tmp_path: Path) -> None:
    np.savez(tmp_path / "m.npz", x=np.array([[1.0, np.nan, 3.0]]), y=[0])
    with pytest.raises(DataError, match="series 0, channel 1, step 2"):
        load_series_arrays(tmp_path / "m.npz")
    assert load_series_arrays(tmp_path / "m.npz", missing="interpolate")["all"].x.tolist() == [[[1, 2, 3]]]


def test_csv_label_column_header_and_missing_cell(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text("t0,t1,label,t2\n1,2,walk,3\n4,,run,6\n")
    data = load_series_csv(path, missing="interpolate")
    assert data.classes == ["run", "walk"] and data.y.tolist() == [1, 0]
    assert data.x[:, 0].tolist() == [[1, 2, 3], [4, 5, 6]]
    plain = tmp_path / "p.csv"
    plain.write_text("2.0,0.5,0.25\n1,1.5,1.25\n")
    data = load_series_csv(plain)
    reference = np.loadtxt(plain, delimiter=",")
    assert data.classes == ["1", "2"]
    np.testing.assert_allclose(data.x[:, 0].numpy(), reference[:, 1:])


def _ucr_folder(root: Path, name: str, train: str, test: str) -> Path:
    folder = root / name
    folder.mkdir()
    (folder / f"{name}_TRAIN.tsv").write_text(train)
    (folder / f"{name}_TEST.tsv").write_text(test)
    return folder


def test_load_ucr_by_name_ignoring_case_and_shared_length(tmp_path: Path) -> None:
    _ucr_folder(tmp_path, "Wave", "2\t1\t2\t3\n1\t1\t2\t3\n", "2\t5\t6\t7\t8\n")
    assert is_ucr_source("wave", data_dir=tmp_path) and is_ucr_source(tmp_path / "Wave")
    assert not is_ucr_source("other", data_dir=tmp_path) and not is_ucr_source(tmp_path)
    with pytest.warns(DataWarning):
        train, test = load_ucr("WAVE", data_dir=tmp_path)
    assert train.x.shape == (2, 1, 4) and test.x.shape == (1, 1, 4)
    assert train.classes == test.classes == ["1", "2"] and test.y.tolist() == [1]


def test_load_ucr_env_default_and_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _ucr_folder(tmp_path, "Toy", "1\t1\t2\n2\t1\t2\n", "3\t1\t2\n")
    monkeypatch.setenv("CNNLAB_DATA", str(tmp_path))
    with pytest.raises(DataError, match=r"\['3'\] are not among the classes.*Toy_TEST.tsv"):
        load_ucr("toy")
    with pytest.raises(DataError) as info:
        load_ucr("Missing")
    assert str(tmp_path / "Missing") in str(info.value) and "--data-dir" in str(info.value)
    (tmp_path / "Toy" / "Toy_TEST.tsv").unlink()
    with pytest.raises(DataError, match="no matching _TEST"):
        load_ucr(tmp_path / "Toy")


def _naive_ts(path: Path) -> tuple[np.ndarray, list[str]]:
    """An independent .ts parse for univariate files without missing values."""
    lines = path.read_text().splitlines()
    rows = [line.rsplit(":", 1) for line in lines[lines.index("@data") + 1 :] if line.strip()]
    return np.array([[float(v) for v in values.split(",")] for values, _ in rows]), [label for _, label in rows]


@pytest.mark.data
def test_real_ucr_sets(shared_data: Path) -> None:
    root = shared_data / "ucr-ts"
    expected = {"GunPoint": (50, 150, 150), "ECG200": (100, 100, 96), "ItalyPowerDemand": (67, 1029, 24)}
    for name, (n_train, n_test, length) in expected.items():
        train, test = load_ucr(name.lower(), data_dir=root)
        assert train.x.shape == (n_train, 1, length) and test.x.shape == (n_test, 1, length)
        assert len(train.classes) == 2 and train.classes == test.classes
    ecg_train, ecg_test = load_ucr(root / "ECG200")
    assert ecg_train.classes == ["-1", "1"]
    reference = np.loadtxt(root / "ECG200" / "ECG200_TEST.txt")
    np.testing.assert_allclose(ecg_test.x[:, 0].numpy(), reference[:, 1:], rtol=1e-6)
    np.testing.assert_array_equal(ecg_test.y.numpy(), (reference[:, 0] == 1).astype(int))
    assert ecg_test.class_counts() == {"-1": 36, "1": 64}  # the README's counts


@pytest.mark.data
def test_real_ts_against_naive_parse_and_fast(shared_data: Path) -> None:
    path = shared_data / "ucr-ts" / "ItalyPowerDemand" / "ItalyPowerDemand_TEST.ts"
    start = time.perf_counter()
    data = read_ts(path)
    assert time.perf_counter() - start < 1.0
    values, labels = _naive_ts(path)
    np.testing.assert_allclose(data.x[:, 0].numpy(), values, rtol=1e-6)
    assert [data.classes[i] for i in data.y] == labels
