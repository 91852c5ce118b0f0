"""OpenAI-compatible providers: the LLM against a real ``llama_cpp.server`` (also through a whole
voice turn over a real WebSocket), and chat, transcription and speech against a wire-level fake for
the error cases a local server cannot produce."""

from __future__ import annotations

import io
import wave

import pytest

from tests.conftest import QUESTION, ServerFactory
from tests.fakeservers import REPLY, FakeService
from tests.providers.conftest import FAST, KEYS, get_json, make_settings
from voicebot.client import VoiceClient
from voicebot.errors import ProviderFailed
from voicebot.providers.base import Message, Stages
from voicebot.providers.openai_api import OpenAIASR, OpenAILLM, OpenAITTS
from voicebot.providers.registry import build_llm

# --- a real OpenAI-compatible server --------------------------------------------------------------


async def test_llm_streams_from_a_real_llama_cpp_server(llama_server: str) -> None:
    settings = make_settings(llm={"openai": {"base_url": llama_server, "model": "smollm2", "api_key_env": None}})
    llm = OpenAILLM(settings.llm, environ={})
    pieces = [piece async for piece in llm.stream_reply([Message("user", "What is the capital of France?")])]
    assert len(pieces) > 1  # streamed, not one block
    assert any(ch.isalpha() for ch in "".join(pieces))
    await llm.check()  # /v1/models answers


@pytest.mark.models
async def test_a_voice_turn_answered_by_a_llama_cpp_server(
    serve: ServerFactory, embedded_stages: Stages, speech: dict[str, bytes], llama_server: str
) -> None:
    settings = make_settings(
        llm={"provider": "openai", "openai": {"base_url": llama_server, "model": "smollm2", "api_key_env": None}}
    )
    stages = Stages(asr=embedded_stages.asr, llm=build_llm(settings, environ={}), tts=embedded_stages.tts)
    async with serve(stages) as server:
        client = await VoiceClient.connect(server.ws_url)
        try:
            turn = await client.utterance(speech[QUESTION])
        finally:
            await client.close()
        health = await get_json(f"{server.http_url}/health")
    assert turn.errors == []
    assert turn.states == ["transcribing", "thinking", "speaking", "idle"]
    assert turn.transcript is not None and "capital" in turn.transcript.lower()
    assert turn.reply and turn.reply == "".join(turn.pieces) and len(turn.pieces) > 1
    assert turn.audio_format is not None and turn.audio_format["sample_rate"] == embedded_stages.tts.sample_rate
    assert len(turn.audio) > embedded_stages.tts.sample_rate  # over half a second of speech
    assert not any(e.get("reason") == "fallback" for e in turn.events)
    (llm,) = health["providers"]["llm"]
    assert llm == {**llm, "name": "openai", "model": "smollm2", "reachable": True}


# --- chat completions: errors, against the fake ---------------------------------------------------


def openai_llm(fake: FakeService) -> OpenAILLM:
    settings = make_settings(llm={"openai": {"base_url": f"{fake.url}/v1"}, "timeouts": FAST})
    return OpenAILLM(settings.llm, KEYS)


async def test_chat_request_carries_key_model_and_system_prompt(openai_fake: FakeService) -> None:
    llm = openai_llm(openai_fake)
    pieces = [p async for p in llm.stream_reply([Message("user", "Hi."), Message("user", "Hello?")])]
    assert pieces == list(REPLY)
    (request,) = openai_fake.calls("/v1/chat/completions")
    assert request.headers["authorization"] == f"Bearer {KEYS['OPENAI_API_KEY']}"
    assert request.body["model"] == "gpt-4o-mini" and request.body["stream"] is True
    assert request.body["messages"][0]["role"] == "system"
    assert request.body["messages"][1:] == [{"role": "user", "content": "Hi.\nHello?"}]


