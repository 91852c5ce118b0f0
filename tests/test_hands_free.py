"""Hands-free conversation over a real server and WebSocket with the embedded models: the page streams
the microphone all the time (here a scripted microphone in real time), the server hears when the
user starts and stops, and the user interrupts the reply by speaking over it, while the reply itself
comes back into the microphone (an echo that must not interrupt anything)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from tests.conftest import QUESTION, SECOND_QUESTION
from voicebot.audio import float_to_pcm, pcm_to_float, resample
from voicebot.client import VoiceClient
from voicebot.server.localserver import LocalServer

pytestmark = pytest.mark.models

FRAME_MS = 20
FRAME_BYTES = 16_000 * FRAME_MS // 1000 * 2
ROOM = 0.002  # a quiet room's noise floor (RMS, full scale 1)


@dataclass
class Mic:
    """A microphone that streams in real time: what the user says (queued), a little room noise, and,
    if ``echo_gain`` is set, the reply the page is playing, ``echo_delay_ms`` late."""

    client: VoiceClient
    echo_gain: float = 0.0
    echo_delay_ms: float = 120.0
    events: list[dict[str, Any]] = field(default_factory=list)
    said: bytearray = field(default_factory=bytearray)
    reply: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))
    reply_started: float | None = None
    reply_rate: int = 22_050
    cut: bool = False  # the reply was interrupted: like the page, stop playing it and drop the rest
    _rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(7))

    def say(self, pcm: bytes) -> None:
        self.said += pcm

    @property
    def quiet(self) -> bool:
        return not self.said

    async def stream(self) -> None:
        started = time.monotonic()
        sent = 0
        while True:
            chunk, self.said[:] = bytes(self.said[:FRAME_BYTES]), self.said[FRAME_BYTES:]
            samples = np.zeros(FRAME_BYTES // 2, dtype=np.float32)
            if chunk:
                samples[: len(chunk) // 2] = pcm_to_float(chunk)
            samples += self._rng.normal(0, ROOM, samples.shape).astype(np.float32)
            if self.echo_gain and self.reply_started is not None:
                # A microphone captures on its own clock even when sending falls behind (a busy
                # test process sends late frames in a burst): the echo in frame n is what played
                # at that frame's capture time.
                captured_at = started + sent * FRAME_MS / 1000
                at = (captured_at - self.reply_started - self.echo_delay_ms / 1000) * 16_000
                start = int(at)
                if start >= 0:
                    piece = self.reply[start : start + len(samples)]
                    samples[: len(piece)] += self.echo_gain * piece
            await self.client.send_raw(float_to_pcm(samples))
            sent += 1
            await asyncio.sleep(max(0.0, started + sent * FRAME_MS / 1000 - time.monotonic()))

    async def listen(self) -> None:
        while True:
            frame = await self.client.next_event(timeout=600)
            if isinstance(frame, bytes):
                if self.cut:
                    continue
                if self.reply_started is None:
                    self.reply_started = time.monotonic()
                played = pcm_to_float(resample(frame, self.reply_rate, 16_000))
                self.reply = np.concatenate([self.reply, played])
                continue
            self.events.append(frame)
            if frame.get("type") == "audio_start":
                self.reply_rate = int(frame["sample_rate"])
                self.reply, self.reply_started, self.cut = np.zeros(0, dtype=np.float32), None, False
            elif frame.get("type") == "response_interrupted":
                self.cut = True
                if self.reply_started is not None:
                    played = int((time.monotonic() - self.reply_started) * 16_000)
                    self.reply = self.reply[: max(0, played)]

    async def wait_for(self, predicate: Any, timeout: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        seen = 0
        while time.monotonic() < deadline:
            for event in self.events[seen:]:
                if predicate(event):
                    return event
            seen = len(self.events)
            await asyncio.sleep(0.02)
        raise AssertionError(f"not seen within {timeout} s; events: {[e.get('type') for e in self.events]}")

    def states(self, since: int = 0) -> list[str]:
        changes = [e for e in self.events[since:] if e.get("type") == "status"]
        return [e["state"] for e in changes if e.get("reason") not in ("mode", "fallback")]


@asynccontextmanager
async def hands_free(server: LocalServer, echo_gain: float = 0.0) -> AsyncIterator[Mic]:
    client = await VoiceClient.connect(server.ws_url)
    await client.send_action("set_mode", mode="hands_free")
    mic = Mic(client, echo_gain=echo_gain)
    tasks = [asyncio.create_task(mic.listen()), asyncio.create_task(mic.stream())]
    try:
        await mic.wait_for(lambda e: e.get("reason") == "mode" and e.get("mode") == "hands_free")
        yield mic
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await client.close()


def turn_of(mic: Mic, number: int) -> dict[str, Any]:
    events = [e for e in mic.events if e.get("turn") == number]
    return {
        "transcript": next((e["text"] for e in events if e.get("type") == "transcript"), None),
        "reply": next((e["text"] for e in events if e.get("type") == "response_done"), None),
        "interrupted": [e for e in events if e.get("type") == "response_interrupted"],
    }


async def test_two_questions_in_a_row_without_any_press(embedded_server: LocalServer, speech: dict[str, bytes]) -> None:
    async with hands_free(embedded_server) as mic:
        await asyncio.sleep(1.0)  # the room, before anyone speaks: nothing happens
        assert mic.states() == []
        mic.say(speech[QUESTION])
        await mic.wait_for(lambda e: e.get("type") == "transcript" and e["turn"] == 1)
        await mic.wait_for(lambda e: e.get("state") == "idle" and e.get("turn") == 1, timeout=90)
        mic.say(speech[SECOND_QUESTION])
        await mic.wait_for(lambda e: e.get("state") == "idle" and e.get("turn") == 2, timeout=90)
    first, second = turn_of(mic, 1), turn_of(mic, 2)
    assert first["transcript"] == QUESTION and second["transcript"] == SECOND_QUESTION
    assert first["reply"] and second["reply"] and not first["interrupted"] and not second["interrupted"]
    listening = [e for e in mic.events if e.get("state") == "listening"]
    assert [e.get("reason") for e in listening] == ["voice", "voice"]  # heard, not pressed
    assert mic.states() == ["listening", "transcribing", "thinking", "speaking", "idle"] * 2


async def test_the_reply_coming_back_through_the_speakers_does_not_interrupt_it(
    embedded_server: LocalServer, speech: dict[str, bytes]
) -> None:
    async with hands_free(embedded_server, echo_gain=0.3) as mic:  # about -10 dB: speakers, no echo canceller
        mic.say(speech[QUESTION])
        await mic.wait_for(lambda e: e.get("type") == "audio_start" and e["turn"] == 1)
        await mic.wait_for(lambda e: e.get("state") == "idle" and e.get("turn") == 1, timeout=90)
        await asyncio.sleep(1.0)  # the tail of the echo: still nothing
    first = turn_of(mic, 1)
    assert first["reply"] and first["interrupted"] == []
    assert mic.states() == ["listening", "transcribing", "thinking", "speaking", "idle"]


async def test_speaking_over_the_reply_interrupts_it_like_a_press(
    embedded_server: LocalServer, speech: dict[str, bytes]
) -> None:
    async with hands_free(embedded_server, echo_gain=0.3) as mic:
        mic.say(speech[QUESTION])
        await mic.wait_for(lambda e: e.get("type") == "audio_start" and e["turn"] == 1)
        await asyncio.sleep(0.6)
        mic.say(speech[SECOND_QUESTION])  # over the reply and its echo
        interrupted = await mic.wait_for(lambda e: e.get("type") == "response_interrupted", timeout=30)
        await mic.wait_for(lambda e: e.get("type") == "transcript" and e["turn"] == 2, timeout=30)
        await mic.wait_for(lambda e: e.get("state") == "idle" and e.get("turn") == 2, timeout=90)
    assert interrupted["turn"] == 1
    reply = turn_of(mic, 1)["reply"]
    assert reply is None or reply.startswith(interrupted["heard"])
    # Said over the reply and its echo: recognised, if not always word for word.
    heard = str(turn_of(mic, 2)["transcript"]).lower()
    assert "tallest" in heard and "world" in heard, heard
    listening = [e for e in mic.events if e.get("state") == "listening"]
    assert [e.get("reason") for e in listening] == ["voice", "voice"]


async def test_the_button_still_works_in_hands_free_mode(
    embedded_server: LocalServer, speech: dict[str, bytes]
) -> None:
    async with hands_free(embedded_server) as mic:
        await mic.client.send_action("start_listening")
        mic.say(speech[QUESTION])
        await asyncio.sleep(len(speech[QUESTION]) / 32_000 + 0.2)
        await mic.client.send_action("stop_listening")
        await mic.wait_for(lambda e: e.get("state") == "idle" and e.get("turn") == 1, timeout=90)
        await mic.client.send_action("set_mode", mode="push_to_talk")
        back = await mic.wait_for(lambda e: e.get("reason") == "mode" and e.get("mode") == "push_to_talk")
    assert turn_of(mic, 1)["transcript"] == QUESTION
    listening = [e for e in mic.events if e.get("state") == "listening"]
    assert [e.get("reason") for e in listening] == [None]  # pressed, not heard
    assert back["state"] == "idle"
