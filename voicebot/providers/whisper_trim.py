"""faster-whisper with a shorter window: the encoder sees the utterance plus a margin, not 30 s.

faster-whisper 1.2.1 pads every clip's log-Mel features to 3000 frames (30 s; ``pad_or_trim`` in
``generate_segments``), and its ``chunk_length`` option does not change that, so a 2 s question costs
a full 30 s encoder pass (260–400 ms for tiny.en on this machine). Here we compute the features the
way faster-whisper does, pad them only to ``max(min_window_s, utterance + margin_s)`` (at most 30 s),
and call the CTranslate2 model's ``encode`` and ``generate`` ourselves (greedy, no timestamps, the same
suppressed tokens as faster-whisper). Whisper was trained on 30 s windows only, so a short window
can cost accuracy; ``voicebot.bench.asr`` measures how much.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

from voicebot.audio import pcm_to_float, resample
from voicebot.errors import Stage
from voicebot.providers.base import ProviderSpec
from voicebot.providers.faster_whisper import WHISPER_SAMPLE_RATE, resolve_model
from voicebot.settings import EMBEDDED, TrimmedWhisperSettings
from voicebot.threads import run_blocking

_FULL_FRAMES = 3000
_FRAMES_PER_SECOND = 100


def window_frames(content_frames: int, settings: TrimmedWhisperSettings) -> int:
    """Feature frames (10 ms each) the encoder gets for ``content_frames`` of audio: even, at most 3000."""
    wanted = max(settings.min_window_s * _FRAMES_PER_SECOND, content_frames + settings.margin_s * _FRAMES_PER_SECOND)
    return min(_FULL_FRAMES, 2 * math.ceil(wanted / 2))


class TrimmedWhisperASR:
    """Transcribes an utterance with tiny.en over a window sized to the utterance."""

    name = "whisper_trim"

    def __init__(self, settings: TrimmedWhisperSettings) -> None:
        from faster_whisper import WhisperModel
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import get_suppressed_tokens

        self._settings = settings
        self.model = "tiny.en trimmed (embedded)" if settings.model == EMBEDDED else settings.model
        self._whisper = WhisperModel(
            resolve_model(settings.model), device="cpu", compute_type="int8", cpu_threads=settings.cpu_threads
        )
        self._tokenizer = Tokenizer(
            self._whisper.hf_tokenizer, self._whisper.model.is_multilingual, task="transcribe", language="en"
        )
        self._prompt = [*self._tokenizer.sot_sequence, self._tokenizer.no_timestamps]
        self._suppress: Any = get_suppressed_tokens(self._tokenizer, [-1])

    def transcribe_samples(self, samples: npt.NDArray[np.float32]) -> str:
        """Blocking transcription of 16 kHz float samples (the first 30 s)."""
        import ctranslate2

        features = self._whisper.feature_extractor(samples)
        content = min(_FULL_FRAMES, features.shape[-1] - 1)
        window = window_frames(content, self._settings)
        padded = np.zeros((features.shape[0], window), np.float32)
        padded[:, :content] = features[:, :content]
        encoded = self._whisper.model.encode(ctranslate2.StorageView.from_array(padded[np.newaxis]), to_cpu=False)
        result = self._whisper.model.generate(
            encoded,
            [self._prompt],
            beam_size=1,
            max_length=self._whisper.max_length,
            suppress_blank=True,
            suppress_tokens=self._suppress,
        )[0]
        text: str = self._tokenizer.decode(result.sequences_ids[0])
        return text.strip()

    async def transcribe(self, pcm: bytes, sample_rate: int) -> str:
        samples = pcm_to_float(resample(pcm, sample_rate, WHISPER_SAMPLE_RATE))
        return await run_blocking(lambda: self.transcribe_samples(samples))

    def warm(self) -> None:
        self.transcribe_samples(np.zeros(WHISPER_SAMPLE_RATE // 2, dtype=np.float32))


SPECS = (
    ProviderSpec(Stage.ASR, TrimmedWhisperASR.name, lambda settings, _: TrimmedWhisperASR(settings.asr.whisper_trim)),
)