@pytest.mark.parametrize(
    ("mode", "words", "reason"),
    [
        ("401", 0, "the API key was refused (HTTP 401)"),
        ("429", 0, "rate limited or out of quota (HTTP 429)"),
        ("500", 0, "the service had an internal error (HTTP 500)"),
        ("hang", 0, "no answer in time"),
        ("cut", 1, "the connection was cut off mid-way"),
        ("truncated", 1, "the reply stream ended before the reply was complete"),
        ("stall", 1, "no answer in time"),
    ],
)
async def test_chat_failures_become_plain_reasons(openai_fake: FakeService, mode: str, words: int, reason: str) -> None:
    openai_fake.reset(mode)
    pieces: list[str] = []
    with pytest.raises(ProviderFailed) as error:
        async for piece in openai_llm(openai_fake).stream_reply([Message("user", "Hi.")]):
            pieces.append(piece)
    assert pieces == list(REPLY[:words])
    assert (error.value.provider, error.value.reason) == ("openai", reason)
    assert KEYS["OPENAI_API_KEY"] not in str(error.value)


# --- transcription --------------------------------------------------------------------------------


def openai_asr(fake: FakeService) -> OpenAIASR:
    settings = make_settings(asr={"openai": {"base_url": f"{fake.url}/v1"}, "timeouts": FAST})
    return OpenAIASR(settings.asr.openai, settings.asr.timeouts, KEYS)


async def test_transcription_sends_the_utterance_as_wav(openai_fake: FakeService) -> None:
    pcm = b"\x01\x02" * 8000  # half a second at 16 kHz
    text = await openai_asr(openai_fake).transcribe(pcm, 16_000)
    assert text == "The capital of France is Paris. It is lovely."
    (request,) = openai_fake.calls("/v1/audio/transcriptions")
    assert request.headers["authorization"] == f"Bearer {KEYS['OPENAI_API_KEY']}"
    assert request.body["model"] == "whisper-1" and request.body["language"] == "en"
    upload = request.body["file"]
    assert upload["filename"].endswith(".wav")
    with wave.open(io.BytesIO(upload["data"])) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (16_000, 1, 2)
        assert wav.readframes(wav.getnframes()) == pcm


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("401", "the API key was refused (HTTP 401)"),
        ("500", "the service had an internal error (HTTP 500)"),
        ("hang", "no answer in time"),
    ],
)
async def test_transcription_failures(openai_fake: FakeService, mode: str, reason: str) -> None:
    openai_fake.reset(mode)
    with pytest.raises(ProviderFailed) as error:
        await openai_asr(openai_fake).transcribe(b"\x00\x00" * 1600, 16_000)
    assert error.value.reason == reason


# --- speech ---------------------------------------------------------------------------------------


def openai_tts(fake: FakeService) -> OpenAITTS:
    settings = make_settings(tts={"openai": {"base_url": f"{fake.url}/v1", "voice": "nova"}, "timeouts": FAST})
    return OpenAITTS(settings.tts.openai, settings.tts.timeouts, KEYS)


async def test_speech_streams_raw_pcm_in_whole_samples(openai_fake: FakeService) -> None:
    tts = openai_tts(openai_fake)
    chunks = [chunk async for chunk in tts.synthesize("Hello there.")]
    assert len(chunks) > 1 and all(len(chunk) % 2 == 0 for chunk in chunks)
    assert sum(map(len, chunks)) == 24_000  # half a second at 24 kHz, s16le: nothing lost at odd cuts
    assert tts.sample_rate == 24_000
    (request,) = openai_fake.calls("/v1/audio/speech")
    assert request.body == {**request.body, "input": "Hello there.", "voice": "nova", "response_format": "pcm"}


@pytest.mark.parametrize(
    ("mode", "some_audio", "reason"),
    [
        ("401", False, "the API key was refused (HTTP 401)"),
        ("429", False, "rate limited or out of quota (HTTP 429)"),
        ("cut", True, "the connection was cut off mid-way"),
    ],
)
async def test_speech_failures(openai_fake: FakeService, mode: str, some_audio: bool, reason: str) -> None:
    openai_fake.reset(mode)
    received = b""
    with pytest.raises(ProviderFailed) as error:
        async for chunk in openai_tts(openai_fake).synthesize("Hello there."):
            received += chunk
    assert bool(received) is some_audio
    assert error.value.reason == reason
