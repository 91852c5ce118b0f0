"""Property tests of the protocol parser: every text frame becomes an action or a ProtocolError with
a documented code, and every binary frame is usable audio or a ``bad_audio_frame`` error. Nothing
else (no other exception, no silent acceptance of a malformed action)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from voicebot.session.protocol import (
    ProtocolError,
    Reset,
    StartListening,
    StopListening,
    check_audio_frame,
    parse_action,
)

TEXT_CODES = {"invalid_json", "invalid_message", "unknown_action"}

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
ACTIONS = st.sampled_from(["start_listening", "stop_listening", "reset"]) | st.text(max_size=30)
MESSAGES = st.fixed_dictionaries(
    {"action": ACTIONS | JSON_VALUES}, optional={"played_ms": JSON_VALUES | st.integers(-10, 10**10)}
)


def outcome(text: str) -> Any:
    try:
        return parse_action(text)
    except ProtocolError as exc:
        assert exc.code in TEXT_CODES, exc.code
        assert exc.message and len(exc.message) < 300
        return exc


@settings(max_examples=300)
@given(st.text(max_size=200))
def test_any_text_is_an_action_or_a_documented_error(text: str) -> None:
    outcome(text)


@settings(max_examples=300)
@given(MESSAGES | JSON_VALUES)
def test_any_json_is_an_action_or_a_documented_error(value: Any) -> None:
    result = outcome(json.dumps(value))
    if isinstance(result, StartListening | StopListening | Reset):
        assert isinstance(value, dict) and value["action"] in ("start_listening", "stop_listening", "reset")
    if isinstance(result, StartListening):
        assert result.played_ms is None or 0 <= result.played_ms < 10**9


@given(st.integers(1, 10_000))
def test_deeply_nested_json_is_rejected_not_a_crash(depth: int) -> None:
    outcome("[" * depth + "]" * depth)
    outcome('{"action": ' + "[" * depth + "]" * depth + "}")


@given(st.binary(max_size=4096) | st.none())
def test_any_binary_frame_is_audio_or_bad_audio_frame(frame: bytes | None) -> None:
    try:
        pcm = check_audio_frame(frame)
    except ProtocolError as exc:
        assert exc.code == "bad_audio_frame"
        assert not frame or len(frame) % 2 == 1
    else:
        assert pcm == frame and len(pcm) % 2 == 0 and pcm
