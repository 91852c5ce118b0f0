"""Hands-free listening end to end on scripted audio with the real Silero model: room noise,
questions with silence between them, coughs and clicks, pauses inside a sentence, and the
assistant's own reply coming back into the microphone."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from tests.vad.conftest import FIRST_HALF, QUESTION, REPLY, SECOND_HALF, SECOND_QUESTION, sox_noise
from tests.vad.signals import RATE, Samples, at, mix, rms, room_echo, to_pcm, zeros
from voicebot.handsfree.endpointing import BargeIn, EndpointEvent, HandsFreeSettings, SpeechEnded, SpeechStarted
from voicebot.handsfree.listener import HandsFreeListener, ListenerEvent, SpeechAudio, SpeechPaused, SpeechResumed
from voicebot.handsfree.vad import SileroModel, SileroVad
from voicebot.providers.faster_whisper import FasterWhisperASR

pytestmark = pytest.mark.models


def listen_all(listener: HandsFreeListener, audio: Samples, seed: int = 0) -> list[ListenerEvent]:
    """Feed ``audio`` as a browser would: frames of 20 to 100 ms. Every event, audio pieces included."""
    pcm = to_pcm(audio)
    rng = np.random.default_rng(seed)
    events: list[ListenerEvent] = []
    position = 0
    while position < len(pcm):
        size = 2 * int(rng.integers(320, 1600))
        events += listener.feed(pcm[position : position + size])
        position += size
    return events


def listen(listener: HandsFreeListener, audio: Samples, seed: int = 0) -> list[EndpointEvent]:
    """The start and end events of feeding ``audio`` (see :func:`listen_all`)."""
    only_listener = (SpeechAudio, SpeechPaused, SpeechResumed)
    return [event for event in listen_all(listener, audio, seed) if not isinstance(event, only_listener)]


def cough(seed: int, ms: float = 150, level: float = 0.3) -> Samples:
    """A cough-like burst: noise with a sharp attack and a fast decay."""
    rng = np.random.default_rng(seed)
    count = int(RATE * ms / 1000)
    envelope = np.minimum(np.arange(count) / (0.01 * RATE), 1.0) * np.exp(-np.arange(count) / (0.05 * RATE))
    burst: Samples = (rng.standard_normal(count) * envelope * level).astype(np.float32)
    return burst


def click(level: float = 0.8) -> Samples:
    """A 5 ms click (a key, a cup set down)."""
    return (np.hanning(80) * level).astype(np.float32)


def room(noise_dir: Path, seconds: float) -> Samples:
    """Realistic room noise: pink noise (about -48 dBFS RMS) plus brown rumble (about -45 dBFS)."""
    return mix(
        sox_noise("pinknoise", seconds, 0.02, noise_dir),
        sox_noise("brownnoise", seconds, 0.01, noise_dir),
    )


def kinds(events: list[EndpointEvent]) -> list[type]:
    return [type(event) for event in events]


def test_a_minute_of_room_noise_coughs_and_clicks_starts_nothing(silero: SileroModel, noise_dir: Path) -> None:
    audio = room(noise_dir, 60.0)
    assert 0.003 < rms(audio) < 0.01  # -50 to -40 dBFS: a quiet room through a laptop microphone
    for second in range(2, 58, 4):  # every two seconds a cough (120-160 ms) or a click, alternating
        audio = mix(audio, at(cough(seed=second, ms=120 + 10 * (second % 5)), second))
        audio = mix(audio, at(click(0.5 + 0.1 * (second % 3)), second + 2))
    audio[20 * RATE : 30 * RATE] = 0.0  # ten seconds of digital silence (a muted microphone)
    assert listen(HandsFreeListener(model=silero), audio) == []


@pytest.mark.parametrize("text", [QUESTION, SECOND_QUESTION])
def test_a_short_vocal_sound_starts_nothing(silero: SileroModel, spoken: dict[str, Samples], text: str) -> None:
    """The loudest 160 ms of a question (a vowel: like a grunt, an "uh", a syllable from the next
    room) is speech to the model for a few windows, but shorter than ``min_speech_ms``."""
    sound = loudest(spoken[text], 0.16)
    audio = np.concatenate([zeros(0.5), sound, zeros(1.0)])
    assert max(SileroVad(silero).process(to_pcm(audio))) >= 0.5  # the model does hear speech
    assert listen(HandsFreeListener(model=silero), audio) == []
    # Without the minimum, the same sound starts (and ends) a turn: the rule is what holds.
    eager = HandsFreeListener(HandsFreeSettings(min_speech_ms=0), model=silero)
    assert kinds(listen(eager, audio)) == [SpeechStarted, SpeechEnded]


def loudest(speech: Samples, seconds: float) -> Samples:
    """The loudest ``seconds`` of ``speech``, faded in and out."""
    count = int(seconds * RATE)
    power = np.convolve(np.square(speech), np.ones(count), mode="valid")
    begin = int(np.argmax(power))
    return (speech[begin : begin + count] * np.hanning(count) ** 0.3).astype(np.float32)


def test_question_silence_second_question_gives_two_turns_with_their_audio(
    silero: SileroModel, spoken: dict[str, Samples], whisper: FasterWhisperASR, noise_dir: Path
) -> None:
    first, second = spoken[QUESTION], spoken[SECOND_QUESTION]
    speech = np.concatenate([zeros(1.0), first, zeros(2.0), second, zeros(1.5)])
    audio = mix(speech, room(noise_dir, len(speech) / RATE))
    events = listen(HandsFreeListener(model=silero), audio)
    assert kinds(events) == [SpeechStarted, SpeechEnded, SpeechStarted, SpeechEnded]
    started, ended = events[0], events[1]
    assert isinstance(started, SpeechStarted) and isinstance(ended, SpeechEnded)
    assert started.at_ms == pytest.approx(1000, abs=100)
    assert ended.at_ms == pytest.approx(1000 + len(first) / RATE * 1000, abs=200)
    assert ended.detected_at_ms - ended.at_ms == pytest.approx(550, abs=40)
    texts = []
    for event in events[1::2]:
        assert isinstance(event, SpeechEnded)
        texts.append(asyncio.run(whisper.transcribe(event.audio, RATE)).lower())
    assert "capital" in texts[0] and "france" in texts[0]
    assert "days" in texts[1] and "week" in texts[1]


def test_the_utterance_includes_the_pre_roll(silero: SileroModel, spoken: dict[str, Samples]) -> None:
    audio = np.concatenate([zeros(1.0), spoken[QUESTION], zeros(1.0)])
    events = listen(HandsFreeListener(model=silero), audio)
    ended = events[-1]
    assert isinstance(ended, SpeechEnded)
    pcm = np.frombuffer(ended.audio, dtype="<i2")
    onset = np.argmax(np.abs(pcm) > 300)  # the first audible sample of the question
    assert onset >= 0.2 * RATE  # at least 200 ms of quiet lead-in before the first syllable
    assert len(pcm) == pytest.approx((ended.detected_at_ms - ended.at_ms + ended.speech_ms + 300) * RATE / 1000, abs=1)


def test_the_utterance_is_handed_over_while_it_is_spoken(silero: SileroModel, spoken: dict[str, Samples]) -> None:
    """A streaming recogniser gets the utterance as it is heard: pieces from the pre-roll on, which
    put together are the start of the whole utterance, so at its end only the silence is left."""
    audio = np.concatenate([zeros(1.0), spoken[QUESTION], zeros(1.0), spoken[SECOND_QUESTION], zeros(1.0)])
    events = listen_all(HandsFreeListener(model=silero), audio)
    utterances: list[tuple[bytes, bytes]] = []
    pieces = bytearray()
    for event in events:
        if isinstance(event, SpeechStarted):
            assert not pieces
        elif isinstance(event, SpeechAudio):
            pieces += event.pcm
        elif isinstance(event, SpeechEnded):
            utterances.append((bytes(pieces), event.audio))
            pieces.clear()
    assert not pieces  # nothing handed over outside an utterance
    assert len(utterances) == 2
    for handed, whole in utterances:
        assert whole.startswith(handed)
        # Handed over through the end silence too, up to the frame in which the end was decided.
        left_ms = (len(whole) - len(handed)) / 2 / RATE * 1000
        assert 0 < left_ms <= 100 + 32
        assert len(handed) / 2 / RATE > len(spoken[QUESTION]) / RATE * 0.5


def test_a_300_ms_pause_inside_a_sentence_is_one_turn(silero: SileroModel, spoken: dict[str, Samples]) -> None:
    sentence = np.concatenate([spoken[FIRST_HALF], zeros(0.3), spoken[SECOND_HALF]])
    events = listen(HandsFreeListener(model=silero), np.concatenate([zeros(1.0), sentence, zeros(1.0)]))
    assert kinds(events) == [SpeechStarted, SpeechEnded]
    ended = events[1]
    assert isinstance(ended, SpeechEnded)
    assert ended.speech_ms > (len(spoken[FIRST_HALF]) + len(spoken[SECOND_HALF])) / RATE * 1000 - 200


def test_a_pause_reports_when_the_reply_can_be_prepared_and_speech_after_it_withdraws_that(
    silero: SileroModel, spoken: dict[str, Samples]
) -> None:
    """A 300 ms pause inside a sentence is long enough to prepare the reply (200 ms), not to end the
    turn (550 ms): paused, resumed, and at the end paused again just before the end is decided."""
    sentence = np.concatenate([spoken[FIRST_HALF], zeros(0.3), spoken[SECOND_HALF]])
    events = [
        event
        for event in listen_all(
            HandsFreeListener(HandsFreeSettings(early_reply_ms=200), model=silero),
            np.concatenate([zeros(1.0), sentence, zeros(1.0)]),
        )
        if not isinstance(event, SpeechAudio)
    ]
    assert kinds(events) == [SpeechStarted, SpeechPaused, SpeechResumed, SpeechPaused, SpeechEnded]
    first_pause, resumed, last_pause, ended = events[1:]
    assert isinstance(first_pause, SpeechPaused) and isinstance(resumed, SpeechResumed)
    assert isinstance(last_pause, SpeechPaused) and isinstance(ended, SpeechEnded)
    assert first_pause.at_ms < resumed.at_ms < last_pause.at_ms
    assert last_pause.at_ms == pytest.approx(ended.at_ms, abs=40)  # the same silence, found early


def test_without_early_reply_no_pause_is_reported(silero: SileroModel, spoken: dict[str, Samples]) -> None:
    settings = HandsFreeSettings(early_reply_ms=0)
    audio = np.concatenate([zeros(1.0), spoken[QUESTION], zeros(1.0)])
    assert kinds(listen_all(HandsFreeListener(settings, model=silero), audio)).count(SpeechPaused) == 0


def test_a_cough_before_a_question_does_not_end_up_in_it_as_a_second_turn(
    silero: SileroModel, spoken: dict[str, Samples]
) -> None:
    audio = np.concatenate([zeros(1.0), cough(seed=1), zeros(1.5), spoken[QUESTION], zeros(1.0)])
    assert kinds(listen(HandsFreeListener(model=silero), audio)) == [SpeechStarted, SpeechEnded]


class TestEcho:
    """The reply played through the speakers comes back into the microphone."""

    @staticmethod
    def speaking_listener(silero: SileroModel, reply: Samples, **settings: object) -> HandsFreeListener:
        listener = HandsFreeListener(HandsFreeSettings.model_validate(settings), model=silero)
        listener.set_assistant_speaking(True)
        listener.play(to_pcm(reply), at_ms=500)  # the reply starts playing half a second in
        return listener

    @pytest.mark.parametrize(("gain", "delay_ms"), [(0.1, 60), (0.3, 150), (0.6, 250), (1.0, 100)])
    def test_the_reply_alone_does_not_interrupt_itself(
        self, silero: SileroModel, spoken: dict[str, Samples], noise_dir: Path, gain: float, delay_ms: float
    ) -> None:
        """The echo from -20 dB (a working echo canceller) to 0 dB (none, loud speakers)."""
        reply = spoken[REPLY]
        mic = mix(at(room_echo(reply, gain, delay_ms), 0.5), room(noise_dir, len(reply) / RATE + 1.0))
        listener = self.speaking_listener(silero, reply)
        assert listen(listener, mic) == []
        # Without the guard, the same microphone signal interrupts the reply: the test can fail.
        unguarded = self.speaking_listener(silero, reply, echo_guard=False)
        assert BargeIn in kinds(listen(unguarded, mic))

    @pytest.mark.parametrize(("gain", "user_at_s", "user_gain"), [(0.1, 1.5, 1.0), (0.1, 4.1, 1.0), (0.3, 2.0, 2.0)])
    def test_the_user_over_the_reply_barges_in(
        self,
        silero: SileroModel,
        spoken: dict[str, Samples],
        user_voice: Samples,
        noise_dir: Path,
        gain: float,
        user_at_s: float,
        user_gain: float,
    ) -> None:
        """The user (another voice) talks over the reply: 10 dB louder than its echo through a
        working echo canceller (gain 0.1), or, close to the microphone, 10 dB louder than a poorly
        cancelled echo (gain 0.3)."""
        reply = spoken[REPLY]
        echo = at(room_echo(reply, gain, 150), 0.5)
        mic = mix(echo, at(user_voice * user_gain, user_at_s), room(noise_dir, len(reply) / RATE + 1.0))
        events = listen(self.speaking_listener(silero, reply), mic)
        self.assert_barge_in(events, user_at_s * 1000 + onset_ms(user_voice))

    def test_the_user_from_the_first_syllable_of_a_later_reply_barges_in(
        self, silero: SileroModel, spoken: dict[str, Samples], user_voice: Samples, noise_dir: Path
    ) -> None:
        """The echo's gain measured during the first reply lets the guard tell the user from the
        echo at once in the second, even though the user speaks from its start."""
        reply = spoken[REPLY]
        first = at(room_echo(reply, 0.1, 150), 0.5)
        second_at_s = len(first) / RATE + 1.0
        listener = self.speaking_listener(silero, reply)
        listener.play(to_pcm(reply), at_ms=second_at_s * 1000)
        user_at_s = second_at_s + 0.2
        mic = mix(
            first,
            at(room_echo(reply, 0.1, 150), second_at_s),
            at(user_voice, user_at_s),
            room(noise_dir, second_at_s + len(reply) / RATE),
        )
        # Over the reply's first syllables the user's first word is sometimes taken for echo: over
        # eight Piper renditions the interruption was confirmed 270 to 470 ms after the user's onset.
        events = listen(listener, mic)
        self.assert_barge_in(events, user_at_s * 1000 + onset_ms(user_voice), onset_within_ms=300, within_ms=600)

    @staticmethod
    def assert_barge_in(
        events: list[EndpointEvent], user_onset_ms: float, onset_within_ms: float = 200, within_ms: float = 450
    ) -> None:
        """The first event is a barge-in, found near the user's onset and confirmed soon after it."""
        assert events and isinstance(events[0], BargeIn), events
        assert events[0].at_ms == pytest.approx(user_onset_ms, abs=onset_within_ms)
        latency = events[0].detected_at_ms - user_onset_ms
        assert latency < within_ms, latency


def onset_ms(voice: Samples) -> float:
    """Where the first audible sample of ``voice`` is."""
    return float(np.argmax(np.abs(voice) > 0.01)) / RATE * 1000
