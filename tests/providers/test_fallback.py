"""Fallback lists and timeouts: the order providers are tried in, no retry once output has started,
what the page is told, and the session staying usable after every kind of failure."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.conftest import QUESTION, SECOND_QUESTION, ServerFactory
from tests.fakes import FakeASR, FakeLLM, FakeTTS, InjectedFailure
from tests.fakeservers import REPLY, FakeService
from tests.providers.conftest import FAST, KEYS, get_json, make_settings
from voicebot.client import TurnResult, VoiceClient
from voicebot.errors import ProviderFailed, Stage
from voicebot.providers.anthropic_api import AnthropicLLM
from voicebot.providers.base import Message, Stages
from voicebot.providers.fallback import (
    AllProvidersFailed,
    FallbackASR,
    FallbackLLM,
    FallbackTTS,
)
from voicebot.providers.health import HealthMonitor
from voicebot.providers.openai_api import OpenAIASR, OpenAILLM, OpenAITTS
from voicebot.settings import StageTimeouts
from voicebot.turn.events import FallbackUsed

TIMEOUTS = StageTimeouts(connect_s=1, first_byte_s=0.3, total_s=5)
HISTORY = [Message("user", "Hi.")]


async def reply_of(llm: FallbackLLM) -> tuple[list[str], list[FallbackUsed]]:
    """Run one request through the turn's own view of the stage and collect its pieces and notices."""
    notices: list[FallbackUsed] = []
    pieces = [piece async for piece in llm.notifying(notices.append).stream_reply(HISTORY)]
    return pieces, notices


# --- the wrappers, with fault-injection fakes ------------------------------------------------------


async def test_the_first_provider_answers_when_it_can() -> None:
    first, second = FakeLLM(pieces=("One.",), name="first"), FakeLLM(name="second")
    pieces, notices = await reply_of(FallbackLLM([first, second], TIMEOUTS))
    assert pieces == ["One."] and notices == []
    assert len(first.seen) == 1 and second.seen == []


async def test_a_failure_before_output_moves_on_in_order() -> None:
    providers = [
        FakeLLM(fail_after=0, name="first"),
        FakeLLM(fail_after=0, name="second"),
        FakeLLM(pieces=("Third ", "speaking."), name="third"),
    ]
    pieces, notices = await reply_of(FallbackLLM(providers, TIMEOUTS))
    assert pieces == ["Third ", "speaking."]
    assert [len(p.seen) for p in providers] == [1, 1, 1]
    (notice,) = notices
    assert (notice.stage, notice.provider) == (Stage.LLM, "third")
    assert list(notice.skipped) == [
        ("first", "fake LLM failed"),
        ("second", "fake LLM failed"),
    ]
    assert notice.message == "Answered by third (first: fake LLM failed; second: fake LLM failed)"


async def test_a_provider_silent_past_first_byte_is_skipped() -> None:
    slow, quick = FakeLLM(delay_s=3.0, name="slow"), FakeLLM(pieces=("Quick.",), name="quick")
    started = time.monotonic()
    pieces, notices = await reply_of(FallbackLLM([slow, quick], TIMEOUTS))
    assert pieces == ["Quick."]
    assert time.monotonic() - started < 1.5
    assert slow.cancelled == 1  # its stream was closed, not left running
    assert notices[0].skipped[0][1] == "no output within 0.3 s"


async def test_no_retry_once_output_has_started() -> None:
    first, second = FakeLLM(fail_after=2, name="first"), FakeLLM(name="second")
    pieces: list[str] = []
    with pytest.raises(InjectedFailure):
        async for piece in FallbackLLM([first, second], TIMEOUTS).stream_reply(HISTORY):
            pieces.append(piece)
    assert pieces == ["Hello! ", "This is "]
    assert second.seen == []  # the user must not hear the reply twice


async def test_the_total_limit_ends_a_reply_that_started() -> None:
    slowly = FakeLLM(pieces=("a ", "b ", "c ", "d ", "e "), delay_s=0.2, name="slowly")
    timeouts = StageTimeouts(connect_s=1, first_byte_s=1, total_s=0.5)
    pieces: list[str] = []
    with pytest.raises(ProviderFailed, match=r"slowly: took longer than 0\.5 s in all"):
        async for piece in FallbackLLM([slowly, FakeLLM()], timeouts).stream_reply(HISTORY):
            pieces.append(piece)
    assert 1 <= len(pieces) < 5


