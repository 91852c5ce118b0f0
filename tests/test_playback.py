"""The reply's playback: pacing to real time and what was heard, with a scripted clock (no waiting)."""

from __future__ import annotations

import asyncio

import pytest

from tests.fakes import ScriptedClock
from voicebot import audio
from voicebot.turn.playback import PLAYBACK_SLACK_MS, Playback

RATE = 16_000


def tone(ms: float) -> bytes:
    return b"\x10\x00" * int(RATE * ms / 1000)


class Sink:
    def __init__(self, clock: ScriptedClock) -> None:
        self.clock = clock
        self.frames: list[tuple[float, int]] = []
        self.sent_ms: float | None = None
        self.drained_at: float | None = None

    def send(self, frame: bytes, offset_ms: float) -> None:
        self.frames.append((self.clock(), len(frame)))

    def on_sent(self, ms: float) -> None:
        self.sent_ms = ms

    def on_drained(self) -> None:
        self.drained_at = self.clock()


def playback(clock: ScriptedClock, sink: Sink, lead_ms: int = 1000) -> Playback:
    return Playback(sink.send, RATE, 100, lead_ms, sink.on_sent, sink.on_drained, clock=clock, sleep=clock.sleep)


async def settle() -> None:
    for _ in range(200):
        await asyncio.sleep(0)


async def test_frames_are_paced_never_more_than_the_lead_ahead_and_the_end_waits_for_playback() -> None:
    clock = ScriptedClock()
    sink = Sink(clock)
    play = playback(clock, sink, lead_ms=1000)
    start = clock()
    play.add("A three second sentence.", tone(3000))
    play.close()
    await settle()
    assert len(sink.frames) == 30 and {size for _, size in sink.frames} == {3200}
    for index, (at, _) in enumerate(sink.frames):
        playback_time_s = index * 0.1  # when this frame's audio starts playing
        assert at - start >= playback_time_s - 1.0 - 1e-9  # never more than the 1 s lead ahead
    assert sink.sent_ms == pytest.approx(3000)
    assert sink.drained_at == pytest.approx(start + 3.0 + PLAYBACK_SLACK_MS / 1000)


async def test_heard_counts_whole_sentences_and_words_of_the_cut_one_by_its_full_duration() -> None:
    clock = ScriptedClock(auto_advance=False)
    sink = Sink(clock)
    play = playback(clock, sink, lead_ms=200)
    play.add("The first sentence.", tone(950))
    play.add("The second sentence is a longer one.", tone(1800))
    for _ in range(225):  # 2.25 s pass: 1.3 s into the 1.8 s second sentence
        await settle()
        clock.advance(0.01)
    await settle()
    assert play.sent_ms < play.total_ms  # only 200 ms ahead: the end of sentence 2 is not sent yet
    # Words are measured against the cut sentence's full 1.8 s, not the part sent so far
    # (which would give one more word: "... is a longer").
    assert play.heard(reported_ms=2250) == "The first sentence. The second sentence is a"
    assert play.heard() == play.heard(reported_ms=2250)  # without a report: the same clock
    assert play.heard(reported_ms=0) == ""
    assert play.heard(reported_ms=950) == "The first sentence."
    play.stop()


async def test_heard_never_exceeds_what_was_sent_and_stop_sends_nothing_more() -> None:
    clock = ScriptedClock()
    sink = Sink(clock)
    play = playback(clock, sink, lead_ms=0)
    play.add("One two three four.", tone(2000))
    await asyncio.sleep(0)
    sent_before = len(sink.frames)
    play.stop()
    await settle()
    assert len(sink.frames) == sent_before
    assert play.played_ms(reported_ms=5000) == pytest.approx(audio.duration_ms(3200 * sent_before, RATE))
    assert sink.sent_ms is None and sink.drained_at is None


async def test_a_closed_playback_without_audio_reports_at_once() -> None:
    clock = ScriptedClock()
    sink = Sink(clock)
    play = playback(clock, sink)
    play.close()
    await settle()
    assert sink.sent_ms == 0 and sink.drained_at == clock()
    assert play.heard() == ""


async def test_when_the_page_runs_dry_the_next_sentence_plays_on_arrival_and_the_clock_follows() -> None:
    """The second sentence is synthesised 1.5 s after the first (1 s long) started: the page played
    the first, was silent for 0.5 s, and plays the second as it arrives. Heard text, pacing and
    when each frame is heard (for the echo guard) all count from there, not from the first frame."""
    clock = ScriptedClock(auto_advance=False)
    sink = Sink(clock)
    play = playback(clock, sink, lead_ms=200)
    start = clock()
    play.add("The first sentence.", tone(1000))
    for _ in range(150):
        await settle()
        clock.advance(0.01)
    assert play.played_ms() == pytest.approx(1000)  # all of it played; then silence
    assert play.plays_at(500) == pytest.approx(start + 0.5)
    play.add("The second sentence is a longer one.", tone(1800))
    await settle()
    arrived = clock()
    assert play.plays_at(1000) == pytest.approx(arrived)  # the second sentence starts on arrival
    for _ in range(90):  # 0.9 s later: half of the second sentence heard, not 1.4 s of it
        await settle()
        clock.advance(0.01)
    assert play.played_ms() == pytest.approx(1900, abs=15)
    assert play.heard() == "The first sentence. The second sentence"  # 3.5 of its 7 words
    # Pacing follows the shifted clock: still never more than the lead ahead of what is heard.
    assert play.sent_ms - play.played_ms() <= 200 + 100 + 1e-6
    play.stop()
