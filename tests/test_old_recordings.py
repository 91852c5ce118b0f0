"""Recordings made by earlier versions still read and replay. ``tests/data/recordings-v1`` holds a
session recorded by the version before turn events (format 1): turn 1 cut by a barge-in 1.3 s into
its reply, turn 2 answered, turn 3 silence."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.fakes import FakeASR, FakeLLM, FakeTTS
from voicebot.providers.base import Stages
from voicebot.recording.reader import find_recording, load_recording
from voicebot.recording.replay import run_replay
from voicebot.recording.timeline import render_timeline
from voicebot.settings import Settings

V1 = Path(__file__).parent / "data" / "recordings-v1"
SESSION = "429d8f6c0f084ce9"


def test_a_format_1_recording_reads_back_turn_by_turn() -> None:
    recording = load_recording(find_recording(SESSION, V1))
    assert recording.meta["format"] == 1 and not recording.truncated
    first, second, third = recording.turns
    assert (first.outcome, first.transcript, first.heard, first.played_ms) == (
        "interrupted",
        "Tell me about the city of Paris.",
        "Paris, the City",
        1300,
    )
    assert first.barge_in_t is not None and first.barge_in_t > first.t
    assert first.reply_audio() is not None
    assert (second.outcome, second.transcript, second.reply) == (
        "finished",
        "How many days are there in a week?",
        "There are 7 days in a week.",
    )
    assert {"asr_ms", "llm_first_token_ms", "llm_ms", "tts_first_audio_ms", "tts_ms"} <= second.timings.keys()
    assert {(mark["event"], mark["stage"]) for mark in second.marks} >= {
        ("stage_ended", stage) for stage in ("asr", "llm", "tts")
    }
    assert (third.outcome, third.nothing_heard) == ("nothing_heard", "silence")
    assert [len(turn.history) for turn in recording.turns] == [0, 2, 4]


def test_a_format_1_recording_draws_its_timeline() -> None:
    html = render_timeline(load_recording(find_recording(SESSION, V1)))
    assert html.count('<section class="turn"') == 3 and "barge-in at" in html
    assert "Paris, the City" in html


def replay(settings: Settings, stages: Stages, folder: Path, **options: Any) -> dict[str, Any]:
    out = io.StringIO()
    assert run_replay(settings, str(folder), json_output=True, stages=stages, out=out, **options) == 0
    report: dict[str, Any] = json.loads(out.getvalue())
    return report


def fake_stages() -> Stages:
    # Replies long enough to be still playing when the recorded barge-in comes.
    return Stages(asr=FakeASR(text="How many days are there in a week?"), llm=FakeLLM(), tts=FakeTTS(ms_per_char=50))


async def test_a_format_1_recording_replays_through_the_pipeline(default_settings: Settings, tmp_path: Path) -> None:
    folder = Path(shutil.copytree(find_recording(SESSION, V1), tmp_path / "copy"))
    report = await asyncio_to_thread(replay, default_settings, fake_stages(), folder)
    first, second, third = report["turns"]
    assert first["then"]["outcome"] == "interrupted" and first["then"]["heard"] == "Paris, the City"
    assert second["then"]["reply"] == "There are 7 days in a week."
    assert second["now"]["transcript"] == "How many days are there in a week?" and second["transcript_matches"]
    # Now the intent layer knows this question: the calendar tool answers, no model is asked.
    assert second["now"]["reply"] == "There are 7 days in a week." and second["reply_matches"]
    assert [tool["name"] for tool in second["now"]["tools"]] == ["calendar_facts"]
    assert third["now"]["nothing_heard"] == "silence" == third["then"]["nothing_heard"]


@pytest.mark.slow
async def test_a_format_1_recording_replays_its_messages(default_settings: Settings, tmp_path: Path) -> None:
    folder = Path(shutil.copytree(find_recording(SESSION, V1), tmp_path / "copy"))
    report = await asyncio_to_thread(replay, default_settings, fake_stages(), folder, messages=True)
    assert report["mode"] == "messages" and report["client_frames"] > 100
    first, second, third = report["turns"]
    assert first["now"]["states"][:2] == ["transcribing", "thinking"]
    assert first["now"]["heard"] is not None  # the barge-in happened again
    assert second["now"]["states"][-2:] == ["idle", "listening"] and second["matches"]["transcript"]
    assert third["matches"]["states"]  # silence: nothing heard, then and now


async def asyncio_to_thread(func: Any, *args: Any, **kwargs: Any) -> Any:
    """Replay runs its own event loop (it is a command); keep it off the test's loop."""
    import asyncio

    return await asyncio.to_thread(func, *args, **kwargs)


@pytest.mark.models
async def test_a_format_1_recording_replays_with_the_embedded_models(
    default_settings: Settings, embedded_stages: Stages, tmp_path: Path
) -> None:
    folder = Path(shutil.copytree(find_recording(SESSION, V1), tmp_path / "copy"))
    report = await asyncio_to_thread(replay, default_settings, embedded_stages, folder)
    assert [turn["transcript_matches"] for turn in report["turns"]] == [True, True, True]
    assert report["turns"][1]["reply_matches"] is True  # same model, same seed, same history
