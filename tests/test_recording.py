"""Session recordings: what a real session leaves on disk, what a disconnect mid-turn leaves, how
damage is reported, and retention (oldest removed first)."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import (
    QUESTION,
    SECOND_QUESTION,
    RecordedSession,
    only_folder,
    recording_settings,
    sessions_ended,
)
from tests.fakes import FakeASR, FakeLLM, FakeTTS
from voicebot import audio
from voicebot.client import VoiceClient
from voicebot.providers.base import Message, Stages
from voicebot.recording.layout import EVENTS_FILE, SESSION_FILE, folder_name
from voicebot.recording.reader import RecordingError, find_recording, load_recording
from voicebot.recording.retention import prune_recordings
from voicebot.server.localserver import local_server
from voicebot.settings import Settings

# --- a real session -------------------------------------------------------------------------------


def test_a_session_is_recorded_as_events_and_per_turn_audio(
    recorded_session: RecordedSession, speech: dict[str, bytes]
) -> None:
    folder = recorded_session.folder
    assert folder.name.endswith("-" + recorded_session.session_id)
    assert sorted(p.name for p in folder.iterdir()) == [
        EVENTS_FILE,
        SESSION_FILE,
        "turn-001-user.wav",  # turn 1 was interrupted before any reply audio: no reply file
        "turn-002-reply.wav",
        "turn-002-user.wav",
    ]
    meta = json.loads((folder / SESSION_FILE).read_text())
    assert meta["session_id"] == recorded_session.session_id
    assert meta["client"] == {"client": "127.0.0.1", "user_agent": "pytest-client/1.0"}
    assert set(meta["providers"]) == {"asr", "llm", "tts"}
    assert meta["providers"]["llm"]["provider"] == "llama_cpp"
    assert meta["settings"]["session"] == recorded_session.settings.session.model_dump(mode="json")

    lines = [json.loads(line) for line in (folder / EVENTS_FILE).read_text().splitlines()]
    assert {line["kind"] for line in lines} == {"log", "turn", "client", "server", "utterance", "reply_audio"}
    actions = [json.loads(line["text"]) for line in lines if line["kind"] == "client"]
    assert actions == [
        {"action": "start_listening"},
        {"action": "stop_listening"},
        {"action": "start_listening", "played_ms": 0},
        {"action": "stop_listening"},
    ]
    for line in lines:
        if line["kind"] == "log":
            assert {"turn", "state", "event", "level"} <= line.keys(), line
    turn_events = [(line["turn"], line["event"]["type"]) for line in lines if line["kind"] == "turn"]
    # Turn 1 was prepared in the silence after the question, the button still held (early reply).
    assert turn_events[:4] == [(1, "early_reply"), (1, "stage_started"), (1, "stage_ended"), (1, "transcript")]
    assert (1, "barge_in") in turn_events and turn_events[-1] == (2, "turn_finished")
    for kind in ("transcript", "stage_started", "stage_ended", "reply", "segment_audio", "audio_started"):
        assert (2, kind) in turn_events, kind

    user, rate = audio.read_wav(folder / "turn-002-user.wav")
    assert rate == 16_000
    assert user == speech[SECOND_QUESTION]
    reply, reply_rate = audio.read_wav(folder / "turn-002-reply.wav")
    assert reply_rate == 22_050
    assert len(reply) == len(recorded_session.turns[1].audio)  # exactly the audio the page received


def test_the_recording_reads_back_turn_by_turn(recorded_session: RecordedSession, speech: dict[str, bytes]) -> None:
    recording = load_recording(
        find_recording(recorded_session.session_id, recorded_session.settings.recording.directory)
    )
    assert recording.folder == recorded_session.folder and not recording.truncated
    first, second = recording.turns
    assert first.user_pcm() == speech[QUESTION] and second.user_pcm() == speech[SECOND_QUESTION]
    for turn in (first, second):  # every audio frame's arrival, for re-sending them as they came
        assert sum(size for _, size in turn.frames) == len(turn.user_pcm())
        assert [t for t, _ in turn.frames] == sorted(t for t, _ in turn.frames) and turn.frames[-1][0] <= turn.t
    assert first.outcome == "interrupted" and first.played_ms == 0 and first.heard == ""
    assert first.transcript == recorded_session.turns[0].transcript
    assert first.reply_file is None
    assert second.outcome == "finished"
    assert second.transcript == recorded_session.turns[1].transcript
    assert second.reply == recorded_session.turns[1].reply
    assert {"asr_ms", "llm_first_token_ms", "llm_ms", "tts_first_audio_ms", "tts_ms"} <= second.timings.keys()
    assert {(m["event"], m["stage"]) for m in second.marks} >= {("stage_ended", s) for s in ("asr", "llm", "tts")}
    # Turn 1 was cut before any of its reply was heard: only the question stays in the conversation.
    assert second.history == [Message("user", first.transcript or "")]


# --- a disconnect mid-turn ------------------------------------------------------------------------


async def test_a_disconnect_mid_turn_keeps_the_finished_turns(default_settings: Settings, tmp_path: Path) -> None:
    settings = recording_settings(default_settings, tmp_path)
    llm = FakeLLM(delay_s=0.5)  # slow enough that the second turn is still thinking when the client leaves
    async with local_server(settings, Stages(FakeASR(), llm, FakeTTS(ms_per_char=5))) as server:
        client = await VoiceClient.connect(server.ws_url)
        finished = await client.utterance(b"\x00\x10" * 8_000)
        await client.send_action("start_listening")
        await client.send_audio(b"\x00\x10" * 8_000)
        await client.send_action("stop_listening")
        await client.wait_for(lambda f: isinstance(f, dict) and f.get("state") == "thinking")
        await client.close()
        await sessions_ended(server)
    folder = only_folder(tmp_path)
    first, second = load_recording(folder).turns
    assert first.outcome == "finished" and first.reply == finished.reply
    reply = first.reply_audio()
    assert reply is not None and len(reply[0]) == len(finished.audio)
    assert second.outcome == "incomplete" and second.transcript == "hello there" and second.reply is None


# --- damaged and missing recordings ---------------------------------------------------------------


@pytest.fixture
def copy(recorded_session: RecordedSession, tmp_path: Path) -> Path:
    """A copy of the recorded session's folder, free to damage."""
    return Path(shutil.copytree(recorded_session.folder, tmp_path / recorded_session.folder.name))


