"""Reading and writing WAV files with numpy only: :func:`read_wav` and :func:`write_wav`.

:func:`read_wav` walks the RIFF chunks itself (unknown chunks such as ``LIST`` are skipped, odd-sized chunks
carry their padding byte) and decodes integer PCM (8-bit unsigned, 16-, 24- and 32-bit signed), IEEE float
(32- and 64-bit) and ``WAVE_FORMAT_EXTENSIBLE`` files holding either. Samples come back as float32
``(channels, samples)`` on the [-1, 1] scale: integers are divided by 2**(bits - 1) (8-bit after removing
its offset of 128), floats are returned as stored. Anything else (A-law, mu-law, ADPCM, MP3 in a WAV
wrapper), a missing ``fmt``/``data`` chunk, or data cut short is a :class:`~cnnlab.core.errors.DataError`
naming the file and how to convert it. A ``data`` chunk whose size is 0 or 0xFFFFFFFF (written by streaming
recorders that never went back to fill it in) is read to the end of the file.

>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "tone.wav"
>>> write_wav(path, np.array([[0.0, 0.5, -0.5, -1.0], [0.25, 0.0, 0.0, 0.0]]), 8000)
>>> samples, rate = read_wav(path)
>>> samples.shape, samples.dtype, rate, samples[0].tolist()
((2, 4), dtype('float32'), 8000, [0.0, 0.5, -0.5, -1.0])
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from cnnlab.core.errors import ConfigError, DataError

PCM, IEEE_FLOAT, EXTENSIBLE = 0x0001, 0x0003, 0xFFFE
"""Format tags of the ``fmt`` chunk that :func:`read_wav` decodes."""

KNOWN_FORMATS = {0x0002: "Microsoft ADPCM", 0x0006: "A-law", 0x0007: "mu-law", 0x0011: "IMA ADPCM", 0x0055: "MP3"}
"""Names of common formats that are refused, for the error message."""

GUID_TAIL = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
"""The last 14 bytes of every KSDATAFORMAT_SUBTYPE GUID; its first two bytes are the format tag."""

STREAMING_SIZES = (0, 0xFFFFFFFF)
"""``data`` sizes meaning "unknown, read to the end of the file"."""

CONVERT = "convert it to 16-bit PCM WAV (e.g. ffmpeg -i in.wav -acodec pcm_s16le out.wav)"


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """Decode a WAV file into float32 samples ``(channels, samples)`` on the [-1, 1] scale, and its sample rate.

    >>> import tempfile, pathlib, wave
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "two.wav"
    >>> with wave.open(str(path), "wb") as out:
    ...     out.setnchannels(1); out.setsampwidth(2); out.setframerate(16000)
    ...     out.writeframes(np.array([16384, -32768], "<i2").tobytes())
    >>> read_wav(path)
    (array([[ 0.5, -1. ]], dtype=float32), 16000)
    >>> _ = path.write_bytes(b"RIFF\\x04\\x00\\x00\\x00WAVE")
    >>> read_wav(path)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    cnnlab.core.errors.DataError: no 'fmt ' chunk: not a usable WAV file [...two.wav]. Fix: convert it to 16-bit PCM...
    """
    where = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise DataError(f"cannot read the file ({error.strerror or error})", where=where) from None
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise DataError("not a RIFF/WAVE file", where=where, fix=CONVERT)
    fmt, start, size = _walk_chunks(data, where)
    tag, channels, rate, block_align, bits = _parse_fmt(fmt, where)
    width = (bits + 7) // 8
    if channels == 0 or rate == 0 or bits == 0 or block_align != channels * width:
        raise DataError(
            f"inconsistent 'fmt ' chunk ({channels} channels, {rate} Hz, {bits} bits, block of {block_align} bytes)",
            where=where,
            fix=CONVERT,
        )
    frames = size // block_align
    if frames == 0:
        raise DataError("the file holds no samples", where=where, fix="re-record or delete it")
    raw = np.frombuffer(data, np.uint8, count=frames * block_align, offset=start)
    samples = _decode(raw, tag, width, where).reshape(frames, channels).T
    return np.ascontiguousarray(samples), rate


def _walk_chunks(data: bytes, where: str) -> tuple[bytes, int, int]:
    """The ``fmt`` chunk's body and the ``data`` chunk's offset and usable size."""
    fmt: bytes | None = None
    found: tuple[int, int] | None = None
    offset = 12
    while offset + 8 <= len(data):
        chunk, size = data[offset : offset + 4], struct.unpack_from("<I", data, offset + 4)[0]
        body, left = offset + 8, len(data) - offset - 8
        if chunk == b"data":
            if size > left and size not in STREAMING_SIZES:
                raise DataError(
                    f"the data is truncated: the header promises {size:,} bytes, the file holds {left:,}",
                    where=where,
                    fix="the file was cut short (an interrupted copy or recording): copy it again or delete it",
                )
            found = (body, left if size in STREAMING_SIZES else size)
            if size in STREAMING_SIZES:
                break
        elif chunk == b"fmt ":
            if size > left:
                raise DataError("the 'fmt ' chunk is cut short", where=where, fix=CONVERT)
            fmt = data[body : body + size]
        elif size > left:
            break  # a broken trailing chunk (metadata) after what we need: ignore it
        offset = body + size + (size & 1)
    if fmt is None or found is None:
        missing = "'fmt '" if fmt is None else "'data'"
        raise DataError(f"no {missing} chunk: not a usable WAV file", where=where, fix=CONVERT)
    return fmt, found[0], found[1]


def _parse_fmt(fmt: bytes, where: str) -> tuple[int, int, int, int, int]:
    """``(format tag, channels, rate, block_align, bits)`` with the extensible sub-format resolved."""
    if len(fmt) < 16:
        raise DataError(f"the 'fmt ' chunk is {len(fmt)} bytes, less than the 16 a WAV needs", where=where, fix=CONVERT)
    tag, channels, rate, _byte_rate, block_align, bits = struct.unpack_from("<HHIIHH", fmt)
    if tag == EXTENSIBLE:
        if len(fmt) < 40 or fmt[26:40] != GUID_TAIL:
            raise DataError("WAVE_FORMAT_EXTENSIBLE file with an unknown sub-format", where=where, fix=CONVERT)
        tag = struct.unpack_from("<H", fmt, 24)[0]
    if (tag == PCM and bits in (8, 16, 24, 32)) or (tag == IEEE_FLOAT and bits in (32, 64)):
        return tag, channels, rate, block_align, bits
    name = KNOWN_FORMATS.get(tag, f"format 0x{tag:04X}")
    kind = "PCM" if tag == PCM else "float" if tag == IEEE_FLOAT else name
    raise DataError(f"{bits}-bit {kind} WAV files are not supported", where=where, fix=CONVERT)


def _decode(raw: np.ndarray, tag: int, width: int, where: str) -> np.ndarray:
    """Interleaved little-endian bytes -> float32 samples on the [-1, 1] scale."""
    if tag == IEEE_FLOAT:
        values = raw.view("<f4" if width == 4 else "<f8").astype(np.float32)
        if not np.isfinite(values).all():
            raise DataError("the float samples hold NaN or infinity", where=where, fix="re-export the file")
        return values
    if width == 1:
        return (raw.astype(np.float32) - 128.0) / 128.0
    if width == 3:  # place the 3 bytes in the top of an int32, then shift back down to sign-extend
        wide = np.zeros((len(raw) // 3, 4), np.uint8)
        wide[:, 1:] = raw.reshape(-1, 3)
        return (wide.view("<i4")[:, 0] >> 8).astype(np.float32) / 2.0**23
    dtype = "<i2" if width == 2 else "<i4"
    return (raw.view(dtype).astype(np.float64) / 2.0 ** (8 * width - 1)).astype(np.float32)


def write_wav(path: str | Path, samples: np.ndarray, rate: int, bits: int = 16) -> None:
    """Write float samples ``(channels, samples)`` or ``(samples,)`` on the [-1, 1] scale as integer PCM.

    Values are multiplied by 2**(bits - 1) and clipped to the integer range (8-bit gets its offset of 128),
    so what :func:`read_wav` returns is written back unchanged.

    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "clip.wav"
    >>> write_wav(path, np.array([0.0, 1.0, -2.0]), 8000, bits=8)
    >>> read_wav(path)[0].tolist()
    [[0.0, 0.9921875, -1.0]]
    """
    samples = np.asarray(samples, dtype=np.float64)
    if samples.ndim == 1:
        samples = samples[None]
    if samples.ndim != 2 or samples.shape[0] == 0:
        raise ConfigError(f"samples must be (channels, samples) or (samples,), got {samples.shape}", where=str(path))
    if not np.isfinite(samples).all():
        raise ConfigError("samples hold NaN or infinity", where=str(path))
    if bits not in (8, 16, 24, 32):
        raise ConfigError(f"bits must be 8, 16, 24 or 32, got {bits}", where=str(path))
    if int(rate) != rate or rate <= 0:
        raise ConfigError(f"rate must be a positive whole number of samples per second, got {rate}", where=str(path))
    channels, width = samples.shape[0], bits // 8
    top = 2.0 ** (bits - 1)
    values = np.clip(np.round(samples.T * top), -top, top - 1).astype(np.int64).reshape(-1)
    if bits == 8:
        body = (values + 128).astype(np.uint8).tobytes()
    else:
        body = values.astype("<i4").view(np.uint8).reshape(-1, 4)[:, :width].tobytes()
    fmt = struct.pack("<HHIIHH", PCM, channels, int(rate), int(rate) * channels * width, channels * width, bits)
    pad = b"\x00" if len(body) & 1 else b""
    chunks = b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(body)) + body + pad
    Path(path).write_bytes(b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks)
