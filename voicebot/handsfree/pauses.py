"""Pauses while the button is held: the reply can start before the user lets go.

People release the push-to-talk button a few hundred milliseconds after their last word. When the
user has spoken and then been silent for ``pause_ms`` with the button still held, the session asks
the utterance to prepare its reply on what was heard (transcript, the model's first words, the first
sentence's audio, all held back); releasing the button sends it at once, and speaking again drops it
unheard. (LiveKit Agents calls this preemptive generation; hands-free mode does the same with
``hands_free.early_reply_ms``.)

The detector is the hands-free one (Silero, with the same thresholds and hysteresis), kept simple:
no echo guard (nothing plays while the user holds the button) and no end of turn (the button decides).
A speech window after a pause reports :class:`SpeechResumed` at once: a prepared reply is dropped on
any doubt, since sending one made from a cut utterance would answer the wrong question.

:meth:`PauseDetector.feed` runs the model and blocks: call it through ``voicebot.threads.run_blocking``,
from one task per utterance so calls never overlap.
"""

from __future__ import annotations

from voicebot.handsfree.endpointing import HandsFreeSettings
from voicebot.handsfree.listener import SpeechPaused, SpeechResumed
from voicebot.handsfree.vad import WINDOW_MS, SileroModel, SileroVad


class PauseDetector:
    """One held utterance's pauses. Not thread-safe: feed it from one task."""

    def __init__(self, pause_ms: int, settings: HandsFreeSettings | None = None, model: SileroModel | None = None):
        self.settings = settings or HandsFreeSettings()
        self.pause_ms = pause_ms
        self.vad = SileroVad(model)
        self.now_ms = 0.0
        """Stream time judged so far (whole 32 ms windows)."""
        self._speaking = False  # the last window was speech (hysteresis)
        self._speech_ms = 0.0  # speech in a row
        self._silent_ms = 0.0  # silence in a row
        self._heard = False  # speech of at least min_speech_ms was heard: a pause can follow
        self._paused = False  # a SpeechPaused was reported and no speech since

    def feed(self, pcm: bytes) -> list[SpeechPaused | SpeechResumed]:
        """Feed PCM s16le at 16 kHz (any length); return the pauses and resumptions it completed."""
        events: list[SpeechPaused | SpeechResumed] = []
        settings = self.settings
        for probability in self.vad.process(pcm):
            self.now_ms += WINDOW_MS
            floor = settings.threshold - settings.end_threshold_drop if self._speaking else settings.threshold
            self._speaking = probability >= floor
            if self._speaking:
                self._silent_ms = 0.0
                self._speech_ms += WINDOW_MS
                self._heard = self._heard or self._speech_ms >= settings.min_speech_ms
                if self._paused:
                    self._paused = False
                    events.append(SpeechResumed(at_ms=self.now_ms - WINDOW_MS))
                continue
            self._speech_ms = 0.0
            self._silent_ms += WINDOW_MS
            if self._heard and not self._paused and self._silent_ms >= self.pause_ms:
                self._paused = True
                events.append(SpeechPaused(at_ms=self.now_ms - self._silent_ms))
        return events
