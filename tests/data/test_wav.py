"""read_wav / write_wav against files written by the stdlib `wave` module or by hand, and scipy's reader."""

from __future__ import annotations

import struct
import wave
from pathlib import Path

import numpy as np
import pytest
from scipy.io import wavfile

from cnnlab.core.errors import DataError
from cnnlab.data.wav import read_wav, write_wav

RNG = np.random.default_rng(0)


def _stdlib_wav(path: Path, ints: np.ndarray, width: int, rate: int = 8000) -> Path:
    """``ints`` (frames, channels) written with the stdlib wave module, ``width`` bytes a sample."""
    with wave.open(str(path), "wb") as out:
        out.setnchannels(ints.shape[1])
        out.setsampwidth(width)
        out.setframerate(rate)
        if width == 3:
            raw = ints.astype("<i4").view(np.uint8).reshape(-1, 4)[:, :3].tobytes()
        else:
            raw = ints.astype({1: "u1", 2: "<i2", 4: "<i4"}[width]).tobytes()
        out.writeframes(raw)
    return path


def _fmt(tag: int, channels: int, rate: int, bits: int, extra: bytes = b"") -> bytes:
    align = channels * bits // 8
    return struct.pack("<HHIIHH", tag, channels, rate, rate * align, align, bits) + extra


def _chunk(name: bytes, body: bytes, size: int | None = None) -> bytes:
    return name + struct.pack("<I", len(body) if size is None else size) + body + b"\x00" * (len(body) & 1)


def _riff(path: Path, *chunks: bytes) -> Path:
    body = b"WAVE" + b"".join(chunks)
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    return path


def _extensible(sub_tag: int, channels: int, rate: int, bits: int) -> bytes:
    guid = struct.pack("<H", sub_tag) + b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
    return _fmt(0xFFFE, channels, rate, bits, struct.pack("<HHI", 22, bits, 0x3) + guid)


@pytest.mark.parametrize(("width", "low", "high", "offset"), [(1, 0, 256, 128), (2, -32768, 32768, 0)])
def test_8_and_16_bit_match_what_was_written_and_scipy(tmp_path: Path, width: int, low: int, high: int, offset: int):
    ints = RNG.integers(low, high, size=(300, 1))
    path = _stdlib_wav(tmp_path / "a.wav", ints, width, rate=11025)
    samples, rate = read_wav(path)
    assert rate == 11025 and samples.shape == (1, 300) and samples.dtype == np.float32
    np.testing.assert_array_equal(samples[0], (ints[:, 0] - offset) / 2.0 ** (8 * width - 1))
    scipy_rate, reference = wavfile.read(path)
    assert scipy_rate == rate
    np.testing.assert_array_equal(samples[0], (reference.astype(np.float64) - offset) / 2.0 ** (8 * width - 1))


def test_24_bit_sign_extends(tmp_path: Path) -> None:
    ints = np.concatenate([[-(2**23), 2**23 - 1, -1, 0, 1], RNG.integers(-(2**23), 2**23, size=200)])[:, None]
    path = _stdlib_wav(tmp_path / "a.wav", ints, 3)
    samples, _ = read_wav(path)
    np.testing.assert_array_equal(samples[0], ints[:, 0] / 2.0**23)
    assert samples[0, 0] == -1.0 and samples[0, 2] < 0
    _, reference = wavfile.read(path)  # scipy puts the 24 bits in the top of an int32
    np.testing.assert_array_equal(samples[0], reference / 2.0**31)


def test_stereo_and_32_bit_are_channels_first(tmp_path: Path) -> None:
    ints = RNG.integers(-(2**31), 2**31, size=(50, 2))
    samples, _ = read_wav(_stdlib_wav(tmp_path / "a.wav", ints, 4))
    assert samples.shape == (2, 50)
    np.testing.assert_allclose(samples, ints.T / 2.0**31, rtol=1e-7)
    stereo16 = RNG.integers(-32768, 32768, size=(40, 2))
    path = _stdlib_wav(tmp_path / "b.wav", stereo16, 2)
    np.testing.assert_array_equal(read_wav(path)[0], wavfile.read(path)[1].T / 32768.0)


@pytest.mark.parametrize(("dtype", "bits"), [("<f4", 32), ("<f8", 64)])
def test_float_and_extensible(tmp_path: Path, dtype: str, bits: int) -> None:
    values = RNG.uniform(-1, 1, size=(64, 3)).astype(dtype)
    for name, fmt in (("plain", _fmt(3, 3, 44100, bits)), ("ext", _extensible(3, 3, 44100, bits))):
        path = _riff(tmp_path / f"{name}.wav", _chunk(b"fmt ", fmt), _chunk(b"data", values.tobytes()))
        samples, rate = read_wav(path)
        assert rate == 44100 and samples.dtype == np.float32
        np.testing.assert_array_equal(samples, values.T.astype(np.float32))
        np.testing.assert_array_equal(samples, wavfile.read(path)[1].T.astype(np.float32))


