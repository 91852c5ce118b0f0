"""The ASR benchmark measures accuracy and latency of an engine on a folder of WAV/TXT pairs."""

from __future__ import annotations

from pathlib import Path

import pytest

from voicebot.audio import wav_bytes
from voicebot.bench.asr import measure, table

from .conftest import QUESTIONS

pytestmark = pytest.mark.models


@pytest.mark.parametrize("engine", ["moonshine", "moonshine-stream"])
def test_measures_wer_and_latency_of_an_engine(engine: str, spoken: dict[str, bytes], tmp_path: Path) -> None:
    for index, question in enumerate(QUESTIONS):
        (tmp_path / f"{index}.wav").write_bytes(wav_bytes(spoken[question], 16_000))
        (tmp_path / f"{index}.txt").write_text(question if index == 0 else "How many weeks are there in a day?")
    result = measure(engine, tmp_path, threads=1, repeat=2)
    assert result.utterances[0].hypothesis.rstrip("?.") == QUESTIONS[0].rstrip("?")
    assert result.cpu_median_ms > 0
    assert (result.errors, result.words) == (2, 14)  # "weeks"/"day" swapped in the second reference
    assert 0 < result.median_ms <= result.p95_ms <= result.max_ms
    assert result.rss_mib > result.base_rss_mib
    assert f"| {engine} |" in table([result])
