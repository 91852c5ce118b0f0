"""Claude through Anthropic's streaming Messages API (the ``anthropic`` package's async client).

The reply streams as server-sent events (``message_start``, ``content_block_delta`` with
``text_delta``, …, ``message_stop``); an ``error`` event can still arrive after the 200 OK (for
example ``overloaded_error``). A stream that ends without ``message_stop`` was cut off. The client's
own retries are off: the stage's fallback list is the retry. ``llm.temperature`` is not sent: current
Claude models and client versions do not take it.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import anthropic

from voicebot.errors import ProviderFailed, Stage
from voicebot.providers.base import (
    MAX_TOOL_ROUNDS,
    NO_OPTIONS,
    Message,
    ProviderSpec,
    ReplyOptions,
    merge_roles,
    system_prompt,
)
from voicebot.providers.remote import api_key, failures_as
from voicebot.settings import LLMSettings
from voicebot.tools.native import AnthropicToolStream, anthropic_tool_results_message


def anthropic_messages(history: Sequence[Message]) -> list[dict[str, Any]]:
    """The conversation as the Messages API wants it: roles alternate and the first is the user's."""
    messages: list[dict[str, Any]] = [{"role": m.role, "content": m.content} for m in merge_roles(history)]
    while messages and messages[0]["role"] != "user":
        messages.pop(0)
    return messages


class AnthropicLLM:
    """Streams a reply from a Claude model."""

    name = "anthropic"

    def __init__(self, settings: LLMSettings, environ: Mapping[str, str] | None = None) -> None:
        environ = os.environ if environ is None else environ
        own = settings.anthropic
        key = api_key(own.api_key_env, "llm.anthropic.api_key_env", environ)
        self.model = own.model
        self._settings = settings
        timeouts = settings.timeouts
        self._client = anthropic.AsyncAnthropic(
            api_key=key,
            base_url=own.base_url,
            max_retries=0,
            timeout=anthropic.Timeout(timeouts.total_s, connect=timeouts.connect_s, read=timeouts.first_byte_s),
        )

    def warm(self) -> None:
        """Nothing to load; a request would cost money."""

    async def check(self) -> None:
        """List one model: cheap, and it proves the key is accepted."""
        with failures_as(self.name):
            await self._client.models.list(limit=1)

    async def stream_reply(self, history: Sequence[Message], options: ReplyOptions = NO_OPTIONS) -> AsyncIterator[str]:
        """The reply, round by round: when Claude stops to call tools (``stop_reason: tool_use``), the
        turn's tools run and their results go back in the next request; text of every round streams."""
        messages: list[dict[str, Any]] = anthropic_messages(history)
        tools = options.tools
        definitions = tools.anthropic_tools() if tools is not None else []
        for _ in range(MAX_TOOL_ROUNDS + 1):
            stopped = False
            reply = AnthropicToolStream()
            with failures_as(self.name):
                request: dict[str, Any] = {
                    "model": self.model,
                    "max_tokens": self._settings.max_tokens,
                    "system": system_prompt(self._settings.system_prompt, options),
                    "messages": messages,
                    "stream": True,
                }
                if definitions:
                    request["tools"] = definitions
                stream: Any = await self._client.messages.create(**request)
                async with stream:
                    async for event in stream:
                        if text := reply.feed(event):
                            yield text
                        elif event.type == "message_stop":
                            stopped = True
            if not stopped:
                raise ProviderFailed(self.name, "the reply stream ended before the reply was complete")
            if tools is None or not reply.wants_tools:
                return
            calls = reply.calls
            results = await tools.run(calls)
            messages += [reply.assistant_message(), anthropic_tool_results_message(calls, results)]


SPECS = (
    ProviderSpec(
        Stage.LLM,
        AnthropicLLM.name,
        lambda settings, environ: AnthropicLLM(settings.llm, environ),
        key_env=lambda settings: settings.llm.anthropic.api_key_env,
    ),
)
