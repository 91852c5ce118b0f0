"""Speech recognition with Moonshine tiny-en (ONNX Runtime), on the CPU, batch and streaming.

Why Moonshine: Whisper pads every clip to a 30 s window, so tiny.en costs 260–400 ms per short
question on 2 cores. Moonshine's encoder takes the audio at its real length, so a 2–3 s question
costs about 20 ms of encoder and a few ms per output token. That makes it cheap enough to
re-transcribe the whole utterance every few hundred milliseconds while the button is held.

The weights (MIT) ship inside the PyPI package ``moonshine-voice==0.1.0`` (``assets/tiny-en``: an
encoder, a merged decoder with KV cache, both in ONNX Runtime's ``.ort`` format, and a byte-level
SentencePiece vocabulary in ``tokenizer.bin``). Later versions download weights at run time, so the
version is pinned exactly. We do not import ``moonshine_voice`` (its native library is not
needed, and its own transcriber is not safe to share between threads); we only read its files and
drive the two models with our own greedy decoding loop. All decoding state lives in local variables,
and ``InferenceSession.run`` may be called from several threads at once, so one loaded model serves
every session concurrently.

Streaming: while the button is held each partial re-transcribes the whole buffer (the encoder attends
over the whole clip, so nothing of an earlier pass can be reused). At release, if everything fed
since the newest pass is silence (the user stopped talking and then let go), that pass's transcript
is the final one and release costs nothing; otherwise one more pass runs over everything.

Checking the previous pass's tokens in one batched decoder call (speculative-decoding style) would
make that last pass cheaper, but this export's decoder is not causal for several input tokens at
once (the first position's logits move by up to 0.9 when tokens follow it), so it changed results;
decoding here is one token per call, with the KV cache.
"""

from __future__ import annotations

import importlib.util
import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from voicebot.audio import pcm_to_float, resample
from voicebot.errors import ProviderUnavailable, Stage
from voicebot.providers.base import ProviderSpec
from voicebot.settings import EMBEDDED, MoonshineSettings
from voicebot.threads import model_call, run_blocking

MOONSHINE_SAMPLE_RATE = 16_000
_START, _END = 1, 2
_FIRST_BYTE_TOKEN, _BYTE_TOKENS = 3, 256
_LAYERS, _HEADS, _HEAD_DIM = 6, 8, 36
#: The encoder needs at least this many samples to produce one frame; shorter audio is zero-padded.
_MIN_SAMPLES = 1_600
_SPECIAL = re.compile(rb"^<<ST_\d+>>$|^<(unk|s|/s)>$")


def resolve_model(model: str) -> Path:
    """The folder with the ONNX models and vocabulary: the embedded tiny-en or a folder path."""
    if model != EMBEDDED:
        folder = Path(model).expanduser()
        if not folder.is_dir():
            raise ProviderUnavailable(f"asr.moonshine.model: {folder} is not a folder.")
        return folder
    # find_spec does not run the package's __init__ (which loads its native library).
    spec = importlib.util.find_spec("moonshine_voice")
    if spec is None or not spec.submodule_search_locations:
        raise ProviderUnavailable(
            "asr.moonshine.model is 'embedded' but the moonshine-voice package is not installed: "
            "pip install moonshine-voice==0.1.0 (exactly this version: later ones download weights at run time)."
        )
    return Path(next(iter(spec.submodule_search_locations))) / "assets" / "tiny-en"


def _model_file(folder: Path, stem: str) -> Path:
    for suffix in (".ort", ".onnx"):
        if (path := folder / f"{stem}{suffix}").is_file():
            return path
    raise ProviderUnavailable(f"asr.moonshine.model: {folder} has no {stem}.ort or {stem}.onnx.")


def load_vocabulary(path: Path) -> list[bytes]:
    """Read ``tokenizer.bin``: for every token id in order, one length byte and the token's bytes.
    Tokens 3–258 are the raw bytes 0–255 (byte fallback); U+2581 marks a word start."""
    data = path.read_bytes()
    tokens: list[bytes] = []
    position = 0
    while position < len(data):
        length = data[position]
        tokens.append(data[position + 1 : position + 1 + length])
        position += 1 + length
    if len(tokens) < _FIRST_BYTE_TOKEN + _BYTE_TOKENS:
        raise ProviderUnavailable(f"asr.moonshine.model: {path} is not a Moonshine vocabulary.")
    return tokens


@dataclass(frozen=True)
class Recognition:
    """The outcome of one decoding pass."""

    text: str
    tokens: tuple[int, ...]
    """The generated token ids (without start and end)."""
    decoder_calls: int
    """Decoder runs in this pass (one per generated token, plus the one that ends the text)."""
    encoder_ms: float
    decoder_ms: float


