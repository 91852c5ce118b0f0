"""Native tool calling over the Anthropic and OpenAI streaming APIs: put the fragments of streamed
tool calls back together, and build the messages that hand the results back to the model.

Both APIs stream a tool call in pieces. Anthropic opens a ``tool_use`` content block
(``content_block_start`` with its id and name) and streams its input as ``input_json_delta``
fragments of one JSON text, closed by ``content_block_stop``; the message ends with
``stop_reason: "tool_use"``. OpenAI streams ``delta.tool_calls`` entries keyed by ``index``: the first
fragment carries ``id`` and ``function.name``, later ones more ``function.arguments`` text; the choice
ends with ``finish_reason: "tool_calls"``. Text may come before the calls (and is spoken at once).

The accumulators take the SDKs' event objects or plain dicts (recorded streams), so the same code
runs in the providers, in tests and in replay. A call's arguments are kept as the raw JSON text:
``ToolRegistry.call`` parses it and turns bad JSON into a failed result the model can read.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from voicebot.tools.base import ToolContext, ToolRegistry, ToolResult


def _get(obj: Any, key: str, default: Any = None) -> Any:
    """``obj[key]`` for dicts, ``obj.key`` for SDK objects."""
    if obj is None:
        return default
    if isinstance(obj, Mapping):
        return obj.get(key, default)
    return getattr(obj, key, default)


@dataclass(frozen=True)
class ToolCall:
    """One complete tool call the model asked for."""

    id: str
    """The API's id of the call (``toolu_…``, ``call_…``), echoed back with the result."""
    name: str
    """The tool's registry name."""
    arguments_json: str
    """The arguments exactly as the model wrote them (JSON text, "" for none)."""

    @property
    def arguments(self) -> dict[str, Any]:
        """The arguments as a dict ({} when empty or not a JSON object)."""
        try:
            parsed = json.loads(self.arguments_json) if self.arguments_json.strip() else {}
        except json.JSONDecodeError:
            return {}
        return parsed if isinstance(parsed, dict) else {}

    def to_dict(self) -> dict[str, Any]:
        """For events, logs and recordings."""
        return {"id": self.id, "name": self.name, "arguments": self.arguments, "arguments_json": self.arguments_json}


@dataclass
class _Partial:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)
    done: bool = False

    def call(self) -> ToolCall:
        return ToolCall(id=self.id, name=self.name, arguments_json="".join(self.arguments))


class AnthropicToolStream:
    """Accumulates one streamed Anthropic Messages reply: its text and its tool calls.

    Feed every event of ``messages.create(..., stream=True)`` (or of ``messages.stream()``) to
    ``feed``; it returns the text to speak, if the event carried some.
    """

    def __init__(self) -> None:
        self.text = ""
        """All text of the reply so far."""
        self.stop_reason: str | None = None
        """``tool_use`` when the model waits for tool results, ``end_turn`` when it is done."""
        self._blocks: dict[int, _Partial] = {}
        self._text_blocks: dict[int, list[str]] = {}
        self._order: list[tuple[str, int]] = []

    def feed(self, event: Any) -> str | None:
        """Take one stream event; return its text delta, if any."""
        kind = _get(event, "type")
        index = _get(event, "index")
        if kind == "content_block_start":
            block = _get(event, "content_block")
            block_type = _get(block, "type")
            if block_type == "tool_use":
                partial = _Partial(id=str(_get(block, "id", "")), name=str(_get(block, "name", "")))
                initial = _get(block, "input")
                if initial:  # a complete input in the start block (not sent by the API today)
                    partial.arguments.append(json.dumps(initial))
                self._blocks[int(index)] = partial
                self._order.append(("tool_use", int(index)))
            elif block_type == "text":
                self._text_blocks[int(index)] = []
                self._order.append(("text", int(index)))
                initial_text = _get(block, "text") or ""
                if initial_text:
                    return self._add_text(int(index), initial_text)
            return None
        if kind == "content_block_delta":
            delta = _get(event, "delta")
            delta_type = _get(delta, "type")
            if delta_type == "text_delta":
                return self._add_text(int(index), str(_get(delta, "text", "")))
            if delta_type == "input_json_delta" and int(index) in self._blocks:
                self._blocks[int(index)].arguments.append(str(_get(delta, "partial_json", "")))
            return None
        if kind == "content_block_stop" and index is not None and int(index) in self._blocks:
            self._blocks[int(index)].done = True
            return None
        if kind == "message_delta":
            reason = _get(_get(event, "delta"), "stop_reason")
            if reason:
                self.stop_reason = str(reason)
        return None

    def _add_text(self, index: int, text: str) -> str | None:
        if not text:
            return None
        self._text_blocks.setdefault(index, []).append(text)
        self.text += text
        return text

    @property
    def calls(self) -> list[ToolCall]:
        """The complete tool calls (their block was closed), in the order the model made them."""
        return [
            self._blocks[index].call() for kind, index in self._order if kind == "tool_use" and self._blocks[index].done
        ]

    @property
    def wants_tools(self) -> bool:
        """Whether the model stopped to wait for tool results."""
        return self.stop_reason == "tool_use" or (self.stop_reason is None and bool(self.calls))

    def assistant_message(self) -> dict[str, Any]:
        """The assistant turn to append to ``messages`` before the tool results (text and tool_use
        blocks in the order they came; the API needs the tool_use blocks echoed back)."""
        content: list[dict[str, Any]] = []
        for kind, index in self._order:
            if kind == "text":
                text = "".join(self._text_blocks.get(index, []))
                if text:
                    content.append({"type": "text", "text": text})
            elif self._blocks[index].done:
                call = self._blocks[index].call()
                content.append({"type": "tool_use", "id": call.id, "name": call.name, "input": call.arguments})
        return {"role": "assistant", "content": content}


