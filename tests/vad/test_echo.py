"""The echo guard on synthetic speech-like signals (no model): the reply's own echo is explained,
the user's voice over it is not."""

from __future__ import annotations

import numpy as np
import pytest

from tests.vad.signals import babble, mix, room_echo, to_pcm, zeros
from voicebot.echo import EchoGuard

REPLY = babble(4.0, seed=1)
USER = babble(4.0, seed=2)


def feed_in_frames(guard: EchoGuard, mic: np.ndarray, frame: int = 320) -> list[float]:
    """Feed ``mic`` in 20 ms frames; return the unexplained fraction after each whole 320 ms."""
    out = []
    for start in range(0, len(mic), frame):
        guard.add_microphone(mic[start : start + frame])
        if guard.mic_ms >= 320 and round(guard.mic_ms) % 320 == 0:
            out.append(guard.unexplained())
    return out


@pytest.mark.parametrize(("gain", "delay_ms"), [(0.5, 0), (0.3, 120), (0.1, 280), (0.05, 450)])
def test_the_replys_echo_is_explained(gain: float, delay_ms: float) -> None:
    guard = EchoGuard()
    guard.add_reference(to_pcm(REPLY), at_ms=0)
    noise = np.random.default_rng(9).standard_normal(len(REPLY)).astype(np.float32) * 0.001  # a quiet room
    fractions = feed_in_frames(guard, mix(room_echo(REPLY, gain, delay_ms), noise))
    assert max(fractions[2:]) < 0.35, fractions  # before the echo arrives the room is unexplained


@pytest.mark.parametrize("user_level", [0.5, 1.0])
def test_the_user_talking_over_the_reply_is_not_explained(user_level: float) -> None:
    guard = EchoGuard()
    guard.add_reference(to_pcm(REPLY), at_ms=0)
    mic = mix(room_echo(REPLY, 0.3, 120), USER * user_level)
    fractions = feed_in_frames(guard, mic)
    # The user's voice is not continuous (gaps between words, quiet syllables under loud echo), so
    # a few windows may pass for echo; the endpointer only needs most of them not to.
    assert sum(fraction > 0.35 for fraction in fractions) >= 0.75 * len(fractions), fractions


def test_without_a_reply_nothing_is_explained() -> None:
    guard = EchoGuard()
    guard.add_microphone(USER[:16_000])
    assert guard.unexplained() == 1.0
    assert not guard.is_echo()


def test_a_reply_placed_later_explains_only_from_then_on() -> None:
    guard = EchoGuard(max_delay_ms=200)
    guard.add_microphone(USER[:16_000])  # one second of the user alone
    guard.add_reference(to_pcm(REPLY[:16_000]))  # the reply starts playing now
    assert not guard.is_echo()
    guard.add_microphone(room_echo(REPLY[:16_000], 0.3, 60))
    assert guard.is_echo()


def test_silence_needs_no_explaining() -> None:
    guard = EchoGuard()
    guard.add_reference(to_pcm(REPLY))
    guard.add_microphone(zeros(1.0))
    assert guard.unexplained() == 0.0


def test_old_audio_is_forgotten() -> None:
    guard = EchoGuard(window_ms=320, max_delay_ms=500)  # and 1500 ms to estimate the echo path
    guard.add_reference(to_pcm(REPLY), at_ms=0)
    mic = room_echo(REPLY, 0.3, 100)
    for start in range(0, len(mic), 1600):
        guard.add_microphone(mic[start : start + 1600])
    assert len(guard._mic.values) <= (1500 + 500) // 10 + 1
    assert len(guard._reference.values) <= (1500 + 500) // 10 + 1
