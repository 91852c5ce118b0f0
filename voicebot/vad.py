"""Voice-activity detection with Silero VAD on ONNX Runtime, using the model faster-whisper ships.

Hands-free listening needs to know, every few tens of milliseconds, whether the microphone hears
speech. Silero VAD is small (about 2 MB), fast (well under a millisecond per 32 ms window on one
core) and robust to noise, and faster-whisper, already our ASR, bundles it as
``faster_whisper/assets/silero_vad_v6.onnx``, so nothing is downloaded.

The model reads 512-sample windows (32 ms at 16 kHz), each preceded by the last 64 samples of the
previous window (its context), and carries an LSTM state (``h``, ``c``) from window to window; a
batch of consecutive windows is run as a sequence in one call. :class:`SileroModel` holds the one
``InferenceSession`` of the process (ONNX Runtime sessions are safe to call from several threads);
:class:`SileroVad` holds one stream's state and turns PCM of any length into one probability per
completed window. Its :meth:`SileroVad.process` blocks: call it through
``voicebot.threads.run_blocking``.
"""

from __future__ import annotations

import functools
import importlib.resources
import threading
from pathlib import Path

import numpy as np
import numpy.typing as npt

from voicebot.audio import SAMPLE_WIDTH, pcm_to_float

SAMPLE_RATE = 16_000
"""The only rate the detector reads (the page sends 16 kHz microphone audio)."""
WINDOW_SAMPLES = 512
"""Samples per window: one probability per 32 ms."""
WINDOW_MS = WINDOW_SAMPLES * 1000 / SAMPLE_RATE
CONTEXT_SAMPLES = 64
"""Samples of the previous window prepended to each window, as the model was trained."""
_STATE_SHAPE = (1, 1, 128)


class VadModelError(RuntimeError):
    """The Silero model cannot be found or loaded."""


def bundled_model_path() -> Path:
    """Path of the Silero VAD model inside the installed faster-whisper package."""
    try:
        assets = importlib.resources.files("faster_whisper.assets")
    except ModuleNotFoundError as exc:
        raise VadModelError("faster-whisper is not installed; it ships the Silero VAD model") from exc
    path = Path(str(assets / "silero_vad_v6.onnx"))
    if not path.is_file():
        raise VadModelError(f"{path} not found: faster-whisper >= 1.2 ships silero_vad_v6.onnx")
    return path


class SileroModel:
    """The Silero VAD network, loaded once and shared by every session (thread-safe)."""

    def __init__(self, path: Path | None = None) -> None:
        import onnxruntime  # faster-whisper depends on it; imported late so tests without VAD skip it

        options = onnxruntime.SessionOptions()
        # One thread per call: each call is tiny, and sessions run concurrently in worker threads.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        options.enable_cpu_mem_arena = False  # tiny tensors: the arena would only hold memory
        self.path = path or bundled_model_path()
        try:
            self._session = onnxruntime.InferenceSession(
                str(self.path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise VadModelError(f"cannot load {self.path}: {exc}") from exc
        names = {item.name for item in self._session.get_inputs()}
        if names != {"input", "h", "c"}:
            raise VadModelError(f"{self.path}: unexpected inputs {sorted(names)} (expected input, h, c)")

    def run(
        self, windows: npt.NDArray[np.float32], h: npt.NDArray[np.float32], c: npt.NDArray[np.float32]
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        """Run consecutive windows (``[n, 64 + 512]``, context first) from state ``h``, ``c``; return
        ``n`` speech probabilities and the state after the last window."""
        output, h_out, c_out = self._session.run(None, {"input": windows, "h": h, "c": c})
        return (
            np.asarray(output, dtype=np.float32).reshape(-1),
            np.asarray(h_out, dtype=np.float32),
            np.asarray(c_out, dtype=np.float32),
        )


_shared_lock = threading.Lock()


@functools.cache
def _load_shared() -> SileroModel:
    return SileroModel()


def shared_model() -> SileroModel:
    """The process's one :class:`SileroModel`, loaded on first use (load it at start-up to warm it)."""
    with _shared_lock:
        return _load_shared()


class SileroVad:
    """One audio stream's detector: PCM of any length in, one speech probability per 32 ms window out.

    Not thread-safe: one stream is fed from one place (calls may run in different worker threads as
    long as they do not overlap).
    """

    def __init__(self, model: SileroModel | None = None) -> None:
        self.model = model or shared_model()
        self.reset()

    def reset(self) -> None:
        """Start a new stream: forget the state, the context and any incomplete window."""
        self._h = np.zeros(_STATE_SHAPE, dtype=np.float32)
        self._c = np.zeros(_STATE_SHAPE, dtype=np.float32)
        self._context = np.zeros(CONTEXT_SAMPLES, dtype=np.float32)
        self._pending = np.zeros(0, dtype=np.float32)
        self._odd_byte = b""
        self.windows = 0
        """Windows processed since the last reset."""

    def process(self, pcm: bytes) -> list[float]:
        """Feed PCM s16le at 16 kHz (any length, even odd); return the probability of each window
        completed by it, in order (an empty list when no window completed). Blocking."""
        return [float(probability) for probability in self.process_samples(self._samples(pcm))]

    def process_samples(self, samples: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """:meth:`process` for float32 samples in [-1, 1]."""
        audio = np.concatenate([self._pending, samples]) if len(self._pending) else samples
        count = len(audio) // WINDOW_SAMPLES
        self._pending = audio[count * WINDOW_SAMPLES :].copy()
        if count == 0:
            return np.zeros(0, dtype=np.float32)
        windows = audio[: count * WINDOW_SAMPLES].reshape(count, WINDOW_SAMPLES)
        contexts = np.concatenate([self._context[None, :], windows[:-1, -CONTEXT_SAMPLES:]])
        batch = np.ascontiguousarray(np.concatenate([contexts, windows], axis=1), dtype=np.float32)
        probabilities, self._h, self._c = self.model.run(batch, self._h, self._c)
        self._context = windows[-1, -CONTEXT_SAMPLES:].copy()
        self.windows += count
        return probabilities

    def _samples(self, pcm: bytes) -> npt.NDArray[np.float32]:
        data = self._odd_byte + pcm
        even = len(data) - len(data) % SAMPLE_WIDTH
        self._odd_byte = data[even:]
        return pcm_to_float(data[:even])