def anthropic_tool_results_message(calls: Sequence[ToolCall], results: Sequence[ToolResult]) -> dict[str, Any]:
    """The user turn that answers ``calls`` with ``results`` (one ``tool_result`` block per call, in
    order; failures are marked ``is_error`` so the model can apologise or retry)."""
    blocks: list[dict[str, Any]] = []
    for call, result in zip(calls, results, strict=True):
        block: dict[str, Any] = {"type": "tool_result", "tool_use_id": call.id, "content": result.text}
        if not result.ok:
            block["is_error"] = True
        blocks.append(block)
    return {"role": "user", "content": blocks}


class OpenAIToolStream:
    """Accumulates one streamed OpenAI Chat Completions reply (choice 0): text and tool calls.

    Feed every chunk of ``chat.completions.create(..., stream=True)``; ``feed`` returns the text to
    speak, if the chunk carried some. Works with servers that send a whole call in one fragment, repeat
    the id and name in every fragment, or leave out ``index`` (then the id, or the last call, is used).
    """

    def __init__(self) -> None:
        self.text = ""
        """All text of the reply so far."""
        self.finish_reason: str | None = None
        """``tool_calls`` when the model waits for tool results, ``stop`` when it is done."""
        self._calls: dict[int, _Partial] = {}

    def feed(self, chunk: Any) -> str | None:
        """Take one chunk; return its text delta, if any."""
        text: str | None = None
        for choice in _get(chunk, "choices") or ():
            if (_get(choice, "index") or 0) != 0:
                continue
            delta = _get(choice, "delta")
            content = _get(delta, "content")
            if content:
                self.text += content
                text = content
            for fragment in _get(delta, "tool_calls") or ():
                self._add_fragment(fragment)
            reason = _get(choice, "finish_reason")
            if reason:
                self.finish_reason = str(reason)
        return text

    def _add_fragment(self, fragment: Any) -> None:
        index = _get(fragment, "index")
        call_id = _get(fragment, "id")
        if index is None:
            known = [key for key, partial in self._calls.items() if call_id and partial.id == call_id]
            if known:
                index = known[0]
            elif call_id or not self._calls:
                index = len(self._calls)
            else:
                index = max(self._calls)
        partial = self._calls.setdefault(int(index), _Partial())
        if call_id:
            partial.id = str(call_id)
        function = _get(fragment, "function")
        name = _get(function, "name")
        if name and name != partial.name:
            partial.name += str(name)
        arguments = _get(function, "arguments")
        if arguments:
            partial.arguments.append(str(arguments))

    @property
    def calls(self) -> list[ToolCall]:
        """The tool calls, by index (ids are made up for servers that send none)."""
        calls = []
        for index in sorted(self._calls):
            partial = self._calls[index]
            call = partial.call()
            if not call.id:
                call = ToolCall(id=f"call_{index}", name=call.name, arguments_json=call.arguments_json)
            calls.append(call)
        return calls

    @property
    def wants_tools(self) -> bool:
        """Whether the model stopped to wait for tool results."""
        return self.finish_reason == "tool_calls" or bool(self._calls)

    def assistant_message(self) -> dict[str, Any]:
        """The assistant message to append before the tool results."""
        message: dict[str, Any] = {"role": "assistant", "content": self.text or None}
        calls = self.calls
        if calls:
            message["tool_calls"] = [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments_json or "{}"},
                }
                for call in calls
            ]
        return message


def openai_tool_messages(calls: Sequence[ToolCall], results: Sequence[ToolResult]) -> list[dict[str, Any]]:
    """One ``tool`` message per call, answering it with its result's text."""
    return [
        {"role": "tool", "tool_call_id": call.id, "content": result.text}
        for call, result in zip(calls, results, strict=True)
    ]


async def call_all(registry: ToolRegistry, calls: Sequence[ToolCall], context: ToolContext) -> list[ToolResult]:
    """Run the model's tool calls concurrently through the registry; results in the calls' order."""
    return list(await asyncio.gather(*(registry.call(call.name, call.arguments_json, context) for call in calls)))
