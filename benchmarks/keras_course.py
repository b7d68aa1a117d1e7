"""The Keras course side by side (issue 24): each script of ``benchmarks/keras_course/`` on real Keras and on cnnlab.

Backends, run one after another (never in parallel), each run in a fresh subprocess:

- ``keras-tf``:    Keras 3 + TensorFlow (``KERAS_BACKEND=tensorflow``), the venv ``../kerasref`` beside the repo
- ``keras-torch``: Keras 3 + PyTorch   (``KERAS_BACKEND=torch``),      the venv ``../kerasref-torch``
- ``cnnlab``:      the same script with its one ``keras`` import line swapped for cnnlab's
                   (``import keras`` -> ``from cnnlab import keras``, ``from keras import ...`` ->
                   ``from cnnlab.keras import ...``), in the project's ``.venv``

    .venv/bin/python benchmarks/keras_course.py                   # the real run (tens of minutes on 2 cores)
    .venv/bin/python benchmarks/keras_course.py --quick           # smoke test: tiny data, a few minutes
    .venv/bin/python benchmarks/keras_course.py --scripts convnet_mnist conv1d_series --backends keras-tf cnnlab

Each script prints one JSON line (``script``, ``train_images_per_s`` of ``fit`` alone, ``final_accuracy`` on the
held-out data, ``fit_seconds``); the table's ratio is cnnlab's images/s over the faster Keras backend's.

Data, all local (nothing is downloaded): for real Keras a temporary ``KERAS_HOME`` gets ``datasets/mnist.npz``
(built from the MNIST IDX files in ``--data-root``) and ``datasets/fashion-mnist/`` (the IDX .gz files), so
``keras.datasets.*.load_data()`` finds them in its cache; cnnlab reads the IDX files from ``CNNLAB_DATA``.
Real Keras needs an offline shim (a ``sitecustomize`` on ``PYTHONPATH``, real Keras runs only): its
``mnist.load_data`` checks the sha256 of Google's own ``mnist.npz`` and would try to download on a mismatch, so
the shim accepts the runner's file; and Keras 3 dropped ``keras.preprocessing.image.ImageDataGenerator`` from its
public API (it ships as ``keras.src.legacy.preprocessing.image.ImageDataGenerator``), so the shim puts it back
under its Keras 2 name, as the course scripts use it.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
COURSE = ROOT / "benchmarks" / "keras_course"
SCRIPTS = (
    "convnet_mnist",
    "model_add_convnet",
    "datagen_ants_bees",
    "functional_residual",
    "conv1d_series",
    "conv3d_volumes",
)
KERAS_BACKENDS = ("keras-tf", "keras-torch")
ALL_BACKENDS = (*KERAS_BACKENDS, "cnnlab")

# The one line per script that the cnnlab run swaps.
IMPORT_SWAPS = (
    (re.compile(r"^import keras$"), "from cnnlab import keras"),
    (re.compile(r"^from keras((?:\.\w+)*) import (.+)$"), r"from cnnlab.keras\1 import \2"),
)

SITECUSTOMIZE = textwrap.dedent(
    '''\
    """Offline shim for benchmarks/keras_course.py (real Keras runs only; see that file's docstring)."""
    import os

    _home = os.environ.get("KERAS_COURSE_OFFLINE_HOME")
    if _home:
        import keras
        from keras.src.legacy.preprocessing import image as _legacy_image
        from keras.src.utils import file_utils as _file_utils

        _home = os.path.realpath(_home) + os.sep
        _validate_file = _file_utils.validate_file

        def _validate_local(fpath, file_hash, algorithm="auto", chunk_size=65535):
            """Accept the runner's local datasets; anything else is checked as usual."""
            if os.path.realpath(fpath).startswith(_home):
                return True
            return _validate_file(fpath, file_hash, algorithm, chunk_size)

        _file_utils.validate_file = _validate_local
        if not hasattr(keras.preprocessing.image, "ImageDataGenerator"):
            keras.preprocessing.image.ImageDataGenerator = _legacy_image.ImageDataGenerator
    '''
)


@dataclass
class Backend:
    """One way to run a course script."""

    name: str
    python: Path
    env: dict[str, str] = field(default_factory=dict)
    swap_import: bool = False
    packages: tuple[str, ...] = ()


@dataclass
class Result:
    """One script on one backend."""

    script: str
    backend: str
    ok: bool
    images_per_s: float | None = None
    accuracy: float | None = None
    fit_seconds: float | None = None
    wall_seconds: float = 0.0
    error: str = ""
    detail: str = ""  # the end of a failed run's stderr


def swap_import(source: str) -> str:
    """``source`` with its one ``keras`` import line pointed at cnnlab.

    >>> swap_import("import json\\nimport keras\\nx = keras.Sequential()\\n")
    'import json\\nfrom cnnlab import keras\\nx = keras.Sequential()\\n'
    >>> swap_import("from keras import layers, models\\n")
    'from cnnlab.keras import layers, models\\n'
    """
    lines = source.splitlines(keepends=True)
    hits: list[int] = []
    for i, line in enumerate(lines):
        for pattern, replacement in IMPORT_SWAPS:
            if pattern.match(line.rstrip("\n")):
                lines[i] = pattern.sub(replacement, line.rstrip("\n")) + ("\n" if line.endswith("\n") else "")
                hits.append(i)
    if len(hits) != 1:
        raise ValueError(f"a course script must have exactly one keras import line, found {len(hits)}")
    return "".join(lines)


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (.gz or not) as a uint8 array."""
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(shape)


def idx_file(folder: Path, stem: str) -> Path:
    """``folder/stem.gz`` or ``folder/stem``."""
    gz = folder / f"{stem}.gz"
    return gz if gz.is_file() else folder / stem


def prepare_keras_home(home: Path, data_root: Path) -> None:
    """A ``KERAS_HOME`` whose dataset cache already holds MNIST (as Keras' mnist.npz) and Fashion-MNIST."""
    datasets = home / "datasets"
    (datasets / "fashion-mnist").mkdir(parents=True, exist_ok=True)
    mnist = data_root / "mnist"
    arrays = {
        "x_train": read_idx(idx_file(mnist, "train-images-idx3-ubyte")),
        "y_train": read_idx(idx_file(mnist, "train-labels-idx1-ubyte")),
        "x_test": read_idx(idx_file(mnist, "t10k-images-idx3-ubyte")),
        "y_test": read_idx(idx_file(mnist, "t10k-labels-idx1-ubyte")),
    }
    np.savez(datasets / "mnist.npz", **arrays)  # type: ignore[arg-type]
    for stem in (
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ):
        target = datasets / "fashion-mnist" / f"{stem}.gz"
        source = idx_file(data_root / "fashion-mnist", stem)
        if source.suffix == ".gz":
            target.symlink_to(source.resolve())
        else:
            target.write_bytes(gzip.compress(source.read_bytes(), compresslevel=1))


def backends(args: argparse.Namespace, work: Path) -> dict[str, Backend]:
    """The three backends and the environment each runs in."""
    data_root = Path(args.data_root).resolve()
    common = {
        "KERAS_COURSE_QUICK": "1" if args.quick else "0",
        "HYMENOPTERA": str(data_root / "hymenoptera"),
        "PYTHONHASHSEED": "0",
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    keras_env = {
        **common,
        "KERAS_HOME": str(work / "keras_home"),
        "KERAS_COURSE_OFFLINE_HOME": str(work / "keras_home"),
        "PYTHONPATH": str(work / "shim"),
    }
    return {
        "keras-tf": Backend(
            "keras-tf",
            Path(args.keras_tf_python),
            {**keras_env, "KERAS_BACKEND": "tensorflow"},
            packages=("keras", "tensorflow-cpu", "tensorflow", "numpy"),
        ),
        "keras-torch": Backend(
            "keras-torch",
            Path(args.keras_torch_python),
            {**keras_env, "KERAS_BACKEND": "torch"},
            packages=("keras", "torch", "numpy"),
        ),
        "cnnlab": Backend(
            "cnnlab",
            Path(args.cnnlab_python),
            {**common, "CNNLAB_DATA": str(data_root)},
            swap_import=True,
            packages=("cnnlab", "torch", "numpy"),
        ),
    }


def clean_env(extra: dict[str, str]) -> dict[str, str]:
    """This process's environment without Keras / Python-path settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in {"KERAS_BACKEND", "KERAS_HOME", "PYTHONPATH", "CNNLAB_DATA"}}
    return {**env, **extra}


def versions(backend: Backend) -> str:
    """The installed versions of the backend's packages (read from metadata: nothing heavy is imported)."""
    code = (
        "import importlib.metadata as m, json, platform\n"
        f"names = {list(backend.packages)!r}\n"
        "found = {}\n"
        "for n in names:\n"
        "    try:\n"
        "        found[n] = m.version(n)\n"
        "    except m.PackageNotFoundError:\n"
        "        pass\n"
        "found['python'] = platform.python_version()\n"
        "print(json.dumps(found))\n"
    )
    out = subprocess.run([str(backend.python), "-c", code], capture_output=True, text=True, timeout=120, check=False)
    try:
        return ", ".join(f"{k} {v}" for k, v in json.loads(out.stdout).items())
    except json.JSONDecodeError:
        return "unknown"


def run_one(script: str, backend: Backend, work: Path, log_dir: Path, timeout: float) -> Result:
    """``script`` on ``backend`` in a fresh subprocess; its last JSON line is the result."""
    path = COURSE / f"{script}.py"
    if backend.swap_import:
        swapped = work / "swapped" / path.name
        swapped.parent.mkdir(exist_ok=True)
        swapped.write_text(swap_import(path.read_text()))
        path = swapped
    start = time.perf_counter()
    try:
        proc = subprocess.run(
            [str(backend.python), str(path)],
            cwd=ROOT,
            env=clean_env(backend.env),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        stdout, stderr, code = proc.stdout, proc.stderr, proc.returncode
    except subprocess.TimeoutExpired as exc:
        stdout = exc.stdout.decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
        stderr = (exc.stderr.decode() if isinstance(exc.stderr, bytes) else exc.stderr or "") + "\n[timed out]"
        code = -1
    wall = time.perf_counter() - start
    log = log_dir / f"{script}.{backend.name}.log"
    log.write_text(f"$ {backend.python} {path}\n--- stdout\n{stdout}\n--- stderr\n{stderr}\n--- exit {code}\n")
    for line in reversed(stdout.splitlines()):
        if line.startswith("{"):
            try:
                data = json.loads(line)
            except json.JSONDecodeError:
                continue
            if data.get("script") == script:
                return Result(
                    script,
                    backend.name,
                    code == 0,
                    float(data["train_images_per_s"]),
                    float(data["final_accuracy"]),
                    float(data["fit_seconds"]),
                    wall,
                    "" if code == 0 else f"exit {code}",
                )
    tail = [line for line in stderr.strip().splitlines() if line.strip()] or [f"exit {code}, no result line"]
    return Result(script, backend.name, False, wall_seconds=wall, error=tail[-1][:160], detail="\n".join(tail[-12:]))


def cpu_model() -> str:
    """The CPU's model name (Linux), else the platform's processor string."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def table(results: list[Result]) -> str:
    """The side-by-side table: one row per script and backend; cnnlab rows carry the ratio to the faster Keras."""
    rows = [("script", "backend", "img/s", "accuracy", "fit s", "cnnlab / faster Keras")]
    for r in results:
        ratio = ""
        if r.backend == "cnnlab" and r.ok and r.images_per_s:
            keras_speeds = [
                k.images_per_s
                for k in results
                if k.script == r.script and k.backend in KERAS_BACKENDS and k.ok and k.images_per_s
            ]
            if keras_speeds:
                ratio = f"{r.images_per_s / max(keras_speeds):.2f}x"
        rows.append(
            (
                r.script,
                r.backend,
                fmt(r.images_per_s, ".1f"),
                fmt(r.accuracy, ".4f"),
                fmt(r.fit_seconds, ".1f"),
                ratio if r.ok else f"FAILED: {r.error}",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = ["  ".join(cell.ljust(widths[i]) if i < 5 else cell for i, cell in enumerate(row)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths) + "  " + "-" * 21)
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--scripts", nargs="+", choices=SCRIPTS, default=list(SCRIPTS), metavar="SCRIPT")
    parser.add_argument("--backends", nargs="+", choices=ALL_BACKENDS, default=list(ALL_BACKENDS), metavar="BACKEND")
    parser.add_argument("--quick", action="store_true", help="tiny data and one epoch: a smoke test, not a benchmark")
    parser.add_argument("--data-root", default=str(ROOT.parent / "shared" / "data"), help="the local datasets")
    parser.add_argument("--keras-tf-python", default=str(ROOT.parent / "kerasref" / "bin" / "python"))
    parser.add_argument("--keras-torch-python", default=str(ROOT.parent / "kerasref-torch" / "bin" / "python"))
    default_cnnlab = ROOT / ".venv" / "bin" / "python"
    parser.add_argument("--cnnlab-python", default=str(default_cnnlab if default_cnnlab.exists() else sys.executable))
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds per run (default 3600)")
    parser.add_argument("--log-dir", default=None, help="keep each run's output here (default: a temporary folder)")
    parser.add_argument("--json", default=None, help="also write the results and the machine to this file")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="keras_course_") as tmp:
        work = Path(tmp)
        log_dir = Path(args.log_dir) if args.log_dir else work / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        available: list[Backend] = []
        for name, backend in backends(args, work).items():
            if name not in args.backends:
                continue
            if not backend.python.exists():
                print(f"{name}: skipped (no interpreter at {backend.python}; docs/keras.md says how to build it)")
                continue
            available.append(backend)
        if any(b.name in KERAS_BACKENDS for b in available):
            prepare_keras_home(work / "keras_home", Path(args.data_root))
            (work / "shim").mkdir()
            (work / "shim" / "sitecustomize.py").write_text(SITECUSTOMIZE)

        machine = {
            "cpu": cpu_model(),
            "cores": os.cpu_count(),
            "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
            "platform": platform.platform(),
            "quick": args.quick,
            "versions": {b.name: versions(b) for b in available},
        }
        print(f"machine: {machine['cpu']}, {machine['usable_cores']} usable cores, {machine['platform']}")
        for name, text in machine["versions"].items():
            print(f"  {name}: {text}")
        if args.quick:
            print("--quick: tiny data, a smoke test; these numbers are not the benchmark")

        results: list[Result] = []
        for script in args.scripts:
            for backend in available:
                result = run_one(script, backend, work, log_dir, args.timeout)
                status = "ok" if result.ok else f"FAILED ({result.error})"
                print(f"  {script} on {backend.name}: {status}, {result.wall_seconds:.0f} s", flush=True)
                if result.detail:
                    print(textwrap.indent(result.detail, "      | "), flush=True)
                results.append(result)

        print()
        print(table(results))
        if args.json:
            payload = {"machine": machine, "results": [r.__dict__ for r in results]}
            Path(args.json).write_text(json.dumps(payload, indent=2) + "\n")
        if args.log_dir is None and not all(r.ok for r in results):
            print("(each run's full output was in a temporary folder; pass --log-dir to keep it)")
        return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
