"""Reading a recording back: check it, and rebuild each turn from its typed turn events.

Format 2 recordings keep every turn event as a ``turn`` line; format 1 recordings are converted to
such lines as they are read (:mod:`voicebot.recording.legacy`), so one reader serves both.
"""

from __future__ import annotations

import json
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from voicebot import audio
from voicebot.providers.base import Message
from voicebot.recording import legacy
from voicebot.recording.layout import EVENTS_FILE, FOLDER, READABLE_FORMATS, SESSION_FILE
from voicebot.session.protocol import INPUT_SAMPLE_RATE
from voicebot.turn.events import Interrupted, event_from_fields
from voicebot.turn.outcome import TurnOutcome


class RecordingError(Exception):
    """A recording cannot be used: it is missing or damaged. The message says which and where."""


@dataclass(kw_only=True)
class RecordedTurn(TurnOutcome):
    """One turn as it happened, from a recording."""

    turn: int
    t: float
    """When the utterance ended (the turn started), in seconds since the session started."""
    user_file: Path
    audio_ms: float
    frames: list[tuple[float, int]]
    history: list[Message]
    reply_file: Path | None = None
    barge_in_t: float | None = None
    """When the reply was cut, in seconds since the session started."""
    events: list[dict[str, Any]] = field(default_factory=list)
    """Server events of this turn, each ``{"t": …, "event": {…}}``."""

    @property
    def outcome(self) -> str:
        outcome = super().outcome
        if outcome == "incomplete" and any(e["event"].get("type") == "audio_done" for e in self.events):
            return "finished"  # a format-1 turn whose summary line was never written
        return outcome

    def user_pcm(self) -> bytes:
        pcm, _ = audio.read_wav(self.user_file)
        return pcm

    def reply_audio(self) -> tuple[bytes, int] | None:
        return None if self.reply_file is None else audio.read_wav(self.reply_file)


@dataclass
class Recording:
    """A recorded session, checked and parsed."""

    folder: Path
    meta: dict[str, Any]
    lines: list[dict[str, Any]]
    """Every line of events.jsonl, in time order (format 1: with its turn events converted)."""
    turns: list[RecordedTurn]
    truncated: bool = False
    """The last line was cut off (the server stopped while writing it)."""

    @property
    def session_id(self) -> str:
        return str(self.meta.get("session_id", self.folder.name))

    def server_events(self) -> list[dict[str, Any]]:
        return [line for line in self.lines if line["kind"] == "server"]


def find_recording(reference: str, directory: Path | str) -> Path:
    """The folder of a recording given as a folder path or a session id (looked up in ``directory``)."""
    path = Path(reference)
    if path.is_dir():
        return path
    directory = Path(directory)
    if directory.is_dir() and "/" not in reference:
        for candidate in sorted(directory.iterdir()):
            match = FOLDER.match(candidate.name)
            if candidate.is_dir() and (candidate.name == reference or (match and match["session"] == reference)):
                return candidate
    if "/" in reference or path.exists():
        raise RecordingError(f"No recording folder at {path}.")
    raise RecordingError(
        f"No recording of session {reference!r}: nothing in {directory.resolve()} (recording.directory) "
        "has that id. Pass a session id from the logs or the path of a recording folder."
    )


def _check_wav(path: Path, what: str, sample_rate: int | None = None) -> None:
    if not path.is_file():
        raise RecordingError(f"Damaged recording {path.parent}: {what} {path.name} is missing.")
    try:
        with wave.open(str(path), "rb") as wav:
            if wav.getnchannels() != 1 or wav.getsampwidth() != audio.SAMPLE_WIDTH:
                raise RecordingError(f"Damaged recording {path.parent}: {what} {path.name} is not mono 16-bit PCM.")
            if sample_rate is not None and wav.getframerate() != sample_rate:
                raise RecordingError(
                    f"Damaged recording {path.parent}: {what} {path.name} is at {wav.getframerate()} Hz, "
                    f"expected {sample_rate} Hz."
                )
    except (wave.Error, EOFError, OSError) as exc:
        problem = f"{what} {path.name} is not a readable WAV ({exc})"
        raise RecordingError(f"Damaged recording {path.parent}: {problem}.") from None