def test_a_cut_off_last_line_is_tolerated(copy: Path) -> None:
    events = copy / EVENTS_FILE
    events.write_text(events.read_text() + '{"t": 99.0, "kind": "log", "ev')
    recording = load_recording(copy)
    assert recording.truncated and len(recording.turns) == 2


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda f: (f / SESSION_FILE).unlink(), "session.json is missing"),
        (lambda f: (f / SESSION_FILE).write_text("{not json"), "session.json is not valid JSON"),
        (lambda f: (f / EVENTS_FILE).unlink(), "events.jsonl is missing"),
        (lambda f: (f / "turn-002-user.wav").unlink(), "turn 2's user audio turn-002-user.wav is missing"),
        (lambda f: (f / "turn-002-reply.wav").write_bytes(b"RIFF...."), "turn-002-reply.wav is not a readable WAV"),
        (
            lambda f: (f / EVENTS_FILE).write_text("garbage\n" + (f / EVENTS_FILE).read_text()),
            "events.jsonl line 1 is not valid",
        ),
    ],
    ids=["no-session-json", "bad-session-json", "no-events", "no-user-wav", "bad-reply-wav", "bad-line"],
)
def test_damage_is_reported_clearly(copy: Path, damage: object, message: str) -> None:
    damage(copy)  # type: ignore[operator]
    with pytest.raises(RecordingError, match="Damaged recording") as caught:
        load_recording(copy)
    assert message in str(caught.value) and str(copy) in str(caught.value)


def test_a_missing_recording_is_reported_clearly(tmp_path: Path) -> None:
    with pytest.raises(RecordingError, match=r"No recording of session 'abc123': nothing in .* has that id"):
        find_recording("abc123", tmp_path)
    with pytest.raises(RecordingError, match="No recording folder at"):
        find_recording(str(tmp_path / "gone" / "folder"), tmp_path)


# --- retention ------------------------------------------------------------------------------------

NOW = datetime(2026, 5, 9, 12, 0, tzinfo=UTC)


def make_recording(directory: Path, session_id: str, age: timedelta, size: int) -> Path:
    folder = directory / folder_name(session_id, NOW - age)
    folder.mkdir()
    (folder / "turn-001-user.wav").write_bytes(b"\0" * size)
    return folder


def test_retention_removes_recordings_older_than_the_age_limit(tmp_path: Path) -> None:
    old = make_recording(tmp_path, "old", timedelta(days=8), 10)
    recent = make_recording(tmp_path, "recent", timedelta(days=6), 10)
    unrelated = tmp_path / "notes-2019"
    unrelated.mkdir()
    assert prune_recordings(tmp_path, max_age_days=7, max_total_mb=0, now=NOW) == [old]
    assert sorted(tmp_path.iterdir()) == sorted([recent, unrelated])


def test_retention_removes_the_oldest_first_until_under_the_size_limit(tmp_path: Path) -> None:
    mb = 1024 * 1024
    folders = [make_recording(tmp_path, f"s{i}", timedelta(hours=10 - i), mb) for i in range(4)]  # s0 oldest
    removed = prune_recordings(tmp_path, max_age_days=0, max_total_mb=2.5, now=NOW)
    assert removed == folders[:2]
    assert sorted(tmp_path.iterdir()) == folders[2:]


def test_retention_never_removes_a_running_sessions_recording(tmp_path: Path) -> None:
    mb = 1024 * 1024
    running, older, newest = (
        make_recording(tmp_path, s, timedelta(hours=h), mb) for s, h in (("a", 3), ("b", 2), ("c", 1))
    )
    removed = prune_recordings(tmp_path, max_age_days=0.01, max_total_mb=1.5, keep=[running], now=NOW)
    assert removed == [older, newest]
    assert list(tmp_path.iterdir()) == [running]
