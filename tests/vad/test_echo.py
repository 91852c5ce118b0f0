"""The echo guard on synthetic speech-like signals (no model): the reply's own echo is explained,
the user's voice over it is not."""

from __future__ import annotations

import numpy as np
import pytest

from tests.vad.signals import RATE, at, babble, mix, room_echo, to_pcm, zeros
from voicebot.handsfree.echo import EchoGuard

REPLY = babble(4.0, seed=1)
USER = babble(4.0, seed=2)


def judge(guard: EchoGuard, mic: np.ndarray, every: int = 320) -> list[float]:
    """Feed ``mic`` in 20 ms frames; return the unexplained fraction after each."""
    out = []
    for start in range(0, len(mic), every):
        guard.add_microphone(mic[start : start + every])
        out.append(guard.unexplained())
    return out


def loudness(signal: np.ndarray, every: int = 320, window: int = 2560) -> np.ndarray:
    """RMS over the 160 ms before the end of each 20 ms frame."""
    ends = range(every, len(signal) + 1, every)
    return np.array([np.sqrt(np.mean(np.square(signal[max(0, end - window) : end]))) for end in ends])


@pytest.mark.parametrize(("gain", "delay_ms"), [(0.5, 0), (0.3, 120), (0.1, 280), (0.1, 450)])
def test_the_replys_echo_is_explained(gain: float, delay_ms: float) -> None:
    guard = EchoGuard()
    guard.add_reference(to_pcm(REPLY), at_ms=0)
    noise = np.random.default_rng(9).standard_normal(len(REPLY)).astype(np.float32) * 0.001  # a quiet room
    fractions = judge(guard, mix(room_echo(REPLY, gain, delay_ms), noise))
    settled = int((delay_ms + 300) / 20)  # before the echo arrives, the room alone is unexplained
    assert max(fractions[settled:]) <= guard.residual, fractions


@pytest.mark.parametrize("user_level", [1.0, 2.0])
def test_the_user_talking_over_the_reply_is_not_explained(user_level: float) -> None:
    guard = EchoGuard()
    guard.add_reference(to_pcm(REPLY), at_ms=0)
    # The user starts once the guard has heard the echo for a while (see the known limits).
    echo, user = room_echo(REPLY, 0.3, 120), at(USER[: 2 * RATE] * user_level, 2.0)
    fractions = np.array(judge(guard, mix(echo, user)))
    user_dominant = loudness(user) > 2 * loudness(echo)
    assert user_dominant.sum() > 20
    # Where the user is clearly louder than the echo, nearly every frame is unexplained.
    assert np.mean(fractions[user_dominant] > guard.residual) > 0.9


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


def syllable(seconds: float, seed: int, level: float = 0.2) -> np.ndarray:
    """One short burst of speech-like noise (a Hann-shaped envelope)."""
    noise = np.random.default_rng(seed).standard_normal(int(seconds * RATE))
    return (noise * np.hanning(len(noise)) * level).astype(np.float32)


@pytest.mark.parametrize("delay_ms", [40, 100, 250])
def test_a_dry_room_is_explained_from_the_first_syllable(delay_ms: float) -> None:
    # A reply that opens with a short syllable and a pause ("The | capital ..."), heard with no
    # reverberation at all (a headset, a good echo canceller): the modelled reverberant tail of the
    # first syllable must not pass for a weak echo path, which made the next syllable unexplained.
    reply = np.concatenate([syllable(0.06, seed=3), zeros(0.09), babble(1.5, seed=4, level=0.2)])
    guard = EchoGuard()
    guard.add_microphone(zeros(1.0) + np.float32(0.002))  # a second of the room before the reply
    guard.add_reference(to_pcm(reply))
    echo = np.concatenate([zeros(delay_ms / 1000), 0.3 * reply])[: len(reply)]
    noise = np.random.default_rng(5).standard_normal(len(reply)).astype(np.float32) * 0.002
    fractions = np.array(judge(guard, echo + noise))
    loud = np.zeros(len(fractions), dtype=bool)
    loud[: len(echo) // 320] = loudness(echo) > 0.01  # where the detector would ask the guard
    assert loud.sum() > 40
    assert max(fractions[loud]) <= guard.residual, fractions[loud]


def test_an_interrupted_replys_unplayed_audio_explains_nothing_later() -> None:
    # The user speaks over the first reply, which stops at 0.6 s; the server had sent it a second
    # ahead. The next reply starts 0.8 s after the user's last word. The unplayed rest of the first
    # reply must not stay as a reference: at a long delay it lines up with the user's words and
    # the echo path found there explains nothing of the next reply.
    first, second, user = babble(1.6, seed=6, level=0.2), babble(1.5, seed=7, level=0.2), babble(2.0, seed=8)
    guard = EchoGuard()
    guard.add_reference(to_pcm(first), at_ms=0)
    echo_of_first = 0.3 * first[: int(0.6 * RATE)]
    heard = mix(echo_of_first, at(user, 0.5))
    judge(guard, heard)
    guard.stop_reference(at_ms=600)
    judge(guard, zeros(0.8) + np.float32(0.002))
    guard.add_reference(to_pcm(second))
    echo_of_second = np.concatenate([zeros(0.1), 0.3 * second])[: len(second)]
    fractions = np.array(judge(guard, echo_of_second + np.float32(0.002)))
    loud = np.zeros(len(fractions), dtype=bool)
    loud[: len(second) // 320] = loudness(echo_of_second) > 0.01
    assert loud.sum() > 40
    assert max(fractions[loud]) <= guard.residual, fractions[loud]
