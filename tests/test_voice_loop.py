"""The voice loop end to end: a real server, a real WebSocket, the real embedded models, and speech
made with Piper as the microphone."""

from __future__ import annotations

import asyncio
import json
import urllib.request

import pytest

from tests.conftest import QUESTION, SECOND_QUESTION
from voicebot.client import VoiceClient
from voicebot.providers.base import Message, Stages
from voicebot.server.localserver import LocalServer

pytestmark = pytest.mark.models


#: Words a recogniser writes for a number word that sounds the same or nearly ("fifteen A M" is
#: heard "fifty nay M" by both embedded recognisers), taken as that word.
SOUNDS_ALIKE = {
    "for": "four",
    "to": "two",
    "too": "two",
    "won": "one",
    "ate": "eight",
    "o": "oh",
    "zero": "oh",
    "thirteen": "thirty",
    "fourteen": "forty",
    "fifteen": "fifty",
    "sixteen": "sixty",
    "seventeen": "seventy",
    "eighteen": "eighty",
    "nineteen": "ninety",
}


def heard_as(text: str) -> list[str]:
    """``text``'s words as a listener tells them apart: numbers spelled out ("5:07" and "five oh
    seven" alike), a number word and the words that sound like it taken as one."""
    from voicebot.bench.wer import normalize

    return [SOUNDS_ALIKE.get(word, word) for word in normalize(text.replace(":", " "))]


def words(text: str) -> list[str]:
    return "".join(ch.lower() if ch.isalnum() or ch.isspace() else " " for ch in text).split()


def fetch(url: str) -> tuple[int, str, bytes]:
    with urllib.request.urlopen(url) as response:
        return response.status, response.headers["Content-Type"], response.read()


async def test_health_names_each_stage(embedded_server: LocalServer) -> None:
    # urllib blocks: run it in a thread, the server runs on this test's event loop.
    status, _, body = await asyncio.to_thread(fetch, embedded_server.http_url + "/health")
    health = json.loads(body)
    assert status == 200
    assert health["status"] == "ok"
    assert health["sessions"] == 0
    assert health["stages"] == {
        "asr": {"provider": "moonshine,faster_whisper", "model": "tiny-en (embedded),tiny.en (embedded)"},
        "llm": {"provider": "llama_cpp", "model": "SmolLM2-135M-Instruct.Q4_1.gguf"},
        "tts": {"provider": "piper", "model": "en_US-joe-medium (embedded)"},
    }


async def test_page_and_static_files_are_served(embedded_server: LocalServer) -> None:
    status, content_type, body = await asyncio.to_thread(fetch, embedded_server.http_url + "/")
    assert status == 200 and "text/html" in content_type
    assert b"<html" in body.lower()
    status, content_type, body = await asyncio.to_thread(fetch, embedded_server.http_url + "/static/app.js")
    assert status == 200 and "javascript" in content_type and body


async def test_first_message_is_idle_status_with_session_id(embedded_server: LocalServer) -> None:
    client = await VoiceClient.connect(embedded_server.ws_url)
    assert client.session_id and client.session_id in embedded_server.runtime.sessions
    await client.close()


async def test_a_spoken_question_gets_a_spoken_answer(embedded_server: LocalServer, speech: dict[str, bytes]) -> None:
    client = await VoiceClient.connect(embedded_server.ws_url)
    turn = await client.utterance(speech[QUESTION])
    await client.close()

    assert turn.errors == []
    assert turn.states == ["transcribing", "thinking", "speaking", "idle"]
    assert turn.transcript is not None and {"capital", "france"} <= set(words(turn.transcript))
    assert turn.reply and turn.reply.strip()
    assert "".join(turn.pieces) == turn.reply
    assert len(turn.pieces) > 1  # streamed, not sent in one piece
    assert turn.audio_format == {
        "type": "audio_start",
        "turn": 1,
        "format": "pcm_s16le",
        "sample_rate": 22050,
        "channels": 1,
    }
    assert len(turn.audio) > 22050 * 2 * 0.3 and len(turn.audio) % 2 == 0
    assert turn.audio_frames > 1

    kinds = [event["type"] if event["type"] != "status" else event["state"] for event in turn.events]
    assert kinds.index("transcript") < kinds.index("thinking") < kinds.index("response_text")
    assert kinds.index("speaking") < kinds.index("audio_start")
    assert kinds.index("response_done") < kinds.index("idle")
    assert kinds.index("audio_done") < kinds.index("idle")
    audio_done = next(event for event in turn.events if event["type"] == "audio_done")
    assert audio_done["duration_ms"] == round(len(turn.audio) / 2 / 22050 * 1000)
    assert all(event.get("turn") == 1 for event in turn.events)


