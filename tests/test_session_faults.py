"""Session behaviour under injected timing and failures, over a real server and WebSocket.
Fake stages only set the timing (slow, failing); everything else is the real session."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.conftest import ServerFactory
from tests.fakes import FakeASR, FakeLLM, FakeTTS
from voicebot.client import VoiceClient
from voicebot.providers.base import Message, Stages

SPEECH = b"\x00\x10" * 16_000  # 1 s of a loud enough signal for the silence gate


def stages(asr: FakeASR | None = None, llm: FakeLLM | None = None, tts: FakeTTS | None = None) -> Stages:
    return Stages(asr=asr or FakeASR(), llm=llm or FakeLLM(), tts=tts or FakeTTS())


async def test_a_failing_stage_is_an_error_and_the_next_turn_works(serve: ServerFactory) -> None:
    llm = FakeLLM(fail_after=2)
    async with serve(stages(llm=llm)) as server:
        client = await VoiceClient.connect(server.ws_url)
        turn = await client.utterance(SPEECH)
        assert turn.states[0] == "transcribing" and turn.states[-1] == "idle"
        assert [error["code"] for error in turn.errors] == ["llm_failed"]
        assert turn.events[-1]["reason"] == "failed"
        assert server.runtime.sessions[client.session_id or ""].history == []

        llm.fail_after = None
        turn = await client.utterance(SPEECH)
        await client.close()
    assert turn.errors == [] and turn.states == ["transcribing", "thinking", "speaking", "idle"]
    assert turn.reply == "Hello! This is a fake reply."


@pytest.mark.parametrize("stage", ["asr", "tts"])
async def test_asr_and_tts_failures_have_their_codes(serve: ServerFactory, stage: str) -> None:
    fakes = stages(asr=FakeASR(fail=stage == "asr"), tts=FakeTTS(fail=stage == "tts"))
    async with serve(fakes) as server:
        client = await VoiceClient.connect(server.ws_url)
        turn = await client.utterance(SPEECH)
        await client.close()
    assert [error["code"] for error in turn.errors] == [f"{stage}_failed"]
    assert turn.states[-1] == "idle"


async def test_errors_sent_to_the_page_hold_no_secrets(serve: ServerFactory) -> None:
    class LeakyASR(FakeASR):
        async def transcribe(self, pcm: bytes, sample_rate: int) -> str:
            raise RuntimeError("401 for key sk-proj-abcdefghijklmnopqrstuvwxyz123456")

    async with serve(stages(asr=LeakyASR())) as server:
        client = await VoiceClient.connect(server.ws_url)
        turn = await client.utterance(SPEECH)
        await client.close()
    (error,) = turn.errors
    assert "sk-proj" not in error["message"] and "REDACTED" in error["message"]


async def test_barge_in_while_thinking_cancels_the_model(serve: ServerFactory) -> None:
    llm = FakeLLM(pieces=["Slow ", "reply ", "that ", "never ", "ends."], delay_s=0.5)
    async with serve(stages(llm=llm)) as server:
        client = await VoiceClient.connect(server.ws_url)
        await client.say(SPEECH)
        await client.wait_for(lambda frame: isinstance(frame, dict) and frame.get("state") == "thinking")
        await client.send_action("start_listening")
        frames = await client.wait_for(lambda frame: isinstance(frame, dict) and frame.get("state") == "listening")
        await asyncio.sleep(0.1)
        session = server.runtime.sessions[client.session_id or ""]
        await client.close()
    assert [frame["type"] for frame in frames if isinstance(frame, dict)] == ["response_interrupted", "status"]
    assert frames[0] == {"type": "response_interrupted", "turn": 1, "heard": ""}
    assert llm.cancelled == 1
    assert session.history == [Message("user", "hello there")]


@pytest.mark.slow
async def test_barge_in_while_transcribing_starts_over(serve: ServerFactory) -> None:
    asr = FakeASR(delay_s=1.0)
    async with serve(stages(asr=asr)) as server:
        client = await VoiceClient.connect(server.ws_url)
        await client.say(SPEECH)
        await client.wait_for(lambda frame: isinstance(frame, dict) and frame.get("state") == "transcribing")
        await client.send_action("start_listening")
        status = await client.next_event()
        assert status == {
            "type": "status",
            "state": "listening",
            "message": "Listening…",
            "turn": 1,
            "reason": "interrupted",
        }
        with pytest.raises(TimeoutError):  # nothing of the cancelled turn arrives
            await client.next_event(timeout=1.5)
        session = server.runtime.sessions[client.session_id or ""]
        await client.close()
    assert session.history == []


@pytest.mark.slow
async def test_without_played_ms_the_server_estimates_what_was_heard(serve: ServerFactory) -> None:
    # 50 ms of audio per character: the first sentence lasts about 0.9 s, the whole reply 4 s.
    llm = FakeLLM(pieces=["The first sentence. ", "The second sentence is a longer one. ", "And a third one."])
    async with serve(stages(llm=llm, tts=FakeTTS(ms_per_char=50))) as server:
        client = await VoiceClient.connect(server.ws_url)
        await client.say(SPEECH)
        await client.wait_for(lambda frame: isinstance(frame, bytes))
        await asyncio.sleep(1.2)
        await client.send_action("start_listening")
        frames = await client.wait_for(lambda frame: isinstance(frame, dict) and frame.get("state") == "listening")
        await client.close()
    (interrupted,) = [f for f in frames if isinstance(f, dict) and f["type"] == "response_interrupted"]
    # About 1.2 s played: the whole first sentence (0.95 s) and, of the 1.8 s second one, the words
    # of its first quarter or so, measured against its full length (tests/test_playback.py has the
    # exact rule with a scripted clock).
    heard = interrupted["heard"]
    assert heard.startswith("The first sentence.")
    assert len(heard.split()) - 3 <= 2 and "third" not in heard


@pytest.mark.slow
async def test_reply_audio_is_paced_and_the_turn_lasts_as_long_as_its_audio(serve: ServerFactory) -> None:
    llm = FakeLLM(pieces=["A reply that takes a few seconds to say out loud, on purpose."])
    async with serve(stages(llm=llm, tts=FakeTTS(ms_per_char=50)), audio_lead_ms=1000) as server:
        client = await VoiceClient.connect(server.ws_url)
        turn = await client.utterance(SPEECH)
        ended_at = time.monotonic()
        await client.close()
    audio_s = len(turn.audio) / 2 / 16_000
    assert audio_s > 2.5  # 50 ms per character spoken
    assert turn.audio_frames == pytest.approx(audio_s * 10, abs=2)  # 100 ms frames
    assert turn.first_audio_at is not None and turn.last_audio_at is not None
    # Not all at once: the last frame leaves no more than the 1 s lead before its playback time,
    # and the turn stays "speaking" until the audio has had time to play.
    assert turn.last_audio_at - turn.first_audio_at >= audio_s - 1.0 - 0.15
    assert ended_at - turn.first_audio_at >= audio_s


async def test_reset_while_speaking_forgets_everything(serve: ServerFactory) -> None:
    llm = FakeLLM(pieces=["A long reply. " * 5])
    async with serve(stages(llm=llm, tts=FakeTTS(ms_per_char=50))) as server:
        client = await VoiceClient.connect(server.ws_url)
        await client.say(SPEECH)
        await client.wait_for(lambda frame: isinstance(frame, bytes))
        await client.send_action("reset")
        frames = await client.wait_for(lambda frame: isinstance(frame, dict) and frame.get("reason") == "reset")
        session = server.runtime.sessions[client.session_id or ""]
        assert session.history == []
        with pytest.raises(TimeoutError):
            await client.next_event(timeout=1.0)
        await client.close()
    kinds = [frame["type"] for frame in frames if isinstance(frame, dict)]
    assert kinds[-2:] == ["response_interrupted", "status"]


async def test_an_utterance_that_runs_too_long_is_ended_by_the_server(serve: ServerFactory) -> None:
    async with serve(stages(), max_utterance_s=1.0) as server:
        client = await VoiceClient.connect(server.ws_url)
        await client.send_action("start_listening")
        await client.wait_for(lambda frame: isinstance(frame, dict) and frame.get("state") == "listening")
        await client.send_audio(SPEECH * 2)  # 2 s
        turn = await client.collect_turn()
        await client.send_action("stop_listening")  # the page's late release
        late = await client.next_event()
        await client.close()
    assert turn.events[0] == {
        "type": "status",
        "state": "transcribing",
        "message": "Transcribing…",
        "turn": 1,
        "reason": "too_long",
    }
    assert turn.states == ["transcribing", "thinking", "speaking", "idle"]
    assert isinstance(late, dict) and late["code"] == "not_listening"
