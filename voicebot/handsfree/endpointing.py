"""Endpointing: when did the user start speaking, and when have they finished?

A voice-activity model says, every 32 ms, how likely that window is speech. That is far too jumpy
to drive a conversation: a cough scores as speech for a window or two, and a sentence has pauses
between words and clauses. The :class:`Endpointer` turns those probabilities into turn events with
hysteresis:

- speech starts after ``min_speech_ms`` of windows at or above ``threshold`` (a cough or a click,
  shorter than that, starts nothing);
- speech ends after ``end_silence_ms`` under ``threshold - end_threshold_drop`` (a pause inside a
  sentence, shorter than that, does not end it);
- while the assistant is speaking, starting is harder (``speaking_threshold``) and must last
  ``barge_in_confirm_ms``; it is then reported as :class:`BargeIn` so the session interrupts the
  reply exactly as a mic press does. Windows the echo guard attributes to the reply do not count.

It is pure and clock-free: time is the sum of the window durations it was fed, so tests script it
with probability sequences and no model, and the same input always gives the same events.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from pydantic import BaseModel, ConfigDict, Field, model_validator


class HandsFreeSettings(BaseModel):
    """Knobs of hands-free listening: the detector, the endpointing and the echo guard."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    threshold: float = Field(0.5, gt=0, lt=1)
    """A window whose speech probability is at least this counts as speech (Silero's usual 0.5)."""
    end_threshold_drop: float = Field(0.15, ge=0, lt=1)
    """Hysteresis: once speaking, a window counts as silence only under ``threshold`` minus this.
    Windows in between neither start nor end anything."""
    min_speech_ms: int = Field(224, ge=0, le=5000)
    """Speech must last this long before it counts as the user speaking; shorter noises (a cough, a
    click, a door) start nothing. 224 ms is seven 32 ms windows."""
    end_silence_ms: int = Field(550, ge=100, le=10_000)
    """Silence after speech that ends the user's turn. Pauses inside a sentence shorter than this do
    not end it; every millisecond here is added to the reply's latency."""
    speaking_threshold: float = Field(0.7, gt=0, lt=1)
    """Start threshold while the assistant is speaking (raised: what is left of its own voice after
    the browser's echo cancellation must not interrupt it)."""
    barge_in_confirm_ms: int = Field(192, ge=0, le=5000)
    """While the assistant speaks, the user's speech must last this long before it interrupts the
    reply, so that a cough or a laugh does not cut it off. 192 ms is six 32 ms windows: with the
    detector's own lag the reply stops well within 300 ms of the user starting to speak. Longer
    is safer against echo the guard cannot explain (loud speakers, no echo cancellation), at the
    cost of a slower stop."""
    early_reply_ms: int = Field(200, ge=0, le=10_000)
    """After this much silence inside an utterance the reply is prepared (final transcript, the
    model's first words, the first sentence's audio) while the rest of ``end_silence_ms`` runs out.
    It is sent the moment the end is decided if the user stayed silent, and dropped if they went
    on. 200 cuts about 250 ms from the answer at the cost of some work thrown away when the user
    goes on after a pause; 0 prepares nothing before the end; a value at or above
    ``end_silence_ms`` has no effect."""
    pre_roll_ms: int = Field(300, ge=0, le=2000)
    """Audio kept from before the detected start of speech and given to ASR with the utterance, so
    the first syllable, which the detector needs time to be sure of, is not cut."""
    max_utterance_s: float = Field(30.0, gt=0, le=300)
    """Longest utterance: speech still going on after this long is ended anyway (a television, a
    long monologue) so that the user gets an answer."""
    echo_guard: bool = True
    """Compare the microphone with the reply being played and ignore speech that the reply explains
    (its own voice coming back through the speakers)."""
    echo_window_ms: int = Field(160, ge=20, le=2000)
    """How much recent audio the echo guard judges for each window: long enough to hold a syllable
    of the reply, short enough that the user's first syllable over it stands out. (The echo path,
    its delay and gain, is estimated over a longer span.)"""
    echo_max_delay_ms: int = Field(500, ge=0, le=2000)
    """Largest delay searched between the reply being played and its echo in the microphone
    (device buffers, the speaker-to-microphone path, and any error in when playback was reported)."""
    echo_residual: float = Field(0.35, gt=0, lt=1)
    """A window is echo when the reply explains all but this fraction of the microphone's energy
    envelope (best gain and delay). Lower is stricter: less echo ignored, fewer missed barge-ins."""

    @model_validator(mode="after")
    def _end_threshold_positive(self) -> HandsFreeSettings:
        if self.threshold - self.end_threshold_drop <= 0:
            raise ValueError("threshold - end_threshold_drop must stay above 0 (lower end_threshold_drop)")
        return self


