"""Bad input to `cnnlab serve` and its API: each refusal is one line saying what, where and what to do."""

from __future__ import annotations

import socket
import struct
import zlib
from pathlib import Path

import pytest
import torch

pytest.importorskip("fastapi")
pytest.importorskip("python_multipart")
pytest.importorskip("httpx")
uvicorn = pytest.importorskip("uvicorn")

from fastapi.testclient import TestClient  # noqa: E402

from cnnlab.cli.app import main  # noqa: E402
from cnnlab.export import ModelCard, save_card  # noqa: E402
from cnnlab.serve import create_app, load_served  # noqa: E402


def error_line(capsys: pytest.CaptureFixture[str]) -> str:
    """The CLI's one `error:` line (and no traceback)."""
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def header_only_png(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height with no real pixels (how a decompression bomb arrives)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0")) + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def client(classifier_checkpoint: Path) -> TestClient:
    return TestClient(create_app(load_served(classifier_checkpoint, runtime="torch")))  # default limits: 40 MP


# --- 2. an oversized image: one message, one status ----------------------------------------------------
@pytest.mark.parametrize(
    ("side", "size"),
    [
        (8000, "8000x8000 = 64 MP"),  # over our limit only
        (10000, "10000x10000 = 100 MP"),  # over Pillow's warning limit too
        (20000, "400 MP"),  # over Pillow's hard limit: refused before the size is known
    ],
)
def test_an_oversized_image_gets_one_clear_400(client: TestClient, side: int, size: str) -> None:
    data = header_only_png(side, side)
    response = client.post("/predict", files={"file": ("big.png", data, "image/png")})
    assert response.status_code == 400
    want = f"image is too large: {size}; the limit is 40 MP [upload]. Fix: send a smaller image"
    assert response.json()["detail"] == want


# --- 3. an .onnx that is no model, or has no card ------------------------------------------------------
@pytest.mark.parametrize("content", [bytes(range(256)) * 4, b"hello, I am a text file\n"], ids=["random", "text"])
def test_serving_an_onnx_that_is_no_model_names_the_file(tmp_path: Path, capsys, content: bytes) -> None:
    pytest.importorskip("onnxruntime")
    model = tmp_path / "model.onnx"
    model.write_bytes(content)
    save_card(ModelCard(name="x", classes=("a", "b"), input_size=(1, 4, 4), mean=(0.0,), std=(1.0,)), f"{model}.json")
    assert main(["serve", str(model)]) == 2
    line = error_line(capsys)
    assert "not an ONNX model (could not parse it)" in line and f"[{model}]" in line


def test_serving_junk_onnx_without_a_card_blames_the_file_not_the_card(tmp_path: Path, capsys) -> None:
    pytest.importorskip("onnxruntime")
    model = tmp_path / "model.onnx"
    model.write_bytes(b"\x00junk" * 50)
    assert main(["serve", str(model)]) == 2
    assert "not an ONNX model" in error_line(capsys)


def test_serving_an_onnx_without_its_card_names_both_files(tmp_path: Path, capsys) -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from cnnlab.export import onnx_bytes
    from cnnlab.models import create_model

    model = tmp_path / "model.onnx"
    model.write_bytes(onnx_bytes(create_model("cnn_small", num_classes=2, in_chans=1).eval(), (1, 28, 28)))
    assert main(["serve", str(model)]) == 2
    line = error_line(capsys)
    assert "no model card beside model.onnx" in line and f"[{model}.json]" in line and "cnnlab export" in line


def test_serving_a_missing_onnx_says_so(tmp_path: Path, capsys) -> None:
    pytest.importorskip("onnxruntime")
    assert main(["serve", str(tmp_path / "gone.onnx")]) == 2
    assert "ONNX model not found" in error_line(capsys)


# --- 4. a busy port: refused before loading anything ---------------------------------------------------
def test_a_busy_port_is_refused_before_loading(classifier_checkpoint: Path, capsys) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["serve", str(classifier_checkpoint), "--port", str(port), "--runtime", "torch"]) == 2
    err = capsys.readouterr().err
    assert f"error: port {port} is in use on 127.0.0.1 [--port]. Fix: pass --port N" in err
    assert "Loading" not in err and "Serving" not in err


def test_serve_hands_uvicorn_the_socket_it_checked(classifier_checkpoint: Path, capsys, monkeypatch) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    seen: list[socket.socket] = []

    def run(server: uvicorn.Server, sockets: list[socket.socket]) -> None:
        seen.extend(sockets)
        assert sockets[0].getsockname() == ("127.0.0.1", port)

    monkeypatch.setattr(uvicorn.Server, "run", run)
    assert main(["serve", str(classifier_checkpoint), "--port", str(port), "--runtime", "torch"]) == 0
    assert f"on http://127.0.0.1:{port}/" in capsys.readouterr().err
    assert len(seen) == 1 and seen[0].fileno() == -1  # closed once the server is done


# --- 7. a folder or .pt that is no cnnlab checkpoint ---------------------------------------------------
def test_a_folder_without_a_checkpoint_is_not_a_run(tmp_path: Path, capsys) -> None:
    assert main(["serve", str(tmp_path)]) == 2
    line = error_line(capsys)
    assert "not a run folder: it has no checkpoints/best.pt" in line and f"[{tmp_path}]" in line


def test_a_run_without_best_pt_points_at_last_pt(tmp_path: Path, capsys) -> None:
    (tmp_path / "config.yaml").write_text("task: classify\n")
    (tmp_path / "checkpoints").mkdir()
    assert main(["serve", str(tmp_path)]) == 2
    assert "the run has no checkpoints/best.pt yet" in error_line(capsys)
    (tmp_path / "checkpoints" / "last.pt").write_bytes(b"stand-in")
    assert main(["serve", str(tmp_path)]) == 2
    assert f"Fix: pass {tmp_path / 'checkpoints' / 'last.pt'}" in error_line(capsys)


def test_a_damaged_pt_gets_a_fix_for_serving_not_for_resuming(tmp_path: Path, capsys) -> None:
    path = tmp_path / "model.pt"
    path.write_bytes(bytes(range(256)) * 8)
    assert main(["serve", str(path)]) == 2
    line = error_line(capsys)
    assert "checkpoint is damaged" in line and "resume" not in line and "written by `cnnlab train`" in line


def test_a_foreign_checkpoint_is_one_line(tmp_path: Path, capsys) -> None:
    path = tmp_path / "weights.pt"
    torch.save({"weight": torch.zeros(2)}, path)
    assert main(["serve", str(path)]) == 2
    assert "not a cnnlab classifier checkpoint" in error_line(capsys)


def test_a_pt_holding_a_bare_tensor_is_one_line(tmp_path: Path, capsys) -> None:
    path = tmp_path / "tensor.pt"
    torch.save(torch.zeros(3), path)
    assert main(["serve", str(path)]) == 2
    assert "not a cnnlab" in error_line(capsys)