class MoonshineEngine:
    """A loaded Moonshine model: encoder, merged decoder and vocabulary. Thread-safe."""

    def __init__(self, folder: Path, threads: int = 1, max_tokens_per_second: float = 6.5, pad_s: float = 0.25) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        # Idle threads must not spin on cores that the LLM, TTS and other sessions need.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self._vocabulary = load_vocabulary(folder / "tokenizer.bin")
            providers = ["CPUExecutionProvider"]
            self._encoder = ort.InferenceSession(
                str(_model_file(folder, "encoder_model")), options, providers=providers
            )
            self._decoder = ort.InferenceSession(
                str(_model_file(folder, "decoder_model_merged")), options, providers=providers
            )
        except ProviderUnavailable:
            raise
        except Exception as exc:
            raise ProviderUnavailable(f"asr.moonshine.model: cannot load Moonshine from {folder}: {exc}") from exc
        self._outputs = [output.name for output in self._decoder.get_outputs()]
        self._max_tokens_per_second = max_tokens_per_second
        self._pad = round(pad_s * MOONSHINE_SAMPLE_RATE)

    def max_tokens(self, samples: int) -> int:
        """The token budget for ``samples`` of 16 kHz audio."""
        return max(10, math.ceil(samples / MOONSHINE_SAMPLE_RATE * self._max_tokens_per_second))

    def detokenize(self, tokens: Sequence[int]) -> str:
        """Token ids → text (special tokens dropped, byte-fallback tokens joined into UTF-8)."""
        pieces = bytearray()
        for token in tokens:
            if 0 <= token < len(self._vocabulary):
                piece = self._vocabulary[token]
                if token >= _FIRST_BYTE_TOKEN + _BYTE_TOKENS and _SPECIAL.match(piece):
                    continue
                if token >= _FIRST_BYTE_TOKEN:
                    pieces += piece
        return pieces.decode("utf-8", errors="replace").replace("\u2581", " ").strip()

    def recognise(self, samples: npt.NDArray[np.float32]) -> Recognition:
        """Greedy transcription of 16 kHz float samples."""
        if samples.size == 0:
            return Recognition("", (), 0, 0.0, 0.0)
        started = time.perf_counter()
        end_pad = self._pad + max(0, _MIN_SAMPLES - samples.size - 2 * self._pad)
        audio = np.pad(samples.astype(np.float32, copy=False), (self._pad, end_pad))[np.newaxis, :]
        with model_call():
            inputs = {"input_values": audio, "attention_mask": np.ones(audio.shape, np.int64)}
            hidden = self._encoder.run(None, inputs)[0]
            encoded = time.perf_counter()
            tokens = self._decode(hidden, self.max_tokens(samples.size))
        finished = time.perf_counter()
        return Recognition(
            text=self.detokenize(tokens),
            tokens=tuple(tokens),
            decoder_calls=min(len(tokens) + 1, self.max_tokens(samples.size)),
            encoder_ms=(encoded - started) * 1000,
            decoder_ms=(finished - encoded) * 1000,
        )

    def _decode(self, hidden: npt.NDArray[np.float32], limit: int) -> list[int]:
        """Greedy decoding, one token per decoder call; all state is local (thread-safe)."""
        feeds: dict[str, Any] = {
            "encoder_hidden_states": hidden,
            "encoder_attention_mask": np.ones(hidden.shape[:2], np.int64),
            "input_ids": np.array([[_START]], np.int64),
            "use_cache_branch": np.array([False]),
        }
        empty = np.zeros((1, _HEADS, 0, _HEAD_DIM), np.float32)
        for layer in range(_LAYERS):
            for part in ("decoder", "encoder"):
                for kind in ("key", "value"):
                    feeds[f"past_key_values.{layer}.{part}.{kind}"] = empty
        tokens: list[int] = []
        first = True
        while len(tokens) < limit:
            outputs = self._decoder.run(None, feeds)
            following = int(outputs[0][0, -1].argmax())
            for name, value in zip(self._outputs[1:], outputs[1:], strict=True):
                # The cross-attention keys are computed by the first call and only passed through after it.
                if first or ".decoder." in name:
                    feeds[name.replace("present", "past_key_values")] = value
            if following == _END:
                break
            tokens.append(following)
            feeds["input_ids"] = np.array([[following]], np.int64)
            if first:
                feeds["use_cache_branch"] = np.array([True])
                first = False
        return tokens


def to_model_rate(pcm: bytes, sample_rate: int) -> npt.NDArray[np.float32]:
    """Mono s16le at ``sample_rate`` → float samples at 16 kHz (no copy work when already 16 kHz)."""
    pcm = pcm[: len(pcm) - len(pcm) % 2]
    return pcm_to_float(resample(pcm, sample_rate, MOONSHINE_SAMPLE_RATE))


