"""Measure what the embedded default LLM answers to the tool questions of issue 13, and how fast,
against the intent layer (match + tool call). Not a test: run it by hand, it loads SmolLM2.

    PYTHONPATH=$PWD python tests/tools/measure_embedded.py
"""

from __future__ import annotations

import asyncio
import time

from voicebot.providers.base import Message
from voicebot.providers.llama_cpp import LlamaCppLLM
from voicebot.settings import load_settings
from voicebot.tools import TimerBoard, ToolContext, ToolRegistry, add_builtin_tools
from voicebot.tools.intents import IntentLayer

QUESTIONS = ("What time is it?", "What is twelve times seven?", "How many days are in a leap year?")


async def main() -> None:
    """Print, for each question, the LLM's reply and timings, then the intent layer's."""
    settings = load_settings(environ={"VOICEBOT_RECORDING__ENABLED": "false"})
    llm = LlamaCppLLM(settings.llm)
    llm.warm()
    layer = IntentLayer(add_builtin_tools(ToolRegistry()))
    context = ToolContext(timers=TimerBoard())
    layer.match("warm up")
    for question in QUESTIONS:
        first = total = 0.0
        parts: list[str] = []
        for _ in range(2):  # the second run is the one reported (caches warm)
            parts = []
            started = time.perf_counter()
            first = 0.0
            async for piece in llm.stream_reply([Message(role="user", content=question)]):
                first = first or time.perf_counter() - started
                parts.append(piece)
            total = time.perf_counter() - started
        reply = "".join(parts).strip()
        print(f"LLM    {question!r}: first text {first * 1000:.0f} ms, whole {total * 1000:.0f} ms -> {reply!r}")
        started = time.perf_counter()
        match = layer.match(question)
        assert match is not None
        _, said = await layer.answer(match, context)
        print(f"intent {question!r}: match + tool {(time.perf_counter() - started) * 1000:.1f} ms -> {said!r}")
    print("clock:", time.strftime("%H:%M %Z"))


if __name__ == "__main__":
    asyncio.run(main())
