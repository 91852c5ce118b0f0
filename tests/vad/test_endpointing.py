"""The endpointer on scripted probability sequences: no model, no clock."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from pydantic import ValidationError

from voicebot.handsfree.endpointing import (
    BargeIn,
    Endpointer,
    EndpointEvent,
    HandsFreeSettings,
    SpeechEnded,
    SpeechStarted,
)

WINDOW_MS = 32.0


def run(endpointer: Endpointer, script: Sequence[tuple[float, float]], *, echo: bool = False) -> list[EndpointEvent]:
    """Feed ``(probability, milliseconds)`` segments window by window; return every event."""
    events: list[EndpointEvent] = []
    for probability, length_ms in script:
        for _ in range(round(length_ms / WINDOW_MS)):
            events += endpointer.feed(probability, WINDOW_MS, echo=echo)
    return events


def test_silence_and_noise_start_nothing() -> None:
    endpointer = Endpointer()
    assert run(endpointer, [(0.02, 30_000), (0.3, 5_000), (0.45, 5_000)]) == []
    assert endpointer.now_ms == pytest.approx(40_000, abs=WINDOW_MS)


def test_one_utterance_gives_a_start_and_an_end_at_the_right_times() -> None:
    events = run(Endpointer(), [(0.0, 992), (0.9, 1504), (0.05, 1024)])
    assert events == [
        SpeechStarted(at_ms=992, detected_at_ms=992 + 224),
        SpeechEnded(at_ms=992 + 1504, speech_ms=1504, detected_at_ms=992 + 1504 + 576),
    ]


def test_a_cough_shorter_than_min_speech_starts_nothing() -> None:
    assert run(Endpointer(), [(0.0, 512), (0.95, 160), (0.0, 2000), (0.9, 64), (0.1, 2000)]) == []


def test_speech_just_long_enough_starts() -> None:
    settings = HandsFreeSettings()
    events = run(Endpointer(settings), [(0.0, 320), (0.8, settings.min_speech_ms), (0.0, 1000)])
    assert [type(event) for event in events] == [SpeechStarted, SpeechEnded]


def test_a_pause_inside_a_sentence_does_not_end_it() -> None:
    events = run(Endpointer(), [(0.0, 320), (0.9, 800), (0.05, 320), (0.9, 800), (0.05, 1000)])
    assert [type(event) for event in events] == [SpeechStarted, SpeechEnded]
    (ended,) = [event for event in events if isinstance(event, SpeechEnded)]
    assert ended.speech_ms == 800 + 320 + 800


def test_a_pause_as_long_as_end_silence_ends_the_turn() -> None:
    events = run(Endpointer(), [(0.0, 320), (0.9, 800), (0.05, 576), (0.9, 800), (0.05, 1000)])
    assert [type(event) for event in events] == [SpeechStarted, SpeechEnded, SpeechStarted, SpeechEnded]


def test_two_questions_with_silence_between_give_two_turns() -> None:
    events = run(Endpointer(), [(0.0, 1000), (0.9, 1500), (0.0, 3000), (0.85, 2000), (0.0, 1000)])
    ended = [event for event in events if isinstance(event, SpeechEnded)]
    assert len(ended) == 2
    assert ended[1].at_ms > ended[0].detected_at_ms


def test_hysteresis_keeps_middling_windows_inside_speech() -> None:
    # 0.4 is under the threshold but over threshold - 0.15: it neither starts nor ends a turn.
    events = run(Endpointer(), [(0.4, 992), (0.9, 512), (0.4, 1984), (0.0, 608)])
    started, ended = events
    assert isinstance(started, SpeechStarted) and started.at_ms == 992
    assert isinstance(ended, SpeechEnded) and ended.at_ms == 992 + 512 + 1984


def test_middling_windows_after_silence_began_do_not_stop_the_count() -> None:
    events = run(Endpointer(), [(0.9, 500), (0.1, 288), (0.4, 288), (0.0, 64)])
    assert [type(event) for event in events] == [SpeechStarted, SpeechEnded]


def test_a_dip_under_the_low_threshold_resets_a_candidate() -> None:
    # Two 160 ms bursts separated by a 32 ms gap of silence: neither alone is long enough.
    assert run(Endpointer(), [(0.9, 160), (0.0, 32), (0.9, 160), (0.0, 1000)]) == []


def test_an_endless_utterance_is_ended_at_the_length_limit() -> None:
    settings = HandsFreeSettings(max_utterance_s=2.0)
    events = run(Endpointer(settings), [(0.9, 3000)])
    assert [type(event) for event in events] == [SpeechStarted, SpeechEnded, SpeechStarted]
    ended = events[1]
    assert isinstance(ended, SpeechEnded) and ended.speech_ms == pytest.approx(2000, abs=WINDOW_MS)


def test_while_the_assistant_speaks_a_start_is_a_barge_in_after_the_confirmation_window() -> None:
    endpointer = Endpointer(HandsFreeSettings(min_speech_ms=160, barge_in_confirm_ms=256))
    endpointer.set_assistant_speaking(True)
    assert run(endpointer, [(0.9, 224), (0.0, 512)]) == []  # long enough to start, too short to interrupt
    events = run(endpointer, [(0.9, 256)])
    assert events == [BargeIn(at_ms=224 + 512, detected_at_ms=224 + 512 + 256)]
    endpointer.set_assistant_speaking(False)  # the session interrupted the reply
    ended = run(endpointer, [(0.9, 500), (0.0, 600)])
    assert [type(event) for event in ended] == [SpeechEnded]


def test_while_the_assistant_speaks_the_start_threshold_is_raised() -> None:
    endpointer = Endpointer()
    endpointer.set_assistant_speaking(True)
    assert run(endpointer, [(0.6, 2000), (0.0, 500)]) == []
    endpointer.set_assistant_speaking(False)
    assert [type(event) for event in run(endpointer, [(0.6, 500)])] == [SpeechStarted]


def test_windows_marked_as_echo_are_silence_only_while_the_assistant_speaks() -> None:
    endpointer = Endpointer()
    endpointer.set_assistant_speaking(True)
    assert run(endpointer, [(0.99, 3000)], echo=True) == []
    endpointer.set_assistant_speaking(False)
    assert [type(event) for event in run(endpointer, [(0.99, 500)], echo=True)] == [SpeechStarted]


def test_echo_windows_do_not_confirm_a_barge_in_and_a_run_of_them_cancels_it() -> None:
    endpointer = Endpointer()
    endpointer.set_assistant_speaking(True)
    events = run(endpointer, [(0.9, 160)])
    events += run(endpointer, [(0.9, 96)], echo=True)  # three windows of echo: the candidate is gone
    events += run(endpointer, [(0.9, 160)])
    assert events == []
    assert endpointer.onset_ms == 160 + 96


def test_a_window_or_two_of_echo_does_not_cancel_a_barge_in() -> None:
    endpointer = Endpointer(HandsFreeSettings(barge_in_confirm_ms=256))
    endpointer.set_assistant_speaking(True)
    events: list[EndpointEvent] = []
    for index in range(12):  # user speech in which the guard calls every third window echo
        events += endpointer.feed(0.9, WINDOW_MS, echo=index % 3 == 2)
    assert events == [BargeIn(at_ms=0, detected_at_ms=11 * WINDOW_MS)]  # the 8th non-echo window


def test_reset_forgets_speech_in_progress() -> None:
    endpointer = Endpointer()
    run(endpointer, [(0.9, 500)])
    assert endpointer.in_speech
    endpointer.reset()
    assert not endpointer.in_speech and endpointer.onset_ms is None
    assert run(endpointer, [(0.0, 2000)]) == []


def test_window_size_does_not_change_the_decisions() -> None:
    """Fed in 16 ms windows the same script gives the same events (time is what counts)."""
    script = [(0.0, 992), (0.9, 1504), (0.05, 1024)]
    settings = HandsFreeSettings(end_silence_ms=544)  # a whole number of windows of either size
    fine = Endpointer(settings)
    events: list[EndpointEvent] = []
    for probability, length_ms in script:
        for _ in range(round(length_ms / 16)):
            events += fine.feed(probability, 16.0)
    assert len(events) == 2
    assert events == run(Endpointer(settings), script)


def test_settings_are_frozen_and_reject_unknown_or_inconsistent_values() -> None:
    settings = HandsFreeSettings()
    with pytest.raises(ValidationError):
        settings.threshold = 0.9  # type: ignore[misc]
    with pytest.raises(ValidationError, match="extra"):
        HandsFreeSettings(treshold=0.4)  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="end_threshold_drop"):
        HandsFreeSettings(threshold=0.2, end_threshold_drop=0.3)
