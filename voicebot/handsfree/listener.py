"""Hands-free listening for one session: microphone audio in, turn events (with the utterance) out.

This is the one object the session talks to in hands-free mode. It joins the three parts, each of
which does one job and is tested on its own:

- :class:`voicebot.handsfree.vad.SileroVad` scores every 32 ms window of the microphone;
- :class:`voicebot.handsfree.echo.EchoGuard` says whether a window is the assistant's own reply coming back
  (only asked while the reply plays);
- :class:`voicebot.handsfree.endpointing.Endpointer` turns the scores into ``SpeechStarted`` / ``BargeIn`` /
  ``SpeechEnded`` with hysteresis.

It also keeps the audio: a pre-roll of ``pre_roll_ms`` before the detected onset (the detector
confirms speech only after ``min_speech_ms``, so without it ASR would miss the first syllable) and
the utterance up to the moment its end was decided. The utterance is handed over as it is heard, in
:class:`SpeechAudio` events (pre-roll first), so that a streaming recogniser works while the user
speaks and little is left to do when the end is decided; ``SpeechEnded.audio`` holds it whole, and
the pieces are always a prefix of it.

:meth:`HandsFreeListener.feed` runs the model and blocks; call it through
``voicebot.threads.run_blocking``, from one task per session so calls never overlap.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from voicebot.audio import SAMPLE_WIDTH, pcm_to_float
from voicebot.handsfree.echo import EchoGuard
from voicebot.handsfree.endpointing import (
    BargeIn,
    Endpointer,
    EndpointEvent,
    HandsFreeSettings,
    SpeechEnded,
    SpeechStarted,
)
from voicebot.handsfree.vad import SAMPLE_RATE, WINDOW_MS, SileroModel, SileroVad


def _samples_at(ms: float) -> int:
    return round(ms * SAMPLE_RATE / 1000)


@dataclass(frozen=True)
class SpeechAudio:
    """The next piece of the utterance in progress (PCM s16le at 16 kHz), from its pre-roll on, as the
    detector judges it. The pieces since the last start event are a prefix of ``SpeechEnded.audio``."""

    pcm: bytes = dataclasses.field(repr=False)


@dataclass(frozen=True)
class SpeechPaused:
    """The user has been silent for ``early_reply_ms`` inside an utterance: it may be over (the end
    is decided ``end_silence_ms`` after the silence began), so the reply can be prepared now."""

    at_ms: float
    """Stream time when the silence began."""


@dataclass(frozen=True)
class SpeechResumed:
    """The user spoke again after a :class:`SpeechPaused`: the utterance goes on."""

    at_ms: float


ListenerEvent = EndpointEvent | SpeechAudio | SpeechPaused | SpeechResumed


class HandsFreeListener:
    """One session's hands-free detector. Not thread-safe: feed it from one task."""

    def __init__(self, settings: HandsFreeSettings | None = None, model: SileroModel | None = None) -> None:
        self.settings = settings or HandsFreeSettings()
        self.vad = SileroVad(model)
        self.endpointer = Endpointer(self.settings)
        self.echo = EchoGuard(
            window_ms=self.settings.echo_window_ms,
            max_delay_ms=self.settings.echo_max_delay_ms,
            residual=self.settings.echo_residual,
            sample_rate=SAMPLE_RATE,
        )
        self._audio = bytearray()  # recent microphone audio (whole samples) ...
        self._audio_start = 0  # ... starting at this sample of the stream
        self._odd_byte = b""
        self._handed: int | None = None  # stream sample up to which the utterance was handed over
        self._paused = False  # a SpeechPaused was reported for the silence in progress
        longest_start_ms = max(self.settings.min_speech_ms, self.settings.barge_in_confirm_ms)
        self._idle_keep = _samples_at(self.settings.pre_roll_ms + longest_start_ms + 2 * WINDOW_MS)

    @property
    def now_ms(self) -> float:
        """Stream time judged so far (whole windows); the microphone may be up to one window ahead."""
        return self.endpointer.now_ms

    def set_assistant_speaking(self, speaking: bool) -> None:
        """The reply started or stopped playing: starts become barge-ins, echo is ignored."""
        self.endpointer.set_assistant_speaking(speaking)

    def play(self, pcm: bytes, at_ms: float | None = None) -> None:
        """Reply audio (PCM s16le at 16 kHz) plays from stream time ``at_ms`` (default: now). Feed
        what is actually played, when it is played; the echo guard searches the remaining delay."""
        self.echo.add_reference(pcm, at_ms)

    def stop_playing(self, at_ms: float | None = None) -> None:
        """The reply was cut off at stream time ``at_ms`` (default: now); what was sent of it beyond
        that will not be played, so it is no longer a reference for the echo guard."""
        self.echo.stop_reference(at_ms)

    def reset(self) -> None:
        """Forget speech in progress (e.g. the user pressed the mic button instead). The model state
        and the recent audio stay: the stream goes on."""
        self.endpointer.reset()
        self._handed = None
        self._paused = False

    def feed(self, pcm: bytes) -> list[ListenerEvent]:
        """Feed microphone PCM s16le at 16 kHz (any length); return the events it caused, in order.
        While speech goes on, a :class:`SpeechAudio` ends the list with what was judged since; a
        ``SpeechEnded`` carries the whole utterance. Blocking (runs the model)."""
        data = self._odd_byte + pcm
        even = len(data) - len(data) % SAMPLE_WIDTH
        self._odd_byte = data[even:]
        data = data[:even]
        samples = pcm_to_float(data)
        self._audio += data
        self.echo.add_microphone(samples)
        events: list[ListenerEvent] = []
        for probability in self.vad.process_samples(samples):
            window_end_ms = self.endpointer.now_ms + WINDOW_MS
            # The guard only matters for a window that could start a barge-in.
            judge = (
                self.settings.echo_guard
                and self.endpointer.assistant_speaking
                and not self.endpointer.in_speech
                and probability >= self.settings.speaking_threshold
            )
            is_echo = judge and self.echo.is_echo(window_end_ms)
            for event in self.endpointer.feed(float(probability), WINDOW_MS, echo=is_echo):
                if isinstance(event, SpeechStarted | BargeIn):
                    self._handed = self._clamped(_samples_at(event.at_ms - self.settings.pre_roll_ms))
                elif isinstance(event, SpeechEnded):
                    event = dataclasses.replace(event, audio=self._utterance(event))
                    self._handed = None
                events.append(event)
            self._follow_pause(events)
        if self._handed is not None and self.endpointer.in_speech:
            judged = _samples_at(self.endpointer.now_ms)
            if judged > self._handed:
                events.append(SpeechAudio(self._slice(self._handed, judged)))
                self._handed = judged
        self._trim()
        return events

    def _follow_pause(self, events: list[ListenerEvent]) -> None:
        """Report a silence inside speech that lasted ``early_reply_ms``, and speech after it."""
        endpointer = self.endpointer
        if not endpointer.in_speech:
            self._paused = False  # ended (the end supersedes the pause) or never started
            return
        silent_ms = endpointer.silent_ms
        early_ms = self.settings.early_reply_ms
        if not self._paused and early_ms and silent_ms >= early_ms:
            self._paused = True
            events.append(SpeechPaused(at_ms=endpointer.now_ms - silent_ms))
        elif self._paused and silent_ms == 0.0:
            self._paused = False
            events.append(SpeechResumed(at_ms=endpointer.now_ms))

    def _utterance(self, ended: SpeechEnded) -> bytes:
        start = _samples_at(ended.at_ms - ended.speech_ms - self.settings.pre_roll_ms)
        return self._slice(self._clamped(start), _samples_at(ended.detected_at_ms))

    def _clamped(self, sample: int) -> int:
        """``sample``, or the oldest one kept when it is older (pre-roll before the stream began)."""
        return max(sample, self._audio_start)

    def _slice(self, start: int, end: int) -> bytes:
        lo = (start - self._audio_start) * SAMPLE_WIDTH
        hi = max(0, end - self._audio_start) * SAMPLE_WIDTH
        return bytes(self._audio[lo:hi])

    def _trim(self) -> None:
        """Keep only what a future utterance may need: from the pre-roll before the onset of speech
        in progress, or the last few hundred milliseconds when there is none."""
        end = self._audio_start + len(self._audio) // SAMPLE_WIDTH
        onset = self.endpointer.onset_ms
        keep_from = end - self._idle_keep
        if onset is not None:
            keep_from = min(keep_from, _samples_at(onset - self.settings.pre_roll_ms))
        keep_from = max(keep_from, end - _samples_at(self.settings.max_utterance_s * 1000 + self.settings.pre_roll_ms))
        if keep_from > self._audio_start:
            del self._audio[: (keep_from - self._audio_start) * SAMPLE_WIDTH]
            self._audio_start = keep_from
