"""What the benchmark says: questions spoken by the configured voice as 16 kHz microphone audio, or a
folder of WAV files with a transcript beside each."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from voicebot.audio import read_wav, resample
from voicebot.providers.base import TTS
from voicebot.session.protocol import INPUT_SAMPLE_RATE

#: Short questions a voice assistant is asked.
QUESTIONS = (
    "What is the capital of France?",
    "How many days are there in a week?",
    "Tell me a fun fact about cats.",
    "What color is the sky on a clear day?",
    "Can you recommend a good book?",
    "What is the tallest mountain in the world?",
    "How do I boil an egg?",
    "Why is the ocean salty?",
)
#: Requests whose replies are long: the first sentence is far away unless the first segment is capped.
LONG_REQUESTS = (
    "Tell me a story about a brave little dog.",
    "Explain how a bicycle works step by step.",
    "Tell me a long story about a dragon and a knight.",
    "Explain step by step how to bake bread.",
)


@dataclass(frozen=True)
class Utterance:
    """One thing to say: 16 kHz mono PCM and, where known, what it says (for the word error rate)."""

    name: str
    pcm: bytes
    text: str | None


async def speak_to_input(tts: TTS, text: str, silence_ms: int = 300) -> bytes:
    """Synthesise ``text`` with ``tts`` as 16 kHz microphone audio, with a little silence around it."""
    pcm = b"".join([chunk async for chunk in tts.synthesize(text)])
    pad = b"\x00\x00" * (INPUT_SAMPLE_RATE * silence_ms // 1000)
    return pad + resample(pcm, tts.sample_rate, INPUT_SAMPLE_RATE) + pad


async def spoken(tts: TTS, texts: tuple[str, ...] | list[str]) -> list[Utterance]:
    return [Utterance(text, await speak_to_input(tts, text), text) for text in texts]


def wav_folder(folder: Path) -> list[Utterance]:
    """Every ``*.wav`` in ``folder`` (16 kHz mono 16-bit; other rates are resampled), with the text of
    the ``.txt`` beside it when there is one."""
    utterances = []
    for path in sorted(folder.glob("*.wav")):
        pcm, rate = read_wav(path)
        transcript = path.with_suffix(".txt")
        text = transcript.read_text(encoding="utf-8").strip() if transcript.is_file() else None
        utterances.append(Utterance(path.stem, resample(pcm, rate, INPUT_SAMPLE_RATE), text))
    return utterances