async def test_every_provider_failing_lists_each_reason() -> None:
    providers = [FakeLLM(fail_after=0, name="first"), FakeLLM(delay_s=3, name="second")]
    with pytest.raises(AllProvidersFailed) as error:
        async for _ in FallbackLLM(providers, TIMEOUTS).stream_reply(HISTORY):
            pass
    assert str(error.value) == "no provider answered. first: fake LLM failed; second: no output within 0.3 s"


async def test_asr_falls_back_on_failure_and_on_timeout() -> None:
    broken, slow, good = FakeASR(fail=True, name="broken"), FakeASR(delay_s=3, name="slow"), FakeASR(text="yes")
    notices: list[FallbackUsed] = []
    asr = FallbackASR([broken, slow, good], TIMEOUTS).notifying(notices.append)
    assert await asr.transcribe(b"\x00\x00" * 160, 16_000) == "yes"
    assert [reason for _, reason in notices[0].skipped] == ["fake ASR failed", "no output within 0.3 s"]


async def test_tts_fallback_audio_is_resampled_to_the_first_voice_rate() -> None:
    first = FakeTTS(sample_rate=24_000, fail=True, name="first")
    second = FakeTTS(sample_rate=16_000, ms_per_char=100, name="second")
    tts = FallbackTTS([first, second], TIMEOUTS)
    assert tts.sample_rate == 24_000
    pcm = b"".join([chunk async for chunk in tts.synthesize("Hello there.")])  # 12 chars: 1.2 s
    assert len(pcm) / 2 / 24_000 == pytest.approx(1.2, abs=0.01)


# --- a real server and a real WebSocket: what the page sees ----------------------------------------


async def turns(url: str, *utterances: bytes) -> list[TurnResult]:
    client = await VoiceClient.connect(url)
    try:
        return [await client.utterance(pcm) for pcm in utterances]
    finally:
        await client.close()


def fallback_statuses(turn: TurnResult) -> list[dict[str, object]]:
    return [e for e in turn.events if e.get("type") == "status" and e.get("reason") == "fallback"]


@pytest.mark.models
async def test_the_page_is_told_which_provider_answered(
    serve: ServerFactory,
    embedded_stages: Stages,
    speech: dict[str, bytes],
    anthropic_fake: FakeService,
) -> None:
    """Claude refuses the key, so the embedded model answers; the next turn Claude answers again."""
    settings = make_settings(llm={"anthropic": {"base_url": anthropic_fake.url}, "timeouts": FAST})
    (embedded_llm,) = getattr(embedded_stages.llm, "providers", [embedded_stages.llm])
    llm = FallbackLLM([AnthropicLLM(settings.llm, KEYS), embedded_llm], settings.llm.timeouts)
    stages = Stages(asr=embedded_stages.asr, llm=llm, tts=embedded_stages.tts)
    anthropic_fake.reset("401")
    async with serve(stages, intents=False) as server:  # both questions go to the model
        client = await VoiceClient.connect(server.ws_url)
        try:
            first = await client.utterance(speech[QUESTION])
            anthropic_fake.reset()
            second = await client.utterance(speech[SECOND_QUESTION])
        finally:
            await client.close()

    assert first.errors == []
    assert first.states == ["transcribing", "thinking", "thinking", "speaking", "idle"]
    (status,) = fallback_statuses(first)
    assert status == {
        "type": "status",
        "state": "thinking",
        "turn": 1,
        "reason": "fallback",
        "stage": "llm",
        "provider": "llama_cpp",
        "message": "Answered by llama_cpp (anthropic: the API key was refused (HTTP 401))",
    }
    assert first.reply and len(first.audio) > 0
    assert KEYS["ANTHROPIC_API_KEY"] not in str(first.events)

    assert second.errors == [] and fallback_statuses(second) == []
    assert second.reply == "".join(REPLY)
    # Claude saw the conversation so far, the embedded model's answer included.
    assert anthropic_fake.calls("/v1/messages")[-1].body["messages"][1] == {"role": "assistant", "content": first.reply}


