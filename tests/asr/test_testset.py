"""The spoken test set: N WAV/TXT pairs at 16 kHz mono, the same every time, reused when cached."""

from __future__ import annotations

import hashlib
import wave
from pathlib import Path

import pytest

from voicebot.bench.testset import QUESTIONS, VOICES, generate, load, plan

pytestmark = pytest.mark.models  # Piper speaks a third of the set


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_plan_covers_every_voice_and_at_least_sixty_questions() -> None:
    assert len(QUESTIONS) >= 60
    assert len(set(QUESTIONS)) == len(QUESTIONS)
    assert {voice for _, _, voice in plan()} == set(VOICES)
    assert {voice.engine for voice in VOICES} == {"piper", "espeak"}
    assert any(voice.noise for voice in VOICES)


def test_generate_writes_n_pairs_and_reuses_them(tmp_path: Path) -> None:
    count = len(VOICES) + 2
    utterances = generate(tmp_path / "a", count)
    assert len(utterances) == count
    assert sorted(p.name for p in (tmp_path / "a").glob("*.wav")) == sorted(u.wav.name for u in utterances)
    for utterance, question in zip(utterances, QUESTIONS, strict=False):
        assert utterance.text == question
        assert utterance.wav.with_suffix(".txt").read_text().strip() == question
        with wave.open(str(utterance.wav)) as wav:
            assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (16_000, 1, 2)
            assert 1.0 <= wav.getnframes() / 16_000 <= 5.0
    assert [(u.wav, u.text) for u in load(tmp_path / "a")] == [(u.wav, u.text) for u in utterances]

    first = {u.wav.name: u.wav.stat().st_mtime_ns for u in utterances}
    generate(tmp_path / "a", count)
    assert {u.wav.name: u.wav.stat().st_mtime_ns for u in utterances} == first  # cached, not rewritten

    again = generate(tmp_path / "b", count)
    assert [_digest(u.wav) for u in again] == [_digest(u.wav) for u in utterances]  # reproducible
