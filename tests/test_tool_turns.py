"""Tools in real voice turns, over a real server and WebSocket: the intent layer answers what it knows
without asking the model, Claude and OpenAI-compatible models call tools natively through their
streaming APIs (wire-level fakes of both), the page sees every call, timers speak by themselves (on a
manual clock: nothing really waits), and a tool that fails costs only its call."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.conftest import ServerFactory
from tests.fakes import FakeASR, FakeLLM, FakeTTS
from tests.tools.test_native import anthropic_events, openai_chunks
from voicebot.client import TurnResult, VoiceClient
from voicebot.providers.anthropic_api import AnthropicLLM
from voicebot.providers.base import LLM, Stages
from voicebot.providers.openai_api import OpenAILLM
from voicebot.server.localserver import LocalServer, local_server
from voicebot.settings import Settings
from voicebot.tools.base import FunctionTool, ToolContext, ToolResult, object_schema
from voicebot.tools.settings import ToolsSettings
from voicebot.tools.timers import ManualClock
from voicebot.turn.tools import Toolbox

SPEECH = b"\x00\x10" * 16_000  # 1 s, loud enough for the silence gate
KEYS = {"ANTHROPIC_API_KEY": "sk-ant-test-key-0000000000", "OPENAI_API_KEY": "sk-test-key-00000000000000"}


def tool_messages(turn: TurnResult, kind: str) -> list[dict[str, Any]]:
    return [event for event in turn.events if event.get("type") == kind]


@asynccontextmanager
async def tools_server(
    settings: Settings, stages: Stages, toolbox: Toolbox | None = None
) -> AsyncIterator[LocalServer]:
    """A real server whose tools are ``toolbox`` (default: the settings' built-ins)."""
    async with local_server(settings, stages) as server:
        if toolbox is not None:
            server.runtime.toolbox = toolbox
            server.runtime.engine.toolbox = toolbox  # type: ignore[union-attr]
        yield server


async def test_the_intent_layer_answers_the_time_without_asking_the_model(
    default_settings: Settings, serve: ServerFactory
) -> None:
    llm = FakeLLM()
    async with serve(Stages(asr=FakeASR(text="What time is it?"), llm=llm, tts=FakeTTS())) as server:
        client = await VoiceClient.connect(server.ws_url)
        await client.send_action("set_time_zone", time_zone="Asia/Tokyo")
        asked = datetime.now(ToolContext(time_zone="Asia/Tokyo").zone)
        turn = await client.utterance(SPEECH)
        await client.close()
    answered = datetime.now(ToolContext(time_zone="Asia/Tokyo").zone)
    (call,) = tool_messages(turn, "tool_call")
    assert (call["name"], call["source"], call["turn"]) == ("get_time", "intent", 1)
    (result,) = tool_messages(turn, "tool_result")
    assert result["ok"] is True and result["id"] == call["id"]
    hours = {moment.strftime("%I").lstrip("0") for moment in (asked, answered)}  # the hour may turn meanwhile
    assert turn.reply is not None and any(turn.reply.startswith(f"It's {hour}:") for hour in hours), turn.reply
    assert llm.seen == []  # the model was never asked
    assert turn.states == ["transcribing", "thinking", "speaking", "idle"] and len(turn.audio) > 0


async def test_questions_the_intents_do_not_know_go_to_the_model_with_the_time_in_its_prompt(
    serve: ServerFactory,
) -> None:
    llm = FakeLLM()
    async with serve(Stages(asr=FakeASR(text="Tell me about the history of clocks."), llm=llm, tts=FakeTTS())) as s:
        client = await VoiceClient.connect(s.ws_url)
        turn = await client.utterance(SPEECH)
        await client.close()
    assert tool_messages(turn, "tool_call") == [] and turn.reply == "Hello! This is a fake reply."
    (options,) = llm.options
    assert options.system_note.startswith("It is now ") and str(datetime.now().year) in options.system_note


# --- native tool calling ---------------------------------------------------------------------------


@asynccontextmanager
async def scripted(handler: Callable[[web.Request], Awaitable[web.StreamResponse]], path: str) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_post(path, handler)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server: Any = site._server
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        await runner.cleanup()


def anthropic_final(text: str) -> list[dict[str, Any]]:
    events = anthropic_events()[:2]
    events += [
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}},
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None}, "usage": {}},
        {"type": "message_stop"},
    ]
    return events