async def test_the_conversation_is_remembered(embedded_server: LocalServer, speech: dict[str, bytes]) -> None:
    client = await VoiceClient.connect(embedded_server.ws_url)
    first = await client.utterance(speech[QUESTION])
    second = await client.utterance(speech[SECOND_QUESTION])
    session = embedded_server.runtime.sessions[client.session_id or ""]
    await client.close()
    assert second.states == ["transcribing", "thinking", "speaking", "idle"]
    assert {"tallest", "mountain"} <= set(words(second.transcript or ""))
    assert session.history == [
        Message("user", first.transcript or ""),
        Message("assistant", first.reply or ""),
        Message("user", second.transcript or ""),
        Message("assistant", second.reply or ""),
    ]


async def test_barge_in_while_speaking_keeps_only_what_was_heard(
    embedded_server: LocalServer, speech: dict[str, bytes]
) -> None:
    client = await VoiceClient.connect(embedded_server.ws_url)
    await client.say(speech[QUESTION])
    before = await client.wait_for(lambda frame: isinstance(frame, bytes))  # the first reply audio
    pieces = [frame["text"] for frame in before if isinstance(frame, dict) and frame["type"] == "response_text"]

    await client.send_action("start_listening", played_ms=700)
    after = await client.wait_for(lambda frame: isinstance(frame, dict) and frame.get("state") == "listening")
    interrupted = [frame for frame in after if isinstance(frame, dict) and frame["type"] == "response_interrupted"]
    assert len(interrupted) == 1 and interrupted[0]["turn"] == 1
    assert after[-1]["reason"] == "interrupted"  # type: ignore[index]
    pieces += [frame["text"] for frame in after if isinstance(frame, dict) and frame["type"] == "response_text"]

    # Once the interruption has settled, nothing more of the old turn arrives.
    with pytest.raises(TimeoutError):
        extra = await client.next_event(timeout=1.5)
        pytest.fail(f"unexpected frame after barge-in: {extra!r}")

    heard = interrupted[0]["heard"]
    reply_so_far = "".join(pieces)
    assert words(reply_so_far)[: len(words(heard))] == words(heard)
    assert len(words(heard)) < len(words(reply_so_far))  # 700 ms is less than the whole reply
    session = embedded_server.runtime.sessions[client.session_id or ""]
    transcript = session.history[0].content
    assert {"capital", "france"} <= set(words(transcript))
    expected = [Message("user", transcript)] + ([Message("assistant", heard)] if heard else [])
    assert session.history == expected

    # The new utterance is recorded and answered.
    await client.send_audio(speech[SECOND_QUESTION])
    await client.send_action("stop_listening")
    turn = await client.collect_turn()
    await client.close()
    assert turn.states == ["transcribing", "thinking", "speaking", "idle"]
    assert {"tallest", "mountain"} <= set(words(turn.transcript or ""))


async def test_reset_forgets_the_conversation(embedded_server: LocalServer, speech: dict[str, bytes]) -> None:
    client = await VoiceClient.connect(embedded_server.ws_url)
    await client.utterance(speech[QUESTION])
    session = embedded_server.runtime.sessions[client.session_id or ""]
    assert len(session.history) == 2
    await client.send_action("reset")
    status = await client.next_event()
    assert status == {"type": "status", "state": "idle", "message": "New conversation", "turn": 1, "reason": "reset"}
    assert session.history == []
    turn = await client.utterance(speech[SECOND_QUESTION])
    await client.close()
    assert turn.states[-1] == "idle" and turn.reply


async def test_silence_is_nothing_heard_not_an_error(embedded_server: LocalServer) -> None:
    client = await VoiceClient.connect(embedded_server.ws_url)
    for pcm in (b"\x00\x00" * 16_000, b"\x05\x00" * 1_600, b""):  # 1 s of silence, 0.1 s, nothing
        turn = await client.utterance(pcm)
        assert turn.errors == []
        assert turn.states == ["transcribing", "idle"]
        assert turn.events[-1]["reason"] == "nothing_heard"
        assert "didn't catch" in turn.events[-1]["message"]
    await client.close()