@dataclass(frozen=True)
class SpeechStarted:
    """The user started speaking (the assistant was silent)."""

    at_ms: float
    """Stream time of the first speech window of the utterance (its onset)."""
    detected_at_ms: float
    """Stream time when the start was confirmed (``at_ms`` plus at least ``min_speech_ms``)."""


@dataclass(frozen=True)
class BargeIn:
    """The user started speaking over the assistant's reply, long enough to interrupt it."""

    at_ms: float
    """Stream time of the first speech window of the interruption."""
    detected_at_ms: float
    """Stream time when the interruption was confirmed (``at_ms`` plus ``barge_in_confirm_ms``)."""


@dataclass(frozen=True)
class SpeechEnded:
    """The user finished speaking: the utterance that started with the last start event is complete."""

    at_ms: float
    """Stream time of the end of the last speech window."""
    speech_ms: float
    """Length of the utterance, from its onset to ``at_ms`` (pauses included)."""
    detected_at_ms: float
    """Stream time when the end was decided (``at_ms`` plus ``end_silence_ms``, or the length limit)."""
    audio: bytes = field(default=b"", repr=False)
    """The utterance as PCM s16le, pre-roll included, for ASR. The endpointer sees no audio and
    leaves it empty; :class:`voicebot.handsfree.HandsFreeListener` fills it."""


EndpointEvent = SpeechStarted | BargeIn | SpeechEnded


#: Echo inside a barge-in being confirmed that does not cancel it (two 32 ms windows).
_ECHO_TOLERANCE_MS = 64.0


class _Phase(Enum):
    SILENCE = "silence"
    CANDIDATE = "candidate"  # speech heard, not yet long enough to count
    SPEECH = "speech"


