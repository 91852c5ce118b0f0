"""Faults cost one turn only, over a real server and WebSocket: providers that raise, hang or return
garbage; a disconnect in every state cancels the session's work and flushes its recording."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.fakes import FakeASR, FakeLLM, FakeTTS
from tests.securitykit import SPEECH, fake_stages, server_with, wait_until
from voicebot.client import VoiceClient
from voicebot.providers.base import NO_OPTIONS, Message, ReplyOptions, Stages
from voicebot.providers.fallback import FallbackASR, FallbackLLM, FallbackTTS
from voicebot.settings import StageTimeouts

QUICK = StageTimeouts(connect_s=0.2, first_byte_s=0.3, total_s=0.6)


class GarbageLLM(FakeLLM):
    broken = True

    async def stream_reply(self, history: Sequence[Message], options: ReplyOptions = NO_OPTIONS) -> AsyncIterator[str]:
        if not self.broken:
            async for piece in super().stream_reply(history, options):
                yield piece
            return
        yield "Fine. "
        yield None  # type: ignore[misc]
        yield 42  # type: ignore[misc]


class GarbageTTS(FakeTTS):
    broken = True

    async def synthesize(self, text: str) -> AsyncIterator[bytes]:
        if not self.broken:
            async for chunk in super().synthesize(text):
                yield chunk
            return
        yield b"\x01\x02\x03"  # half a sample
        yield "not audio"  # type: ignore[misc]


class GarbageASR(FakeASR):
    broken = True

    async def transcribe(self, pcm: bytes, sample_rate: int) -> str:
        if not self.broken:
            return await super().transcribe(pcm, sample_rate)
        return {"text": "a dict"}  # type: ignore[return-value]


def with_timeouts(stages: Stages) -> Stages:
    """The stages wrapped as the server wraps configured providers: with stage timeouts."""
    return Stages(
        asr=FallbackASR([stages.asr], QUICK), llm=FallbackLLM([stages.llm], QUICK), tts=FallbackTTS([stages.tts], QUICK)
    )


def broken_fake(kind: str, stage: str) -> Any:
    if kind == "hang":
        return {"asr": FakeASR, "llm": FakeLLM, "tts": FakeTTS}[stage](delay_s=3600)
    return {"asr": GarbageASR, "llm": GarbageLLM, "tts": GarbageTTS}[stage]()


def repair(fake: Any) -> None:
    fake.delay_s = 0.0
    fake.broken = False


@pytest.mark.parametrize(("kind", "stage"), [(k, s) for k in ("hang", "garbage") for s in ("asr", "llm", "tts")])
async def test_a_hanging_or_garbage_provider_costs_one_turn(kind: str, stage: str) -> None:
    fake = broken_fake(kind, stage)
    stages = with_timeouts(fake_stages(**{stage: fake}))
    async with server_with(stages) as server:
        client = await VoiceClient.connect(server.ws_url)
        turn = await client.utterance(SPEECH, timeout=30)
        assert turn.states[-1] == "idle"
        assert [error["code"] for error in turn.errors] == [f"{stage}_failed"], turn.errors
        # the next turn, with working providers, is answered in full
        repair(fake)
        turn = await client.utterance(SPEECH, timeout=30)
        await client.close()
    assert turn.errors == [] and turn.reply == "Hello! This is a fake reply."


def recording_lines(directory: Path) -> list[dict[str, Any]]:
    (folder,) = directory.iterdir()
    return [json.loads(line) for line in (folder / "events.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("state", ["idle", "listening", "transcribing", "thinking", "speaking"])
async def test_a_disconnect_in_any_state_cancels_the_work_and_flushes_the_recording(state: str, tmp_path: Path) -> None:
    llm = FakeLLM(delay_s=0.0 if state == "speaking" else 3600)
    asr = FakeASR(delay_s=3600 if state == "transcribing" else 0.0)
    tts = FakeTTS(ms_per_char=1000.0)  # a long reply to be in the middle of
    stages = fake_stages(asr=asr, llm=llm, tts=tts)
    async with server_with(stages, recording={"enabled": True, "directory": str(tmp_path)}) as server:
        client = await VoiceClient.connect(server.ws_url)
        if state != "idle":
            await client.send_action("start_listening")
            await client.send_audio(SPEECH)
            if state != "listening":
                await client.send_action("stop_listening")
            await client.wait_for(lambda f: isinstance(f, dict) and f.get("state") == state)
        await client.close()
        await wait_until(lambda: not server.runtime.sessions)
        await asyncio.sleep(0.05)
        leftover = [t.get_name() for t in asyncio.all_tasks() if t.get_name().startswith(("turn-", "read-", "outbox"))]
    assert leftover == []
    if state == "thinking":
        assert llm.cancelled == 1
    lines = recording_lines(tmp_path)
    ended = [index for index, line in enumerate(lines) if line.get("event") == "session_ended"]
    assert len(ended) == 1
    # Audio still being written when the client left is flushed at close, after the last log line.
    assert {line["kind"] for line in lines[ended[0] + 1 :]} <= {"utterance", "reply_audio"}
    files = sorted(path.name for path in next(tmp_path.iterdir()).iterdir())  # noqa: ASYNC240 - a small folder
    if state in ("transcribing", "thinking", "speaking"):
        assert "turn-001-user.wav" in files
    if state == "speaking":
        assert "turn-001-reply.wav" in files