async def test_bad_input_keeps_the_session_alive(embedded_server: LocalServer, speech: dict[str, bytes]) -> None:
    client = await VoiceClient.connect(embedded_server.ws_url)
    cases: list[tuple[str | bytes, str]] = [
        ("this is not json", "invalid_json"),
        ("[1, 2, 3]", "invalid_json"),
        ('{"no_action": true}', "invalid_message"),
        ('{"action": "fly"}', "unknown_action"),
        ('{"action": "start_listening", "played_ms": -5}', "invalid_message"),
        ('{"action": "stop_listening"}', "not_listening"),
        (b"\x01\x02\x03", "bad_audio_frame"),
        (b"", "bad_audio_frame"),
    ]
    for frame, code in cases:
        await client.send_raw(frame)
        error = await client.next_event()
        assert isinstance(error, dict) and error["type"] == "error" and error["code"] == code, frame
        assert error["message"]

    # Audio while idle is dropped and counted, without an answer.
    await client.send_audio(b"\x01\x00" * 3200, frame_ms=100)  # two frames of 100 ms
    session = embedded_server.runtime.sessions[client.session_id or ""]
    await client.send_action("start_listening")
    assert (await client.next_event())["state"] == "listening"  # type: ignore[index]
    assert session.dropped_audio_frames == 2
    await client.send_action("start_listening")
    assert (await client.next_event())["code"] == "already_listening"  # type: ignore[index]
    await client.send_raw(b"\x01")  # a bad frame while listening does not spoil the utterance
    assert (await client.next_event())["code"] == "bad_audio_frame"  # type: ignore[index]

    await client.send_audio(speech[QUESTION])
    await client.send_action("stop_listening")
    turn = await client.collect_turn()
    await client.close()
    assert turn.errors == []
    assert turn.states == ["transcribing", "thinking", "speaking", "idle"]
    assert {"capital", "france"} <= set(words(turn.transcript or ""))


async def test_two_sessions_at_once_both_get_answers(embedded_server: LocalServer, speech: dict[str, bytes]) -> None:
    clients = [await VoiceClient.connect(embedded_server.ws_url) for _ in range(2)]
    turns = await asyncio.gather(clients[0].utterance(speech[QUESTION]), clients[1].utterance(speech[SECOND_QUESTION]))
    for client in clients:
        await client.close()
    assert [turn.states for turn in turns] == [["transcribing", "thinking", "speaking", "idle"]] * 2
    assert {"capital", "france"} <= set(words(turns[0].transcript or ""))
    assert {"tallest", "mountain"} <= set(words(turns[1].transcript or ""))
    assert all(turn.audio for turn in turns)


async def test_what_time_is_it_is_answered_with_the_time_by_the_embedded_models(
    embedded_server: LocalServer, embedded_stages: Stages
) -> None:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from voicebot.audio import resample
    from voicebot.bench import speak_to_input
    from voicebot.providers.health import stage_providers
    from voicebot.turn.text import clean_for_speech

    question = await speak_to_input(embedded_stages.tts, "What time is it?")
    client = await VoiceClient.connect(embedded_server.ws_url)
    await client.send_action("set_time_zone", time_zone="America/New_York")
    asked = datetime.now(ZoneInfo("America/New_York"))
    turn = await client.utterance(question)
    await client.close()
    answered = datetime.now(ZoneInfo("America/New_York"))
    assert turn.transcript is not None and "time" in words(turn.transcript)
    calls = [event for event in turn.events if event.get("type") == "tool_call"]
    assert [(call["name"], call["source"]) for call in calls] == [("get_time", "intent")]
    hours = {str(int(moment.strftime("%I"))) for moment in (asked, answered)}  # the hour may turn meanwhile
    assert turn.reply is not None and any(turn.reply.startswith(f"It's {hour}:") for hour in hours), turn.reply
    # What the user hears says the time, as people say it ("five oh seven", not "five zero seven"):
    # the embedded recognisers, together, hear at least half of the time's number words in the
    # reply's audio. Both and half, because on this voice's short answers each recogniser mishears
    # now and then (Moonshine "It's 8 AM" as "It's a dam", both "It's five" as "It's by" and "fifteen
    # AM" as "fifty nay M"): measured over 312 syntheses of every hour at 12 minutes (scratch), no
    # miss with this rule, 2 when each recogniser alone had to hear two thirds.
    assert turn.audio_format is not None
    reply_audio = resample(bytes(turn.audio), turn.audio_format["sample_rate"], 16_000)
    said = clean_for_speech(turn.reply)
    assert ":" not in said, said
    expected = [word for word in heard_as(said) if word not in ("it", "is", "am", "pm", "a", "m", "p")]
    heard = [await recogniser.transcribe(reply_audio, 16_000) for recogniser in stage_providers(embedded_stages.asr)]
    heard_words = {word for text in heard for word in heard_as(text)}
    assert len([word for word in expected if word in heard_words]) * 2 >= len(expected), (said, heard)
