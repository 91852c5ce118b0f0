"""The turn's one vocabulary: every typed event a turn produces, from the first partial transcript to
the end of its reply.

A turn engine emits these; the session turns each one into state-machine triggers and page messages,
the session log writes each one as a line named by its ``type``, the recording stores each one as a
``turn`` line, and replay reads them back with :func:`event_from_fields`. A new event is defined once,
here. Every event is a frozen dataclass with a literal ``type``.

Times are milliseconds since the user released the button (the turn's start), measured once where the
stage runs (see :class:`voicebot.turn.timing.StageClock`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Literal

from voicebot import audio
from voicebot.errors import Stage


@dataclass(frozen=True)
class StageStarted:
    """A stage call started (TTS is called once per spoken segment)."""

    stage: Stage
    call: int
    """Which call of this stage in the turn, from 1."""
    at_ms: float
    type: Literal["stage_started"] = field(default="stage_started", init=False)


@dataclass(frozen=True)
class StageEnded:
    """A stage call ended, with how long it took and when its first output came."""

    stage: Stage
    call: int
    at_ms: float
    duration_ms: float
    first_ms: float | None = None
    """Ms from the call's start to its first output (LLM token, TTS audio), if any."""
    error: str | None = None
    """Why the call did not complete (exception type, or ``cancelled``)."""
    type: Literal["stage_ended"] = field(default="stage_ended", init=False)


@dataclass(frozen=True)
class EarlyReply:
    """The reply was prepared while the user paused, before the end of the turn was decided; what was
    prepared follows at once (its stage times are negative: before the end)."""

    lead_ms: float
    """How long before the end was decided the preparation started."""
    type: Literal["early_reply"] = field(default="early_reply", init=False)


@dataclass(frozen=True)
class PartialTranscript:
    """What recognition has understood so far, while the user is still speaking."""

    text: str
    type: Literal["partial_transcript"] = field(default="partial_transcript", init=False)


@dataclass(frozen=True)
class Transcribed:
    """The final transcript of the utterance."""

    text: str
    type: Literal["transcript"] = field(default="transcript", init=False)


@dataclass(frozen=True)
class NothingHeard:
    """The utterance held no speech (too short, too quiet, or ASR found no words)."""

    why: str
    type: Literal["nothing_heard"] = field(default="nothing_heard", init=False)


@dataclass(frozen=True)
class ReplyPiece:
    """One piece of the reply text, as the model wrote it."""

    text: str
    type: Literal["reply_piece"] = field(default="reply_piece", init=False)


@dataclass(frozen=True)
class ReplyDone:
    """The whole reply text."""

    text: str
    type: Literal["reply"] = field(default="reply", init=False)


@dataclass(frozen=True)
class SegmentAudio:
    """One spoken segment (a sentence or clause) of the reply, synthesised whole."""

    index: int
    text: str
    pcm: bytes = field(repr=False)
    """Mono PCM s16le at ``sample_rate``: the segment's full audio."""
    sample_rate: int
    type: Literal["segment_audio"] = field(default="segment_audio", init=False)

    @property
    def duration_ms(self) -> float:
        return audio.duration_ms(len(self.pcm), self.sample_rate)


@dataclass(frozen=True)
class SpeechDone:
    """Every segment of the reply was synthesised (the user may still be hearing them)."""

    type: Literal["speech_done"] = field(default="speech_done", init=False)


@dataclass(frozen=True)
class FallbackUsed:
    """A request of ``stage`` was answered by ``provider``, not the stage's first choice."""

    stage: Stage
    provider: str
    skipped: tuple[tuple[str, str], ...]
    """The providers tried before it, in order, each with why it was skipped."""
    type: Literal["provider_fallback"] = field(default="provider_fallback", init=False)

    @property
    def message(self) -> str:
        """A short sentence for the page's status line."""
        why = "; ".join(f"{provider}: {reason}" for provider, reason in self.skipped)
        return f"Answered by {self.provider} ({why})"


@dataclass(frozen=True)
class TurnFailed:
    """A stage failed; the turn is abandoned. ``code`` is the stable error code the page gets."""

    code: str
    message: str
    stage: Stage | None = None
    type: Literal["turn_failed"] = field(default="turn_failed", init=False)


