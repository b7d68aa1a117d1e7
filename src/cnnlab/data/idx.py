"""IDX files (the MNIST / Fashion-MNIST format), gzip-compressed or raw, read by content.

The format: 2 zero bytes, a type code (0x08 = uint8), the number of dimensions, then one
big-endian uint32 per dimension, then the data. Whether a file is gzip is decided by its first
two bytes, not its name.

>>> import gzip, struct, tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "tiny-idx1-ubyte.gz"
>>> _ = path.write_bytes(gzip.compress(bytes([0, 0, 8, 1]) + struct.pack(">I", 3) + bytes([7, 8, 9])))
>>> read_idx(path).tolist()
[7, 8, 9]
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from cnnlab.core.errors import DataError

_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | Path) -> np.ndarray:
    """Read one IDX file into a numpy array of its declared shape."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read IDX file: {exc.strerror}", where=str(path), fix="check the path") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise DataError(f"corrupt gzip data ({exc})", where=str(path), fix="download the file again") from None
    if len(raw) < 4 or raw[:2] != b"\x00\x00" or raw[2] not in _DTYPES:
        raise DataError("not an IDX file (bad magic number)", where=str(path), fix="pass MNIST-style *-ubyte files")
    ndim = raw[3]
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_DTYPES[raw[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise DataError(
            f"IDX file is truncated or padded: header says shape {shape} ({expected} bytes), found {len(raw) - header}",
            where=str(path),
            fix="download the file again",
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))
