"""``GET /metrics`` counts what sessions do, over a real server and real WebSockets. Fake stages only
set the outcome (a failure, a fallback, a slow reply); the session, the observer seam and the
Prometheus exposition are the real ones."""

from __future__ import annotations

import asyncio

from tests.conftest import ServerFactory, sessions_ended
from tests.fakes import FakeASR, FakeLLM, FakeTTS
from tests.scrape import fetch_text, scrape, value
from voicebot.client import VoiceClient
from voicebot.providers.base import Stages
from voicebot.providers.fallback import FallbackLLM
from voicebot.server.metrics import Metrics
from voicebot.settings import StageTimeouts

SPEECH = b"\x00\x10" * 16_000  # 1 s of a loud enough signal for the silence gate


def stages(asr: FakeASR | None = None, llm: FakeLLM | FallbackLLM | None = None) -> Stages:
    return Stages(asr=asr or FakeASR(), llm=llm or FakeLLM(), tts=FakeTTS())


async def test_a_finished_turn_is_counted_and_timed(serve: ServerFactory) -> None:
    async with serve(stages()) as server:
        before = await scrape(server.http_url)
        client = await VoiceClient.connect(server.ws_url)
        turn = await client.utterance(SPEECH)
        during = await scrape(server.http_url)
        await client.close()
        await sessions_ended(server)
        content_type, text = await asyncio.to_thread(fetch_text, server.http_url)
        after = await scrape(server.http_url)
    assert turn.errors == [] and turn.states[-1] == "idle"
    assert value(before, "voicebot_turns_total", outcome="finished") == 0
    assert value(during, "voicebot_sessions_open") == 1
    assert value(after, "voicebot_sessions_open") == 0
    assert value(after, "voicebot_turns_total", outcome="finished") == 1
    assert value(after, "voicebot_first_audio_seconds_count") == 1
    assert value(after, "voicebot_first_audio_seconds_sum") > 0
    for stage in ("asr", "llm_first_token", "llm", "first_segment", "tts_first_audio"):
        assert value(after, "voicebot_stage_seconds_count", stage=stage) == 1, stage
    assert value(after, "voicebot_stage_provider", stage="llm", provider="fake_llm", model="fake") == 1
    assert content_type.startswith("text/plain") and "# TYPE voicebot_turns_total counter" in text
    labels = {name for (_, pairs) in after for name, _ in pairs}
    assert labels <= {"stage", "provider", "model", "outcome", "code", "reason", "le"}  # never a session id


async def test_failures_errors_and_fallbacks_by_stage_and_provider(serve: ServerFactory) -> None:
    timeouts = StageTimeouts()
    fallback = FallbackLLM([FakeLLM(fail_after=0, name="first"), FakeLLM(name="second")], timeouts)
    async with serve(stages(llm=fallback)) as server:
        client = await VoiceClient.connect(server.ws_url)
        answered = await client.utterance(SPEECH)
        await client.close()
        await sessions_ended(server)
        samples = await scrape(server.http_url)
    assert answered.errors == []
    assert value(samples, "voicebot_provider_fallbacks_total", stage="llm", provider="second") == 1
    assert value(samples, "voicebot_provider_failures_total", stage="llm", provider="first") == 1
    assert value(samples, "voicebot_turns_total", outcome="finished") == 1

    async with serve(stages(asr=FakeASR(fail=True))) as server:
        client = await VoiceClient.connect(server.ws_url)
        failed = await client.utterance(SPEECH)
        await client.send_raw("not json")
        await client.wait_for(lambda f: isinstance(f, dict) and f.get("type") == "error")
        await client.close()
        await sessions_ended(server)
        samples = await scrape(server.http_url)
    assert [error["code"] for error in failed.errors] == ["asr_failed"]
    assert value(samples, "voicebot_turns_total", outcome="failed") == 1
    assert value(samples, "voicebot_errors_total", code="asr_failed") == 1
    assert value(samples, "voicebot_provider_failures_total", stage="asr", provider="fake_asr") == 1
    assert sum(v for (name, _), v in samples.items() if name == "voicebot_errors_total") == 2


async def test_barge_ins_nothing_heard_and_dropped_frames(serve: ServerFactory) -> None:
    slow = FakeLLM(pieces=["Slow ", "reply ", "that ", "never ", "ends."], delay_s=0.5)
    async with serve(stages(llm=slow)) as server:
        client = await VoiceClient.connect(server.ws_url)
        await client.send_audio(SPEECH[:6400])  # while idle: dropped, never queued
        await client.say(SPEECH)
        await client.wait_for(lambda f: isinstance(f, dict) and f.get("state") == "thinking")
        await client.send_action("start_listening")  # barge-in
        await client.wait_for(lambda f: isinstance(f, dict) and f.get("state") == "listening")
        await client.send_action("stop_listening")  # nothing said: nothing heard
        await client.collect_turn()
        await client.close()
        await sessions_ended(server)
        samples = await scrape(server.http_url)
    assert value(samples, "voicebot_barge_ins_total") == 1
    assert value(samples, "voicebot_turns_total", outcome="interrupted") == 1
    assert value(samples, "voicebot_turns_total", outcome="nothing_heard") == 1
    assert value(samples, "voicebot_dropped_audio_frames_total") >= 1


def test_each_app_has_its_own_registry() -> None:
    first, second = Metrics(), Metrics()
    first.connection_refused("origin")
    first.connection_refused("origin")
    second.connection_refused("token")
    assert b'voicebot_connections_refused_total{reason="origin"} 2.0' in first.exposition()
    assert b'reason="token"' not in first.exposition()
    assert b'voicebot_connections_refused_total{reason="token"} 1.0' in second.exposition()
