"""The microphone clock: server time to stream time from when frames arrived, trusting the frame
that arrived least late (frames are never early, only late)."""

from __future__ import annotations

import pytest

from voicebot.handsfree.clock import MicrophoneClock


def test_no_frame_no_estimate() -> None:
    assert MicrophoneClock().stream_ms(10.0) is None


def test_frames_on_time_map_server_time_to_stream_time() -> None:
    clock = MicrophoneClock()
    for n in range(1, 26):  # 40 ms frames arriving as they are captured, from t = 100 s
        clock.received(40.0, 100.0 + n * 0.04)
    assert clock.received_ms == pytest.approx(1000.0)
    assert clock.stream_ms(101.0) == pytest.approx(1000.0)
    assert clock.stream_ms(101.5) == pytest.approx(1500.0)  # the reply played half a second later


def test_a_burst_of_late_frames_does_not_move_the_estimate() -> None:
    clock = MicrophoneClock()
    for n in range(1, 26):
        clock.received(40.0, 100.0 + n * 0.04)
    for _ in range(10):  # the page stalled 400 ms, then sent ten frames at once
        clock.received(40.0, 101.4)
    assert clock.stream_ms(101.4) == pytest.approx(1400.0)  # not the 1000 ms a late frame suggests


def test_a_server_that_fell_behind_still_places_the_reply_right() -> None:
    """The old estimate, what the detector has judged, lags when frames wait in the mailbox; the
    arrivals do not."""
    clock = MicrophoneClock()
    for n in range(1, 51):
        clock.received(40.0, 200.0 + n * 0.04)
    judged_ms = 1200.0  # the detector is 800 ms behind the 2 s received
    assert clock.stream_ms(202.0) == pytest.approx(2000.0)
    assert clock.stream_ms(202.0) - judged_ms == pytest.approx(800.0)


def test_old_arrivals_are_forgotten_so_the_estimate_follows_drift() -> None:
    clock = MicrophoneClock(span_s=1.0)
    clock.received(40.0, 100.0)  # an early arrival that would hold the estimate up forever
    for n in range(1, 60):  # then every frame 100 ms late
        clock.received(40.0, 100.1 + n * 0.04)
    # What has arrived by now, not the 100 ms more the first arrival would claim.
    assert clock.stream_ms(102.46) == pytest.approx(clock.received_ms)
    assert clock.received_ms == pytest.approx(60 * 40.0)