def openai_final(text: str) -> list[dict[str, Any]]:
    return [
        {
            "id": "chatcmpl-2",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "gpt-x",
            "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": finish}],
        }
        for piece, finish in ((text, None), ("", "stop"))
    ]


async def native_turn(
    default_settings: Settings, make_llm: Callable[[str], LLM], path: str, first: list[Any], final: list[Any]
) -> tuple[TurnResult, list[dict[str, Any]]]:
    requests: list[dict[str, Any]] = []
    sse_event = path.endswith("/messages")

    async def handler(request: web.Request) -> web.StreamResponse:
        requests.append(await request.json())
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for item in first if len(requests) == 1 else final:
            prefix = f"event: {item['type']}\n" if sse_event else ""
            await response.write(f"{prefix}data: {json.dumps(item)}\n\n".encode())
        if not sse_event:
            await response.write(b"data: [DONE]\n\n")
        return response

    async with scripted(handler, path) as url:
        question = "What time is it, and what is 12 times 7?"
        stages = Stages(asr=FakeASR(text=question), llm=make_llm(url), tts=FakeTTS())
        # An intent layer would answer "what time is it" alone; this question is the model's.
        toolbox = Toolbox.from_settings(ToolsSettings(intents=False))
        async with tools_server(default_settings, stages, toolbox) as server:
            client = await VoiceClient.connect(server.ws_url)
            turn = await client.utterance(SPEECH)
            await client.close()
    return turn, requests


async def test_claude_calls_tools_natively_and_the_page_sees_each_call(default_settings: Settings) -> None:
    settings = default_settings.llm

    def make(url: str) -> LLM:
        return AnthropicLLM(
            settings.model_copy(update={"anthropic": settings.anthropic.model_copy(update={"base_url": url})}), KEYS
        )

    turn, requests = await native_turn(
        default_settings, make, "/v1/messages", anthropic_events(), anthropic_final(" It's time; 12 times 7 is 84.")
    )
    assert turn.errors == []
    assert [call["name"] for call in tool_messages(turn, "tool_call")] == ["get_time", "calculator"]
    assert {call["source"] for call in tool_messages(turn, "tool_call")} == {"model"}
    results = {result["name"]: result for result in tool_messages(turn, "tool_result")}
    assert results["calculator"]["ok"] and "84" in results["calculator"]["text"]
    assert turn.reply == "Let me check. It's time; 12 times 7 is 84."
    assert [tool["name"] for tool in requests[0]["tools"]][:3] == ["get_time", "get_date", "calculator"]
    assert requests[0]["system"].endswith(").") and "It is now" in requests[0]["system"]
    tool_results = requests[1]["messages"][-1]["content"]
    assert [block["tool_use_id"] for block in tool_results] == ["toolu_01A", "toolu_01B"]
    assert "84" in tool_results[1]["content"]


async def test_openai_compatible_models_call_tools_natively(default_settings: Settings) -> None:
    settings = default_settings.llm

    def make(url: str) -> LLM:
        options = settings.openai.model_copy(update={"base_url": f"{url}/v1"})
        return OpenAILLM(settings.model_copy(update={"openai": options}), KEYS)

    turn, requests = await native_turn(
        default_settings, make, "/v1/chat/completions", openai_chunks(), openai_final("12 times 7 is 84.")
    )
    assert turn.errors == [] and turn.reply == "12 times 7 is 84."
    assert [call["id"] for call in tool_messages(turn, "tool_call")] == ["call_A", "call_B"]
    follow_up = requests[1]["messages"]
    assert follow_up[-2]["tool_call_id"] == "call_A" and follow_up[-1]["tool_call_id"] == "call_B"
    assert "84" in follow_up[-1]["content"]


