"""Streamed tool calls: recorded chunk sequences of both APIs, and the real SDKs against a local
wire-level fake that scripts a tool-using reply (the results must come back in the next request)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from voicebot.tools.base import ToolContext, ToolRegistry
from voicebot.tools.builtins import add_builtin_tools
from voicebot.tools.native import (
    AnthropicToolStream,
    OpenAIToolStream,
    ToolCall,
    anthropic_tool_results_message,
    call_all,
    openai_tool_messages,
)

NOW = datetime(2026, 11, 27, 14, 5, tzinfo=UTC)


def context() -> ToolContext:
    return ToolContext(time_zone="UTC", clock=lambda: NOW)


# ---------------------------------------------------------------- recorded sequences (as the APIs document them)


def anthropic_events() -> list[dict[str, Any]]:
    """Text, then two tool_use blocks whose input arrives in fragments (one with no input at all)."""
    message: dict[str, Any] = {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": "claude-x",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 472, "output_tokens": 2},
    }
    return [
        {"type": "message_start", "message": message},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "ping"},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Let me"}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": " check."}},
        {"type": "content_block_stop", "index": 0},
        {
            "type": "content_block_start",
            "index": 1,
            "content_block": {"type": "tool_use", "id": "toolu_01A", "name": "get_time", "input": {}},
        },
        {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": ""}},
        {"type": "content_block_stop", "index": 1},
        {
            "type": "content_block_start",
            "index": 2,
            "content_block": {"type": "tool_use", "id": "toolu_01B", "name": "calculator", "input": {}},
        },
        {"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": ""}},
        {"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": '{"expr'}},
        {
            "type": "content_block_delta",
            "index": 2,
            "delta": {"type": "input_json_delta", "partial_json": 'ession": "12'},
        },
        {"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": ' * 7"}'}},
        {"type": "content_block_stop", "index": 2},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "tool_use", "stop_sequence": None},
            "usage": {"output_tokens": 89},
        },
        {"type": "message_stop"},
    ]


def openai_chunks() -> list[dict[str, Any]]:
    """Two parallel calls: id and name first, arguments in fragments, finish_reason tool_calls."""

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "gpt-x",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }

    def call(index: int, **fields: Any) -> dict[str, Any]:
        return {"tool_calls": [{"index": index, **fields}]}

    return [
        chunk({"role": "assistant", "content": None}),
        chunk(call(0, id="call_A", type="function", function={"name": "get_time", "arguments": ""})),
        chunk(call(0, function={"arguments": "{}"})),
        chunk(call(1, id="call_B", type="function", function={"name": "calculator", "arguments": ""})),
        chunk(call(1, function={"arguments": '{"expression"'})),
        chunk(call(1, function={"arguments": ': "12 * 7"}'})),
        chunk({}, finish="tool_calls"),
    ]


def test_anthropic_fragments_become_calls() -> None:
    stream = AnthropicToolStream()
    spoken = [text for event in anthropic_events() if (text := stream.feed(event))]
    assert spoken == ["Let me", " check."]
    assert stream.stop_reason == "tool_use" and stream.wants_tools
    assert stream.calls == [
        ToolCall(id="toolu_01A", name="get_time", arguments_json=""),
        ToolCall(id="toolu_01B", name="calculator", arguments_json='{"expression": "12 * 7"}'),
    ]
    assert stream.calls[1].arguments == {"expression": "12 * 7"}
    assert stream.assistant_message() == {
        "role": "assistant",
        "content": [
            {"type": "text", "text": "Let me check."},
            {"type": "tool_use", "id": "toolu_01A", "name": "get_time", "input": {}},
            {"type": "tool_use", "id": "toolu_01B", "name": "calculator", "input": {"expression": "12 * 7"}},
        ],
    }


def test_anthropic_call_is_not_complete_before_its_block_stops() -> None:
    stream = AnthropicToolStream()
    for event in anthropic_events()[:13]:  # the calculator's input is still streaming
        stream.feed(event)
    assert [call.name for call in stream.calls] == ["get_time"]


def test_openai_fragments_become_calls() -> None:
    stream = OpenAIToolStream()
    assert [stream.feed(chunk) for chunk in openai_chunks()] == [None] * 7
    assert stream.finish_reason == "tool_calls" and stream.wants_tools
    assert stream.calls == [
        ToolCall(id="call_A", name="get_time", arguments_json="{}"),
        ToolCall(id="call_B", name="calculator", arguments_json='{"expression": "12 * 7"}'),
    ]
    assert stream.assistant_message() == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "call_A", "type": "function", "function": {"name": "get_time", "arguments": "{}"}},
            {
                "id": "call_B",
                "type": "function",
                "function": {"name": "calculator", "arguments": '{"expression": "12 * 7"}'},
            },
        ],
    }


def test_openai_servers_that_repeat_names_or_leave_out_index_and_id() -> None:
    stream = OpenAIToolStream()
    for fragment in (
        {"id": "c1", "function": {"name": "calculator", "arguments": '{"expression": '}},
        {"id": "c1", "function": {"name": "calculator", "arguments": '"2 + 2"}'}},
        {"id": "c2", "function": {"name": "get_date", "arguments": "{}"}},
    ):
        stream.feed({"choices": [{"index": 0, "delta": {"tool_calls": [fragment]}, "finish_reason": None}]})
    assert stream.calls == [
        ToolCall(id="c1", name="calculator", arguments_json='{"expression": "2 + 2"}'),
        ToolCall(id="c2", name="get_date", arguments_json="{}"),
    ]
    # whole call in one chunk, no id (llama.cpp style): an id is made up
    whole = OpenAIToolStream()
    whole.feed(
        {
            "choices": [
                {
                    "index": 0,
                    "delta": {"tool_calls": [{"index": 0, "function": {"name": "get_time", "arguments": "{}"}}]},
                    "finish_reason": "stop",
                }
            ]
        }
    )
    assert whole.calls == [ToolCall(id="call_0", name="get_time", arguments_json="{}")]
    assert whole.wants_tools


async def test_results_go_back_in_each_apis_shape() -> None:
    registry = add_builtin_tools(ToolRegistry())
    calls = [
        ToolCall(id="toolu_01A", name="get_time", arguments_json=""),
        ToolCall(id="toolu_01B", name="calculator", arguments_json='{"expression": "12 * 7"}'),
        ToolCall(id="toolu_01C", name="calculator", arguments_json='{"expression": '),  # cut JSON
    ]
    results = await call_all(registry, calls, context())
    assert [result.ok for result in results] == [True, True, False]
    assert anthropic_tool_results_message(calls, results) == {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "toolu_01A", "content": results[0].text},
            {"type": "tool_result", "tool_use_id": "toolu_01B", "content": "12 * 7 = 84"},
            {
                "type": "tool_result",
                "tool_use_id": "toolu_01C",
                "content": "Error: the arguments are not valid JSON (Expecting value)",
                "is_error": True,
            },
        ],
    }
    assert "14:05" in results[0].text
    assert openai_tool_messages(calls[:2], results[:2]) == [
        {"role": "tool", "tool_call_id": "toolu_01A", "content": results[0].text},
        {"role": "tool", "tool_call_id": "toolu_01B", "content": "12 * 7 = 84"},
    ]