def test_extensible_pcm_skips_odd_list_chunk(tmp_path: Path) -> None:
    ints = RNG.integers(-32768, 32768, size=25).astype("<i2")
    info = _chunk(b"LIST", b"INFOISFT\x05\x00\x00\x00abcde")  # odd size: one padding byte follows
    path = _riff(tmp_path / "a.wav", info, _chunk(b"fmt ", _extensible(1, 1, 8000, 16)), info,
                 _chunk(b"data", ints.tobytes()), info)  # fmt: skip
    samples, _ = read_wav(path)
    np.testing.assert_array_equal(samples[0], ints / 32768.0)
    np.testing.assert_array_equal(samples[0], wavfile.read(path)[1] / 32768.0)


@pytest.mark.parametrize("size", [0, 0xFFFFFFFF])
def test_streaming_data_size_reads_to_the_end(tmp_path: Path, size: int) -> None:
    ints = RNG.integers(-32768, 32768, size=33).astype("<i2")
    data = b"data" + struct.pack("<I", size) + ints.tobytes() + b"\x01"  # a trailing half frame is dropped
    path = _riff(tmp_path / "a.wav", _chunk(b"fmt ", _fmt(1, 1, 8000, 16)), data)
    np.testing.assert_array_equal(read_wav(path)[0][0], ints / 32768.0)


def _bad_files(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    fmt16 = _chunk(b"fmt ", _fmt(1, 1, 8000, 16))
    frames = np.zeros(100, "<i2").tobytes()
    (tmp_path / "mp3.wav").write_bytes(b"ID3\x04" + bytes(40))  # an MP3 renamed .wav
    (tmp_path / "h.wav").write_bytes(b"RIFX\x00\x00\x00\x00WAVEfmt ")  # big-endian RIFX, cut short
    return {
        "not riff": (tmp_path / "mp3.wav", "not a RIFF/WAVE"),
        "header": (tmp_path / "h.wav", "not a RIFF/WAVE"),
        "no data": (_riff(tmp_path / "nd.wav", fmt16), "no 'data' chunk"),
        "no fmt": (_riff(tmp_path / "nf.wav", _chunk(b"data", frames)), "no 'fmt ' chunk"),
        "truncated": (_riff(tmp_path / "t.wav", fmt16, _chunk(b"data", frames, size=1000)), "truncated"),
        "mu-law": (_riff(tmp_path / "mu.wav", _chunk(b"fmt ", _fmt(7, 1, 8000, 8)), _chunk(b"data", frames)), "mu-law"),
        "a-law ext": (
            _riff(tmp_path / "al.wav", _chunk(b"fmt ", _extensible(6, 1, 8000, 8)), _chunk(b"data", frames)),
            "A-law",
        ),
        "12-bit": (_riff(tmp_path / "b.wav", _chunk(b"fmt ", _fmt(1, 1, 8000, 12)), _chunk(b"data", frames)), "12-bit"),
        "empty": (_riff(tmp_path / "e.wav", fmt16, _chunk(b"data", b"")), "no samples"),
        "missing": (tmp_path / "missing.wav", "cannot read"),
    }


def test_bad_files_are_data_errors_naming_the_file(tmp_path: Path) -> None:
    for case, (path, what) in _bad_files(tmp_path).items():
        with pytest.raises(DataError) as caught:
            read_wav(path)
        message = str(caught.value)
        assert str(path) in message and what in message, (case, message)
        if case in ("mu-law", "a-law ext", "12-bit", "no fmt"):
            assert "pcm_s16le" in message


def test_write_wav_round_trips_and_scipy_reads_it(tmp_path: Path) -> None:
    values = np.clip(RNG.normal(0, 0.5, size=(2, 101)), -1.2, 1.2)
    for bits in (8, 16, 24, 32):
        path = tmp_path / f"{bits}.wav"
        write_wav(path, values, 22050, bits=bits)
        samples, rate = read_wav(path)
        top = 2.0 ** (bits - 1)
        expected = np.clip(np.round(values * top), -top, top - 1) / top
        assert rate == 22050
        np.testing.assert_allclose(samples, expected, atol=1e-7)
        write_wav(tmp_path / "again.wav", samples, rate, bits=bits)  # what was read is written back unchanged
        np.testing.assert_array_equal(read_wav(tmp_path / "again.wav")[0], samples)
    rate, reference = wavfile.read(tmp_path / "16.wav")
    np.testing.assert_array_equal(reference.T, np.clip(np.round(values * 32768), -32768, 32767))
    write_wav(tmp_path / "mono.wav", values[0, :7], 8000, bits=8)  # odd data size: padding byte
    assert read_wav(tmp_path / "mono.wav")[0].shape == (1, 7)
    with wave.open(str(tmp_path / "mono.wav")) as check:
        assert check.getnframes() == 7 and check.getsampwidth() == 1
