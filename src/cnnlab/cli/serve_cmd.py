"""``cnnlab serve``: the prediction API and its page for a checkpoint, an exported ``.onnx`` or a pretrained
embedder's name (FastAPI + uvicorn)."""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import socket
from enum import Enum
from pathlib import Path

import typer
from rich.console import Console

from cnnlab.cli.options import DEVICE_HELP, use_device
from cnnlab.core.errors import ConfigError

Runtime = Enum("Runtime", {name: name for name in ("auto", "onnx", "torch")}, type=str)


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine.

    >>> is_loopback("127.0.0.1"), is_loopback("localhost"), is_loopback("::1"), is_loopback("0.0.0.0")
    (True, True, True, False)
    """
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(
    ctx: typer.Context,
    model: Path = typer.Argument(
        ...,
        help="A checkpoint (.pt) or run folder from `cnnlab train`, an exported .onnx, "
        "or a pretrained embedder's name (dlib_resnet29).",
    ),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (loopback: this machine only)."),
    port: int = typer.Option(8000, "--port", min=1, max=65535, help="TCP port."),
    runtime: Runtime = typer.Option(
        "auto", "--runtime", help="Classifier checkpoints: onnx (exported in memory, verified), torch, or auto (onnx)."
    ),
    max_upload_mb: float = typer.Option(8.0, "--max-upload-mb", min=0.01, help="Larger uploads get 413."),
    device: str = typer.Option(
        "auto",
        "--device",
        help=f"{DEVICE_HELP} Detectors run there; onnxruntime, the PyTorch classifier and Grad-CAM on the CPU.",
    ),
) -> None:
    """Serve /predict, /explain (Grad-CAM), /segment, /detect or /verify (two photos: same person?), /health,
    /model and a page at / to try it in a browser.

    Example: `cnnlab export runs/classify/cnn_small-1` then `cnnlab serve runs/classify/cnn_small-1`,
    and open http://127.0.0.1:8000/; face verification: `cnnlab serve dlib_resnet29` (or an embed run folder).
    """
    try:
        import uvicorn

        from cnnlab.serve import create_app, load_served
    except ImportError as exc:
        raise ConfigError(
            f"the server needs FastAPI and uvicorn ({exc.name} is missing)",
            where="cnnlab serve",
            fix="pip install 'cnnlab[serve]'",
        ) from None
    use_device(ctx, device)  # for the server's lifetime
    console = Console(stderr=True, highlight=False)
    with listening_socket(host, port) as sock:  # before loading: a busy port fails at once, and stays ours
        if not is_loopback(host):
            console.print(f"[yellow]warning:[/yellow] listening on {host}: other machines can reach this server.")
        console.print(f"Loading {model} (runtime {runtime.value}; onnx exports and verifies the model first)…")
        served = load_served(model, runtime.value)
        app = create_app(served, max_upload_bytes=int(max_upload_mb * 1024 * 1024))
        url = f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"
        console.print(f"Serving {served.card.name} ({served.card.task}) with {served.runtime} on {url}")
        config = uvicorn.Config(app, log_level="info", server_header=False, timeout_keep_alive=5)
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl+C: uvicorn shuts down cleanly, then re-raises it
            uvicorn.Server(config).run(sockets=[sock])


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` (uvicorn listens on it); a busy port or a bad host is a ConfigError.

    >>> with listening_socket("127.0.0.1", 0) as sock:
    ...     port = sock.getsockname()[1]
    ...     try:
    ...         listening_socket("127.0.0.1", port)
    ...     except ConfigError as err:
    ...         print(err.what == f"port {port} is in use on 127.0.0.1")
    True
    """
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn: a just-closed server's port is free
    try:
        sock.bind((host, port))
        sock.listen()
    except OSError as exc:
        sock.close()
        raise _bind_error(exc, host, port) from None
    return sock


def _bind_error(exc: OSError, host: str, port: int) -> ConfigError:
    if exc.errno == errno.EADDRINUSE:
        return ConfigError(
            f"port {port} is in use on {host}",
            where="--port",
            fix="pass --port N with another port, or stop the program that uses this one",
        )
    if exc.errno == errno.EACCES:
        return ConfigError(
            f"no permission to listen on port {port}",
            where="--port",
            fix="ports below 1024 need root: pass --port 8000",
        )
    return ConfigError(
        f"cannot listen on {host} port {port}: {exc.strerror or exc}",
        where="--host",
        fix="pass --host 127.0.0.1 (this machine only) or --host 0.0.0.0 (all its addresses)",
    )
