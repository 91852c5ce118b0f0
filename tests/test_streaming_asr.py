"""Recognition while the button is held, with the embedded models over a real WebSocket: partial
transcripts arrive before the release, the final transcript is right, and two sessions speaking at
once each get their own words."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from tests.conftest import QUESTION, SECOND_QUESTION
from voicebot.client import VoiceClient
from voicebot.server.localserver import LocalServer

pytestmark = pytest.mark.models


async def speak_and_watch(server: LocalServer, pcm: bytes) -> tuple[list[dict[str, object]], str | None]:
    """Stream ``pcm`` in real time; return the partials received before the release and the transcript."""
    client = await VoiceClient.connect(server.ws_url)
    partials: list[dict[str, object]] = []

    async def read_partials() -> None:
        while True:
            frame = await client.next_event(timeout=60)
            if isinstance(frame, dict) and frame.get("type") == "partial_transcript":
                partials.append(frame)

    await client.send_action("start_listening")
    await client.wait_for(lambda f: isinstance(f, dict) and f.get("state") == "listening")
    reader = asyncio.create_task(read_partials())
    await client.send_audio(pcm, frame_ms=20, realtime=True)
    await asyncio.sleep(0.1)
    reader.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await reader
    before_release = list(partials)
    await client.send_action("stop_listening")
    turn = await client.collect_turn()
    await client.close()
    return before_release, turn.transcript


async def test_partial_transcripts_arrive_while_speaking_and_the_final_one_is_right(
    embedded_server: LocalServer, speech: dict[str, bytes]
) -> None:
    partials, transcript = await speak_and_watch(embedded_server, speech[QUESTION])
    assert transcript == QUESTION
    assert len(partials) >= 2, partials  # a 2.5 s question: several passes while it is spoken
    assert {p["turn"] for p in partials} == {1}  # the turn the utterance is about to become
    texts = [str(p["text"]) for p in partials]
    assert "capital" in texts[-1].lower()  # the last partial already holds most of the question
    assert len(texts[-1]) >= len(texts[0])


async def test_two_sessions_speaking_at_once_each_get_their_own_words(
    embedded_server: LocalServer, speech: dict[str, bytes]
) -> None:
    (_, first), (_, second) = await asyncio.gather(
        speak_and_watch(embedded_server, speech[QUESTION]),
        speak_and_watch(embedded_server, speech[SECOND_QUESTION]),
    )
    assert (first, second) == (QUESTION, SECOND_QUESTION)
