"""Speech synthesis with Microsoft Edge's online voices through the ``edge-tts`` package.

edge-tts speaks a WebSocket protocol: it sends a ``speech.config`` and an SSML request, and the
service answers with ``turn.start``, binary ``Path:audio`` messages carrying MP3
(audio-24khz-48kbitrate-mono-mp3), metadata, and ``turn.end``. The MP3 is decoded with PyAV as it
arrives and resampled to ``sample_rate``, so the page gets PCM like from any other voice. No key is
needed.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator

import aiohttp
import edge_tts
import edge_tts.communicate
import edge_tts.exceptions

from voicebot.errors import ProviderFailed, Stage
from voicebot.providers.base import ProviderSpec
from voicebot.providers.codec import Mp3Decoder
from voicebot.providers.health import CHECK_TIMEOUT_S
from voicebot.providers.remote import describe_error, tcp_reachable
from voicebot.settings import EdgeTTSSettings, StageTimeouts


def service_url() -> str:
    """The WebSocket URL edge-tts connects to (read from the library, which tests point elsewhere)."""
    url: str = vars(edge_tts.communicate)["WSS_URL"]
    return url


class EdgeTTS:
    """Streams speech from an Edge online voice, decoded to PCM."""

    name = "edge_tts"

    def __init__(self, settings: EdgeTTSSettings, timeouts: StageTimeouts) -> None:
        self._settings = settings
        self._timeouts = timeouts
        self.model = settings.voice
        self.sample_rate: int = settings.sample_rate

    def warm(self) -> None:
        """Nothing to load."""

    async def check(self) -> None:
        """Open a TCP connection to the service (the voice list would be a large download)."""
        try:
            await tcp_reachable(service_url(), CHECK_TIMEOUT_S)
        except (OSError, TimeoutError) as exc:
            raise ProviderFailed(self.name, describe_error(exc)) from exc

    def _reason(self, exc: BaseException) -> str:
        if isinstance(exc, edge_tts.exceptions.NoAudioReceived):
            return f"no audio came back (is the voice {self.model!r} right?)"
        if isinstance(exc, aiohttp.WSServerHandshakeError):
            hint = "; a newer edge-tts may be needed" if exc.status == 403 else ""
            return f"the service refused the connection (HTTP {exc.status}{hint})"
        return describe_error(exc)

    async def synthesize(self, text: str) -> AsyncIterator[bytes]:
        communicate = edge_tts.Communicate(
            text,
            self._settings.voice,
            rate=self._settings.rate,
            connect_timeout=max(1, math.ceil(self._timeouts.connect_s)),
            receive_timeout=max(1, math.ceil(self._timeouts.first_byte_s)),
        )
        decoder = Mp3Decoder(self.sample_rate)
        stream = communicate.stream()
        try:
            async for chunk in stream:
                if chunk["type"] == "audio" and (pcm := decoder.feed(chunk.get("data", b""))):
                    yield pcm
        except (edge_tts.exceptions.EdgeTTSException, aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise ProviderFailed(self.name, self._reason(exc)) from exc
        finally:
            await stream.aclose()  # a barge-in closes the WebSocket now, not when collected
        if tail := decoder.flush():
            yield tail


SPECS = (
    ProviderSpec(Stage.TTS, EdgeTTS.name, lambda settings, _: EdgeTTS(settings.tts.edge_tts, settings.tts.timeouts)),
)
