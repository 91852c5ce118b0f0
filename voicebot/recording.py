"""Session recordings: one folder per session, written as the session goes, read back by replay.

A recording folder is named ``<UTC start time>-<session id>`` (``20260509T073525.123Z-9f1c…``) and holds:

``session.json``
    Written when the session starts: format version, session id, start time, the client's address
    and user agent, the providers in use and all settings (secrets are never in settings).
``events.jsonl``
    One JSON object per line, each with ``t`` (seconds since the session started) and ``kind``:

    - ``log``: every line the session logged (``event``, ``level``, ``turn``, ``state``, fields);
    - ``client``: a text frame from the page (``text``, the raw action JSON), at its arrival;
    - ``server``: an event sent to the page (``event``, the JSON object);
    - ``utterance``: a turn's user audio was saved (``turn``, ``file``, ``audio_ms``, the arrival
      time and size of every audio frame that went into it, and the conversation ``history`` the
      turn started from);
    - ``reply_audio``: a turn's reply audio was saved (``turn``, ``file``, ``sample_rate``, ``audio_ms``).
``turn-NNN-user.wav`` / ``turn-NNN-reply.wav``
    The utterance (16 kHz) and the reply audio that was sent (at the TTS rate; cut short by a barge-in).

Lines are flushed as they are written and audio files are written (in a worker thread) as soon as
their turn has them; a file's line is written only once the file is complete. A crash or a dropped
connection therefore loses at most the turn in flight, and a cut-off last line is tolerated.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import shutil
import time
import wave
from collections.abc import Collection, Coroutine, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

import structlog

from voicebot import audio
from voicebot.logs import redact, redact_text
from voicebot.machine import State
from voicebot.protocol import INPUT_SAMPLE_RATE, AudioStart, ServerEvent, Status
from voicebot.providers.base import Message, Stages
from voicebot.settings import RecordingSettings, Settings

FORMAT_VERSION = 1
SESSION_FILE = "session.json"
EVENTS_FILE = "events.jsonl"
#: Longest client text frame kept (actions are tiny; anything longer is kept cut).
MAX_CLIENT_TEXT = 4096

_FOLDER = re.compile(r"^(?P<time>\d{8}T\d{6}\.\d{3}Z)-(?P<session>[A-Za-z0-9_-]+)$")
_TIME_FORMAT = "%Y%m%dT%H%M%S.%fZ"

#: Recording folders of sessions still running in this process: retention never removes them.
_ACTIVE: set[Path] = set()

_log = structlog.get_logger("voicebot.recording")


def folder_name(session_id: str, started: datetime) -> str:
    """``<UTC start time with ms>-<session id>``: names sort by age."""
    return f"{started.strftime('%Y%m%dT%H%M%S')}.{started.microsecond // 1000:03d}Z-{session_id}"


def folder_time(path: Path) -> datetime | None:
    """The start time in a recording folder's name, or ``None`` when it is not a recording folder."""
    match = _FOLDER.match(path.name)
    if match is None:
        return None
    return datetime.strptime(match["time"], _TIME_FORMAT).replace(tzinfo=UTC)


def describe_providers(stages: Stages) -> dict[str, dict[str, str]]:
    """Which provider and model each stage uses."""
    return {
        name: {"provider": provider.name, "model": provider.model}
        for name, provider in (("asr", stages.asr), ("llm", stages.llm), ("tts", stages.tts))
    }


# --- writing --------------------------------------------------------------------------------------