@pytest.mark.parametrize("mode", ["401", "429", "500", "529", "hang", "cut", "truncated", "error_event", "stall"])
async def test_the_session_stays_usable_after_each_failure(
    serve: ServerFactory, speech: dict[str, bytes], anthropic_fake: FakeService, mode: str
) -> None:
    timeouts = {"connect_s": 1, "first_byte_s": 0.5, "total_s": 5}
    settings = make_settings(llm={"anthropic": {"base_url": anthropic_fake.url}, "timeouts": timeouts})
    stages = Stages(
        asr=FakeASR(text="What is the capital of France?"),
        llm=FallbackLLM([AnthropicLLM(settings.llm, KEYS)], settings.llm.timeouts),
        tts=FakeTTS(ms_per_char=5),
    )
    anthropic_fake.reset(mode)
    async with serve(stages) as server:
        client = await VoiceClient.connect(server.ws_url)
        try:
            failed = await client.utterance(speech[QUESTION])
            anthropic_fake.reset()
            recovered = await client.utterance(speech[QUESTION])
        finally:
            await client.close()

    (error,) = failed.errors
    assert error["code"] == "llm_failed" and error["turn"] == 1
    assert error["message"].startswith("The language model failed: anthropic: ")
    assert failed.states[-1] == "idle"
    assert recovered.errors == [] and recovered.reply == "".join(REPLY)
    assert recovered.states == ["transcribing", "thinking", "speaking", "idle"]


async def test_all_providers_failing_gives_one_plain_error(
    serve: ServerFactory,
    speech: dict[str, bytes],
    anthropic_fake: FakeService,
    openai_fake: FakeService,
) -> None:
    settings = make_settings(
        llm={
            "anthropic": {"base_url": anthropic_fake.url},
            "openai": {"base_url": f"{openai_fake.url}/v1"},
            "timeouts": FAST,
        }
    )
    llm = FallbackLLM([AnthropicLLM(settings.llm, KEYS), OpenAILLM(settings.llm, KEYS)], settings.llm.timeouts)
    stages = Stages(asr=FakeASR(), llm=llm, tts=FakeTTS(ms_per_char=5))
    anthropic_fake.reset("529")
    openai_fake.reset("429")
    async with serve(stages) as server:
        (failed,) = await turns(server.ws_url, speech[QUESTION])
    assert failed.errors == [
        {
            "type": "error",
            "code": "llm_failed",
            "turn": 1,
            "message": "The language model failed: no provider answered. "
            "anthropic: the service is overloaded (HTTP 529); openai: rate limited or out of quota (HTTP 429)",
        }
    ]
    assert failed.states == ["transcribing", "thinking", "idle"]


@pytest.mark.models
async def test_asr_and_tts_fall_back_to_the_embedded_models(
    serve: ServerFactory, embedded_stages: Stages, speech: dict[str, bytes], openai_fake: FakeService
) -> None:
    """The transcription and speech services hang (first turn) or fail (second): Whisper and Piper
    step in. The page was promised the first voice's rate (24 kHz); Piper's 22.05 kHz is resampled."""
    settings = make_settings(
        asr={"openai": {"base_url": f"{openai_fake.url}/v1"}, "timeouts": {"first_byte_s": 2.5}},
        tts={"openai": {"base_url": f"{openai_fake.url}/v1"}, "timeouts": {"first_byte_s": 2.5}},
    )
    whisper = next(p for p in getattr(embedded_stages.asr, "providers", ()) if p.name == "faster_whisper")
    (piper,) = getattr(embedded_stages.tts, "providers", [embedded_stages.tts])
    asr = FallbackASR([OpenAIASR(settings.asr.openai, settings.asr.timeouts, KEYS), whisper], settings.asr.timeouts)
    tts = FallbackTTS([OpenAITTS(settings.tts.openai, settings.tts.timeouts, KEYS), piper], settings.tts.timeouts)
    stages = Stages(asr=asr, llm=FakeLLM(pieces=("Paris is the capital. ", "It is in France.")), tts=tts)
    openai_fake.reset("hang")
    async with serve(stages) as server:
        (turn,) = await turns(server.ws_url, speech[QUESTION])
        openai_fake.reset("500")
        (second,) = await turns(server.ws_url, speech[QUESTION])

    assert turn.errors == []
    assert turn.transcript is not None and "capital of france" in turn.transcript.lower()
    by_stage = {s["stage"]: s for s in fallback_statuses(turn)}
    assert by_stage["asr"]["provider"] == "faster_whisper"
    assert "openai: no output within 2.5 s" in str(by_stage["asr"]["message"])
    assert by_stage["tts"]["provider"] == "piper"
    assert len(fallback_statuses(turn)) == 2  # once per stage, not once per sentence
    assert turn.audio_format is not None and turn.audio_format["sample_rate"] == 24_000
    assert len(turn.audio) / 2 / 24_000 > 1.0  # two sentences of Piper speech, at 24 kHz
    assert second.errors == [] and {s["stage"] for s in fallback_statuses(second)} == {"asr", "tts"}


