"""Sessions that talk to a server as people do: each utterance streamed in real time over a real
WebSocket, and each turn timed at the client (``stop_listening`` to the first reply audio frame) and
by the server (its ``metrics`` message: the stages, measured where they run)."""

from __future__ import annotations

import asyncio
import statistics
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from voicebot.bench.speech import Utterance
from voicebot.client import VoiceClient

#: Microphone frames, as the page sends them.
FRAME_MS = 20


@dataclass
class TurnSample:
    """One turn as the benchmark saw it."""

    utterance: str
    reference: str | None
    session: int
    first_audio_ms: float | None
    """``stop_listening`` sent → first reply audio frame received, at the client."""
    timings: dict[str, float] = field(default_factory=dict)
    """The server's ``metrics`` for the turn."""
    transcript: str | None = None
    reply: str | None = None
    errors: list[str] = field(default_factory=list)
    partials: int = 0
    """``partial_transcript`` messages received while the audio was streamed."""
    gaps_ms: list[float] = field(default_factory=list)
    """Breaks a listener would hear in the reply audio (the server fell behind playback)."""
    gaps_at_ms: list[float] = field(default_factory=list)
    """Where each break began, in the reply's audio."""


async def say(client: VoiceClient, utterance: Utterance, session: int) -> TurnSample:
    """Press, stream ``utterance`` in real time, release, and collect the whole turn."""
    await client.send_action("start_listening")
    await client.wait_for(lambda frame: isinstance(frame, dict) and frame.get("state") == "listening")
    await client.send_audio(utterance.pcm, frame_ms=FRAME_MS, realtime=True)
    await client.send_action("stop_listening")
    turn = await client.collect_turn(timeout=180)
    metrics = next((event for event in turn.events if event.get("type") == "metrics"), None)
    return TurnSample(
        utterance=utterance.name,
        reference=utterance.text,
        session=session,
        first_audio_ms=turn.first_audio_ms,
        timings=dict(metrics["timings"]) if metrics else {},
        transcript=turn.transcript,
        reply=turn.reply,
        errors=[str(error.get("code")) for error in turn.errors],
        partials=sum(event.get("type") == "partial_transcript" for event in turn.events),
        gaps_ms=[round(gap, 1) for gap in turn.gaps_ms],
        gaps_at_ms=[round(at) for at in turn.gaps_at_ms],
    )


async def talk(url: str, utterances: Sequence[Utterance], session: int = 0) -> list[TurnSample]:
    """Say every utterance, each in a fresh session (the same empty history for every turn)."""
    samples = []
    for utterance in utterances:
        client = await VoiceClient.connect(url)
        try:
            samples.append(await say(client, utterance, session))
        finally:
            await client.close()
    return samples


async def talk_together(url: str, utterances: Sequence[Utterance], sessions: int) -> list[TurnSample]:
    """``sessions`` sessions at once, each saying every utterance (in a different order, so they do not
    ask the same thing at the same moment)."""

    def rotated(index: int) -> list[Utterance]:
        shift = index * len(utterances) // max(sessions, 1)
        return [*utterances[shift:], *utterances[:shift]]

    results = await asyncio.gather(*(talk(url, rotated(index), index) for index in range(sessions)))
    return [sample for samples in results for sample in samples]


@dataclass
class HealthProbe:
    """Polls ``/health`` while the sessions talk, to see that the server still answers at once."""

    url: str
    latencies_ms: list[float] = field(default_factory=list)

    async def run(self, interval_s: float = 0.1) -> None:
        while True:
            started = time.perf_counter()
            await asyncio.to_thread(_get, self.url)
            self.latencies_ms.append((time.perf_counter() - started) * 1000)
            await asyncio.sleep(interval_s)

    def p99(self) -> float | None:
        if len(self.latencies_ms) < 2:
            return None
        return statistics.quantiles(self.latencies_ms, n=100)[98]


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read()
