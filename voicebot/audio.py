"""PCM helpers: conversions, durations, loudness, resampling and WAV files.

All audio inside voicebot is mono, signed 16-bit little-endian PCM ("pcm_s16le").
"""

from __future__ import annotations

import io
import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt

SAMPLE_WIDTH = 2


def pcm_to_float(pcm: bytes) -> npt.NDArray[np.float32]:
    """PCM s16le → float32 samples in [-1, 1]."""
    return np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0


def float_to_pcm(samples: npt.NDArray[np.floating]) -> bytes:
    """float samples in [-1, 1] → PCM s16le (clipped)."""
    pcm: bytes = (np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
    return pcm


def duration_ms(pcm_bytes: int, sample_rate: int) -> float:
    """Length in milliseconds of ``pcm_bytes`` bytes of mono s16le at ``sample_rate``."""
    return pcm_bytes / SAMPLE_WIDTH / sample_rate * 1000.0


def rms(pcm: bytes) -> float:
    """Loudness of PCM s16le as root mean square, full scale = 1.0."""
    if len(pcm) < SAMPLE_WIDTH:
        return 0.0
    samples = pcm_to_float(pcm[: len(pcm) - len(pcm) % SAMPLE_WIDTH])
    return float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))


def resample(pcm: bytes, source_rate: int, target_rate: int) -> bytes:
    """Resample mono PCM s16le by linear interpolation, after a moving-average low-pass when
    downsampling. Good enough for speech going into ASR; not for music."""
    if source_rate == target_rate or not pcm:
        return pcm
    samples = pcm_to_float(pcm).astype(np.float64)
    if target_rate < source_rate:
        width = max(1, round(source_rate / target_rate))
        samples = np.convolve(samples, np.ones(width) / width, mode="same")
    count = int(len(samples) * target_rate / source_rate)
    positions = np.arange(count) * (source_rate / target_rate)
    return float_to_pcm(np.interp(positions, np.arange(len(samples)), samples))


def frames(pcm: bytes, sample_rate: int, frame_ms: int) -> list[bytes]:
    """Cut PCM s16le into frames of ``frame_ms`` (the last one may be shorter)."""
    size = max(SAMPLE_WIDTH, int(sample_rate * frame_ms / 1000) * SAMPLE_WIDTH)
    return [pcm[start : start + size] for start in range(0, len(pcm), size)]


def wav_bytes(pcm: bytes, sample_rate: int) -> bytes:
    """Wrap mono PCM s16le in a WAV container."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(SAMPLE_WIDTH)
        wav.setframerate(sample_rate)
        wav.writeframes(pcm)
    return buffer.getvalue()


def read_wav(path: Path | str) -> tuple[bytes, int]:
    """Read a mono 16-bit WAV file; return its PCM and sample rate."""
    with wave.open(str(path), "rb") as wav:
        if wav.getnchannels() != 1 or wav.getsampwidth() != SAMPLE_WIDTH:
            raise ValueError(f"{path}: expected mono 16-bit PCM WAV")
        return wav.readframes(wav.getnframes()), wav.getframerate()