class Recorder:
    """The recording of one session. This base records nothing (recording is off); see
    :class:`SessionRecorder`. Every method is cheap and never raises into the session."""

    folder: Path | None = None

    def start(self, settings: Settings, stages: Stages, client: dict[str, str]) -> None:
        """The session started."""

    def log(self, level: str, event: str, fields: dict[str, Any]) -> None:
        """The session logged a line."""

    def client_text(self, text: str, at: float) -> None:
        """A text frame from the page arrived at ``at`` (``time.monotonic()``)."""

    def client_audio(self, size: int, at: float) -> None:
        """An audio frame of ``size`` bytes that arrived at ``at`` went into the utterance."""

    def utterance(self, turn: int, pcm: bytes, history: Iterable[Message], at: float) -> None:
        """The utterance ended at ``at`` and became turn ``turn``, started from ``history``."""

    def server_event(self, event: ServerEvent, text: str) -> None:
        """``event`` (encoded as ``text``) was sent to the page."""

    def reply_audio(self, data: bytes) -> None:
        """A frame of reply audio was sent to the page."""

    async def close(self) -> None:
        """The session ended: finish writing."""


@dataclass
class _Reply:
    turn: int
    sample_rate: int
    pcm: bytearray = field(default_factory=bytearray)


class SessionRecorder(Recorder):
    """Records one session into ``<settings.directory>/<folder_name>``."""

    def __init__(self, settings: RecordingSettings, session_id: str) -> None:
        self.settings = settings
        self.session_id = session_id
        self.started_at = datetime.now(UTC)
        self._started = time.monotonic()
        self.folder = Path(settings.directory) / folder_name(session_id, self.started_at)
        self._file: TextIO | None = None
        self._frames: list[tuple[float, int]] = []
        self._reply: _Reply | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._failed = False

    def _t(self, at: float | None = None) -> float:
        # µs: frames that arrive back to back keep their order
        return round((time.monotonic() if at is None else at) - self._started, 6)

    # --- the session's calls ----------------------------------------------------------------------

    def start(self, settings: Settings, stages: Stages, client: dict[str, str]) -> None:
        assert self.folder is not None
        meta = {
            "format": FORMAT_VERSION,
            "session_id": self.session_id,
            "started_at": self.started_at.isoformat(),
            "client": client,
            "providers": describe_providers(stages),
            "settings": settings.model_dump(mode="json"),
        }
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            (self.folder / SESSION_FILE).write_text(json.dumps(redact(meta), indent=2) + "\n", encoding="utf-8")
            self._file = (self.folder / EVENTS_FILE).open("a", encoding="utf-8", buffering=1)
        except OSError as exc:
            self._fail(exc)
            return
        _ACTIVE.add(self.folder.resolve())
        self._spawn(self._prune())

    def log(self, level: str, event: str, fields: dict[str, Any]) -> None:
        self._line({"t": self._t(), "kind": "log", "level": level, "event": event, **fields})

    def client_text(self, text: str, at: float) -> None:
        self._line({"t": self._t(at), "kind": "client", "text": text[:MAX_CLIENT_TEXT]})

    def client_audio(self, size: int, at: float) -> None:
        self._frames.append((self._t(at), size))

    def utterance(self, turn: int, pcm: bytes, history: Iterable[Message], at: float) -> None:
        frames, self._frames = self._frames, []
        name = f"turn-{turn:03d}-user.wav"
        line = {
            "t": self._t(at),
            "kind": "utterance",
            "turn": turn,
            "file": name,
            "audio_ms": round(audio.duration_ms(len(pcm), INPUT_SAMPLE_RATE)),
            "frames": frames,
            "history": [{"role": m.role, "content": m.content} for m in history],
        }
        self._spawn(self._save_audio(name, pcm, INPUT_SAMPLE_RATE, line))

    def server_event(self, event: ServerEvent, text: str) -> None:
        self._raw(f'{{"t":{self._t()},"kind":"server","event":{redact_text(text)}}}')
        if isinstance(event, AudioStart):
            self._end_reply()
            self._reply = _Reply(event.turn, event.sample_rate)
        elif isinstance(event, Status):
            if event.state in (State.IDLE, State.LISTENING):
                self._end_reply()  # the turn is over: finished, failed, interrupted or reset
            if event.state is State.LISTENING:
                self._frames = []

    def reply_audio(self, data: bytes) -> None:
        if self._reply is not None:
            self._reply.pcm += data

    async def close(self) -> None:
        self._end_reply()
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        if self._file is not None:
            self._file.close()
            self._file = None
        if self.folder is not None:
            _ACTIVE.discard(self.folder.resolve())
        if not self._failed:
            await self._prune()

    # --- writing ----------------------------------------------------------------------------------

    def _end_reply(self) -> None:
        reply, self._reply = self._reply, None
        if reply is None or self._file is None:
            return
        name = f"turn-{reply.turn:03d}-reply.wav"
        line = {
            "t": self._t(),
            "kind": "reply_audio",
            "turn": reply.turn,
            "file": name,
            "sample_rate": reply.sample_rate,
            "audio_ms": round(audio.duration_ms(len(reply.pcm), reply.sample_rate)),
        }
        self._spawn(self._save_audio(name, bytes(reply.pcm), reply.sample_rate, line))

    async def _save_audio(self, name: str, pcm: bytes, sample_rate: int, line: dict[str, Any]) -> None:
        """Write the WAV in a worker thread (it can be megabytes), then its line."""
        if self._file is None or self.folder is None:
            return
        path = self.folder / name
        try:
            await asyncio.to_thread(_write_file, path, audio.wav_bytes(pcm, sample_rate))
        except OSError as exc:
            self._fail(exc)
            return
        self._line(line)

    def _line(self, record: dict[str, Any]) -> None:
        if self._file is not None:
            self._raw(json.dumps(redact(record), ensure_ascii=False, separators=(",", ":"), default=str))

    def _raw(self, line: str) -> None:
        if self._file is None:
            return
        try:
            self._file.write(line + "\n")
        except (OSError, ValueError) as exc:
            self._fail(exc)

    def _fail(self, exc: Exception) -> None:
        """Recording broke (disk full, permissions): say so once and stop recording; the session goes on."""
        if not self._failed:
            _log.warning("recording_failed", session_id=self.session_id, folder=str(self.folder), error=str(exc))
        self._failed = True
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _prune(self) -> None:
        keep = frozenset(_ACTIVE)
        try:
            removed = await asyncio.to_thread(
                prune_recordings,
                Path(self.settings.directory),
                self.settings.max_age_days,
                self.settings.max_total_mb,
                keep,
            )
        except OSError as exc:
            _log.warning("recording_retention_failed", directory=self.settings.directory, error=str(exc))
            return
        if removed:
            _log.info("recordings_removed", count=len(removed), oldest=removed[0].name)


