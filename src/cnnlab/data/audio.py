"""Audio front-end: resampling, length fitting, log-mel spectrograms, and a folder of WAV files as a SignalSet.

:func:`load_audio_folder` reads every WAV once (:func:`~cnnlab.data.wav.read_wav`), averages channels to mono,
resamples to one rate (:func:`resample`, windowed sinc as in torchaudio), pads or crops to one length
(:func:`fit_length`) and turns the recordings into features (:meth:`AudioSpec.features`): the waveform itself
``(1, samples)`` or a log-mel spectrogram ``(n_mels, frames)``. What was not given is chosen from the data
(the most common rate, the 95th percentile length) and said in ``meta["chosen"]``; the whole front-end is
``meta["audio"]`` (:meth:`AudioSpec.to_dict`), stored with a model so :meth:`AudioSpec.load_file` prepares a
new recording the same way.

>>> import tempfile
>>> from cnnlab.data.wav import write_wav
>>> root = Path(tempfile.mkdtemp())
>>> tone = np.sin(np.arange(4000) * 2 * np.pi * 440 / 8000)
>>> for digit in ("0", "1"):
...     for index in range(3):
...         write_wav(root / f"{digit}_alice_{index}.wav", tone * 0.5, 8000)
>>> data = load_audio_folder(root)
>>> data.x.shape, data.classes, data.groups[:2], data.indices[:3], data.rate
(torch.Size([6, 40, 51]), ['0', '1'], ['alice', 'alice'], [0, 1, 2], 8000.0)
>>> data.meta["chosen"][2]
'length 4,000 samples (0.50 s): the 95th percentile of 6 recordings, rounded up to a multiple of the hop (80)'
>>> AudioSpec.from_dict(data.meta["audio"]).load_file(root / "0_alice_0.wav").shape
torch.Size([40, 51])
"""

from __future__ import annotations

import math
import os
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from cnnlab.core.errors import ConfigError, DataError
from cnnlab.data.cache import ProblemLog
from cnnlab.data.signals import SignalSet
from cnnlab.data.wav import read_wav

Representation = Literal["logmel", "waveform"]
FitMode = Literal["center", "start"]
LabelFrom = Literal["auto", "folder", "name"]

LOG_FLOOR = 1e-6
"""Added to the mel power before the natural log, so silence gives log(1e-6) = -13.8 instead of -inf."""

LENGTH_PERCENTILE = 95
"""The default length keeps this percentage of recordings whole (the rest are cropped)."""

MAX_SECONDS = 10.0
"""The default length is at most this long."""

MAX_KERNEL = 1 << 26
"""Largest resampling kernel (values) allowed: rates with a small common divisor need huge kernels."""

CHUNK = 256
"""Recordings turned into features (or resampled) at a time, bounding memory."""

AUDIO_NAME = re.compile(r"^([^_]+)_(.+)_(\d+)$")
"""``<label>_<speaker>_<index>`` (FSDD)."""

LABEL_PREFIX = re.compile(r"^([^_\-\s]+)[_\-\s].+$")
"""``<label>_<anything>`` or ``<label>-<anything>``: a label with no speaker or index (``yes_01``, ``dog-bark``)."""


