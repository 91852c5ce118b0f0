"""Moonshine tiny-en: batch and streamed recognition with the real embedded model."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from voicebot.bench.wer import normalize
from voicebot.errors import ProviderUnavailable
from voicebot.providers.moonshine import (
    MoonshineASR,
    MoonshineEngine,
    MoonshineSettings,
    is_silent,
    resolve_model,
    to_model_rate,
)
from voicebot.providers.streaming import ASRStream, StreamingASR

from .conftest import QUESTIONS

pytestmark = pytest.mark.models

PIECE = 16_000 * 2 // 10  # 100 ms of 16 kHz s16le


async def test_transcribes_a_spoken_question(moonshine: MoonshineASR, spoken: dict[str, bytes]) -> None:
    for question in QUESTIONS:
        assert normalize(await moonshine.transcribe(spoken[question], 16_000)) == normalize(question)


async def test_audio_at_another_rate_is_resampled(moonshine: MoonshineASR, spoken: dict[str, bytes]) -> None:
    question = QUESTIONS[0]
    doubled = np.repeat(np.frombuffer(spoken[question], "<i2"), 2).tobytes()  # the same audio at 32 kHz
    assert normalize(await moonshine.transcribe(doubled, 32_000)) == normalize(question)


async def test_silence_and_tiny_clips_give_no_error(moonshine: MoonshineASR) -> None:
    assert await moonshine.transcribe(b"", 16_000) == ""
    assert isinstance(await moonshine.transcribe(b"\x00\x00" * 100, 16_000), str)


async def test_partials_grow_while_audio_is_fed_and_the_final_matches(
    moonshine: MoonshineASR, spoken: dict[str, bytes]
) -> None:
    question = QUESTIONS[1]
    pcm = spoken[question]
    stream: ASRStream = moonshine.open_stream(16_000)
    partials = []
    for index, offset in enumerate(range(0, len(pcm), PIECE), start=1):
        stream.feed(pcm[offset : offset + PIECE])
        if index % 5 == 0:  # every 500 ms of audio
            partials.append(normalize(await stream.partial()))
    final = normalize(await stream.finish())
    assert final == normalize(question)
    heard = [words for words in partials if words]
    # e.g. [um] [how many days] [how many days are there in awe] [how many days are there in a week]
    assert len(heard) >= 3
    assert [len(words) for words in heard[1:]] == sorted(len(words) for words in heard[1:])
    assert len(heard[1]) < len(final)
    assert all(words[:2] == final[:2] for words in heard[1:])  # the first words settle early
    with pytest.raises(RuntimeError):
        stream.feed(b"\x00\x00")


async def test_finish_keeps_the_last_partial_when_only_silence_followed(
    moonshine: MoonshineASR, spoken: dict[str, bytes]
) -> None:
    stream = moonshine.open_stream(16_000)
    stream.feed(spoken[QUESTIONS[0]])
    text = await stream.partial()
    partial = stream.last
    stream.feed(b"\x00\x00" * 4_800)  # the user lets go 300 ms later
    assert await stream.finish() == text
    assert stream.reused
    assert stream.last is partial  # no second pass
    assert normalize(text) == normalize(QUESTIONS[0])


async def test_finish_runs_a_final_pass_when_speech_followed_the_last_partial(
    moonshine: MoonshineASR, spoken: dict[str, bytes]
) -> None:
    pcm = spoken[QUESTIONS[1]]
    cut = len(pcm) * 2 // 3 // 2 * 2  # the last partial sees two thirds of the question
    stream = moonshine.open_stream(16_000)
    stream.feed(pcm[:cut])
    partial = normalize(await stream.partial())
    stream.feed(pcm[cut:])
    final = normalize(await stream.finish())
    assert not stream.reused
    assert final == normalize(QUESTIONS[1])
    assert len(partial) < len(final)


async def test_a_stream_without_reuse_always_runs_the_final_pass(spoken: dict[str, bytes]) -> None:
    asr = MoonshineASR(MoonshineSettings(reuse_below=0))
    stream = asr.open_stream(16_000)
    stream.feed(spoken[QUESTIONS[0]])
    await stream.partial()
    partial = stream.last
    assert normalize(await stream.finish()) == normalize(QUESTIONS[0])
    assert not stream.reused
    assert stream.last is not partial


def test_is_silent_is_relative_to_the_utterance() -> None:
    rng = np.random.default_rng(1)
    noise = rng.normal(0, 0.01, 8_000).astype(np.float32)
    speech = np.concatenate([noise, rng.normal(0, 0.3, 8_000).astype(np.float32), noise])
    assert is_silent(noise, speech, 0.1)  # steady background noise after the speech
    assert not is_silent(noise, speech, 0.03)
    assert not is_silent(speech[8_000:12_000], speech, 0.1)
    assert is_silent(np.zeros(0, np.float32), speech, 0.1)


def test_greedy_decoding_stops_at_the_token_budget(moonshine: MoonshineASR, spoken: dict[str, bytes]) -> None:
    samples = to_model_rate(spoken[QUESTIONS[0]], 16_000)
    result = moonshine.engine.recognise(samples)
    assert result.decoder_calls == len(result.tokens) + 1  # the last call produced the end token
    assert moonshine.engine.max_tokens(samples.size) > len(result.tokens)
    assert moonshine.engine.max_tokens(100) == 10


def test_two_threads_share_one_model(moonshine: MoonshineASR, spoken: dict[str, bytes]) -> None:
    samples = [to_model_rate(spoken[question], 16_000) for question in QUESTIONS]
    expected = [moonshine.transcribe_samples(s) for s in samples]
    assert [normalize(text) for text in expected] == [normalize(q) for q in QUESTIONS]
    jobs = [samples[i % 2] for i in range(12)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(moonshine.transcribe_samples, jobs))
    assert results == [expected[i % 2] for i in range(12)]


async def test_two_streams_at_once(moonshine: MoonshineASR, spoken: dict[str, bytes]) -> None:
    async def run(question: str) -> str:
        stream = moonshine.open_stream(16_000)
        pcm = spoken[question]
        for offset in range(0, len(pcm), PIECE * 4):
            stream.feed(pcm[offset : offset + PIECE * 4])
            await stream.partial()
        return await stream.finish()

    finals = await asyncio.gather(*(run(q) for q in QUESTIONS))
    assert [normalize(f) for f in finals] == [normalize(q) for q in QUESTIONS]


def test_is_a_streaming_asr_provider(moonshine: MoonshineASR) -> None:
    provider: StreamingASR = moonshine
    assert (provider.name, provider.model) == ("moonshine", "tiny-en (embedded)")


def test_embedded_model_files_are_found() -> None:
    folder = resolve_model("embedded")
    assert {"encoder_model.ort", "decoder_model_merged.ort", "tokenizer.bin"} <= {p.name for p in folder.iterdir()}


def test_a_folder_without_the_model_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ProviderUnavailable, match="encoder_model"):
        MoonshineEngine(_with_vocabulary(tmp_path))
    with pytest.raises(ProviderUnavailable, match="not a folder"):
        MoonshineASR(MoonshineSettings(model=str(tmp_path / "missing")))


def _with_vocabulary(folder: Path) -> Path:
    (folder / "tokenizer.bin").write_bytes((resolve_model("embedded") / "tokenizer.bin").read_bytes())
    return folder
