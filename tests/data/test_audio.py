"""The audio front-end against scipy and hand-written formulas, and WAV folders as SignalSets."""

from __future__ import annotations

import math
import time
import wave
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.signal import get_window, resample_poly

from cnnlab.core.errors import ConfigError, DataError
from cnnlab.data.audio import (
    AudioSpec,
    audio_label,
    fit_length,
    is_audio_source,
    load_audio_folder,
    log_mel,
    mel_filterbank,
    parse_audio_name,
    resample,
    spectrogram,
    to_mono,
)
from cnnlab.data.cache import DataWarning
from cnnlab.data.wav import read_wav, write_wav

pytestmark = pytest.mark.usefixtures("one_thread")

RATES = [(8000, 16000), (16000, 8000), (44100, 16000), (22050, 8000), (8000, 11025)]


def _sine(freq: float, rate: int, n: int) -> np.ndarray:
    return np.sin(2 * np.pi * freq * np.arange(n) / rate)


@pytest.mark.parametrize(("source", "target"), RATES)
def test_resample_matches_scipy_on_a_sine_and_noise(source: int, target: int) -> None:
    n = source // 2
    tone = resample(torch.from_numpy(_sine(440, source, n)), source, target).numpy()
    reference = resample_poly(_sine(440, source, n), target, source)
    edge = len(tone) // 10
    assert len(tone) == len(reference) == math.ceil(n * target / source)
    assert np.abs(tone - reference)[edge:-edge].max() < 1e-2
    assert np.abs(tone - _sine(440, target, len(tone)))[edge:-edge].max() < 1e-3  # the exact sine at the new rate
    noise = np.random.default_rng(0).standard_normal(n)
    ours, theirs = resample(torch.from_numpy(noise), source, target).numpy(), resample_poly(noise, target, source)
    spectrum, reference_spectrum = np.fft.rfft(ours[edge:-edge]), np.fft.rfft(theirs[edge:-edge])
    passband = np.fft.rfftfreq(len(ours) - 2 * edge, 1 / target) < 0.8 * min(source, target) / 2
    difference = np.linalg.norm(spectrum[passband] - reference_spectrum[passband])
    assert difference < 0.03 * np.linalg.norm(reference_spectrum[passband])


def test_resample_lengths_batches_and_padding() -> None:
    for source, target in RATES:
        for n in (1, 7, 100, 441, 1001):
            assert resample(torch.zeros(n), source, target).shape == (math.ceil(n * target / source),)
    x = torch.randn(2, 3, 500, dtype=torch.float64)
    batched = resample(x, 16000, 8000)
    assert batched.shape == (2, 3, 250) and batched.dtype == torch.float64
    assert torch.allclose(batched[1, 2], resample(x[1, 2], 16000, 8000))
    padded = resample(torch.nn.functional.pad(x[0, 0], (0, 300)), 16000, 8000)  # trailing zeros change nothing
    assert torch.allclose(padded[:250], batched[0, 0])
    assert resample(x, 8000, 8000) is x
    with pytest.raises(ConfigError, match="positive whole"):
        resample(x, 8000.5, 16000)
    with pytest.raises(ConfigError, match="filter"):
        resample(torch.zeros(10), 44100, 16001)  # no common divisor: a gigantic kernel


def test_to_mono_and_fit_length() -> None:
    stereo = torch.tensor([[1.0, 2.0, 3.0], [3.0, 4.0, 5.0]])
    assert to_mono(stereo).tolist() == [2.0, 3.0, 4.0] and to_mono(stereo[None]).shape == (1, 3)
    x = torch.arange(1.0, 6.0)
    assert fit_length(x, 3).tolist() == [2.0, 3.0, 4.0] and fit_length(x, 3, "start").tolist() == [1.0, 2.0, 3.0]
    assert fit_length(x, 8).tolist() == [0, 1, 2, 3, 4, 5, 0, 0] and fit_length(x, 7, "start").tolist()[5:] == [0, 0]
    assert fit_length(torch.ones(2, 4), 6).shape == (2, 6) and torch.equal(fit_length(x, 5), x)
    with pytest.raises(ConfigError):
        fit_length(x, 3, "end")  # type: ignore[arg-type]


