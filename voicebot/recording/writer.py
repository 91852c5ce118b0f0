"""Writing a session's recording as the session goes (the folder's layout: :mod:`voicebot.recording.layout`).

Lines are flushed as they are written and audio files are written (in a worker thread) as soon as
their turn has them; a file's line is written only once the file is complete. A crash or a dropped
connection therefore loses at most the turn in flight, and a cut-off last line is tolerated.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import structlog

from voicebot import audio
from voicebot.logs import redact, redact_text
from voicebot.providers.base import Message
from voicebot.recording.layout import (
    EVENTS_FILE,
    FORMAT_VERSION,
    MAX_CLIENT_TEXT,
    SESSION_FILE,
    folder_name,
    reply_file,
    user_file,
)
from voicebot.recording.private import open_private, private_dir, write_private
from voicebot.recording.retention import ACTIVE, prune_recordings
from voicebot.session.machine import State
from voicebot.session.protocol import INPUT_SAMPLE_RATE, AudioStart, ServerEvent, Status
from voicebot.settings import RecordingSettings, Settings

_log = structlog.get_logger("voicebot.recording")


class Recorder:
    """The recording of one session. This base records nothing (recording is off); see
    :class:`SessionRecorder`. Every method is cheap and never raises into the session."""

    folder: Path | None = None

    def start(self, settings: Settings, providers: dict[str, dict[str, str]], client: dict[str, str]) -> None:
        """The session started with ``providers`` (each stage's provider and model)."""

    def log(self, level: str, event: str, fields: dict[str, Any]) -> None:
        """The session logged a line."""

    def turn_event(self, turn: int, at_ms: float | None, fields: dict[str, Any]) -> None:
        """Turn ``turn`` emitted an event (``fields``, with its ``type``) ``at_ms`` after it started."""

    def client_text(self, text: str, at: float) -> None:
        """A text frame from the page arrived at ``at`` (``time.monotonic()``)."""

    def client_audio(self, pcm: bytes, at: float) -> None:
        """An audio frame that arrived at ``at`` went into the utterance."""

    def utterance(self, turn: int, history: Iterable[Message], at: float) -> None:
        """The utterance (the audio since the last ``listening``) ended at ``at`` and became turn
        ``turn``, started from ``history``."""

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
        self._utterance = bytearray()
        self._reply: _Reply | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._failed = False

    def _t(self, at: float | None = None) -> float:
        # µs: frames that arrive back to back keep their order
        return round((time.monotonic() if at is None else at) - self._started, 6)

    # --- the session's calls ----------------------------------------------------------------------

    def start(self, settings: Settings, providers: dict[str, dict[str, str]], client: dict[str, str]) -> None:
        assert self.folder is not None
        meta = {
            "format": FORMAT_VERSION,
            "session_id": self.session_id,
            "started_at": self.started_at.isoformat(),
            "client": client,
            "providers": providers,
            "settings": settings.model_dump(mode="json"),
        }
        try:
            private_dir(self.folder.parent)
            private_dir(self.folder)
            write_private(self.folder / SESSION_FILE, json.dumps(redact(meta), indent=2) + "\n")
            self._file = open_private(self.folder / EVENTS_FILE, "a", encoding="utf-8", buffering=1)
        except OSError as exc:
            self._fail(exc)
            return
        ACTIVE.add(self.folder.resolve())
        self._spawn(self._prune())

    def log(self, level: str, event: str, fields: dict[str, Any]) -> None:
        self._line({"t": self._t(), "kind": "log", "level": level, "event": event, **fields})

    def client_text(self, text: str, at: float) -> None:
        self._line({"t": self._t(at), "kind": "client", "text": text[:MAX_CLIENT_TEXT]})

    def turn_event(self, turn: int, at_ms: float | None, fields: dict[str, Any]) -> None:
        line: dict[str, Any] = {"t": self._t(), "kind": "turn", "turn": turn}
        if at_ms is not None:
            line["at_ms"] = round(at_ms, 1)
        self._line({**line, "event": fields})

    def client_audio(self, pcm: bytes, at: float) -> None:
        self._frames.append((self._t(at), len(pcm)))
        self._utterance += pcm

    def utterance(self, turn: int, history: Iterable[Message], at: float) -> None:
        frames, self._frames = self._frames, []
        pcm, self._utterance = bytes(self._utterance), bytearray()
        name = user_file(turn)
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
                self._frames, self._utterance = [], bytearray()

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
            ACTIVE.discard(self.folder.resolve())
        if not self._failed:
            await self._prune()

    # --- writing ----------------------------------------------------------------------------------

    def _end_reply(self) -> None:
        reply, self._reply = self._reply, None
        if reply is None or self._file is None:
            return
        name = reply_file(reply.turn)
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
        keep = frozenset(ACTIVE)
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
    write_private(path, data)


def make_recorder(settings: RecordingSettings, session_id: str) -> Recorder:
    """A recorder for the session: a real one when recording is enabled, else one that does nothing."""
    return SessionRecorder(settings, session_id) if settings.enabled else Recorder()
