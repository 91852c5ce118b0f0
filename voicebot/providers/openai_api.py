"""OpenAI-compatible HTTP APIs through the ``openai`` package's async client: chat completions (LLM),
``/v1/audio/transcriptions`` (ASR) and ``/v1/audio/speech`` (TTS, raw PCM).

``base_url`` points them at OpenAI itself or at any server speaking the same API: vLLM, Ollama,
LM Studio, llama.cpp's server, a self-hosted faster-whisper or speech server. The client's own
retries are off: a voice turn cannot wait through back-off, the stage's fallback list is the retry.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import openai

from voicebot.audio import wav_bytes
from voicebot.errors import ProviderFailed, Stage
from voicebot.providers.base import (
    MAX_TOOL_ROUNDS,
    NO_OPTIONS,
    Message,
    ProviderSpec,
    ReplyOptions,
    chat_messages,
    system_prompt,
)
from voicebot.providers.remote import api_key, failures_as
from voicebot.settings import (
    LLMSettings,
    OpenAIASRSettings,
    OpenAIAuth,
    OpenAITTSSettings,
    StageTimeouts,
)
from voicebot.tools.native import OpenAIToolStream, openai_tool_messages

#: Placeholder key for servers that need none (the client library insists on one).
NO_KEY = "no-key"

#: Content types that mean the server ignored ``response_format: pcm``.
_COMPRESSED = ("mpeg", "mp3", "ogg", "opus", "aac", "flac", "wav", "json", "html")


class _OpenAIClient:
    """One ``AsyncOpenAI`` client per provider, with the stage's timeouts and no retries."""

    name = "openai"

    def __init__(
        self,
        auth: OpenAIAuth,
        timeouts: StageTimeouts,
        setting: str,
        environ: Mapping[str, str] | None,
    ) -> None:
        environ = os.environ if environ is None else environ
        key = api_key(auth.api_key_env, f"{setting}.api_key_env", environ) if auth.api_key_env else NO_KEY
        self.base_url = auth.base_url
        self._client = openai.AsyncOpenAI(
            api_key=key,
            base_url=auth.base_url,
            max_retries=0,
            timeout=openai.Timeout(timeouts.total_s, connect=timeouts.connect_s, read=timeouts.first_byte_s),
        )

    def warm(self) -> None:
        """Nothing to load; a request would cost money, so the first real one pays the TLS set-up."""

    async def check(self) -> None:
        """List the server's models: cheap, and it proves the key is accepted."""
        with failures_as(self.name):
            await self._client.models.list()


class OpenAILLM(_OpenAIClient):
    """Streams chat completions from an OpenAI-compatible server."""

    def __init__(self, settings: LLMSettings, environ: Mapping[str, str] | None = None) -> None:
        super().__init__(settings.openai, settings.timeouts, "llm.openai", environ)
        self._settings = settings
        self.model = settings.openai.model

    async def stream_reply(self, history: Sequence[Message], options: ReplyOptions = NO_OPTIONS) -> AsyncIterator[str]:
        """The reply, round by round: when the model stops for tool calls (``finish_reason:
        tool_calls``), the turn's tools run and their results go back in the next request."""
        messages = chat_messages(system_prompt(self._settings.system_prompt, options), history)
        tools = options.tools
        definitions = tools.openai_tools() if tools is not None else []
        for _ in range(MAX_TOOL_ROUNDS + 1):
            reply = OpenAIToolStream()
            with failures_as(self.name):
                request: dict[str, Any] = {
                    "model": self.model,
                    "messages": messages,
                    "stream": True,
                    "max_tokens": self._settings.max_tokens,
                    "temperature": self._settings.temperature,
                }
                if definitions:
                    request["tools"] = definitions
                stream: Any = await self._client.chat.completions.create(**request)
                async with stream:
                    async for chunk in stream:
                        if text := reply.feed(chunk):
                            yield text
            if reply.finish_reason is None:
                # Every compatible server ends a reply with a finish_reason; without it the stream was cut.
                raise ProviderFailed(self.name, "the reply stream ended before the reply was complete")
            if tools is None or not reply.wants_tools:
                return
            calls = reply.calls
            results = await tools.run(calls)
            messages += [reply.assistant_message(), *openai_tool_messages(calls, results)]


class OpenAIASR(_OpenAIClient):
    """Sends the utterance as a WAV file to ``/audio/transcriptions``."""

    def __init__(self, settings: OpenAIASRSettings, timeouts: StageTimeouts, environ: Mapping[str, str] | None = None):
        super().__init__(settings, timeouts, "asr.openai", environ)
        self._settings = settings
        self.model = settings.model

    async def transcribe(self, pcm: bytes, sample_rate: int) -> str:
        extra: dict[str, Any] = {"language": self._settings.language} if self._settings.language else {}
        with failures_as(self.name):
            result = await self._client.audio.transcriptions.create(
                model=self.model,
                file=("utterance.wav", wav_bytes(pcm, sample_rate), "audio/wav"),
                response_format="json",
                temperature=0.0,
                **extra,
            )
        text: str = result.text
        return text.strip()


class OpenAITTS(_OpenAIClient):
    """Streams raw PCM (``response_format: pcm``, s16le mono) from ``/audio/speech``."""

    def __init__(self, settings: OpenAITTSSettings, timeouts: StageTimeouts, environ: Mapping[str, str] | None = None):
        super().__init__(settings, timeouts, "tts.openai", environ)
        self._settings = settings
        self.model = f"{settings.model}/{settings.voice}"
        self.sample_rate: int = settings.sample_rate

    async def synthesize(self, text: str) -> AsyncIterator[bytes]:
        carry = b""
        with failures_as(self.name):
            async with self._client.audio.speech.with_streaming_response.create(
                model=self._settings.model,
                voice=self._settings.voice,
                input=text,
                response_format="pcm",
                speed=self._settings.speed,
            ) as response:
                kind = response.headers.get("content-type", "").lower()
                if any(word in kind for word in _COMPRESSED):
                    raise ProviderFailed(self.name, f"the server sent {kind}, not raw PCM (response_format pcm)")
                async for chunk in response.iter_bytes():
                    data = carry + chunk
                    whole = len(data) - len(data) % 2  # a chunk may end in the middle of a sample
                    carry = data[whole:]
                    if whole:
                        yield data[:whole]


SPECS = (
    ProviderSpec(
        Stage.ASR,
        OpenAIASR.name,
        lambda settings, environ: OpenAIASR(settings.asr.openai, settings.asr.timeouts, environ),
        key_env=lambda settings: settings.asr.openai.api_key_env,
    ),
    ProviderSpec(
        Stage.LLM,
        OpenAILLM.name,
        lambda settings, environ: OpenAILLM(settings.llm, environ),
        key_env=lambda settings: settings.llm.openai.api_key_env,
    ),
    ProviderSpec(
        Stage.TTS,
        OpenAITTS.name,
        lambda settings, environ: OpenAITTS(settings.tts.openai, settings.tts.timeouts, environ),
        key_env=lambda settings: settings.tts.openai.api_key_env,
    ),
)