def _reference_mel(n_fft: int, n_mels: int, rate: int, f_min: float, f_max: float) -> np.ndarray:
    """Triangles from the HTK formula, written out band by band and bin by bin."""
    mel = lambda f: 2595 * math.log10(1 + f / 700)  # noqa: E731
    hz = lambda m: 700 * (10 ** (m / 2595) - 1)  # noqa: E731
    step = (mel(f_max) - mel(f_min)) / (n_mels + 1)
    edges = [hz(mel(f_min) + i * step) for i in range(n_mels + 2)]
    bank = np.zeros((n_mels, n_fft // 2 + 1))
    for band in range(n_mels):
        low, centre, high = edges[band : band + 3]
        for k in range(n_fft // 2 + 1):
            f = k * rate / n_fft
            if low <= f <= centre:
                bank[band, k] = (f - low) / (centre - low)
            elif centre < f <= high:
                bank[band, k] = (high - f) / (high - centre)
    return bank


@pytest.mark.parametrize(
    ("n_fft", "n_mels", "rate", "f_min", "f_max"), [(256, 40, 8000, 0, 4000), (512, 64, 16000, 50, 7000)]
)
def test_mel_filterbank_matches_the_formula(n_fft: int, n_mels: int, rate: int, f_min: float, f_max: float) -> None:
    bank = mel_filterbank(n_fft, n_mels, rate, f_min, None if f_max == rate / 2 else f_max)
    assert bank.shape == (n_mels, n_fft // 2 + 1) and bank.dtype == torch.float32
    np.testing.assert_allclose(bank.numpy(), _reference_mel(n_fft, n_mels, rate, f_min, f_max), atol=1e-6)
    with pytest.raises(ConfigError, match="empty"):
        mel_filterbank(64, 128, rate)
    with pytest.raises(ConfigError):
        mel_filterbank(n_fft, n_mels, rate, f_max=rate)


def test_spectrogram_frame_matches_numpy_fft() -> None:
    x = torch.randn(2, 1000, dtype=torch.float64)
    power = spectrogram(x, 256, 80)
    assert power.shape == (2, 129, 1 + 1000 // 80)
    window = get_window("hann", 256)  # periodic, as torch.hann_window
    for frame in (1, 6, 12):  # frame k is centred on sample 80 k; outside the signal is zero
        padded = np.pad(x[1].numpy(), 128)
        segment = padded[80 * frame : 80 * frame + 256]
        np.testing.assert_allclose(power[1, :, frame].numpy(), np.abs(np.fft.rfft(segment * window)) ** 2, rtol=1e-8)


def test_log_mel_shape_values_and_peak_band() -> None:
    rate = 8000
    tone = torch.from_numpy(_sine(1000, rate, 4000)).float()
    features = log_mel(tone, rate)
    assert features.shape == (40, 1 + 4000 // 80)
    bank = _reference_mel(256, 40, rate, 0, 4000)
    x = tone.double().numpy()
    frame = np.pad(x, 128)[80 * 20 : 80 * 20 + 256] * get_window("hann", 256)
    expected = np.log(bank @ (np.abs(np.fft.rfft(frame)) ** 2) + 1e-6)
    np.testing.assert_allclose(features[:, 20].numpy(), expected, rtol=1e-4, atol=1e-4)
    edges = [700 * (10 ** (i * 2595 * math.log10(1 + 4000 / 700) / 41 / 2595) - 1) for i in range(42)]
    peak = int(features[:, 10:-10].mean(1).argmax())
    assert edges[peak] < 1000 < edges[peak + 2]  # the loudest band is one whose triangle holds 1 kHz
    batched = log_mel(torch.stack([tone, 0.1 * tone]), rate, n_fft=512, hop=100, n_mels=20)
    assert batched.shape == (2, 20, 41)
    loud = batched[1] > 0  # far above the 1e-6 floor, a tenth of the amplitude is a hundredth of the power
    assert loud.sum() > 40 and torch.allclose((batched[0] - batched[1])[loud], torch.tensor(2 * math.log(10)))


def test_parse_audio_name() -> None:
    assert parse_audio_name("7_jackson_32") == ("7", "jackson", 32)
    assert parse_audio_name("yes_speaker_a_0") == ("yes", "speaker_a", 0)
    assert [parse_audio_name(s) for s in ("7_jackson", "7_jackson_x", "_a_1", "7__1", "noise")] == [None] * 5


def test_a_flat_folder_named_label_then_anything_takes_its_labels_from_the_names(tmp_path: Path) -> None:
    """`yes_01.wav`, `no-3.wav` (not FSDD's three parts) were all skipped: 'no labelled .wav files found'."""
    assert [audio_label(s) for s in ("7_jackson_32", "yes_01", "no-3", "dog bark", "noise", "_x")] == [
        "7", "yes", "no", "dog", None, None,
    ]  # fmt: skip
    for i in range(2):
        write_wav(tmp_path / f"yes_{i:02d}.wav", 0.3 * _sine(400, 8000, 2000), 8000)
        write_wav(tmp_path / f"no-{i}.wav", 0.3 * _sine(900, 8000, 2000), 8000)
    write_wav(tmp_path / "noise.wav", np.zeros(100), 8000)
    with pytest.warns(DataWarning, match=r"does not start with a label.*noise\.wav"):
        data = load_audio_folder(tmp_path)
    assert data.classes == ["no", "yes"] and data.y.tolist() == [0, 0, 1, 1]
    assert data.groups is None and data.indices is None  # no speakers: a split by class share, not by speaker


def test_audio_spec_defaults_dict_and_features() -> None:
    spec = AudioSpec(rate=16000, samples=1600)
    assert (spec.n_fft, spec.hop, spec.feature_shape) == (512, 160, (40, 11))
    assert AudioSpec(rate=8000).n_fft == 256 and AudioSpec(rate=8000).hop == 80
    assert AudioSpec.from_dict(spec.to_dict()) == spec and AudioSpec.from_dict({"rate": 16000}).n_fft == 512
    with pytest.raises(ConfigError, match="unknown audio settings"):
        AudioSpec.from_dict({"rate": 8000, "window": 3})
    with pytest.raises(ConfigError):
        AudioSpec(representation="mfcc")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="no rate"):
        AudioSpec().features(torch.zeros(1, 10))
    waves = torch.randn(3, 1500) * torch.tensor([[0.1], [1.0], [7.0]])
    features = spec.features(waves)  # fitted to 1600 samples, each scaled to peak 1
    assert features.shape == (3, 40, 11)
    assert torch.allclose(spec.features(waves * 0.25), features, atol=1e-4)
    raw = AudioSpec(rate=16000, samples=1000, representation="waveform").features(waves)
    assert raw.shape == (3, 1, 1000) and torch.allclose(raw.abs().amax(-1), torch.ones(3, 1))
    peak = fit_length(waves, 1000).abs().amax(-1, keepdim=True)
    assert torch.allclose(raw[:, 0], fit_length(waves, 1000) / peak)


def test_load_file_reads_mono_resamples_and_fits(tmp_path: Path) -> None:
    stereo = np.stack([_sine(300, 16000, 6000), _sine(300, 16000, 6000)]) * 0.5
    write_wav(tmp_path / "a.wav", stereo, 16000)
    spec = AudioSpec(rate=8000, samples=4000)
    features = spec.load_file(tmp_path / "a.wav")
    samples, _ = read_wav(tmp_path / "a.wav")
    expected = torch.from_numpy(resample_poly(samples.mean(0), 1, 2)).float()[None]
    reference = spec.features(expected)[0]
    loud = reference > reference.max() - 8  # far above the log floor, where filter differences are invisible
    assert features.shape == (40, 51) and loud.sum() > 80
    assert (features - reference)[loud].abs().max() < 0.02
    with pytest.raises(DataError, match=r"b\.wav"):
        spec.load_file(tmp_path / "b.wav")


def _tiny_fsdd(root: Path) -> None:
    """Two digits, two speakers: 'ann' at 8 kHz and 'bob' at 16 kHz (the same tones, so the same features)."""
    for label, freq in (("3", 500), ("10", 1200)):
        for name, rate, n in (("ann_0", 8000, 3200), ("ann_1", 8000, 4013), ("bob_0", 16000, 6400)):
            write_wav(root / f"{label}_{name}.wav", 0.5 * _sine(freq, rate, n), rate)
    (root / "3_ann_9.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")


def test_load_audio_folder_names_rates_and_a_corrupt_file(tmp_path: Path) -> None:
    _tiny_fsdd(tmp_path)
    with pytest.warns(DataWarning, match=r"3_ann_9\.wav"):
        data = load_audio_folder(tmp_path)
    assert data.kind == "audio" and data.rate == 8000.0 and len(data) == 6
    assert data.classes == ["3", "10"]  # numbers sort by value
    assert data.names[:3] == ["10_ann_0.wav", "10_ann_1.wav", "10_bob_0.wav"]
    assert data.y.tolist() == [1, 1, 1, 0, 0, 0] and data.groups == ["ann", "ann", "bob"] * 2
    assert data.indices == [0, 1, 0] * 2
    assert [path for path, _ in data.meta["skipped"]] == [str(tmp_path / "3_ann_9.wav")]
    chosen = " | ".join(data.meta["chosen"])
    assert "resampled 2 recordings from 16,000 Hz to 8,000 Hz" in chosen and "most common of 6" in chosen
    spec = AudioSpec.from_dict(data.meta["audio"])
    lengths = [3200, 4013, 3200] * 2  # at 8 kHz
    assert spec.samples == math.ceil(np.percentile(lengths, 95) / 80) * 80 == 4080  # a multiple of the hop
    assert data.x.shape == (6, 40, 1 + 4080 // 80)
    ann, bob = data.x[0, :, 10:-10], data.x[2, :, 10:-10]  # the same 1.2 kHz tone at 8 and 16 kHz, inside
    loud = ann > ann.max() - 8
    assert loud.sum() > 100 and (ann - bob)[loud].abs().max() < 0.02
    assert torch.allclose(data.x[3], spec.load_file(tmp_path / "3_ann_0.wav"))
    with pytest.raises(DataError, match=r"3_ann_9\.wav"):
        load_audio_folder(tmp_path, strict=True)


def test_load_audio_folder_with_a_given_spec_and_all_bad(tmp_path: Path) -> None:
    _tiny_fsdd(tmp_path)
    spec = AudioSpec(rate=16000, samples=3000, representation="waveform")
    with pytest.warns(DataWarning):
        data = load_audio_folder(tmp_path, spec=spec)
    assert data.x.shape == (6, 1, 3000) and data.rate == 16000.0 and data.meta["audio"] == spec.to_dict()
    assert "resampled 4 recordings from 8,000 Hz to 16,000 Hz" in data.meta["chosen"]
    bad = tmp_path / "bad"
    bad.mkdir()
    for name in ("1_a_0.wav", "2_a_0.wav"):
        (bad / name).write_bytes(b"not a wav")
    with pytest.warns(DataWarning), pytest.raises(DataError, match="none of the 2"):
        load_audio_folder(bad)
    with pytest.raises(DataError, match="not found"):
        load_audio_folder(tmp_path / "nowhere")


def test_folder_per_class(tmp_path: Path) -> None:
    for label, freq in (("yes", 400), ("no", 900)):
        (tmp_path / label / "deeper").mkdir(parents=True)
        for i in range(2):
            write_wav(tmp_path / label / f"take{i}.wav", 0.3 * _sine(freq, 8000, 2000), 8000)
        write_wav(tmp_path / label / "deeper" / "take9.wav", 0.3 * _sine(freq, 8000, 2400), 8000)
    (tmp_path / ".hidden").mkdir()
    write_wav(tmp_path / "stray.wav", np.zeros(100), 8000)
    with pytest.warns(DataWarning, match=r"stray\.wav"):
        data = load_audio_folder(tmp_path)  # auto: two class folders
    assert data.classes == ["no", "yes"] and data.y.tolist() == [0, 0, 0, 1, 1, 1]
    assert data.names[0] == "no/deeper/take9.wav" and data.groups is None and data.indices is None
    assert any("no speakers" in line for line in data.meta["chosen"])
    by_name = tmp_path / "named"
    (by_name / "a").mkdir(parents=True)
    write_wav(by_name / "a" / "1_x_4.wav", np.ones(500) * 0.1, 8000)
    write_wav(by_name / "a" / "2_y_5.wav", np.ones(500) * 0.1, 8000)
    folder = load_audio_folder(by_name, label_from="folder")
    assert folder.classes == ["a"] and folder.groups == ["x", "y"] and folder.indices == [4, 5]
    names = load_audio_folder(by_name)  # auto: one sub-folder, so the names carry the labels
    assert names.classes == ["1", "2"] and names.names == ["a/1_x_4.wav", "a/2_y_5.wav"]
    with pytest.raises(ConfigError):
        load_audio_folder(by_name, label_from="csv")  # type: ignore[arg-type]


def test_is_audio_source(tmp_path: Path) -> None:
    assert not is_audio_source(tmp_path) and not is_audio_source(tmp_path / "missing.wav")
    (tmp_path / "a" / "b").mkdir(parents=True)
    with wave.open(str(tmp_path / "a" / "b" / "x.WAV"), "wb") as out:
        out.setnchannels(1), out.setsampwidth(2), out.setframerate(8000)
        out.writeframes(b"\x00\x00")
    assert not is_audio_source(tmp_path)  # two levels down
    assert is_audio_source(tmp_path / "a") and is_audio_source(tmp_path / "a" / "b" / "x.WAV")
    (tmp_path / "notes.txt").write_text("x")
    assert not is_audio_source(tmp_path / "notes.txt")


@pytest.mark.data
def test_fsdd(shared_data: Path) -> None:
    start = time.perf_counter()
    data = load_audio_folder(shared_data / "fsdd" / "recordings")
    seconds = time.perf_counter() - start
    assert len(data) == 3000 and data.classes == [str(d) for d in range(10)] and data.rate == 8000.0
    assert set(data.class_counts().values()) == {300} and len(set(data.groups)) == 6
    assert data.meta["skipped"] == [] and data.x.shape[:2] == (3000, 40)
    train, test = data.split_indices(range(5))  # the README's split: recordings 0-4 are the test set
    assert (len(train), len(test)) == (2700, 300)
    assert seconds < 20, f"reading FSDD took {seconds:.1f} s"
