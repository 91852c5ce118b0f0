"""Echo guard: is what the microphone hears just the assistant's own reply coming back?

In hands-free mode the microphone stays open while the reply plays. The browser's echo cancellation
removes most of the reply from the microphone signal, but not all of it (loud speakers, a laptop's
cheap cancellation, a phone on a table), and what is left is speech, so the voice-activity model
rightly scores it as speech. Without a guard the assistant interrupts itself.

The server knows exactly what it played. :class:`EchoGuard` keeps the loudness envelope (RMS per
10 ms) of the reply, placed on the microphone's timeline where it was played, and of the microphone.
To judge the last ``window_ms`` (160 ms) it

1. takes the room's steady noise out of the microphone envelope (a low percentile over 1.5 s);
2. estimates the echo path over the last 1.5 s: the delay (0 to ``max_delay_ms``) at which the
   reply's envelope, smeared by a model of room reverberation, best correlates with the
   microphone's, and the gain at that delay (the median per-10 ms ratio to the reply as played,
   where it is loud);
3. predicts the echo in the window (gain × delayed reply, with 1.4× headroom) and returns the share
   of the microphone's energy above that prediction: near 0 when the microphone hears only the
   reply, large when the user's voice adds energy the reply cannot explain.

Envelopes, not waveforms: room reverberation, the speaker's colouring and the browser's processing
change the waveform (so sample-level correlation fails) but keep the syllable rhythm and loudness
of the reply. The gain measured on windows judged to be echo is remembered (the room and the
device do not change during a session), so a user who talks from the first syllable of a later
reply does not pass for a louder echo.

Pure numpy, no model; one per session; fed from the same place as the detector (not thread-safe).
"""

from __future__ import annotations

from collections import deque

import numpy as np
import numpy.typing as npt

from voicebot.audio import pcm_to_float

HOP_MS = 10
"""Resolution of the envelopes (and of the delay search)."""

#: A reference quieter than this (RMS, full scale 1) over the compared span cannot explain anything.
_SILENT_REFERENCE = 1e-4
#: Span over which the echo path (delay and gain) is estimated: several syllables of the reply.
_ESTIMATE_MS = 1500
#: Hops where the reply is louder than this share of its peak are used to estimate the gain.
_ACTIVE_SHARE = 0.1
#: Percentile of the microphone/reply ratio taken as the echo gain (the median: the user's voice, in
#: a minority of hops, raises the ratio there but not the estimate).
_GAIN_PERCENTILE = 50
#: Percentile of the microphone envelope over the estimation span taken as the room's noise floor.
_NOISE_PERCENTILE = 10
#: Gains of windows judged echo that are remembered (about 10 s of speech)...
_GAIN_MEMORY = 300
#: ... how many are needed before their median is trusted (about 2 s of echo)...
_GAINS_FOR_MEMORY = 60
#: ... and how far above that median a new estimate may go.
_KNOWN_GAIN_HEADROOM = 1.2
#: Headroom over the predicted echo before energy counts as unexplained (ratio variance, room).
_MARGIN = 1.4
#: Decay per hop of the room's reverberation applied to the reply's envelope (about -1.2 dB per
#: 10 ms, a reverberation time near half a second): the echo outlasts each syllable of the reply.
_REVERB_DECAY = 0.87