class Endpointer:
    """Turns per-window speech probabilities into :class:`SpeechStarted`, :class:`BargeIn` and
    :class:`SpeechEnded` events. One per session; not thread-safe (feed it from one place)."""

    def __init__(self, settings: HandsFreeSettings | None = None) -> None:
        self.settings = settings or HandsFreeSettings()
        self._now_ms = 0.0
        self._phase = _Phase.SILENCE
        self._assistant_speaking = False
        self._onset_ms = 0.0  # first speech window of the candidate or utterance
        self._speech_run_ms = 0.0  # speech heard since the onset (candidate phase)
        self._last_speech_end_ms = 0.0  # end of the latest speech window (speech phase)
        self._silence_since_ms: float | None = None  # start of the current run of silence
        self._echo_run_ms = 0.0  # consecutive echo windows while confirming a barge-in

    @property
    def now_ms(self) -> float:
        """Stream time: the total duration of the windows fed so far."""
        return self._now_ms

    @property
    def in_speech(self) -> bool:
        """True between a start (or barge-in) event and the matching :class:`SpeechEnded`."""
        return self._phase is _Phase.SPEECH

    @property
    def silent_ms(self) -> float:
        """In speech, how long the current run of silence has lasted (0 while the user speaks, and
        outside speech)."""
        if self._phase is not _Phase.SPEECH or self._silence_since_ms is None:
            return 0.0
        return self._now_ms - self._silence_since_ms

    @property
    def onset_ms(self) -> float | None:
        """Onset of the speech being considered or heard (``None`` in silence)."""
        return None if self._phase is _Phase.SILENCE else self._onset_ms

    @property
    def assistant_speaking(self) -> bool:
        """Whether the assistant's reply is playing (starts are then reported as :class:`BargeIn`)."""
        return self._assistant_speaking

    def set_assistant_speaking(self, speaking: bool) -> None:
        """Tell the endpointer whether the reply is playing. Speech already confirmed is unaffected;
        speech still being confirmed is judged by the new rule from the next window on."""
        self._assistant_speaking = speaking

    def reset(self) -> None:
        """Forget any speech in progress (the session left hands-free listening, e.g. a mic press)."""
        self._phase = _Phase.SILENCE
        self._speech_run_ms = 0.0
        self._silence_since_ms = None

    def feed(self, probability: float, duration_ms: float, *, echo: bool = False) -> list[EndpointEvent]:
        """Advance by one window of ``duration_ms`` whose speech probability is ``probability``.

        ``echo`` marks a window that the echo guard attributes to the assistant's own voice; while
        the assistant speaks such a window does not count towards a barge-in, and more than
        64 ms of them in a row cancel one being confirmed. Returns the events this window caused
        (at most a start and an end, usually none).
        """
        start_ms = self._now_ms
        self._now_ms += duration_ms
        settings = self.settings
        if echo and self._assistant_speaking and self._phase is not _Phase.SPEECH:
            # The assistant's own voice does not count towards an interruption. A window or two of
            # it inside one being confirmed is tolerated (the guard may take a syllable of the user's
            # voice over the reply for echo); more of it cancels the interruption.
            self._echo_run_ms += duration_ms
            if self._echo_run_ms > _ECHO_TOLERANCE_MS:
                self._phase = _Phase.SILENCE
            return []
        self._echo_run_ms = 0.0
        events: list[EndpointEvent] = []

        if self._phase is not _Phase.SPEECH:
            start_threshold = settings.speaking_threshold if self._assistant_speaking else settings.threshold
            needed_ms = settings.barge_in_confirm_ms if self._assistant_speaking else settings.min_speech_ms
            if probability >= start_threshold:
                if self._phase is _Phase.SILENCE:
                    self._phase = _Phase.CANDIDATE
                    self._onset_ms = start_ms
                    self._speech_run_ms = 0.0
                self._speech_run_ms += duration_ms
                self._last_speech_end_ms = self._now_ms
                if self._speech_run_ms >= needed_ms:
                    self._phase = _Phase.SPEECH
                    self._silence_since_ms = None
                    started = BargeIn if self._assistant_speaking else SpeechStarted
                    events.append(started(at_ms=self._onset_ms, detected_at_ms=self._now_ms))
            elif probability < settings.threshold - settings.end_threshold_drop:
                self._phase = _Phase.SILENCE  # a short noise: forget it
            return events

        # In speech: wait for enough silence, or the length limit.
        if probability >= settings.threshold:
            self._silence_since_ms = None
            self._last_speech_end_ms = self._now_ms
        elif probability < settings.threshold - settings.end_threshold_drop and self._silence_since_ms is None:
            self._silence_since_ms = start_ms
        elif self._silence_since_ms is None:
            self._last_speech_end_ms = self._now_ms  # in between: still speech (hysteresis)
        silent_ms = 0.0 if self._silence_since_ms is None else self._now_ms - self._silence_since_ms
        too_long = self._now_ms - self._onset_ms >= settings.max_utterance_s * 1000.0
        if silent_ms >= settings.end_silence_ms or too_long:
            end_ms = self._last_speech_end_ms
            events.append(SpeechEnded(at_ms=end_ms, speech_ms=end_ms - self._onset_ms, detected_at_ms=self._now_ms))
            self.reset()
        return events
