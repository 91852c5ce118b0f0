"""Streaming audio conversion with PyAV (FFmpeg): MP3 → PCM, and PCM from one sample rate to another.

Cloud voices do not all speak the session's format: edge-tts sends MP3 and a fallback voice may run
at another sample rate than the first. Both converters are incremental: feed them chunks as they
arrive and they return the PCM ready so far, so speech still streams. Work per chunk is well under a
millisecond, so they run on the event loop.
"""

from __future__ import annotations

from typing import Any

import av
import av.error
import numpy as np

#: Output of every converter: mono signed 16-bit little-endian PCM.
_FORMAT = "s16"
_LAYOUT = "mono"


def _frames_to_pcm(frames: list[Any]) -> bytes:
    return b"".join(frame.to_ndarray().astype("<i2").tobytes() for frame in frames)


class Mp3Decoder:
    """Decodes an MP3 stream, chunk by chunk, to mono PCM s16le at ``sample_rate``."""

    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = sample_rate
        self._codec: Any = av.CodecContext.create("mp3", "r")
        self._resampler: Any = av.AudioResampler(format=_FORMAT, layout=_LAYOUT, rate=sample_rate)

    def _decode(self, packet: Any) -> bytes:
        try:
            frames = self._codec.decode(packet)
        except av.error.InvalidDataError:
            # A tag (ID3) or a damaged frame: MP3 decoders skip to the next frame, so do we.
            return b""
        out: list[Any] = []
        for frame in frames:
            out += self._resampler.resample(frame)
        return _frames_to_pcm(out)

    def feed(self, mp3: bytes) -> bytes:
        """Decode the next bytes of the stream; returns the PCM that is complete so far."""
        return b"".join(self._decode(packet) for packet in self._codec.parse(mp3))

    def flush(self) -> bytes:
        """Decode what is left at the end of the stream."""
        pcm = b"".join(self._decode(packet) for packet in self._codec.parse(b""))
        pcm += self._decode(None)
        return pcm + _frames_to_pcm(self._resampler.resample(None))


class PcmResampler:
    """Resamples a stream of mono PCM s16le chunks from ``source_rate`` to ``target_rate``.

    Unlike :func:`voicebot.audio.resample` it keeps its filter state between chunks, so the joins
    between chunks are clean (this is audio the user hears)."""

    def __init__(self, source_rate: int, target_rate: int) -> None:
        self.source_rate = source_rate
        self.target_rate = target_rate
        self._resampler: Any = av.AudioResampler(format=_FORMAT, layout=_LAYOUT, rate=target_rate)
        self._carry = b""

    def feed(self, pcm: bytes) -> bytes:
        data = self._carry + pcm
        usable = len(data) - len(data) % 2
        self._carry = data[usable:]
        if not usable:
            return b""
        samples = np.frombuffer(data[:usable], dtype="<i2").reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(samples, format=_FORMAT, layout=_LAYOUT)
        frame.sample_rate = self.source_rate
        return _frames_to_pcm(self._resampler.resample(frame))

    def flush(self) -> bytes:
        return _frames_to_pcm(self._resampler.resample(None))
