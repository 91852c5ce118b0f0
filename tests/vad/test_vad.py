"""Silero VAD on ONNX Runtime with the model faster-whisper ships."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from tests.vad.conftest import QUESTION
from tests.vad.signals import RATE, Samples, at, to_pcm, zeros
from voicebot.vad import WINDOW_SAMPLES, SileroModel, SileroVad, bundled_model_path

pytestmark = pytest.mark.models


def test_the_model_ships_in_faster_whisper() -> None:
    path = bundled_model_path()
    assert path.parent.name == "assets" and path.parent.parent.name == "faster_whisper"


def test_speech_scores_high_and_silence_low(silero: SileroModel, spoken: dict[str, Samples]) -> None:
    speech = spoken[QUESTION]
    audio = np.concatenate([zeros(1.0), speech, zeros(1.0)])
    probabilities = np.array(SileroVad(silero).process(to_pcm(audio)))
    assert len(probabilities) == len(audio) // WINDOW_SAMPLES
    lead = RATE // WINDOW_SAMPLES  # windows in the first second
    speech_windows = probabilities[lead + 3 : lead + len(speech) // WINDOW_SAMPLES - 3]
    assert probabilities[:lead].max() < 0.1
    assert probabilities[-lead + 8 :].max() < 0.2  # the model lets go within a few windows
    assert np.mean(speech_windows > 0.5) > 0.8


def test_frame_size_does_not_change_the_probabilities(silero: SileroModel, spoken: dict[str, Samples]) -> None:
    pcm = to_pcm(at(spoken[QUESTION], 0.5))
    whole = SileroVad(silero).process(pcm)
    chunked = SileroVad(silero)
    pieces: list[float] = []
    rng = np.random.default_rng(3)
    position = 0
    while position < len(pcm):
        size = int(rng.integers(1, 3000))  # odd byte counts too
        pieces += chunked.process(pcm[position : position + size])
        position += size
    assert len(pieces) == len(whole)
    assert np.allclose(pieces, whole, atol=1e-5)


def test_reset_starts_a_new_stream(silero: SileroModel, spoken: dict[str, Samples]) -> None:
    pcm = to_pcm(spoken[QUESTION])
    vad = SileroVad(silero)
    first = vad.process(pcm)
    vad.process(b"\x01\x02\x03")  # an incomplete window and an odd byte, forgotten by reset
    vad.reset()
    assert vad.process(pcm) == pytest.approx(first, abs=1e-6)


def test_sessions_share_the_model_from_several_threads(silero: SileroModel, spoken: dict[str, Samples]) -> None:
    pcms = [to_pcm(at(spoken[QUESTION], offset)) for offset in (0.0, 0.3, 0.7)]
    expected = [SileroVad(silero).process(pcm) for pcm in pcms]
    results: dict[int, list[float]] = {}

    def work(index: int) -> None:
        vad = SileroVad(silero)
        out: list[float] = []
        for start in range(0, len(pcms[index]), 640):  # 20 ms frames, interleaved between threads
            out += vad.process(pcms[index][start : start + 640])
        results[index] = out

    threads = [threading.Thread(target=work, args=(index,)) for index in range(len(pcms))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for index, probabilities in enumerate(expected):
        assert np.allclose(results[index], probabilities, atol=1e-5)
