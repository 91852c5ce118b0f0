"""Parsing client frames and encoding server events."""

from __future__ import annotations

import json

import pytest

from voicebot.session.machine import State
from voicebot.session.protocol import (
    AudioStart,
    Error,
    ProtocolError,
    Reset,
    StartListening,
    Status,
    StopListening,
    check_audio_frame,
    encode_event,
    parse_action,
)


@pytest.mark.parametrize(
    ("text", "action"),
    [
        ('{"action": "start_listening"}', StartListening()),
        ('{"action": "start_listening", "played_ms": 1840}', StartListening(played_ms=1840)),
        ('{"action": "start_listening", "played_ms": 12.7}', StartListening(played_ms=12)),
        ('{"action": "start_listening", "played_ms": null}', StartListening()),
        ('{"action": "stop_listening"}', StopListening()),
        ('{"action": "reset", "extra": [1, 2]}', Reset()),
    ],
)
def test_valid_actions(text: str, action: object) -> None:
    assert parse_action(text) == action


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("", "invalid_json"),
        ("not json", "invalid_json"),
        ("{'action': 'reset'}", "invalid_json"),
        ("[1, 2]", "invalid_json"),
        ('"start_listening"', "invalid_json"),
        ("[" * 100_000, "invalid_json"),
        ("{}", "invalid_message"),
        ('{"action": 3}', "invalid_message"),
        ('{"action": "start_listening", "played_ms": -1}', "invalid_message"),
        ('{"action": "start_listening", "played_ms": "100"}', "invalid_message"),
        ('{"action": "start_listening", "played_ms": true}', "invalid_message"),
        ('{"action": "start_listening", "played_ms": 1e12}', "invalid_message"),
        ('{"action": "dance"}', "unknown_action"),
        ('{"action": "START_LISTENING"}', "unknown_action"),
    ],
)
def test_invalid_actions_have_stable_codes(text: str, code: str) -> None:
    with pytest.raises(ProtocolError) as error:
        parse_action(text)
    assert error.value.code == code
    assert error.value.message


def test_unknown_action_message_names_the_choices() -> None:
    with pytest.raises(ProtocolError) as error:
        parse_action('{"action": "dance"}')
    assert "'dance'" in error.value.message and "start_listening" in error.value.message


@pytest.mark.parametrize("frame", [b"", None, b"\x01", b"\x01\x02\x03"])
def test_bad_audio_frames(frame: bytes | None) -> None:
    with pytest.raises(ProtocolError) as error:
        check_audio_frame(frame)
    assert error.value.code == "bad_audio_frame"


def test_good_audio_frame_is_returned_as_is() -> None:
    assert check_audio_frame(b"\x01\x02" * 320) == b"\x01\x02" * 320


def test_events_encode_with_their_type_and_without_empty_fields() -> None:
    assert json.loads(encode_event(Status(State.IDLE, "Ready", 0, session_id="abc"))) == {
        "type": "status",
        "state": "idle",
        "message": "Ready",
        "turn": 0,
        "session_id": "abc",
    }
    assert json.loads(encode_event(AudioStart(3, sample_rate=22050))) == {
        "type": "audio_start",
        "turn": 3,
        "format": "pcm_s16le",
        "sample_rate": 22050,
        "channels": 1,
    }
    assert json.loads(encode_event(Error("invalid_json", "bad"))) == {
        "type": "error",
        "code": "invalid_json",
        "message": "bad",
    }