def load_recording(folder: Path | str) -> Recording:
    """Read and check a recording folder; raise :class:`RecordingError` when it is missing or damaged."""
    folder = Path(folder)
    if not folder.is_dir():
        raise RecordingError(f"No recording folder at {folder}.")
    session_path, events_path = folder / SESSION_FILE, folder / EVENTS_FILE
    if not session_path.is_file():
        raise RecordingError(f"Damaged recording {folder}: {SESSION_FILE} is missing (is this a recording folder?).")
    try:
        meta = json.loads(session_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RecordingError(f"Damaged recording {folder}: {SESSION_FILE} is not valid JSON ({exc}).") from None
    if not isinstance(meta, dict) or meta.get("format") not in READABLE_FORMATS:
        got = meta.get("format") if isinstance(meta, dict) else None
        raise RecordingError(
            f"Damaged recording {folder}: {SESSION_FILE} has format {got!r}; "
            f"this voicebot reads formats {', '.join(map(str, READABLE_FORMATS))}."
        )
    if not events_path.is_file():
        raise RecordingError(f"Damaged recording {folder}: {EVENTS_FILE} is missing.")
    try:
        raw_lines = events_path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise RecordingError(f"Damaged recording {folder}: {EVENTS_FILE} cannot be read ({exc}).") from None
    lines: list[dict[str, Any]] = []
    truncated = False
    for number, text in enumerate(raw_lines, start=1):
        if not text.strip():
            continue
        try:
            line = json.loads(text)
            if not isinstance(line, dict) or not isinstance(line.get("t"), int | float) or "kind" not in line:
                raise ValueError("not an event line")
        except ValueError as exc:
            if number == len(raw_lines):
                truncated = True  # the last line was being written when the server stopped
                break
            problem = f"{EVENTS_FILE} line {number} is not valid ({exc})"
            raise RecordingError(f"Damaged recording {folder}: {problem}.") from None
        lines.append(line)
    lines.sort(key=lambda line: float(line["t"]))
    if meta["format"] == 1:
        lines = legacy.turn_lines(lines)
    return Recording(folder, meta, lines, _turns(folder, lines), truncated)


def _turns(folder: Path, lines: list[dict[str, Any]]) -> list[RecordedTurn]:
    turns: dict[int, RecordedTurn] = {}
    for line in lines:
        if line["kind"] == "utterance":
            try:
                history = [Message(m["role"], m["content"]) for m in line.get("history", [])]
                turn = RecordedTurn(
                    turn=int(line["turn"]),
                    t=float(line["t"]),
                    user_file=folder / str(line["file"]),
                    audio_ms=float(line["audio_ms"]),
                    frames=[(float(t), int(size)) for t, size in line.get("frames", [])],
                    history=history,
                )
            except (KeyError, TypeError, ValueError) as exc:
                raise RecordingError(f"Damaged recording {folder}: a bad utterance line ({exc!r}).") from None
            _check_wav(turn.user_file, f"turn {turn.turn}'s user audio", INPUT_SAMPLE_RATE)
            turns[turn.turn] = turn
    for line in lines:
        kind = line["kind"]
        if kind == "server":
            event = line.get("event")
            if isinstance(event, dict) and event.get("turn") in turns:
                turns[event["turn"]].events.append({"t": line["t"], "event": event})
            continue
        number = line.get("turn")
        if not isinstance(number, int) or number not in turns:
            continue
        turn = turns[number]
        if kind == "reply_audio":
            turn.reply_file = folder / str(line.get("file"))
            _check_wav(turn.reply_file, f"turn {number}'s reply audio")
        elif kind == "turn" and isinstance(line.get("event"), dict):
            try:
                event = event_from_fields(line["event"])
            except (TypeError, ValueError) as exc:
                raise RecordingError(f"Damaged recording {folder}: a bad turn line ({exc!r}).") from None
            if event is None:
                continue  # an event this version does not know
            at_ms = line.get("at_ms")
            turn.add(event, float(at_ms) if isinstance(at_ms, int | float) else None)
            if isinstance(event, Interrupted):
                turn.barge_in_t = float(line["t"])
    return [turns[number] for number in sorted(turns)]
