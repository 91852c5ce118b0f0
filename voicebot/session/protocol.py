"""Every message of the WebSocket protocol, parsed and validated in one place (see docs/protocol.md).

Client frames become typed actions or :class:`ProtocolError` (with a stable code); server events are
frozen dataclasses with a literal ``type`` that serialise to the JSON the page reads.
"""

from __future__ import annotations

import json
import zoneinfo
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from voicebot.audio import SAMPLE_WIDTH
from voicebot.session.machine import State

#: Format of the microphone audio the page sends (mono PCM s16le).
INPUT_SAMPLE_RATE = 16_000


class ProtocolError(Exception):
    """A client frame the server cannot use. ``code`` is stable; the message is for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# --- page → server --------------------------------------------------------------------------------


@dataclass(frozen=True)
class StartListening:
    """Start an utterance; while a reply is in progress this is a barge-in."""

    played_ms: int | None = None
    """Milliseconds of the interrupted reply's audio that the page actually played."""


@dataclass(frozen=True)
class StopListening:
    """End the utterance and start the turn."""


@dataclass(frozen=True)
class Reset:
    """Forget the conversation (and interrupt a reply in progress)."""


@dataclass(frozen=True)
class SetTimeZone:
    """The page's time zone, so "what time is it?" is answered in it (sent when the page connects)."""

    time_zone: str
    """An IANA name such as ``Europe/Paris``."""


ClientAction = StartListening | StopListening | Reset | SetTimeZone


def parse_action(text: str) -> ClientAction:
    """Parse one text frame into an action, or raise :class:`ProtocolError`."""
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ProtocolError("invalid_json", f"Text frames must be JSON objects: {exc}.") from None
    if not isinstance(data, dict):
        raise ProtocolError("invalid_json", "Text frames must be JSON objects.")
    action = data.get("action")
    if not isinstance(action, str):
        raise ProtocolError("invalid_message", 'A message needs a string field "action".')
    if action == "start_listening":
        played_ms = data.get("played_ms")
        if played_ms is not None and (
            isinstance(played_ms, bool) or not isinstance(played_ms, int | float) or not 0 <= played_ms < 1e9
        ):
            raise ProtocolError("invalid_message", '"played_ms" must be a number of milliseconds (0 or more).')
        return StartListening(played_ms=None if played_ms is None else int(played_ms))
    if action == "stop_listening":
        return StopListening()
    if action == "reset":
        return Reset()
    if action == "set_time_zone":
        zone = data.get("time_zone")
        if not isinstance(zone, str) or not _known_zone(zone):
            raise ProtocolError("invalid_message", '"time_zone" must be an IANA time zone name such as "Europe/Paris".')
        return SetTimeZone(zone)
    raise ProtocolError(
        "unknown_action",
        f"Unknown action {action[:40]!r}; expected start_listening, stop_listening, reset or set_time_zone.",
    )


def _known_zone(name: str) -> bool:
    if not 0 < len(name) <= 64:
        return False
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


def check_audio_frame(frame: bytes | None) -> bytes:
    """Return a usable PCM s16le frame, or raise :class:`ProtocolError` for an empty or odd one.

    Quart delivers an empty binary frame as ``None``; both mean the same here.
    """
    if not frame:
        raise ProtocolError("bad_audio_frame", "Empty audio frame.")
    if len(frame) % SAMPLE_WIDTH:
        raise ProtocolError(
            "bad_audio_frame",
            f"Audio frames must hold whole 16-bit samples; got {len(frame)} bytes (an odd number).",
        )
    return frame


# --- server → page --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Status:
    """The session's state changed (or the session just started)."""

    state: State
    message: str
    turn: int
    session_id: str | None = None
    reason: str | None = None
    stage: str | None = None
    """With reason ``fallback``: the stage (asr, llm, tts) a provider other than its first answered."""
    provider: str | None = None
    """With reason ``fallback``: the provider that answered."""
    type: Literal["status"] = field(default="status", init=False)


@dataclass(frozen=True)
class PartialTranscriptMessage:
    """What recognition has understood so far, while the user still speaks (streaming ASR only)."""

    turn: int
    """The turn this utterance will become."""
    text: str
    type: Literal["partial_transcript"] = field(default="partial_transcript", init=False)


@dataclass(frozen=True)
class Transcript:
    """What the user said."""

    turn: int
    text: str
    type: Literal["transcript"] = field(default="transcript", init=False)


@dataclass(frozen=True)
class ResponseText:
    """One streamed piece of the reply."""

    turn: int
    text: str
    type: Literal["response_text"] = field(default="response_text", init=False)


@dataclass(frozen=True)
class ResponseDone:
    """The whole reply text."""

    turn: int
    text: str
    type: Literal["response_done"] = field(default="response_done", init=False)


@dataclass(frozen=True)
class AudioStart:
    """The format of the binary audio frames that follow."""

    turn: int
    sample_rate: int
    format: Literal["pcm_s16le"] = "pcm_s16le"
    channels: int = 1
    type: Literal["audio_start"] = field(default="audio_start", init=False)


@dataclass(frozen=True)
class AudioDone:
    """The last audio frame of the reply was sent."""

    turn: int
    duration_ms: int
    type: Literal["audio_done"] = field(default="audio_done", init=False)


@dataclass(frozen=True)
class ResponseInterrupted:
    """The reply was cut; ``heard`` is what stays in the conversation."""

    turn: int
    heard: str
    type: Literal["response_interrupted"] = field(default="response_interrupted", init=False)


@dataclass(frozen=True)
class ToolCallMessage:
    """The assistant called a tool (the page shows it as a chip in the reply)."""

    turn: int
    id: str
    name: str
    arguments: dict[str, Any]
    source: str
    """``intent`` (the sentence templates) or ``model`` (the LLM asked for it)."""
    type: Literal["tool_call"] = field(default="tool_call", init=False)


@dataclass(frozen=True)
class ToolResultMessage:
    """A tool call's result."""

    turn: int
    id: str
    name: str
    ok: bool
    text: str
    error: str | None = None
    type: Literal["tool_result"] = field(default="tool_result", init=False)


@dataclass(frozen=True)
class TimersMessage:
    """The session's running timers (after one is set, cancelled or ends): the page counts them down."""

    timers: list[dict[str, Any]]
    """Each ``{"id", "label", "duration_s", "remaining_s"}``; ``remaining_s`` as of sending."""
    type: Literal["timers"] = field(default="timers", init=False)


@dataclass(frozen=True)
class Error:
    """Something went wrong; the session goes on."""

    code: str
    message: str
    turn: int | None = None
    type: Literal["error"] = field(default="error", init=False)


ServerEvent = (
    Status
    | PartialTranscriptMessage
    | Transcript
    | ResponseText
    | ResponseDone
    | AudioStart
    | AudioDone
    | ResponseInterrupted
    | ToolCallMessage
    | ToolResultMessage
    | TimersMessage
    | Error
)


def encode_event(event: ServerEvent) -> str:
    """Serialise an event to its JSON text frame (fields that are ``None`` are left out)."""
    data: dict[str, Any] = {key: value for key, value in asdict(event).items() if value is not None}
    return json.dumps(data, ensure_ascii=False)