# --- slow and failing tools --------------------------------------------------------------------------


def toolbox_with(tool: FunctionTool, timeout_s: float = 5.0) -> Toolbox:
    box = Toolbox.from_settings(ToolsSettings(enabled=(), intents=False))
    box.registry.add(tool, timeout_s=timeout_s)
    return box


async def openai_calling(tool: str, default_settings: Settings, box: Toolbox) -> TurnResult:
    call = {"index": 0, "id": "call_A", "function": {"name": tool, "arguments": "{}"}}
    first = [
        *openai_chunks()[:1],
        {
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "gpt-x",
            "choices": [{"index": 0, "delta": {"tool_calls": [call]}, "finish_reason": "tool_calls"}],
        },
    ]

    async def handler(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        last = body["messages"][-1]
        chunks = first if last["role"] == "user" else openai_final(f"The tool said: {last['content']}")
        for chunk in chunks:
            await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
        await response.write(b"data: [DONE]\n\n")
        return response

    async with scripted(handler, "/v1/chat/completions") as url:
        llm_settings = default_settings.llm
        llm = OpenAILLM(
            llm_settings.model_copy(
                update={"openai": llm_settings.openai.model_copy(update={"base_url": f"{url}/v1"})}
            ),
            KEYS,
        )
        stages = Stages(asr=FakeASR(text="Use the tool."), llm=llm, tts=FakeTTS())
        async with tools_server(default_settings, stages, box) as server:
            client = await VoiceClient.connect(server.ws_url)
            turn = await client.utterance(SPEECH)
            await client.close()
    return turn


async def test_a_slow_tool_makes_the_assistant_say_it_is_checking(default_settings: Settings) -> None:
    async def slow(arguments: Any, context: ToolContext) -> ToolResult:
        await asyncio.sleep(0.6)
        return ToolResult.success("done")

    tool = FunctionTool("slow_lookup", "Looks something up slowly.", object_schema(), "look something up", slow)
    turn = await openai_calling("slow_lookup", default_settings, toolbox_with(tool))
    assert turn.errors == [] and turn.reply == "The tool said: done"
    # "Let me check." was spoken (and heard) while the tool ran: its audio came first.
    assert len(turn.audio) / 2 / 16_000 == pytest.approx(len("Let me check.The tool said: done") * 0.005, abs=0.01)


@pytest.mark.slow
async def test_a_tool_that_fails_or_hangs_costs_only_its_call(default_settings: Settings) -> None:
    async def broken(arguments: Any, context: ToolContext) -> ToolResult:
        raise RuntimeError("the backend is down")

    async def hanging(arguments: Any, context: ToolContext) -> ToolResult:
        await asyncio.sleep(30)
        return ToolResult.success("never")

    for name, run, timeout_s, reason in (
        ("broken", broken, 5.0, "the backend is down"),
        ("hanging", hanging, 0.2, "took longer than"),
    ):
        tool = FunctionTool(name, "A tool.", object_schema(), "use a tool", run)
        turn = await openai_calling(name, default_settings, toolbox_with(tool, timeout_s))
        (result,) = tool_messages(turn, "tool_result")
        assert result["ok"] is False and reason in result["error"], result
        assert turn.errors == [] and turn.states[-1] == "idle"
        assert turn.reply is not None and turn.reply.startswith("The tool said: Error:")


# --- timers ------------------------------------------------------------------------------------------


@asynccontextmanager
async def with_timers(default_settings: Settings, clock: ManualClock, asr: FakeASR) -> AsyncIterator[VoiceClient]:
    box = Toolbox.from_settings(ToolsSettings(), timer_clock=clock)
    async with tools_server(default_settings, Stages(asr=asr, llm=FakeLLM(), tts=FakeTTS()), box) as server:
        client = await VoiceClient.connect(server.ws_url)
        try:
            yield client
        finally:
            await client.close()


async def wait_for_sleepers(clock: ManualClock) -> None:
    for _ in range(500):
        if clock.sleepers:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the timer board never waited on the clock")


async def test_a_timer_is_set_shown_and_speaks_by_itself_when_it_ends(default_settings: Settings) -> None:
    clock = ManualClock()
    async with with_timers(default_settings, clock, FakeASR(text="Set a timer for five minutes.")) as client:
        turn = await client.utterance(SPEECH)
        (timers,) = tool_messages(turn, "timers")
        (timer,) = timers["timers"]
        assert timer["duration_s"] == 300 and timer["remaining_s"] == pytest.approx(300, abs=0.01)
        assert turn.reply is not None and "5 minute" in turn.reply
        await wait_for_sleepers(clock)
        clock.advance(300)  # five minutes pass, at once
        announcement = await client.collect_turn()
    assert announcement.states == ["speaking", "idle"]
    kinds = [event["type"] for event in announcement.events]
    assert kinds[:2] == ["timers", "status"]  # the page's list empties, then the assistant speaks
    assert announcement.events[0]["timers"] == []
    status = announcement.events[1]
    assert (status["state"], status["reason"], status["turn"]) == ("speaking", "timer", 2)
    assert announcement.reply == "Your 5 minute timer is done."
    assert announcement.audio_format is not None and len(announcement.audio) > 0


@pytest.mark.slow
async def test_a_timer_that_ends_while_the_user_speaks_waits_for_the_turn_to_end(default_settings: Settings) -> None:
    clock = ManualClock()
    asr = FakeASR(text="Set a timer for ten seconds.")
    async with with_timers(default_settings, clock, asr) as client:
        await client.utterance(SPEECH)
        await wait_for_sleepers(clock)
        asr.text = "Tell me something."
        await client.send_action("start_listening")
        await client.wait_for(lambda f: isinstance(f, dict) and f.get("state") == "listening")
        clock.advance(10)  # ends while the user is talking
        fired = await client.wait_for(lambda f: isinstance(f, dict) and f.get("type") == "timers")
        assert [f for f in fired if isinstance(f, dict) and f.get("state") == "speaking"] == []
        await client.send_audio(SPEECH)
        await client.send_action("stop_listening")
        turn = await client.collect_turn()  # the user's turn first, then the announcement
        announcement = await client.collect_turn()
    assert turn.transcript == "Tell me something." and turn.states[-1] == "idle"
    assert announcement.states == ["speaking", "idle"] and announcement.reply == "Your 10 second timer is done."


# --- replay ------------------------------------------------------------------------------------------


async def test_tool_calls_are_recorded_and_replayed_with_the_recorded_results(
    default_settings: Settings, tmp_path: Path
) -> None:
    from tests.conftest import only_folder, recording_settings, sessions_ended
    from voicebot.recording.reader import load_recording
    from voicebot.recording.replay import run_replay

    settings = recording_settings(default_settings, tmp_path)
    stages = Stages(asr=FakeASR(text="What is twelve times seven?"), llm=FakeLLM(), tts=FakeTTS())
    async with local_server(settings, stages) as server:
        client = await VoiceClient.connect(server.ws_url)
        turn = await client.utterance(SPEECH)
        await client.close()
        await sessions_ended(server)
    assert turn.reply == "12 times 7 is 84."
    (recorded,) = load_recording(only_folder(tmp_path)).turns
    (tool,) = recorded.tools
    assert (tool["id"], tool["name"], tool["ok"]) == ("intent_1", "calculator", True)
    assert "84" in recorded.tools[0]["text"]

    for recorded_tools in (False, True):
        out = io.StringIO()
        code = await asyncio.to_thread(
            run_replay,
            settings,
            str(only_folder(tmp_path)),
            json_output=True,
            stages=stages,
            out=out,
            recorded_tools=recorded_tools,
        )
        assert code == 0
        (replayed,) = json.loads(out.getvalue())["turns"]
        assert replayed["now"]["reply"] == replayed["then"]["reply"] == "12 times 7 is 84."
        assert replayed["now"]["tools"] == replayed["then"]["tools"]