def _write_file(path: Path, data: bytes) -> None:
    path.write_bytes(data)


def make_recorder(settings: RecordingSettings, session_id: str) -> Recorder:
    """A recorder for the session: a real one when recording is enabled, else one that does nothing."""
    return SessionRecorder(settings, session_id) if settings.enabled else Recorder()


# --- retention ------------------------------------------------------------------------------------


def _size(path: Path) -> int:
    total = 0
    for item in path.rglob("*"):
        try:
            if item.is_file():
                total += item.stat().st_size
        except OSError:
            pass
    return total


def prune_recordings(
    directory: Path,
    max_age_days: float,
    max_total_mb: float,
    keep: Collection[Path] = (),
    now: datetime | None = None,
) -> list[Path]:
    """Remove recording folders older than ``max_age_days``, then the oldest ones until all together
    take at most ``max_total_mb`` (0 turns either limit off). Folders in ``keep`` (sessions still
    running) and anything that is not a recording folder are left alone. Returns what was removed,
    oldest first. Blocking: call it from a worker thread."""
    if not directory.is_dir():
        return []
    now = now or datetime.now(UTC)
    folders = sorted(
        ((started, path) for path in directory.iterdir() if path.is_dir() and (started := folder_time(path))),
        key=lambda item: (item[0], item[1].name),
    )
    protected = {path.resolve() for path in keep}
    removed: list[Path] = []

    def remove(path: Path) -> bool:
        if path.resolve() in protected:
            return False
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
        return True

    remaining: list[Path] = []
    for started, path in folders:
        if max_age_days > 0 and now - started > timedelta(days=max_age_days) and remove(path):
            continue
        remaining.append(path)
    if max_total_mb > 0:
        sizes = {path: _size(path) for path in remaining}
        total, limit = sum(sizes.values()), max_total_mb * 1024 * 1024
        for path in remaining:
            if total <= limit:
                break
            if remove(path):
                total -= sizes[path]
    return removed


