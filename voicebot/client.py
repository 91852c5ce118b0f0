"""A small asyncio client for the voice WebSocket, used by ``voicebot bench``, the tests and replay.

It speaks the protocol in docs/protocol.md from the page's side: send actions and microphone audio,
and read events and reply audio with their arrival times.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from voicebot.audio import frames

JSON = dict[str, Any]


#: A break in the reply audio shorter than this is not counted (the event loop's own jitter).
GAP_MS = 30


@dataclass
class TurnResult:
    """Everything the server sent from ``stop_listening`` until the session was idle again."""

    states: list[str] = field(default_factory=list)
    events: list[JSON] = field(default_factory=list)
    transcript: str | None = None
    pieces: list[str] = field(default_factory=list)
    reply: str | None = None
    audio_format: JSON | None = None
    audio: bytearray = field(default_factory=bytearray)
    audio_frames: int = 0
    errors: list[JSON] = field(default_factory=list)
    stopped_at: float = 0.0
    first_audio_at: float | None = None
    last_audio_at: float | None = None
    played_until: float | None = None
    """When the audio received so far would end, played from its first frame without a break."""
    gaps_ms: list[float] = field(default_factory=list)
    """Silences a listener would hear in the reply: frames that came after the audio before them had
    played out (longer than :data:`GAP_MS`)."""
    gaps_at_ms: list[float] = field(default_factory=list)
    """Where each of ``gaps_ms`` began, in the reply's audio."""

    def heard(self, frame: bytes, at: float) -> None:
        """A reply-audio frame arrived at ``at`` (``time.monotonic()``)."""
        self.last_audio_at = at
        if self.first_audio_at is None:
            self.first_audio_at = at
        self.audio += frame
        self.audio_frames += 1
        rate = (self.audio_format or {}).get("sample_rate")
        if not rate:
            return
        if self.played_until is not None and (at - self.played_until) * 1000 > GAP_MS:
            self.gaps_ms.append((at - self.played_until) * 1000)
            self.gaps_at_ms.append((self.played_until - self.first_audio_at) * 1000)
        start = at if self.played_until is None else max(self.played_until, at)
        self.played_until = start + len(frame) / 2 / rate

    @property
    def first_audio_ms(self) -> float | None:
        """Milliseconds from ``stop_listening`` to the first reply-audio frame."""
        return None if self.first_audio_at is None else (self.first_audio_at - self.stopped_at) * 1000


class VoiceClient:
    """One connection to ``/ws/voice``."""

    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection
        self.session_id: str | None = None

    @classmethod
    async def connect(cls, url: str, **kwargs: Any) -> VoiceClient:
        """Connect and read the first status (which carries the session id)."""
        client = cls(await connect(url, max_size=None, **kwargs))
        first = await client.next_event()
        assert isinstance(first, dict) and first.get("type") == "status", first
        client.session_id = first.get("session_id")
        return client

    async def close(self) -> None:
        await self.connection.close()

    async def send_action(self, action: str, **fields: Any) -> None:
        await self.connection.send(json.dumps({"action": action, **fields}))

    async def send_raw(self, data: str | bytes) -> None:
        await self.connection.send(data)

    async def send_audio(self, pcm: bytes, frame_ms: int = 40, realtime: bool = False) -> None:
        """Send 16 kHz PCM in frames, as a microphone would (optionally at real-time pace)."""
        for frame in frames(pcm, 16_000, frame_ms):
            await self.connection.send(frame)
            if realtime:
                await asyncio.sleep(frame_ms / 1000)

    async def next_event(self, timeout: float = 60.0) -> JSON | bytes:
        """The next frame from the server: a decoded JSON event, or reply audio as bytes."""
        message = await asyncio.wait_for(self.connection.recv(), timeout)
        if isinstance(message, bytes):
            return message
        event: JSON = json.loads(message)
        return event

    async def wait_for(self, predicate: Any, timeout: float = 60.0) -> list[JSON | bytes]:
        """Read frames until ``predicate(frame)`` is true; return all frames read (the match last)."""
        seen: list[JSON | bytes] = []
        deadline = time.monotonic() + timeout
        while True:
            frame = await self.next_event(max(0.01, deadline - time.monotonic()))
            seen.append(frame)
            if predicate(frame):
                return seen

    async def say(self, pcm: bytes, **audio_options: Any) -> None:
        """Send a whole utterance (start, audio, stop) without waiting for any answer."""
        await self.send_action("start_listening")
        await self.send_audio(pcm, **audio_options)
        await self.send_action("stop_listening")

    async def utterance(self, pcm: bytes, timeout: float = 120.0, **audio_options: Any) -> TurnResult:
        """Say ``pcm`` (start, audio, stop) and collect the whole turn until the session is idle."""
        await self.send_action("start_listening")
        await self.wait_for(lambda f: isinstance(f, dict) and f.get("state") == "listening")
        await self.send_audio(pcm, **audio_options)
        await self.send_action("stop_listening")
        return await self.collect_turn(timeout)

    async def collect_turn(self, timeout: float = 120.0, stop_on: str = "idle") -> TurnResult:
        """Read the turn that the last ``stop_listening`` started until the state is ``stop_on``."""
        result = TurnResult(stopped_at=time.monotonic())
        deadline = time.monotonic() + timeout
        while True:
            frame = await self.next_event(max(0.01, deadline - time.monotonic()))
            if isinstance(frame, bytes):
                result.heard(frame, time.monotonic())
                continue
            result.events.append(frame)
            kind = frame.get("type")
            if kind == "status":
                result.states.append(frame["state"])
                if frame["state"] == stop_on:
                    return result
            elif kind == "transcript":
                result.transcript = frame["text"]
            elif kind == "response_text":
                result.pieces.append(frame["text"])
            elif kind == "response_done":
                result.reply = frame["text"]
            elif kind == "audio_start":
                result.audio_format = frame
            elif kind == "error":
                result.errors.append(frame)
