"""The test client hears reply audio as the page plays it: a frame that comes after the audio before
it has played out is a break a listener would hear (the benchmark counts them)."""

from __future__ import annotations

from voicebot.bench.report import summarize
from voicebot.bench.talk import TurnSample
from voicebot.client import TurnResult

RATE = 1000  # samples a second: a frame of 200 bytes is 100 ms


def test_frames_sent_ahead_play_without_a_break_and_a_late_one_is_a_gap() -> None:
    turn = TurnResult(audio_format={"type": "audio_start", "sample_rate": RATE}, stopped_at=0.0)
    turn.heard(b"\0" * 200, at=1.00)  # plays 1.00-1.10
    turn.heard(b"\0" * 200, at=1.01)  # queued: 1.10-1.20
    turn.heard(b"\0" * 200, at=1.15)  # still before the queue runs out: 1.20-1.30
    assert turn.gaps_ms == []
    turn.heard(b"\0" * 200, at=1.50)  # the queue ran out at 1.30: 200 ms of silence
    turn.heard(b"\0" * 200, at=1.62)  # 1.60 ran out 20 ms before: too short to count
    assert [round(gap) for gap in turn.gaps_ms] == [200]
    assert turn.first_audio_ms == 1000 and turn.audio_frames == 5


def test_the_benchmark_counts_turns_whose_audio_broke_off() -> None:
    samples = [
        TurnSample("a", None, 0, 100.0, gaps_ms=[]),
        TurnSample("b", None, 0, 120.0, gaps_ms=[45.0, 310.0]),
    ]
    summary = summarize(samples)
    assert summary["turns_with_gaps"] == 1 and summary["longest_gap_ms"] == 310.0