@dataclass(frozen=True)
class ToolCalled:
    """A tool was called: by the intent layer (``source`` ``intent``) or by the model (``model``)."""

    id: str
    name: str
    arguments: dict[str, Any]
    source: str
    type: Literal["tool_call"] = field(default="tool_call", init=False)


@dataclass(frozen=True)
class ToolReturned:
    """A tool call's result (``ok`` false: it failed or timed out; ``error`` says why)."""

    id: str
    name: str
    ok: bool
    text: str
    """What the model (or the templated answer) is given."""
    spoken: str | None = None
    error: str | None = None
    elapsed_ms: float | None = None
    data: dict[str, Any] = field(default_factory=dict)
    type: Literal["tool_result"] = field(default="tool_result", init=False)


# --- what the session adds: the turn's playback and its end -----------------------------------------


@dataclass(frozen=True)
class AudioStarted:
    """The first frame of the reply's audio left the server."""

    sample_rate: int
    type: Literal["audio_started"] = field(default="audio_started", init=False)


@dataclass(frozen=True)
class Interrupted:
    """The user cut the reply (barge-in or reset). ``heard`` is what stays in the conversation."""

    heard: str
    played_ms: int | None
    """What the page reported it had played (``None``: the server estimated it from its clock)."""
    type: Literal["barge_in"] = field(default="barge_in", init=False)


@dataclass(frozen=True)
class TurnFinished:
    """The reply was heard to its end. ``timings`` is the turn's summary in ms (see ``TurnTimings``)."""

    timings: dict[str, float]
    type: Literal["turn_finished"] = field(default="turn_finished", init=False)


TurnEvent = (
    StageStarted
    | StageEnded
    | EarlyReply
    | PartialTranscript
    | Transcribed
    | NothingHeard
    | ReplyPiece
    | ReplyDone
    | SegmentAudio
    | SpeechDone
    | FallbackUsed
    | TurnFailed
    | ToolCalled
    | ToolReturned
    | AudioStarted
    | Interrupted
    | TurnFinished
)

EVENT_TYPES: dict[str, type[TurnEvent]] = {
    cls.type: cls
    for cls in (
        StageStarted,
        StageEnded,
        EarlyReply,
        PartialTranscript,
        Transcribed,
        NothingHeard,
        ReplyPiece,
        ReplyDone,
        SegmentAudio,
        SpeechDone,
        FallbackUsed,
        TurnFailed,
        ToolCalled,
        ToolReturned,
        AudioStarted,
        Interrupted,
        TurnFinished,
    )
}


def event_fields(event: TurnEvent) -> dict[str, Any]:
    """The event as JSON-ready fields for a log line or a recording line: ``type`` first, times rounded
    to 0.1 ms, ``None`` left out, and audio given as its length (``duration_ms``) instead of bytes."""
    data: dict[str, Any] = {"type": event.type}
    for item in fields(event):
        if item.name == "type":
            continue
        value = getattr(event, item.name)
        if item.name == "pcm":
            data["duration_ms"] = round(audio.duration_ms(len(value), getattr(event, "sample_rate", 1)), 1)
            continue
        if value is None:
            continue
        if isinstance(value, float) and item.name.endswith("_ms"):
            value = round(value, 1)
        elif isinstance(value, tuple):
            value = [list(v) if isinstance(v, tuple) else v for v in value]
        elif item.name == "timings":
            value = {k: round(v, 1) for k, v in value.items()}
        data[item.name] = value
    return data


def event_from_fields(data: dict[str, Any]) -> TurnEvent | None:
    """Read back what :func:`event_fields` wrote; ``None`` for an unknown ``type`` (a newer version's
    event). Audio comes back empty: recordings keep it in WAV files, not in event lines."""
    cls = EVENT_TYPES.get(str(data.get("type")))
    if cls is None:
        return None
    names = {item.name for item in fields(cls) if item.init}
    values = {key: value for key, value in data.items() if key in names}
    if "stage" in values and values["stage"] is not None:
        values["stage"] = Stage(values["stage"])
    if cls is FallbackUsed:
        values["skipped"] = tuple((str(p), str(r)) for p, r in values.get("skipped", ()))
    if cls is SegmentAudio:
        values["pcm"] = b""
    return cls(**values)