def _whole(value: float, what: str) -> int:
    """A positive whole number (a rate, a length), or a ConfigError."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value) or value <= 0:
        raise ConfigError(f"{what} must be a positive whole number, got {value!r}", where=what)
    return int(value)


def resample(
    x: torch.Tensor, from_rate: int, to_rate: int, lowpass_filter_width: int = 6, rolloff: float = 0.99
) -> torch.Tensor:
    """Resample along the last axis from ``from_rate`` to ``to_rate`` (output length ``ceil(T * to / from)``).

    Band-limited interpolation as ``torchaudio.functional.resample``: the rates are divided by their greatest
    common divisor (``from``, ``to``), one Hann-windowed sinc filter per output phase (cut-off ``rolloff``
    times the lower Nyquist frequency, ``lowpass_filter_width`` zero crossings a side) and one ``conv1d``
    with stride ``from`` computes all ``to`` phases at once.

    >>> x = torch.sin(torch.arange(800) * 2 * math.pi * 440 / 8000)
    >>> y = resample(x, 8000, 16000)
    >>> exact = torch.sin(torch.arange(1600) * 2 * math.pi * 440 / 16000)
    >>> y.shape, bool((y - exact)[200:1400].abs().max() < 1e-3)
    (torch.Size([1600]), True)
    """
    from_rate, to_rate = _whole(from_rate, "from_rate"), _whole(to_rate, "to_rate")
    if from_rate == to_rate:
        return x
    if not x.is_floating_point():
        raise ConfigError(f"resample needs float samples, got {x.dtype}", where="resample", fix="convert with .float()")
    common = math.gcd(from_rate, to_rate)
    old, new = from_rate // common, to_rate // common
    size = new * (2 * math.ceil(lowpass_filter_width * old / (min(old, new) * rolloff)) + old)
    if size > MAX_KERNEL:
        raise ConfigError(
            f"resampling {from_rate:,} Hz to {to_rate:,} Hz needs a {size:,}-value filter",
            where="resample",
            fix="pick a target rate sharing a larger divisor with the source (e.g. 8000, 16000, 22050, 44100)",
        )
    kernel, width = _sinc_kernel(old, new, lowpass_filter_width, rolloff)
    length = x.shape[-1]
    flat = F.pad(x.reshape(-1, 1, length), (width, width + old))
    out = F.conv1d(flat, kernel.to(x), stride=old).transpose(1, 2).reshape(flat.shape[0], -1)
    return out[:, : -(-length * new // old)].reshape(*x.shape[:-1], -1)


def _sinc_kernel(old: int, new: int, zeros: int, rolloff: float) -> tuple[torch.Tensor, int]:
    """``(new, 1, 2 * width + old)`` filters, one per output phase, and ``width`` (input samples a side)."""
    base = min(old, new) * rolloff
    width = math.ceil(zeros * old / base)
    offsets = torch.arange(-width, width + old, dtype=torch.float64) / old
    t = (-torch.arange(new, dtype=torch.float64)[:, None] / new + offsets) * base
    t = t.clamp(-zeros, zeros)
    window = torch.cos(t * math.pi / zeros / 2) ** 2
    t = t * math.pi
    sinc = torch.where(t == 0, torch.ones_like(t), torch.sin(t) / torch.where(t == 0, torch.ones_like(t), t))
    return (sinc * window * base / old)[:, None], width


def to_mono(x: torch.Tensor) -> torch.Tensor:
    """The mean over channels: ``(..., C, T)`` -> ``(..., T)``.

    >>> to_mono(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    tensor([0.5000, 0.5000])
    """
    return x.mean(dim=-2)


def fit_length(x: torch.Tensor, n: int, mode: FitMode = "center") -> torch.Tensor:
    """Crop or zero-pad the last axis to ``n`` samples: ``center`` keeps the middle (pads both sides),
    ``start`` keeps the beginning (pads at the end).

    >>> fit_length(torch.tensor([1.0, 2.0, 3.0, 4.0]), 2), fit_length(torch.tensor([1.0, 2.0]), 5, "start")
    (tensor([2., 3.]), tensor([1., 2., 0., 0., 0.]))
    """
    n = _whole(n, "length")
    if mode not in ("center", "start"):
        raise ConfigError(f"unknown fit mode {mode!r}", where="fit_length", fix="use 'center' or 'start'")
    length = x.shape[-1]
    if length >= n:
        start = (length - n) // 2 if mode == "center" else 0
        return x[..., start : start + n]
    left = (n - length) // 2 if mode == "center" else 0
    return F.pad(x, (left, n - length - left))


def _hz_to_mel(hz: torch.Tensor | float) -> torch.Tensor:
    return 2595.0 * torch.log10(1.0 + torch.as_tensor(hz, dtype=torch.float64) / 700.0)


def _mel_to_hz(mel: torch.Tensor) -> torch.Tensor:
    return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)


def mel_filterbank(n_fft: int, n_mels: int, rate: int, f_min: float = 0.0, f_max: float | None = None) -> torch.Tensor:
    """Triangular mel filters ``(n_mels, n_fft // 2 + 1)`` on the HTK mel scale (2595 * log10(1 + f / 700)).

    Band ``m`` rises from 0 at edge ``m`` to 1 at edge ``m + 1`` and falls to 0 at edge ``m + 2``, the
    ``n_mels + 2`` edges equally spaced in mel from ``f_min`` to ``f_max`` (default: half the rate); no area
    normalisation (as ``librosa.filters.mel(htk=True, norm=None)`` and torchaudio's default).

    >>> bank = mel_filterbank(256, 40, 8000)
    >>> bank.shape, float(bank.max()) <= 1.0, bool((bank.sum(1) > 0).all())
    (torch.Size([40, 129]), True, True)
    """
    n_fft, n_mels, rate = _whole(n_fft, "n_fft"), _whole(n_mels, "n_mels"), _whole(rate, "rate")
    f_max = rate / 2 if f_max is None else f_max
    if not 0 <= f_min < f_max <= rate / 2:
        raise ConfigError(f"need 0 <= f_min < f_max <= {rate / 2:g} Hz, got {f_min:g} and {f_max:g}", where="mel")
    freqs = torch.arange(n_fft // 2 + 1, dtype=torch.float64) * rate / n_fft
    low, high = float(_hz_to_mel(f_min)), float(_hz_to_mel(f_max))
    edges = _mel_to_hz(torch.linspace(low, high, n_mels + 2, dtype=torch.float64))
    lower, center, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (freqs - lower) / (center - lower)
    falling = (upper - freqs) / (upper - center)
    bank = torch.minimum(rising, falling).clamp(min=0)
    empty = (bank.sum(1) == 0).nonzero().flatten().tolist()
    if empty:
        raise ConfigError(
            f"{len(empty)} of {n_mels} mel bands fall between two FFT bins ({rate / n_fft:g} Hz apart) and stay empty",
            where="mel filterbank",
            fix="use fewer mel bands or a larger n_fft",
        )
    return bank.float()


def spectrogram(x: torch.Tensor, n_fft: int, hop: int) -> torch.Tensor:
    """Power spectrogram ``(..., n_fft // 2 + 1, 1 + T // hop)``: |STFT|^2 with a periodic Hann window, frames
    centred on ``0, hop, 2 * hop, ...`` (the signal zero-padded by ``n_fft // 2`` at both ends).

    >>> spectrogram(torch.ones(2, 400), 256, 80).shape
    torch.Size([2, 129, 6])
    """
    if not x.is_floating_point():
        raise ConfigError(f"spectrogram needs float samples, got {x.dtype}", where="spectrogram")
    n_fft, hop = _whole(n_fft, "n_fft"), _whole(hop, "hop")
    flat = x.reshape(-1, x.shape[-1])
    window = torch.hann_window(n_fft, dtype=x.dtype, device=x.device)
    stft = torch.stft(flat, n_fft, hop, window=window, center=True, pad_mode="constant", return_complex=True)
    power = stft.real**2 + stft.imag**2
    return power.reshape(*x.shape[:-1], *power.shape[-2:])


def log_mel(
    x: torch.Tensor, rate: int, n_fft: int = 256, hop: int = 80, n_mels: int = 40, f_min: float = 0.0,
    f_max: float | None = None,
) -> torch.Tensor:  # fmt: skip
    """Log-mel spectrogram ``(n_mels, frames)`` of a ``(T,)`` recording, ``(B, n_mels, frames)`` of ``(B, T)``:
    the natural log of the mel-filtered power spectrogram plus :data:`LOG_FLOOR` (``frames = 1 + T // hop``).

    >>> tone = torch.sin(torch.arange(8000) * 2 * math.pi * 1000 / 8000)
    >>> features = log_mel(tone, 8000)
    >>> features.shape, int(features.mean(1).argmax())  # band 18 of 40 (0 - 4 kHz) is centred at 994 Hz
    (torch.Size([40, 101]), 18)
    """
    bank = mel_filterbank(n_fft, n_mels, rate, f_min, f_max).to(x)
    return torch.log(bank @ spectrogram(x, n_fft, hop) + LOG_FLOOR)


@dataclass(frozen=True)
class AudioSpec:
    """How recordings become model inputs: resampled to ``rate``, fitted to ``samples`` (``fit``: keep the
    ``center`` or the ``start``), scaled per recording to peak 1 (loudness does not matter), then either the
    ``waveform`` ``(1, samples)`` or its ``logmel`` spectrogram ``(n_mels, 1 + samples // hop)``.

    ``rate`` and ``samples`` left at None are chosen by :func:`load_audio_folder` from the data; ``n_fft`` and
    ``hop`` left at None follow the rate: a 32 ms window rounded to a power of two and a 10 ms hop (256 and 80
    at 8 kHz, 512 and 160 at 16 kHz).

    >>> spec = AudioSpec(rate=8000, samples=8000)
    >>> spec.n_fft, spec.hop, spec.feature_shape
    (256, 80, (40, 101))
    >>> spec.features(torch.randn(3, 8000)).shape, replace(spec, representation="waveform").feature_shape
    (torch.Size([3, 40, 101]), (1, 8000))
    >>> AudioSpec.from_dict(spec.to_dict()) == spec
    True
    """

    rate: int | None = None
    samples: int | None = None
    representation: Representation = "logmel"
    n_fft: int | None = None
    hop: int | None = None
    n_mels: int = 40
    fit: FitMode = "center"

    def __post_init__(self) -> None:
        if self.representation not in ("logmel", "waveform"):
            raise ConfigError(
                f"unknown audio representation {self.representation!r}", where="audio", fix="use logmel or waveform"
            )
        if self.fit not in ("center", "start"):
            raise ConfigError(f"unknown fit mode {self.fit!r}", where="audio", fix="use center or start")
        for name in ("rate", "samples", "n_fft", "hop", "n_mels"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, _whole(getattr(self, name), name))
        if self.rate is not None and self.n_fft is None:
            object.__setattr__(self, "n_fft", 2 ** round(math.log2(0.032 * self.rate)))
        if self.rate is not None and self.hop is None:
            object.__setattr__(self, "hop", max(1, round(self.rate / 100)))
        if self.n_fft is not None and self.hop is not None and self.hop > self.n_fft:
            raise ConfigError(
                f"hop {self.hop} is longer than the window n_fft {self.n_fft}: samples would be skipped",
                where="audio spec",
                fix="use a hop of at most n_fft (a quarter to a half of it is usual)",
            )
        if self.representation == "logmel" and self.rate is not None:
            mel_filterbank(self.n_fft, self.n_mels, self.rate)  # refuses empty bands now, not at the first batch

    def to_dict(self) -> dict[str, object]:
        """Plain values, for a checkpoint or JSON."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, object]) -> AudioSpec:
        """The spec :meth:`to_dict` gave (missing keys take their defaults; unknown keys are an error)."""
        unknown = sorted(set(values) - {f.name for f in fields(cls)})
        if unknown:
            raise ConfigError(f"unknown audio settings {', '.join(unknown)}", where="audio spec")
        return cls(**values)  # type: ignore[arg-type]

    @property
    def feature_shape(self) -> tuple[int, int]:
        """One recording's features: ``(1, samples)`` or ``(n_mels, frames)``."""
        _, samples, hop = self._complete()
        return (1, samples) if self.representation == "waveform" else (self.n_mels, 1 + samples // hop)

    def _complete(self) -> tuple[int, int, int]:
        if self.rate is None or self.samples is None:
            raise ConfigError(
                "the audio spec has no rate or length yet",
                where="audio spec",
                fix="give rate= and samples=, or take the spec from load_audio_folder(...).meta['audio']",
            )
        return self.rate, self.samples, self.hop  # type: ignore[return-value]

    def features(self, waveforms: torch.Tensor) -> torch.Tensor:
        """``(B, T)`` mono recordings at ``rate`` -> ``(B, C, T')`` features (fitted to ``samples`` first)."""
        rate, samples, hop = self._complete()
        if waveforms.ndim != 2:
            raise DataError(f"waveforms must be (B, T), got {tuple(waveforms.shape)}", where="audio features")
        x = fit_length(waveforms.float(), samples, self.fit)
        x = x / x.abs().amax(dim=-1, keepdim=True).clamp(min=1e-8)
        if self.representation == "waveform":
            return x[:, None]
        chunks = [log_mel(part, rate, self.n_fft, hop, self.n_mels) for part in x.split(CHUNK)]  # type: ignore[arg-type]
        return torch.cat(chunks) if chunks else x.new_zeros(0, *self.feature_shape)

    def load_file(self, path: str | Path) -> torch.Tensor:
        """One WAV file as model input ``(C, T')``: read, mono, resampled, fitted, features."""
        rate, _, _ = self._complete()
        samples, source_rate = read_wav(path)
        mono = to_mono(torch.from_numpy(samples))
        return self.features(resample(mono, source_rate, rate)[None])[0]


def parse_audio_name(stem: str) -> tuple[str, str, int] | None:
    """``(label, speaker, index)`` from an FSDD-style ``<label>_<speaker>_<index>`` file stem, else None.

    >>> parse_audio_name("7_jackson_32"), parse_audio_name("dog_bark_park_3"), parse_audio_name("7_jackson")
    (('7', 'jackson', 32), ('dog', 'bark_park', 3), None)
    """
    match = AUDIO_NAME.match(stem)
    return None if match is None else (match[1], match[2], int(match[3]))


def audio_label(stem: str) -> str | None:
    """The class label a file stem names: FSDD's ``<label>_<speaker>_<index>``, else the part before the first
    ``_``, ``-`` or space; ``None`` when there is no such part.

    >>> audio_label("7_jackson_32"), audio_label("yes_01"), audio_label("no-3"), audio_label("recording")
    ('7', 'yes', 'no', None)
    """
    parsed = parse_audio_name(stem)
    if parsed is not None:
        return parsed[0]
    match = LABEL_PREFIX.match(stem)
    return None if match is None else match[1]


def _is_wav(path: Path) -> bool:
    return path.suffix.lower() == ".wav" and not path.name.startswith(".")


def _wav_files(folder: Path) -> list[Path]:
    """Every visible .wav file under ``folder`` (hidden files and folders skipped), sorted."""
    found = []
    for top, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found += [Path(top) / f for f in files if _is_wav(Path(f))]
    return sorted(found)


def is_audio_source(path: str | Path) -> bool:
    """True for a .wav file, or a folder holding .wav files directly or in its sub-folders (one level down).

    >>> import tempfile
    >>> from cnnlab.data.wav import write_wav
    >>> folder = Path(tempfile.mkdtemp())
    >>> before = is_audio_source(folder)
    >>> (folder / "yes").mkdir(); write_wav(folder / "yes" / "1.wav", np.zeros(10), 8000)
    >>> before, is_audio_source(folder), is_audio_source(folder / "yes" / "1.wav")
    (False, True, True)
    """
    path = Path(path)
    if path.is_file():
        return _is_wav(path)
    if not path.is_dir():
        return False
    children = [child for child in path.iterdir() if not child.name.startswith(".")]
    return any(_is_wav(c) and c.is_file() for c in children) or any(
        c.is_dir() and any(_is_wav(f) and f.is_file() for f in c.iterdir()) for c in children
    )


def _labelled_files(root: Path, label_from: LabelFrom, log: ProblemLog) -> tuple[list[Path], list[str]]:
    """The WAV files to read and their labels (from the class folder or the file name)."""
    classes = {d: _wav_files(d) for d in sorted(root.iterdir()) if d.is_dir() and not d.name.startswith(".")}
    classes = {d: files for d, files in classes.items() if files}
    if label_from == "auto":
        label_from = "folder" if len(classes) >= 2 else "name"
    if label_from == "folder":
        for stray in sorted(f for f in root.iterdir() if _is_wav(f)):
            log.report(DataError("file is not inside a class folder", where=str(stray), fix="move it into one"))
        return [f for files in classes.values() for f in files], [d.name for d, files in classes.items() for _ in files]
    if label_from != "name":
        raise ConfigError(f"unknown label source {label_from!r}", where="label_from", fix="use auto, folder or name")
    files, labels = [], []
    for path in _wav_files(root):
        label = audio_label(path.stem)
        if label is None:
            log.report(
                DataError(
                    "the name does not start with a label (<label>_<anything>.wav or <label>-<anything>.wav)",
                    where=str(path),
                    fix="rename it, or put the files in one folder per class",
                )
            )
        else:
            files.append(path)
            labels.append(label)
    return files, labels


def _sorted_classes(labels: Sequence[str]) -> list[str]:
    """Sorted class names: by value when every label is a number ('2' before '10')."""
    unique = set(labels)
    try:
        return sorted(unique, key=float)
    except ValueError:
        return sorted(unique)


def _resample_all(waves: list[torch.Tensor], rates: list[int], rate: int) -> list[str]:
    """Resample (in place in ``waves``) every recording not at ``rate``, in batches of similar length."""
    chosen = []
    for source in sorted(set(rates) - {rate}):
        todo = sorted((i for i, r in enumerate(rates) if r == source), key=lambda i: len(waves[i]))
        for start in range(0, len(todo), CHUNK):
            batch = todo[start : start + CHUNK]
            longest = len(waves[batch[-1]])
            padded = torch.stack([F.pad(waves[i], (0, longest - len(waves[i]))) for i in batch])
            out = resample(padded, source, rate)  # zeros after a recording do not change its first samples
            for row, i in enumerate(batch):
                waves[i] = out[row, : -(-len(waves[i]) * rate // source)]
        chosen.append(f"resampled {len(todo):,} recordings from {source:,} Hz to {rate:,} Hz")
    return chosen


def load_audio_folder(
    path: str | Path, spec: AudioSpec | None = None, label_from: LabelFrom = "auto", strict: bool = False
) -> SignalSet:
    """Every WAV file under ``path`` as a ``SignalSet(kind="audio")`` of features ``(N, C, T')``.

    Labels: ``folder`` takes each sub-folder as a class (its WAVs may sit deeper); ``name`` reads the
    label from each name (:func:`audio_label`: FSDD's ``<label>_<speaker>_<index>.wav``, else ``<label>_...`` or
    ``<label>-...``) anywhere below ``path``; ``auto`` is ``folder`` when two or
    more sub-folders hold WAVs, else ``name``. ``groups`` (speakers) and ``indices`` are filled when every
    kept file's name parses that way. Classes are sorted, by value when all are numbers. The front-end is
    ``spec`` with what it leaves open chosen from the data (see the module and ``meta["chosen"]``).
    Unreadable files and unlabelled ones are skipped with a :class:`~cnnlab.data.cache.DataWarning` and listed
    in ``meta["skipped"]`` as ``(path, message)``; ``strict`` makes the first one fatal.
    """
    root = Path(path)
    if not root.is_dir():
        raise DataError("audio folder not found", where=str(root), fix="pass a folder of .wav files")
    spec = spec or AudioSpec()
    log = ProblemLog(strict)
    files, labels = _labelled_files(root, label_from, log)
    if not files:
        raise DataError(
            "no labelled .wav files found",
            where=str(root),
            fix="name the files <label>_<anything>.wav (FSDD's <label>_<speaker>_<index>.wav also names speakers), "
            "or put them in one folder per class",
        )
    waves, rates, kept = [], [], []
    multichannel = 0
    for i, file in enumerate(files):
        try:
            samples, source_rate = read_wav(file)
        except DataError as error:
            log.report(error)
            continue
        multichannel += len(samples) > 1
        waves.append(torch.from_numpy(samples.mean(0) if len(samples) > 1 else samples[0]))
        rates.append(source_rate)
        kept.append(i)
    if not kept:
        raise DataError(f"none of the {len(files):,} .wav files could be read", where=str(root), fix="see the warnings")
    chosen = []
    if spec.rate is None:
        counts = Counter(rates).most_common()
        best = max(r for r, n in counts if n == counts[0][1])
        spec = replace(spec, rate=best)
        chosen.append(f"rate {best:,} Hz: the most common of {len(rates):,} recordings")
        if spec.representation == "logmel":
            chosen.append(f"window {spec.n_fft} samples and hop {spec.hop} (32 ms and 10 ms at {best:,} Hz)")
    rate = spec.rate
    chosen += _resample_all(waves, rates, rate)  # type: ignore[arg-type]
    if multichannel:
        chosen.append(f"{multichannel:,} multi-channel recordings averaged to mono")
    lengths = np.array([len(w) for w in waves])
    if spec.samples is None:
        cap = int(MAX_SECONDS * rate) // spec.hop * spec.hop  # type: ignore[operator]
        wanted = -(-math.ceil(np.percentile(lengths, LENGTH_PERCENTILE)) // spec.hop) * spec.hop  # type: ignore[operator]
        spec = replace(spec, samples=min(wanted, cap))
        capped = f", capped at {MAX_SECONDS:g} s" if wanted > cap else ""
        chosen.append(
            f"length {spec.samples:,} samples ({spec.samples / rate:.2f} s): the {LENGTH_PERCENTILE}th percentile"
            f" of {len(waves):,} recordings, rounded up to a multiple of the hop ({spec.hop}){capped}"
        )
    cropped, padded = int((lengths > spec.samples).sum()), int((lengths < spec.samples).sum())
    if cropped or padded:
        chosen.append(f"{cropped:,} longer recordings cropped and {padded:,} shorter ones zero-padded ({spec.fit})")
    fitted = torch.stack([fit_length(w, spec.samples, spec.fit) for w in waves])  # type: ignore[arg-type]
    kept_files = [files[i] for i in kept]
    classes = _sorted_classes([labels[i] for i in kept])
    index = {name: k for k, name in enumerate(classes)}
    parsed = [parse_audio_name(f.stem) for f in kept_files]
    named = all(p is not None for p in parsed)
    if not named:
        chosen.append("no speakers or recording indices: not every file is named <label>_<speaker>_<index>.wav")
    return SignalSet(
        x=spec.features(fitted),
        y=torch.tensor([index[labels[i]] for i in kept], dtype=torch.int64),
        classes=classes,
        names=[f.relative_to(root).as_posix() for f in kept_files],
        kind="audio",
        groups=[p[1] for p in parsed] if named else None,  # type: ignore[index]
        indices=[p[2] for p in parsed] if named else None,  # type: ignore[index]
        rate=float(rate),  # type: ignore[arg-type]
        meta={
            "audio": spec.to_dict(),
            "chosen": chosen,
            "skipped": [(problem.path, problem.message) for problem in log.problems],
        },
    )
