"""The server under load: `cnnlab serve` in its own process, a bounded set of clients on loopback.

Starts ``cnnlab serve MODEL --host 127.0.0.1 --port P`` (default runtime: onnxruntime for a checkpoint),
waits for ``/health``, then ``--clients`` threads each POST the same image to ``/predict`` (multipart,
as the page does) back to back for ``--seconds``; reports requests/s, p50/p99 latency and the error
count, then stops the server. Everything stays on 127.0.0.1 and stops by itself.

    python benchmarks/serve_load.py runs/classify/demo-1 --clients 8 --seconds 30
"""

from __future__ import annotations

import argparse
import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
from PIL import Image


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def digit_png() -> bytes:
    """A 140x140 grey PNG (a drawn stroke); the server resizes it to the model's input."""
    yy, xx = np.mgrid[:140, :140]
    pixels = np.where(np.abs(xx - 70 - (yy - 70) // 3) < 8, 255, 0).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def client(url: str, image: bytes, until: float, latencies: list[float], errors: list[str]) -> None:
    with httpx.Client(base_url=url, timeout=30) as http:
        while time.monotonic() < until:
            start = time.perf_counter()
            try:
                response = http.post("/predict", files={"file": ("x.png", image, "image/png")})
                if response.status_code != 200:
                    errors.append(f"{response.status_code}: {response.text[:200]}")
                    continue
            except httpx.HTTPError as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
                continue
            latencies.append(time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path, help="checkpoint, run folder or exported .onnx")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--runtime", default="auto", choices=["auto", "onnx", "torch"])
    parser.add_argument("--start-timeout", type=float, default=300.0, help="seconds to wait for /health")
    args = parser.parse_args()
    if not 1 <= args.clients <= 64 or not 0 < args.seconds <= 600:
        parser.error("keep the load bounded: 1..64 clients, at most 600 s")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "cnnlab.cli.app", "serve", str(args.model), "--port", str(port)]
    if args.model.suffix != ".onnx":
        command += ["--runtime", args.runtime]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + args.start_timeout
        while True:
            if server.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"server did not start (exit status {server.returncode})")
            try:
                health = httpx.get(f"{url}/health", timeout=2).json()
                break
            except httpx.HTTPError:
                time.sleep(0.3)
        image = digit_png()
        latencies: list[float] = []
        errors: list[str] = []
        load_before = os.getloadavg()
        start = time.monotonic()
        threads = [
            threading.Thread(target=client, args=(url, image, start + args.seconds, latencies, errors))
            for _ in range(args.clients)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - start
    finally:
        server.terminate()
        server.wait(timeout=30)
    ms = np.array(latencies) * 1000
    result = {
        "model": health["model"],
        "runtime": health["runtime"],
        "clients": args.clients,
        "seconds": round(elapsed, 1),
        "requests": len(latencies),
        "errors": len(errors),
        "requests_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(float(np.percentile(ms, 50)), 2) if len(ms) else None,
        "p99_ms": round(float(np.percentile(ms, 99)), 2) if len(ms) else None,
        "cpus": os.cpu_count(),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
    }
    print(json.dumps(result, indent=2))
    if errors:
        print("first errors:", *errors[:5], sep="\n  ")


if __name__ == "__main__":
    main()
