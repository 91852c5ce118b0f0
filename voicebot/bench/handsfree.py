"""``voicebot bench --hands-free``: the hands-free numbers, with the microphone streamed in real time.

- **end of speech → first reply audio**: the last voiced sample of the question leaves the client at
  a known moment; the first reply audio frame arrives later. Compared with ``end_silence_ms`` + 350.
- **missed turns**: questions that never became a transcript;
- **false turns**: turns started by 60 s of room noise (sox pink noise, no speech);
- **barge-in by voice**: a second question said over the reply; from its first voiced sample to the
  server's ``response_interrupted`` (after which no reply audio leaves the server);
- **detector cost**: the server process's CPU time per second of microphone audio while it only
  listens to the room.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from websockets.exceptions import ConnectionClosed

from voicebot.audio import pcm_to_float
from voicebot.bench.report import spread
from voicebot.bench.servers import ServerProcess, server_process
from voicebot.bench.speech import QUESTIONS, spoken
from voicebot.client import VoiceClient
from voicebot.providers.registry import build_tts
from voicebot.settings import Settings

FRAME_MS = 20
FRAME_BYTES = 16_000 * FRAME_MS // 1000 * 2
ROOM_S = 60.0


def room_noise(seconds: float) -> bytes:
    """Pink noise at a quiet room's level, made by sox (16 kHz s16le)."""
    if shutil.which("sox") is None:
        raise RuntimeError("the hands-free benchmark needs sox: apt-get install -y sox")
    command = ["sox", "-R", "-n", "-r", "16000", "-b", "16", "-c", "1", "-e", "signed", "-t", "raw", "-"]
    command += ["synth", str(seconds), "pinknoise", "vol", "0.02"]
    return subprocess.run(command, check=True, capture_output=True).stdout


