"""Structured logs: secrets redacted, JSON and console output, every session line bound to
session_id, turn and state (checked on a real recorded session), a provider's secret-bearing error
kept out of both the log and the recording."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import structlog

from tests.conftest import RecordedSession, only_folder, recording_settings, sessions_ended
from tests.fakes import FakeASR, FakeTTS
from voicebot.client import VoiceClient
from voicebot.logs import REDACTED, SessionLog, configure_logging, redact, redact_text
from voicebot.providers.base import Message, Stages
from voicebot.server.localserver import local_server
from voicebot.session.machine import State
from voicebot.settings import LoggingSettings, Settings

KEY = "sk-proj-Abc123Def456Ghi789"

#: Every line the session logs about itself.
SESSION_EVENTS = {
    "session_started",
    "session_ended",
    "state_changed",
    "utterance_ended",
    "stage_started",
    "stage_ended",
    "transcript",
    "reply",
    "barge_in",
    "turn_finished",
    "nothing_heard",
    "turn_failed",
    "audio_started",
    "segment_audio",
    "speech_done",
    "provider_fallback",
    "error_sent",
    "bad_client_message",
}


# --- redaction ------------------------------------------------------------------------------------


def test_redact_removes_secret_fields_and_credential_values_but_keeps_the_rest() -> None:
    line = {
        "event": "provider_call",
        "api_key": "abc",
        "OPENAI_API_KEY": "abc",
        "Authorization": "Bearer abcdefghijklmnop",
        "access_token": "t0k3n",
        "password": "hunter2",
        "max_tokens": 96,
        "llm_first_token_ms": 120.5,
        "text": "What is the capital of France?",
        "error": f"401 Incorrect API key provided: {KEY}",
        "url": "https://api.example.com/v1?key=AIzaSyA1234567890abcdefghijklmnopqrstu&lang=en",
        "nested": {"headers": {"x-api-key": "abc", "accept": "json"}, "list": [f"Bearer {KEY}", 3]},
    }
    cleaned = redact(line)
    for key in ("api_key", "OPENAI_API_KEY", "Authorization", "access_token", "password"):
        assert cleaned[key] == REDACTED
    assert cleaned["nested"]["headers"] == {"x-api-key": REDACTED, "accept": "json"}
    assert cleaned["nested"]["list"] == [REDACTED, 3]
    assert cleaned["error"] == f"401 Incorrect API key provided: {REDACTED}"
    assert cleaned["url"] == f"https://api.example.com/v1?key={REDACTED}&lang=en"
    assert cleaned["max_tokens"] == 96
    assert cleaned["llm_first_token_ms"] == 120.5
    assert cleaned["text"] == "What is the capital of France?"
    assert line["api_key"] == "abc"  # the caller's dict is not changed


def test_redact_text_catches_common_token_formats() -> None:
    for secret in (KEY, "ghp_" + "a" * 36, "hf_" + "B" * 34, "xoxb-1234567890-abcdef", "AKIAABCDEFGHIJKLMNOP"):
        assert redact_text(f"token was {secret}.") == f"token was {REDACTED}.", secret
    assert redact_text("sk-short and skeleton") == "sk-short and skeleton"


@pytest.mark.usefixtures("restore_logging")
def test_json_output_is_one_redacted_object_per_line_for_structlog_and_stdlib_lines() -> None:
    stream = io.StringIO()
    configure_logging(LoggingSettings(format="json"), stream)
    log = structlog.get_logger("voicebot.test")
    log.info("calling_provider", api_key=KEY, model="tiny")
    try:
        raise RuntimeError(f"upstream said: bad key {KEY}")
    except RuntimeError:
        log.exception("provider_failed")
    logging.getLogger("hypercorn.error").warning("proxy sent Authorization: Bearer %s", KEY)
    output = stream.getvalue()
    assert KEY not in output
    lines = [json.loads(line) for line in output.splitlines()]
    assert [line["event"] for line in lines[:2]] == ["calling_provider", "provider_failed"]
    assert lines[0]["api_key"] == REDACTED and lines[0]["model"] == "tiny"
    assert all(line["timestamp"].endswith("Z") and line["level"] for line in lines)
    (exception,) = lines[1]["exception"]
    assert exception["exc_value"] == f"upstream said: bad key {REDACTED}"
    assert all("locals" not in frame for frame in exception["frames"])  # no frame variables in production logs
    assert lines[2]["logger"] == "hypercorn.error" and lines[2]["level"] == "warning"
    assert lines[2]["event"] == f"proxy sent Authorization: {REDACTED}"


@pytest.mark.usefixtures("restore_logging")
def test_console_output_is_readable_and_redacted() -> None:
    stream = io.StringIO()
    configure_logging(LoggingSettings(format="console", level="warning"), stream)
    structlog.get_logger().info("hidden_below_level")
    structlog.get_logger().warning("slow_stage", stage="llm", token=KEY)
    output = stream.getvalue()
    assert "hidden_below_level" not in output
    assert "slow_stage" in output and "stage=llm" in output and KEY not in output and REDACTED in output
    with pytest.raises(json.JSONDecodeError):
        json.loads(output.splitlines()[0])


def test_session_log_adds_turn_and_state_unless_given_and_feeds_the_sink() -> None:
    context = {"turn": 3, "state": "thinking"}
    sunk: list[tuple[object, ...]] = []

    class Sink:
        def log(self, level: str, event: str, fields: dict[str, Any]) -> None:
            sunk.append((level, event, fields))

        def turn_event(self, turn: int, at_ms: float | None, fields: dict[str, Any]) -> None:
            sunk.append(("turn", turn, at_ms, fields))

    with structlog.testing.capture_logs() as logs:
        log = SessionLog("s1", lambda: dict(context), Sink())
        log.info("utterance_ended", audio_ms=900)
        context["state"] = "speaking"
        log.warning("slow_client", turn=2)
        log.turn_event("info", 4, "transcript", 12.34, {"text": "hi"})
    assert logs == [
        {
            "event": "utterance_ended",
            "log_level": "info",
            "session_id": "s1",
            "turn": 3,
            "state": "thinking",
            "audio_ms": 900,
        },
        {"event": "slow_client", "log_level": "warning", "session_id": "s1", "turn": 2, "state": "speaking"},
        {
            "event": "transcript",
            "log_level": "info",
            "session_id": "s1",
            "turn": 4,
            "state": "speaking",
            "at_ms": 12.3,
            "text": "hi",
        },
    ]
    assert sunk == [
        ("info", "utterance_ended", {"turn": 3, "state": "thinking", "audio_ms": 900}),
        ("warning", "slow_client", {"turn": 2, "state": "speaking"}),
        ("turn", 4, 12.34, {"type": "transcript", "text": "hi"}),
    ]


# --- a real session -------------------------------------------------------------------------------


def test_every_session_line_carries_session_id_turn_and_state(recorded_session: RecordedSession) -> None:
    lines = [line for line in recorded_session.logs if line["event"] in SESSION_EVENTS]
    states = {state.value for state in State}
    assert len(lines) > 20
    for line in lines:
        assert line["session_id"] == recorded_session.session_id, line
        assert isinstance(line["turn"], int), line
        assert line["state"] in states, line


def test_the_session_logs_what_the_issue_asks_for(recorded_session: RecordedSession) -> None:
    lines = [line for line in recorded_session.logs if line.get("session_id") == recorded_session.session_id]
    by_event: dict[str, list[dict[str, Any]]] = {}
    for line in lines:
        by_event.setdefault(line["event"], []).append(dict(line))

    (started,) = by_event["session_started"]
    assert started["client"] == "127.0.0.1" and started["user_agent"] == "pytest-client/1.0"
    (ended,) = by_event["session_ended"]
    assert ended["dropped_audio_frames"] == 0 and ended["turn"] == 2

    changes = [(c["source"], c["dest"], c["trigger"]) for c in by_event["state_changed"]]
    assert changes == [
        ("idle", "listening", "start_listening"),
        ("listening", "transcribing", "stop_listening"),
        ("transcribing", "thinking", "transcribed"),
        ("thinking", "listening", "start_listening"),  # the barge-in
        ("listening", "transcribing", "stop_listening"),
        ("transcribing", "thinking", "transcribed"),
        ("thinking", "speaking", "speak"),
        ("speaking", "idle", "finish"),
    ]
    (barge_in,) = by_event["barge_in"]
    assert barge_in["turn"] == 1 and barge_in["played_ms"] == 0 and barge_in["heard"] == ""
    assert [t["text"] for t in by_event["transcript"]] == [turn.transcript for turn in recorded_session.turns]
    assert [r["turn"] for r in by_event["reply"]] == [2]
    assert by_event["reply"][0]["text"] == recorded_session.turns[1].reply

    ended_stages = {(m["turn"], m["stage"]) for m in by_event["stage_ended"]}
    assert {(1, "asr"), (2, "asr"), (2, "llm"), (2, "tts")} <= ended_stages
    for mark in by_event["stage_ended"]:
        assert mark["duration_ms"] >= 0 and mark["at_ms"] >= mark["duration_ms"]
    started_stages = {(m["turn"], m["stage"], m["call"]) for m in by_event["stage_started"]}
    assert {(m["turn"], m["stage"], m["call"]) for m in by_event["stage_ended"]} <= started_stages
    (finished,) = by_event["turn_finished"]
    assert finished["turn"] == 2
    assert {"asr_ms", "llm_first_token_ms", "llm_ms", "tts_ms", "first_segment_ms", "first_audio_ms"} <= set(
        finished["timings"]
    )
    assert finished["timings"]["first_audio_ms"] >= finished["timings"]["first_segment_ms"] > 0


# --- a provider error carrying a key --------------------------------------------------------------


class LeakyLLM:
    """An LLM whose error message quotes the API key, as some HTTP APIs do."""

    name = "leaky"
    model = "fake"

    def warm(self) -> None:
        pass

    async def stream_reply(self, history: Sequence[Message], options: object = None) -> AsyncIterator[str]:
        raise RuntimeError(f"401 Unauthorized: Incorrect API key provided: {KEY}")
        yield ""  # an async generator, like real providers


@pytest.mark.usefixtures("restore_logging")
async def test_a_key_in_a_provider_error_reaches_neither_the_log_nor_the_recording(
    default_settings: Settings, tmp_path: Path
) -> None:
    stream = io.StringIO()
    configure_logging(LoggingSettings(format="json"), stream)
    settings = recording_settings(default_settings, tmp_path)
    async with local_server(settings, Stages(FakeASR(), LeakyLLM(), FakeTTS())) as server:
        client = await VoiceClient.connect(server.ws_url)
        turn = await client.utterance(b"\x00\x10" * 16_000)
        await client.close()
        await sessions_ended(server)
    assert [e["code"] for e in turn.errors] == ["llm_failed"]
    log = stream.getvalue()
    (failed,) = [json.loads(line) for line in log.splitlines() if '"turn_failed"' in line]
    assert failed["code"] == "llm_failed" and REDACTED in failed["message"]
    assert KEY not in log
    folder = only_folder(tmp_path)
    for path in folder.iterdir():
        if path.suffix in (".jsonl", ".json"):
            assert KEY not in path.read_text(encoding="utf-8"), path.name
    assert REDACTED in (folder / "events.jsonl").read_text(encoding="utf-8")
