"""Synthetic and mixed test signals for the hands-free tests (float32 at 16 kHz unless noted)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from voicebot.audio import float_to_pcm, pcm_to_float

RATE = 16_000
Samples = npt.NDArray[np.float32]


def babble(seconds: float, seed: int, level: float = 0.1) -> Samples:
    """Speech-like noise: white noise shaped by a random syllable envelope (3-6 per second) with
    gaps between words, so its loudness rhythm is like speech without being speech."""
    rng = np.random.default_rng(seed)
    count = int(seconds * RATE)
    envelope = np.zeros(count)
    position = 0
    while position < count:
        length = int(rng.uniform(0.1, 0.3) * RATE)
        envelope[position : position + length] = np.hanning(length)[: count - position] * rng.uniform(0.4, 1.0)
        position += length + int(rng.uniform(0.0, 0.15) * RATE)
    return (rng.standard_normal(count) * envelope * level).astype(np.float32)


def room_echo(reply: Samples, gain: float, delay_ms: float, seed: int = 0) -> Samples:
    """What a microphone picks up of ``reply`` played through a speaker: delayed, attenuated and
    smeared by a room (an exponentially decaying noise impulse response, RT60 about 300 ms)."""
    rng = np.random.default_rng(seed)
    length = int(0.3 * RATE)
    response = rng.standard_normal(length) * np.exp(-6.9 * np.arange(length) / length)
    response[0] = 4.0  # the direct sound
    response /= np.sqrt(np.sum(np.square(response)))
    wet = np.convolve(reply.astype(np.float64), response)[: len(reply)]
    delay = int(delay_ms * RATE / 1000)
    out = np.zeros(len(reply))
    out[delay:] = wet[: len(reply) - delay]
    return (out * gain).astype(np.float32)


def mix(*signals: Samples) -> Samples:
    """Sum signals of different lengths (padded with silence to the longest)."""
    out = np.zeros(max(len(signal) for signal in signals), dtype=np.float32)
    for signal in signals:
        out[: len(signal)] += signal
    return out


def at(signal: Samples, seconds: float) -> Samples:
    """``signal`` preceded by ``seconds`` of silence."""
    return np.concatenate([np.zeros(int(seconds * RATE), dtype=np.float32), signal])


def zeros(seconds: float) -> Samples:
    """Digital silence."""
    return np.zeros(int(seconds * RATE), dtype=np.float32)


def rms(signal: Samples) -> float:
    """Loudness (RMS, full scale 1)."""
    return float(np.sqrt(np.mean(np.square(signal.astype(np.float64)))))


def to_pcm(signal: Samples) -> bytes:
    """float32 → PCM s16le."""
    return float_to_pcm(signal)


def from_pcm(pcm: bytes) -> Samples:
    """PCM s16le → float32."""
    return pcm_to_float(pcm)