def voiced_span(pcm: bytes) -> tuple[float, float]:
    """(first, last) voiced moment of ``pcm`` in seconds (10 ms frames above a fixed loudness)."""
    samples = pcm_to_float(pcm)
    frames = samples[: len(samples) // 160 * 160].reshape(-1, 160)
    loud = np.flatnonzero(np.sqrt(np.mean(frames**2, axis=1)) > 0.01)
    if not len(loud):
        return 0.0, 0.0
    return loud[0] / 100, (loud[-1] + 1) / 100


@dataclass
class Listener:
    """Reads what the server sends, with arrival times."""

    client: VoiceClient
    events: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    audio_at: list[float] = field(default_factory=list)

    async def run(self) -> None:
        while True:
            try:
                frame = await self.client.next_event(timeout=600)
            except ConnectionClosed:
                return
            now = time.monotonic()
            if isinstance(frame, bytes):
                self.audio_at.append(now)
            else:
                self.events.append((now, frame))

    def first(self, kind: str, since: float, **fields: Any) -> float | None:
        for at, event in self.events:
            if at >= since and event.get("type") == kind and all(event.get(k) == v for k, v in fields.items()):
                return at
        return None

    def first_audio(self, since: float) -> float | None:
        return next((at for at in self.audio_at if at >= since), None)


async def stream(client: VoiceClient, pcm: bytes, speed: float = 1.0) -> float:
    """Send ``pcm`` as microphone frames at ``speed`` times real time; return when it started."""
    started = time.monotonic()
    for index in range(0, len(pcm), FRAME_BYTES):
        await client.send_raw(pcm[index : index + FRAME_BYTES])
        due = started + (index // FRAME_BYTES + 1) * FRAME_MS / 1000 / speed
        await asyncio.sleep(max(0.0, due - time.monotonic()))
    return started


async def _session(url: str) -> tuple[VoiceClient, Listener, asyncio.Task[None]]:
    client = await VoiceClient.connect(url)
    await client.send_action("set_mode", mode="hands_free")
    listener = Listener(client)
    return client, listener, asyncio.create_task(listener.run())


def _metrics(listener: Listener, since: float) -> dict[str, float]:
    """The timings of the first turn whose metrics arrived after ``since`` (ms since the end was decided)."""
    for at, event in listener.events:
        if at >= since and event.get("type") == "metrics":
            return {key: float(value) for key, value in event.get("timings", {}).items()}
    return {}


async def _turns(url: str, questions: list[bytes], room: bytes) -> dict[str, Any]:
    latencies, missed = [], 0
    decided: list[float] = []  # end of speech → the server decided the turn was over
    answered: list[float] = []  # decided → first reply audio leaving the server
    asr: list[float] = []  # decided → transcript (what recognition left for the end)
    for pcm in questions:
        client, listener, reading = await _session(url)
        try:
            await stream(client, room[: 16_000 * 2])  # a second of the room first
            started = await stream(client, pcm)
            speech_end = started + voiced_span(pcm)[1]
            deadline = time.monotonic() + 30
            while listener.first_audio(speech_end) is None and time.monotonic() < deadline:
                await stream(client, room[: FRAME_BYTES * 10])  # the room goes on
            first = listener.first_audio(speech_end)
            if first is None or listener.first("transcript", started) is None:
                missed += 1
            else:
                latencies.append((first - speech_end) * 1000)
                ended = listener.first("status", started, state="transcribing")
                if ended is not None:
                    decided.append((ended - speech_end) * 1000)
                while not (timings := _metrics(listener, started)) and time.monotonic() < deadline:
                    await stream(client, room[: FRAME_BYTES * 10])
                if "first_audio_ms" in timings:
                    answered.append(timings["first_audio_ms"])
                    asr.append(timings.get("asr_ms", 0.0))
        finally:
            reading.cancel()
            await client.close()
    return {
        "end_of_speech_to_first_audio_ms": spread(latencies),
        "end_of_speech_to_end_decided_ms": spread(decided),
        "end_decided_to_first_audio_ms": spread(answered),
        "end_decided_to_transcript_ms": spread(asr),
        "missed_turns": missed,
        "questions": len(questions),
    }


async def _false_turns(server: ServerProcess, room: bytes) -> dict[str, Any]:
    client, listener, reading = await _session(server.ws_url)
    cpu_before = _cpu_s(server)
    try:
        await stream(client, room)
        await asyncio.sleep(1.0)
    finally:
        reading.cancel()
        await client.close()
    cpu_ms_per_s = (_cpu_s(server) - cpu_before) * 1000 / (len(room) / 32_000)
    false_turns = sum(1 for _, e in listener.events if e.get("state") == "listening" and e.get("reason") == "voice")
    return {"room_s": len(room) / 32_000, "false_turns": false_turns, "server_cpu_ms_per_audio_s": cpu_ms_per_s}


async def _barge_ins(url: str, questions: list[bytes], room: bytes) -> dict[str, Any]:
    stops = []
    for first, second in zip(questions, [*questions[1:], questions[0]], strict=True):
        client, listener, reading = await _session(url)
        try:
            started = await stream(client, first)
            while listener.first_audio(started) is None:
                await stream(client, room[: FRAME_BYTES * 5])
            await stream(client, room[:16_000])  # half a second of the reply
            started = time.monotonic()
            speech_start = started + voiced_span(second)[0]
            await stream(client, second)
            await stream(client, room[: 16_000 * 2])
            cut = listener.first("response_interrupted", started)
            if cut is not None:
                stops.append((cut - speech_start) * 1000)
        finally:
            reading.cancel()
            await client.close()
    return {"speech_to_reply_stopped_ms": spread(stops), "barge_ins": len(stops), "tries": len(questions)}


def _cpu_s(server: ServerProcess) -> float:
    fields = Path(f"/proc/{server.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100  # utime + stime, in clock ticks of 10 ms


def run_hands_free(settings: Settings, config: Path | None, options: Any) -> int:
    tts = build_tts(settings)
    texts = [QUESTIONS[index % len(QUESTIONS)] for index in range(options.utterances)]
    questions = [u.pcm for u in asyncio.run(spoken(tts, texts))]
    room = room_noise(ROOM_S)
    with server_process(config, {}) as server:
        turns = asyncio.run(_turns(server.ws_url, questions, room))
        noise = asyncio.run(_false_turns(server, room))
        barge = asyncio.run(_barge_ins(server.ws_url, questions, room))
    end_silence = settings.hands_free.end_silence_ms
    report = {**turns, **noise, **barge, "end_silence_ms": end_silence, "target_ms": end_silence + 350}
    if options.json:
        print(json.dumps(report, indent=2))
    else:
        latency, stop = report["end_of_speech_to_first_audio_ms"], report["speech_to_reply_stopped_ms"]
        print("hands-free (real-time microphone, room noise between questions)")
        print(
            f"  end of speech → first reply audio: median {latency.get('median', float('nan')):.0f} ms, "
            f"p95 {latency.get('p95', float('nan')):.0f} ms  (target ≤ {report['target_ms']} ms at the median)"
        )
        decided, answered = report["end_of_speech_to_end_decided_ms"], report["end_decided_to_first_audio_ms"]
        print(
            f"    of which: end of speech → end decided median {decided.get('median', float('nan')):.0f} ms "
            f"(end silence {end_silence} ms); end decided → first audio median "
            f"{answered.get('median', float('nan')):.0f} ms "
            f"(transcript after {report['end_decided_to_transcript_ms'].get('median', float('nan')):.0f} ms)"
        )
        print(f"  missed turns: {report['missed_turns']} of {report['questions']}")
        print(f"  false turns in {report['room_s']:.0f} s of room noise: {report['false_turns']}")
        print(
            f"  barge-in by voice: reply stopped {stop.get('median', float('nan')):.0f} ms (median), "
            f"{stop.get('worst', float('nan')):.0f} ms (worst) after the user started; "
            f"{report['barge_ins']} of {report['tries']} interrupted"
        )
        print(
            f"  server CPU while listening to the room: {report['server_cpu_ms_per_audio_s']:.1f} ms per audio second"
        )
    return 0 if report["missed_turns"] == 0 and report["false_turns"] == 0 else 1
