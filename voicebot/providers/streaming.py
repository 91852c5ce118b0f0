"""Recognition while the user is still speaking: the stream interface and a batch adapter.

While the talk button is held the session feeds audio into an :class:`ASRStream`, asks it for a
partial transcript every few hundred milliseconds (to show on the page), and asks for the final
transcript at release. Whatever the stream did while the button was held is work that no longer
stands between ``stop_listening`` and the reply.

An engine with a variable-length encoder (Moonshine) simply re-transcribes the buffer. A batch
:class:`~voicebot.providers.base.ASR` has no stream: the turn wraps it in
:class:`voicebot.turn.recognition.BatchRecognition`, which transcribes once at release.
"""

from __future__ import annotations

from typing import Protocol

from voicebot.providers.base import ASR


class ASRStream(Protocol):
    """One utterance being recognised while it is spoken (one per turn; not shared between turns)."""

    def feed(self, pcm: bytes) -> None:
        """Append mono s16le audio at the stream's sample rate. Cheap: no inference happens here."""
        ...

    async def partial(self) -> str:
        """Transcribe everything fed so far and return it ("" when nothing is recognisable yet)."""
        ...

    async def finish(self) -> str:
        """The final transcript of everything fed. The stream accepts no audio afterwards."""
        ...


class StreamingASR(ASR, Protocol):
    """An ASR provider that can also recognise while the user speaks."""

    def open_stream(self, sample_rate: int = 16_000) -> ASRStream:
        """Start a stream for one utterance of mono s16le audio at ``sample_rate``."""
        ...