def _reverberant(envelope: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """The envelope with each value held and decayed over the following hops, as a room would:
    ``out[t] = max(envelope[t], decay * out[t - 1])``, computed as a running maximum of
    ``envelope[s] * decay**(t - s)`` (the spans here are a few hundred hops: no overflow)."""
    growth = _REVERB_DECAY ** -np.arange(len(envelope), dtype=np.float64)
    out: npt.NDArray[np.float64] = np.maximum.accumulate(envelope * growth) / growth
    return out


def _hop_rms(samples: npt.NDArray[np.float32], hop: int) -> npt.NDArray[np.float64]:
    count = len(samples) // hop
    blocks = samples[: count * hop].astype(np.float64).reshape(count, hop)
    rms: npt.NDArray[np.float64] = np.sqrt(np.mean(np.square(blocks), axis=1))
    return rms


class _Envelope:
    """RMS per hop on a timeline of hop indices, dropping what is too old to be compared."""

    def __init__(self) -> None:
        self.values = np.zeros(0, dtype=np.float64)
        self.first_hop = 0  # hop index of values[0]

    def place(self, start_hop: int, rms: npt.NDArray[np.float64]) -> None:
        """Add ``rms`` (combined as power with what is already there) from hop ``start_hop`` on."""
        if start_hop < self.first_hop:
            rms = rms[self.first_hop - start_hop :]
            start_hop = self.first_hop
        end = start_hop - self.first_hop + len(rms)
        if end > len(self.values):
            self.values = np.concatenate([self.values, np.zeros(end - len(self.values))])
        span = slice(start_hop - self.first_hop, end)
        self.values[span] = np.sqrt(np.square(self.values[span]) + np.square(rms))

    def get(self, start_hop: int, count: int) -> npt.NDArray[np.float64]:
        """Values of hops ``start_hop`` … ``start_hop + count - 1`` (zeros where nothing was placed)."""
        out = np.zeros(count, dtype=np.float64)
        lo = max(start_hop, self.first_hop)
        hi = min(start_hop + count, self.first_hop + len(self.values))
        if hi > lo:
            out[lo - start_hop : hi - start_hop] = self.values[lo - self.first_hop : hi - self.first_hop]
        return out

    def silence_from(self, hop: int) -> None:
        """Zero the values of hop ``hop`` on (what was placed there will not be played)."""
        self.values[max(0, hop - self.first_hop) :] = 0.0

    def forget_before(self, hop: int) -> None:
        """Drop values of hops before ``hop``."""
        if hop > self.first_hop:
            drop = min(hop - self.first_hop, len(self.values))
            self.values = self.values[drop:]
            self.first_hop = hop


class EchoGuard:
    """Decides whether recent microphone audio is explained by the reply that was played."""

    def __init__(
        self, window_ms: int = 160, max_delay_ms: int = 500, residual: float = 0.35, sample_rate: int = 16_000
    ) -> None:
        self.sample_rate = sample_rate
        self.residual = residual
        self._hop = sample_rate * HOP_MS // 1000
        self._window_hops = max(1, window_ms // HOP_MS)
        self._estimate_hops = max(self._window_hops, _ESTIMATE_MS // HOP_MS)
        self._max_delay_hops = max_delay_ms // HOP_MS
        self._mic = _Envelope()
        self._reference = _Envelope()
        self._mic_hops = 0  # complete microphone hops received
        self._mic_rest = np.zeros(0, dtype=np.float32)  # samples of the incomplete hop
        self._gains: deque[float] = deque(maxlen=_GAIN_MEMORY)  # gains of windows judged echo
        self._known_gain: float | None = None  # their median, once there are enough

    @property
    def mic_ms(self) -> float:
        """Microphone time: the duration of the microphone audio received so far."""
        return (self._mic_hops * self._hop + len(self._mic_rest)) * 1000.0 / self.sample_rate

    def add_reference(self, pcm: bytes, at_ms: float | None = None) -> None:
        """The reply audio ``pcm`` (s16le at this guard's sample rate) plays from microphone time
        ``at_ms`` (default: now, the end of the microphone audio received so far)."""
        start_ms = self.mic_ms if at_ms is None else at_ms
        rms = _hop_rms(pcm_to_float(pcm), self._hop)
        self._reference.place(round(start_ms / HOP_MS), rms)

    def stop_reference(self, at_ms: float | None = None) -> None:
        """The reply stopped playing at microphone time ``at_ms`` (default: now): an interrupted
        reply's audio that was sent ahead but never played is forgotten. Left in place it would be
        a phantom reply at a long delay, where the user's own words (said over the reply just
        before) correlate with it, and the echo path found there explains nothing of the next reply."""
        stop_ms = self.mic_ms if at_ms is None else at_ms
        self._reference.silence_from(round(stop_ms / HOP_MS))

    def add_microphone(self, samples: npt.NDArray[np.float32]) -> None:
        """Append microphone samples (float32 in [-1, 1] at this guard's sample rate)."""
        joined = np.concatenate([self._mic_rest, samples]) if len(self._mic_rest) else samples
        rms = _hop_rms(joined, self._hop)
        self._mic.place(self._mic_hops, rms)
        self._mic_hops += len(rms)
        self._mic_rest = joined[len(rms) * self._hop :].copy()
        keep_from = self._mic_hops - self._estimate_hops - self._max_delay_hops - 1
        self._mic.forget_before(keep_from)
        self._reference.forget_before(keep_from)

    def unexplained(self, end_ms: float | None = None) -> float:
        """Fraction of the microphone's energy over the ``window_ms`` ending at ``end_ms`` (default:
        now) that neither the played reply nor the room's steady noise explains: near 1.0 when the
        user speaks and no reply plays, near 0 when the microphone hears only the reply (or only
        the room, or nothing at all)."""
        end_hop = self._mic_hops if end_ms is None else min(self._mic_hops, int(end_ms // HOP_MS))
        span = self._estimate_hops
        mic = self._mic.get(end_hop - span, span)
        recent = mic[-self._window_hops :]
        mic_energy = float(np.dot(recent, recent))
        if mic_energy == 0.0:
            return 0.0
        # The room's steady noise is not the user speaking: take it out before explaining the rest.
        floor = float(np.percentile(mic, _NOISE_PERCENTILE))
        clean = np.sqrt(np.maximum(np.square(mic) - floor**2, 0.0))
        direct, references = self._delayed_references(end_hop, span)
        path = self._echo_path(clean, references, direct)
        if path is None:
            return min(1.0, float(np.sum(np.square(clean[-self._window_hops :]))) / mic_energy)
        delay, gain = path
        if self._known_gain is not None:
            # The user talking from the start of a reply inflates the estimate; the room has not
            # changed since the echo was last measured cleanly.
            gain = min(gain, _KNOWN_GAIN_HEADROOM * self._known_gain)
        reference = references[delay, -self._window_hops :]
        predicted = _MARGIN * gain * reference
        excess = np.maximum(np.square(clean[-self._window_hops :]) - np.square(predicted), 0.0)
        fraction = min(1.0, float(np.sum(excess)) / mic_energy)
        if fraction <= self.residual and float(np.max(reference)) > _SILENT_REFERENCE:
            self._gains.append(gain)
            if len(self._gains) >= _GAINS_FOR_MEMORY:
                self._known_gain = float(np.median(self._gains))
        return fraction

    def _delayed_references(self, end_hop: int, span: int) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """The reply envelope over the ``span`` hops before ``end_hop``, delayed by 0 … ``max_delay``
        hops (row ``d`` is the reply as heard ``d`` hops late): as played (the direct sound) and
        with the room's reverberation added."""
        total = span + self._max_delay_hops
        direct = self._reference.get(end_hop - total, total)

        def rows(envelope: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
            delayed: npt.NDArray[np.float64] = np.lib.stride_tricks.sliding_window_view(envelope, span)[::-1]
            return delayed

        return rows(direct), rows(_reverberant(direct))

    @staticmethod
    def _echo_path(
        mic: npt.NDArray[np.float64], references: npt.NDArray[np.float64], direct: npt.NDArray[np.float64]
    ) -> tuple[int, float] | None:
        """The delay (a row of ``references``) whose reverberant envelope best follows the
        microphone's (Pearson correlation), and the gain from reply to microphone at that delay.
        ``None`` when no reply was playing.

        The gain is the median of the per-hop ratio where the reply as played (``direct``, without
        the modelled reverberation) is loud: the user's voice in some hops does not inflate it, and
        a dry room (a headset, a good echo canceller) does not deflate it. Measured against the
        reverberant envelope, the modelled tails that a dry room lacks would drag the median down,
        worst at the start of a reply, where a short first syllable's tail is most of the reply so
        far; the next syllable then seemed louder than any echo."""
        peaks = references.max(axis=1)
        playing = peaks >= _SILENT_REFERENCE
        if not playing.any():
            return None
        centred = references - references.mean(axis=1, keepdims=True)
        centred_mic = mic - mic.mean()
        norms = np.linalg.norm(centred, axis=1) * float(np.linalg.norm(centred_mic))
        scores = np.where(playing & (norms > 0), (centred @ centred_mic) / np.where(norms > 0, norms, 1.0), -np.inf)
        delay = int(np.argmax(scores))
        if not playing[delay]:
            delay = int(np.argmax(playing))
        played = direct[delay]
        active = played > _ACTIVE_SHARE * float(played.max())
        if not active.any():  # only the reverberant tail of the reply is in the span
            played, active = references[delay], references[delay] > _ACTIVE_SHARE * float(peaks[delay])
        gain = float(np.percentile(mic[active] / played[active], _GAIN_PERCENTILE))
        return delay, gain

    def is_echo(self, end_ms: float | None = None) -> bool:
        """True when the microphone over the window ending at ``end_ms`` is (mostly) the reply."""
        return self.unexplained(end_ms) <= self.residual
