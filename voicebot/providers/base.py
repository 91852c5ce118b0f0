"""The small interfaces every provider implements, and the data they exchange.

A provider is loaded once per process (``load`` may take seconds and runs off the event loop) and
shared by all sessions; its methods must be safe to call from several sessions at once (a provider
whose model is not thread-safe serialises calls itself).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from voicebot.errors import Stage
from voicebot.settings import Settings
from voicebot.tools.base import ToolResult
from voicebot.tools.native import ToolCall


@dataclass(frozen=True)
class Message:
    """One message of the conversation."""

    role: Literal["user", "assistant"]
    content: str


class Provider(Protocol):
    """What every provider tells ``/health`` and the logs about itself."""

    name: str
    """The provider's settings name, e.g. ``faster_whisper``."""
    model: str
    """The model, voice or endpoint in use, for people."""

    def warm(self) -> None:
        """Run one tiny request so the first real one is not slow (blocking; called in a thread)."""
        ...


class ASR(Provider, Protocol):
    async def transcribe(self, pcm: bytes, sample_rate: int) -> str:
        """Return the text spoken in ``pcm`` (mono s16le at ``sample_rate``); "" when nothing."""
        ...


class ToolRunner(Protocol):
    """The turn's tools, as a model that calls tools natively sees them."""

    def anthropic_tools(self) -> list[dict[str, Any]]:
        """Tool definitions in the Anthropic Messages format."""
        ...

    def openai_tools(self) -> list[dict[str, Any]]:
        """Tool definitions in the OpenAI Chat Completions format."""
        ...

    async def run(self, calls: Sequence[ToolCall]) -> list[ToolResult]:
        """Run the model's calls (the turn reports them); results in the calls' order. Never raises."""
        ...


@dataclass(frozen=True)
class ReplyOptions:
    """What a turn adds to a reply request besides the conversation."""

    system_note: str = ""
    """Appended to the system prompt (the current date and time)."""
    tools: ToolRunner | None = None
    """Tools a model that calls tools natively may use (others ignore them)."""
    may_pause: Callable[[], bool] | None = None
    """Asked between tokens by a provider that serves several replies at once (the embedded model):
    while it says yes, this reply's generation may pause so that another turn's goes faster (see
    ``voicebot.turn.urgency``). Others ignore it."""
    needed_by: Callable[[], float] | None = None
    """When this reply's next words are needed (a ``time.monotonic()`` value), for a provider that
    shares the cores with other model calls (the embedded model; see ``voicebot.threads.Cores``)."""


NO_OPTIONS = ReplyOptions()

#: Most rounds of tool calls in one reply (each round: the model asks, the tools answer).
MAX_TOOL_ROUNDS = 3


class LLM(Provider, Protocol):
    def stream_reply(self, history: Sequence[Message], options: ReplyOptions = NO_OPTIONS) -> AsyncIterator[str]:
        """Stream the assistant's reply to ``history`` (which ends with the user's message). A model that
        calls tools natively runs ``options.tools`` between rounds and streams the text of every round."""
        ...


class TTS(Provider, Protocol):
    sample_rate: int
    """Sample rate of the audio ``synthesize`` yields."""

    def synthesize(self, text: str) -> AsyncIterator[bytes]:
        """Stream ``text`` as mono PCM s16le at ``sample_rate``."""
        ...


Environ = Mapping[str, str]


def _no_key(settings: Settings) -> str | None:
    return None


@dataclass(frozen=True)
class ProviderSpec:
    """How one provider is made, registered once beside its class as the module's ``SPECS``.

    The registry finds every module of ``voicebot.providers`` that has ``SPECS``; the settings section
    of the same name (``asr.faster_whisper``) holds the provider's options."""

    stage: Stage
    name: str
    """The provider's name in settings (``asr.provider: faster_whisper``)."""
    build: Callable[[Settings, Environ], Provider]
    """Make the provider from the settings and the environment (blocking: may load a model)."""
    key_env: Callable[[Settings], str | None] = _no_key
    """The environment variable its API key is read from, if it needs one."""


@dataclass(frozen=True)
class Stages:
    """The providers one server uses for every session."""

    asr: ASR
    llm: LLM
    tts: TTS

    def describe(self) -> dict[str, dict[str, str]]:
        """Which provider and model each stage uses (for ``/health``, logs and recordings)."""
        return {
            name: {"provider": provider.name, "model": provider.model}
            for name, provider in (("asr", self.asr), ("llm", self.llm), ("tts", self.tts))
        }


def merge_roles(history: Sequence[Message]) -> list[Message]:
    """Join consecutive messages of the same role (after a barge-in nothing may have been heard),
    since several chat templates and APIs insist that roles alternate."""
    merged: list[Message] = []
    for message in history:
        if merged and merged[-1].role == message.role:
            merged[-1] = Message(message.role, f"{merged[-1].content}\n{message.content}".strip())
        elif message.content.strip() or message.role == "user":
            merged.append(message)
    return merged


def system_prompt(prompt: str, options: ReplyOptions) -> str:
    """The configured system prompt with the turn's note (the current time) after it."""
    return f"{prompt} {options.system_note}".strip() if options.system_note else prompt


def chat_messages(system: str, history: Sequence[Message]) -> list[dict[str, Any]]:
    """The system prompt and the conversation as chat-completion messages (llama.cpp, OpenAI)."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": system}]
    messages += [{"role": m.role, "content": m.content} for m in merge_roles(history)]
    return messages