# --- reading --------------------------------------------------------------------------------------


class RecordingError(Exception):
    """A recording cannot be used: it is missing or damaged. The message says which and where."""


@dataclass
class RecordedTurn:
    """One turn as it happened, from a recording."""

    turn: int
    t: float
    """When the utterance ended (the turn started), in seconds since the session started."""
    user_file: Path
    audio_ms: float
    frames: list[tuple[float, int]]
    history: list[Message]
    reply_file: Path | None = None
    transcript: str | None = None
    nothing_heard: str | None = None
    reply: str | None = None
    heard: str | None = None
    played_ms: int | None = None
    barge_in_t: float | None = None
    error: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    marks: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    """Server events of this turn, each ``{"t": …, "event": {…}}``."""

    @property
    def outcome(self) -> str:
        """finished, interrupted, nothing_heard, failed, or incomplete (disconnect, crash, reset)."""
        if self.barge_in_t is not None:
            return "interrupted"
        if self.error is not None:
            return "failed"
        if self.nothing_heard is not None:
            return "nothing_heard"
        if self.timings or any(e["event"].get("type") == "audio_done" for e in self.events):
            return "finished"
        return "incomplete"

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
    """Every line of events.jsonl, in time order."""
    turns: list[RecordedTurn]
    truncated: bool = False
    """The last line was cut off (the server stopped while writing it)."""

    @property
    def session_id(self) -> str:
        return str(self.meta.get("session_id", self.folder.name))

    def server_events(self) -> list[dict[str, Any]]:
        return [line for line in self.lines if line["kind"] == "server"]


_TIMING_SKIP = {"t", "kind", "level", "event", "turn", "state", "session_id"}


def find_recording(reference: str, directory: Path | str) -> Path:
    """The folder of a recording given as a folder path or a session id (looked up in ``directory``)."""
    path = Path(reference)
    if path.is_dir():
        return path
    directory = Path(directory)
    if directory.is_dir() and "/" not in reference:
        for candidate in sorted(directory.iterdir()):
            match = _FOLDER.match(candidate.name)
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
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_VERSION:
        got = meta.get("format") if isinstance(meta, dict) else None
        raise RecordingError(
            f"Damaged recording {folder}: {SESSION_FILE} has format {got!r}; "
            f"this voicebot reads format {FORMAT_VERSION}."
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
        elif kind == "log":
            _apply_log(turn, line)
    return [turns[number] for number in sorted(turns)]


def _apply_log(turn: RecordedTurn, line: dict[str, Any]) -> None:
    event = line.get("event")
    if event == "transcript":
        turn.transcript = line.get("text")
    elif event == "nothing_heard":
        turn.nothing_heard = line.get("why") or "nothing"
    elif event == "reply":
        turn.reply = line.get("text")
    elif event == "barge_in":
        turn.barge_in_t = float(line["t"])
        turn.heard = line.get("heard")
        turn.played_ms = line.get("played_ms")
    elif event == "turn_failed":
        turn.error = line.get("code") or "failed"
    elif event == "turn_finished":
        turn.timings = {k: float(v) for k, v in line.items() if k not in _TIMING_SKIP and isinstance(v, int | float)}
    elif event in ("stage_started", "stage_ended"):
        turn.marks.append({k: v for k, v in line.items() if k not in ("kind", "level", "session_id")})