def is_silent(tail: npt.NDArray[np.float32], whole: npt.NDArray[np.float32], ratio: float) -> bool:
    """Whether ``tail`` holds no speech: its loudest 20 ms frame is below ``ratio`` times the loudest
    20 ms frame of ``whole`` (relative, so steady background noise counts as silence)."""
    frame = MOONSHINE_SAMPLE_RATE // 50

    def loudest(samples: npt.NDArray[np.float32]) -> float:
        if samples.size == 0:
            return 0.0
        usable = samples[: max(frame, samples.size - samples.size % frame)]
        if usable.size < frame:
            return float(np.sqrt(np.mean(np.square(usable))))
        return float(np.sqrt(np.mean(np.square(usable.reshape(-1, frame)), axis=1)).max())

    return loudest(tail) < ratio * loudest(whole)


class MoonshineStream:
    """One utterance recognised while it is spoken; see :class:`voicebot.providers.streaming.ASRStream`.

    ``partial`` transcribes everything fed so far. ``finish`` returns the newest pass's transcript when
    only silence was fed after it, and otherwise runs one more pass over everything (it does not wait
    for a partial still running). ``last`` and ``reused`` say what happened, for metrics.
    """

    def __init__(self, engine: MoonshineEngine, sample_rate: int, silence_ratio: float) -> None:
        self._engine = engine
        self._sample_rate = sample_rate
        self._silence_ratio = silence_ratio
        self._buffer = bytearray()
        self._finished = False
        self._covered = -1
        self.last: Recognition | None = None
        """The newest pass's details (for metrics and tests)."""
        self.reused = False
        """Whether ``finish`` returned the newest partial's transcript without another pass."""

    @property
    def fed_ms(self) -> float:
        """How much audio has been fed, in milliseconds."""
        return len(self._buffer) / 2 / self._sample_rate * 1000

    def feed(self, pcm: bytes) -> None:
        if self._finished:
            raise RuntimeError("feed() after finish()")
        self._buffer += pcm

    async def _pass(self, pcm: bytes) -> Recognition:
        result = await run_blocking(lambda: self._engine.recognise(to_model_rate(pcm, self._sample_rate)))
        if len(pcm) >= self._covered:
            self._covered, self.last = len(pcm), result
        return result

    async def partial(self) -> str:
        return (await self._pass(bytes(self._buffer))).text

    async def finish(self) -> str:
        self._finished = True
        pcm = bytes(self._buffer)
        last = self.last
        if last is not None and self._silence_ratio > 0 and 0 <= self._covered <= len(pcm):
            whole = to_model_rate(pcm, self._sample_rate)
            tail = whole[round(self._covered / 2 / self._sample_rate * MOONSHINE_SAMPLE_RATE) :]
            if is_silent(tail, whole, self._silence_ratio):
                self.reused = True
                return last.text
        return (await self._pass(pcm)).text


class MoonshineASR:
    """Moonshine tiny-en as an ASR provider (batch ``transcribe`` and ``open_stream``)."""

    name = "moonshine"

    def __init__(self, settings: MoonshineSettings) -> None:
        folder = resolve_model(settings.model)
        self.model = "tiny-en (embedded)" if settings.model == EMBEDDED else str(folder)
        self.engine = MoonshineEngine(folder, settings.threads, settings.max_tokens_per_second, settings.pad_s)
        self._silence_ratio = settings.reuse_below

    def transcribe_samples(self, samples: npt.NDArray[np.float32]) -> str:
        """Blocking transcription of 16 kHz float samples."""
        return self.engine.recognise(samples).text

    async def transcribe(self, pcm: bytes, sample_rate: int) -> str:
        samples = to_model_rate(pcm, sample_rate)
        return await run_blocking(lambda: self.transcribe_samples(samples))

    def open_stream(self, sample_rate: int = MOONSHINE_SAMPLE_RATE) -> MoonshineStream:
        """Start recognising one utterance of mono s16le audio at ``sample_rate``."""
        return MoonshineStream(self.engine, sample_rate, self._silence_ratio)

    def warm(self) -> None:
        # Half a second of quiet noise: runs the encoder and at least one cached decoder step.
        noise = np.random.default_rng(0).normal(0, 0.01, MOONSHINE_SAMPLE_RATE // 2).astype(np.float32)
        self.engine.recognise(noise)


SPECS = (ProviderSpec(Stage.ASR, MoonshineASR.name, lambda settings, _: MoonshineASR(settings.asr.moonshine)),)