# --- /health -------------------------------------------------------------------------------------


async def test_health_shows_each_provider_and_caches_the_checks(
    serve: ServerFactory, anthropic_fake: FakeService, openai_fake: FakeService
) -> None:
    settings = make_settings(
        llm={"anthropic": {"base_url": anthropic_fake.url}, "openai": {"base_url": f"{openai_fake.url}/v1"}}
    )
    llm = FallbackLLM([AnthropicLLM(settings.llm, KEYS), OpenAILLM(settings.llm, KEYS), FakeLLM()], TIMEOUTS)
    stages = Stages(asr=FakeASR(), llm=llm, tts=FakeTTS())
    anthropic_fake.reset("401")
    async with serve(stages, intents=False) as server:  # both questions go to the model
        health = await get_json(f"{server.http_url}/health")
        again = await get_json(f"{server.http_url}/health")
    assert health["status"] == "ok"
    assert health["stages"]["llm"] == {
        "provider": "anthropic,openai,fake_llm",
        "model": "claude-haiku-4-5,gpt-4o-mini,fake",
    }
    assert health["stages"]["tts"] == {"provider": "fake_tts", "model": "fake"}
    providers = [(p["name"], p["reachable"], p["detail"]) for p in health["providers"]["llm"]]
    assert providers == [
        ("anthropic", False, "the API key was refused (HTTP 401)"),
        ("openai", True, "answered"),
        ("fake_llm", True, "runs in this process"),
    ]
    assert health["providers"]["asr"][0]["name"] == "fake_asr"
    assert [p["reachable"] for p in again["providers"]["llm"]] == [False, True, True]
    assert len(anthropic_fake.calls("/v1/models")) == 1 and len(openai_fake.calls("/v1/models")) == 1  # cached


async def test_health_answers_quickly_when_a_check_hangs(openai_fake: FakeService) -> None:
    settings = make_settings(llm={"openai": {"base_url": f"{openai_fake.url}/v1"}})
    stages = Stages(asr=FakeASR(), llm=FallbackLLM([OpenAILLM(settings.llm, KEYS)], TIMEOUTS), tts=FakeTTS())
    monitor = HealthMonitor(stages, wait_s=0.2, check_timeout_s=0.6)
    openai_fake.reset("hang")
    started = time.monotonic()
    first = await monitor.report()  # starts the first check
    assert time.monotonic() - started < 0.5  # never waits for a check longer than wait_s
    assert first["providers"]["llm"][0]["reachable"] is None  # not checked yet
    while (health := await monitor.report())["providers"]["llm"][0]["reachable"] is None:
        assert time.monotonic() - started < 5
    (entry,) = health["providers"]["llm"]
    assert (entry["reachable"], entry["detail"]) == (False, "no answer within 0.6 s")
    assert health["status"] == "degraded"  # no LLM can be reached


async def test_a_barge_in_closes_the_remote_stream(anthropic_fake: FakeService) -> None:
    """Cancelling the turn (what a barge-in does) mid-reply closes the HTTP stream at once, so the
    service stops generating (and billing) for a reply nobody hears."""
    settings = make_settings(llm={"anthropic": {"base_url": anthropic_fake.url}, "timeouts": FAST})
    llm = FallbackLLM([AnthropicLLM(settings.llm, KEYS), FakeLLM()], settings.llm.timeouts)
    anthropic_fake.reset("stall")  # the first words, then nothing
    first_words = asyncio.Event()

    async def turn() -> None:
        async for _ in llm.stream_reply(HISTORY):
            first_words.set()

    task = asyncio.create_task(turn())
    await asyncio.wait_for(first_words.wait(), 2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for _ in range(40):
        if anthropic_fake.hung_up:
            break
        await asyncio.sleep(0.025)
    assert anthropic_fake.hung_up == 1
