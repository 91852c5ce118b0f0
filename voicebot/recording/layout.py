"""What a recording folder holds, shared by the writer, the retention policy and the reader.

A recording folder is named ``<UTC start time>-<session id>`` (``20260509T073525.123Z-9f1c…``) and holds:

``session.json``
    Written when the session starts: format version, session id, start time, the client's address
    and user agent, the providers in use and all settings (secrets are never in settings).
``events.jsonl``
    One JSON object per line, each with ``t`` (seconds since the session started) and ``kind``:

    - ``turn`` (format 2): one event of a turn (``turn``, ``at_ms`` since the user released the
      button, and ``event``: the typed event's fields with its ``type``, see
      :mod:`voicebot.turn.events`). Replay reads turns from these lines only;
    - ``log``: every other line the session logged (``event``, ``level``, ``turn``, ``state``, fields);
    - ``client``: a text frame from the page (``text``, the raw action JSON), at its arrival;
    - ``server``: an event sent to the page (``event``, the JSON object);
    - ``utterance``: a turn's user audio was saved (``turn``, ``file``, ``audio_ms``, the arrival
      time and size of every audio frame that went into it, and the conversation ``history`` the
      turn started from);
    - ``reply_audio``: a turn's reply audio was saved (``turn``, ``file``, ``sample_rate``, ``audio_ms``).
``turn-NNN-user.wav`` / ``turn-NNN-reply.wav``
    The utterance (16 kHz) and the reply audio that was sent (at the TTS rate; cut short by a barge-in).

Format 1 (before turn events existed) kept a turn's outcome in ``log`` lines only; the reader
converts them to turn events as it reads (:mod:`voicebot.recording.legacy`).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

FORMAT_VERSION = 2
#: Formats this version reads.
READABLE_FORMATS = (1, 2)
SESSION_FILE = "session.json"
EVENTS_FILE = "events.jsonl"
#: Longest client text frame kept (actions are tiny; anything longer is kept cut).
MAX_CLIENT_TEXT = 4096

FOLDER = re.compile(r"^(?P<time>\d{8}T\d{6}\.\d{3}Z)-(?P<session>[A-Za-z0-9_-]+)$")
_TIME_FORMAT = "%Y%m%dT%H%M%S.%fZ"


def folder_name(session_id: str, started: datetime) -> str:
    """``<UTC start time with ms>-<session id>``: names sort by age."""
    return f"{started.strftime('%Y%m%dT%H%M%S')}.{started.microsecond // 1000:03d}Z-{session_id}"


def folder_time(path: Path) -> datetime | None:
    """The start time in a recording folder's name, or ``None`` when it is not a recording folder."""
    match = FOLDER.match(path.name)
    if match is None:
        return None
    return datetime.strptime(match["time"], _TIME_FORMAT).replace(tzinfo=UTC)


def user_file(turn: int) -> str:
    return f"turn-{turn:03d}-user.wav"


def reply_file(turn: int) -> str:
    return f"turn-{turn:03d}-reply.wav"
