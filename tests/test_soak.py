"""Soak: 1,000 turns with fast fake stages across 20 concurrent sessions over a real server and real
WebSockets. Every turn is answered; afterwards no session, turn, reader or outbox task is left and
the process grew by less than 20 MB. ``python -m tests.measure soak`` prints the same numbers."""

from __future__ import annotations

import asyncio
import gc
import os
from pathlib import Path

import pytest

import voicebot
from tests.fakes import FakeLLM
from tests.securitykit import SPEECH, fake_stages, server_with, wait_until
from voicebot.client import VoiceClient

pytestmark = pytest.mark.slow  # soaks, property runs or real processes: not in the fast tier

SESSIONS = 20
TURNS = 1_000


def rss_mb() -> float:
    """Resident memory of this process, in MB (Linux)."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


#: The voicebot package's own folder: a checkout folder named "voicebot" holds the virtualenv too, and
#: the server library's tasks must not count as voicebot's.
PACKAGE = str(Path(voicebot.__file__).parent) + os.sep


def voicebot_tasks() -> list[asyncio.Task[object]]:
    """Unfinished tasks running voicebot code (turns, readers, outboxes, playbacks, speakers)."""
    return [
        task
        for task in asyncio.all_tasks()
        if not task.done()
        and str(getattr(getattr(task.get_coro(), "cr_code", None), "co_filename", "")).startswith(PACKAGE)
    ]


async def soak(sessions: int = SESSIONS, turns: int = TURNS) -> dict[str, float]:
    """Run the soak; return memory before/after (MB), the answered turns and the tasks left over."""
    session_settings = {"audio_lead_ms": 50, "audio_frame_ms": 20, "min_utterance_ms": 100}
    stages = fake_stages(llm=FakeLLM(remember=False))  # the fake would keep every turn alive
    async with server_with(stages, session=session_settings, limits={"max_sessions": sessions}) as server:
        answered, during = 0, 0

        async def talk(count: int) -> None:
            nonlocal answered, during
            client = await VoiceClient.connect(server.ws_url)
            during = max(during, len(voicebot_tasks()))  # the filter sees a live session's tasks
            for _ in range(count):
                turn = await client.utterance(SPEECH[:6400], timeout=30)
                assert turn.errors == [] and turn.reply == "Hello! This is a fake reply.", turn.errors
                answered += 1
            await client.close()

        # A warm-up round at full concurrency, so that imports, caches and the allocator's working set
        # for 20 sessions are not counted as growth.
        await asyncio.gather(*(talk(2) for _ in range(sessions)))
        await wait_until(lambda: not server.runtime.sessions)
        existing = set(asyncio.all_tasks())
        gc.collect()
        before, answered = rss_mb(), 0
        await asyncio.gather(*(talk(turns // sessions) for _ in range(sessions)))
        await wait_until(lambda: not server.runtime.sessions)
        await asyncio.sleep(0.05)
        left = [task for task in voicebot_tasks() if task not in existing]
        gc.collect()
        after = rss_mb()
    return {
        "rss_before_mb": before,
        "rss_after_mb": after,
        "answered": answered,
        "tasks_left": len(left),
        "tasks_during": during,
        "left": [repr(t.get_coro()) for t in left],
    }  # type: ignore[dict-item]


async def test_a_thousand_turns_leave_no_tasks_and_little_memory() -> None:
    result = await soak()
    assert result["answered"] == TURNS
    assert result["tasks_during"] > 0 and result["tasks_left"] == 0, result["left"]
    assert result["rss_after_mb"] - result["rss_before_mb"] < 20, result
