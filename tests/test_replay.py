"""``voicebot replay`` on a real recorded session: the pipeline mode (transcripts then and now match,
the timeline page is written), the client-message mode (the barge-in happens again), and the exit
code and message for missing or damaged recordings."""

from __future__ import annotations

import io
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import RecordedSession
from voicebot.cli import main
from voicebot.providers.base import Stages
from voicebot.recording.reader import load_recording
from voicebot.recording.replay import client_steps, run_replay


def replay_json(recorded: RecordedSession, stages: Stages, **options: Any) -> dict[str, Any]:
    out = io.StringIO()
    code = run_replay(recorded.settings, recorded.session_id, json_output=True, stages=stages, out=out, **options)
    assert code == 0
    report: dict[str, Any] = json.loads(out.getvalue())
    return report


def test_replaying_the_pipeline_gives_the_same_transcripts_and_writes_the_timeline(
    recorded_session: RecordedSession, embedded_stages: Stages, tmp_path: Path
) -> None:
    page = tmp_path / "timeline.html"
    report = replay_json(recorded_session, embedded_stages, html=page)
    assert report["mode"] == "pipeline" and report["session_id"] == recorded_session.session_id
    assert report["providers"]["then"] == report["providers"]["now"]
    first, second = report["turns"]
    for turn, seen in zip(report["turns"], recorded_session.turns, strict=True):
        assert turn["then"]["transcript"] == seen.transcript
        assert turn["now"]["transcript"] == seen.transcript
        assert turn["transcript_matches"] is True
    assert first["then"]["outcome"] == "interrupted" and first["then"]["reply"] is None
    assert first["now"]["reply"]  # run to the end now: nobody interrupts a replay
    assert second["then"]["outcome"] == "finished"
    assert second["then"]["reply"] == recorded_session.turns[1].reply
    assert second["reply_matches"] is True  # same model, same seed, same history
    for turn in report["turns"]:
        assert {"asr_ms", "llm_ms", "tts_ms"} <= turn["now"]["timings"].keys()
    assert {"asr_ms", "llm_ms", "tts_ms"} <= second["then"]["timings"].keys()

    html = page.read_text(encoding="utf-8")
    assert report["html"] == str(page)
    assert html.startswith("<!doctype html>") and "<script" not in html and "http" not in html.split("<body>")[1]
    assert html.count('<section class="turn"') == 2
    assert html.count('<svg class="waveform"') == 2 and html.count('<svg class="timeline"') == 2
    for seen in recorded_session.turns:
        assert (seen.transcript or "") in html
    assert 'class="cut"' in html and "barge-in at" in html  # where the barge-in cut turn 1
    for stage in ("asr", "llm", "tts"):
        assert f'class="bar-{stage}"' in html
    assert re.search(r'class="bar-play" x="[\d.]+" y="\d+" width="[\d.]+"', html)  # turn 2's reply playback


def test_text_report_shows_then_and_now_per_turn(recorded_session: RecordedSession, embedded_stages: Stages) -> None:
    out = io.StringIO()
    assert run_replay(recorded_session.settings, str(recorded_session.folder), stages=embedded_stages, out=out) == 0
    text = out.getvalue()
    assert f"session {recorded_session.session_id} (pipeline mode)" in text
    assert "turn 1" in text and "then: interrupted" in text and "turn 2" in text
    assert text.count("(same)") >= 3  # both transcripts and turn 2's reply
    assert text.count("timings ms") == 2


def test_re_sending_the_client_messages_reproduces_the_barge_in(
    recorded_session: RecordedSession, embedded_stages: Stages
) -> None:
    recording = load_recording(recorded_session.folder)
    steps = client_steps(recording)
    texts = [json.loads(step.data) for step in steps if isinstance(step.data, str)]
    barge_in = next(step for step in steps if isinstance(step.data, str) and "played_ms" in step.data)
    assert texts[2] == {"action": "start_listening", "played_ms": 0}
    # Sent as soon as turn 1's transcript arrived (the "thinking" status follows it at once).
    assert barge_in.anchor in {("transcript", 1, "", 0), ("status", 1, "thinking", 0)}
    assert barge_in.delay_s < 0.5
    assert sum(len(step.data) for step in steps if isinstance(step.data, bytes)) == sum(
        len(turn.user_pcm()) for turn in recording.turns
    )

    report = replay_json(recorded_session, embedded_stages, messages=True)
    assert report["mode"] == "messages" and report["divergences"] == []
    assert report["client_frames"] == len(steps)
    first, second = report["turns"]
    assert first["then"]["states"] == ["transcribing", "thinking", "listening"]
    assert first["now"]["states"] == first["then"]["states"]  # interrupted while thinking, again
    assert first["now"]["heard"] == "" and first["now"]["reply"] is None
    assert first["matches"]["transcript"] and second["matches"]["transcript"]
    assert second["now"]["states"][-1] == "idle" and second["now"]["transcript"] == recorded_session.turns[1].transcript


@pytest.mark.usefixtures("restore_logging")
def test_a_missing_recording_exits_non_zero_with_a_clear_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "settings.yaml"
    config.write_text(f"recording:\n  directory: {tmp_path / 'recordings'}\n")
    assert main(["replay", "0123456789abcdef", "--config", str(config)]) == 1
    err = capsys.readouterr().err
    assert "voicebot replay: No recording of session '0123456789abcdef'" in err
    assert str(tmp_path / "recordings") in err


@pytest.mark.usefixtures("restore_logging")
def test_a_damaged_recording_exits_non_zero_with_a_clear_message(
    recorded_session: RecordedSession, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = Path(shutil.copytree(recorded_session.folder, tmp_path / recorded_session.folder.name))
    (folder / "turn-001-user.wav").write_bytes(b"not a wav")
    assert main(["replay", str(folder), "--json", "--config", str(tmp_path / "missing.yaml")]) == 2  # bad --config
    assert "does not exist" in capsys.readouterr().err
    config = tmp_path / "settings.yaml"
    config.write_text("logging:\n  level: info\n")
    assert main(["replay", str(folder), "--json", "--config", str(config)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""  # nothing half-written on stdout for a --json consumer
    assert f"voicebot replay: Damaged recording {folder}: turn 1's user audio turn-001-user.wav" in captured.err
