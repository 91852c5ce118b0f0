"""Fallback and timeouts: each stage is a list of providers tried in order, wrapped so that the
pipeline still sees one ASR, one LLM and one TTS.

For every request (a transcription, a reply, one sentence's audio) the wrapper tries the providers
in order. A provider that fails, or gives no output within ``first_byte_s``, is skipped and the next
one is tried. Once a provider has produced output it is never retried: the user would hear the same
words twice. So a failure after the first token or the first audio chunk ends the request with an
error, and so does going over ``total_s``.

When a request was answered by a provider other than the first, the wrapper tells the turn with a
:class:`~voicebot.turn.events.FallbackUsed` event. Providers are shared by every session, so each
turn asks for its own view of the stage with :meth:`notifying`, which reports to that turn only; the
session shows it to the page as a ``status`` with reason ``fallback``.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, Self, TypeVar

import structlog

from voicebot.errors import ProviderFailed, Stage
from voicebot.providers.base import ASR, LLM, NO_OPTIONS, TTS, Message, ReplyOptions
from voicebot.providers.codec import PcmResampler
from voicebot.providers.remote import describe_error
from voicebot.settings import StageTimeouts
from voicebot.turn.events import FallbackUsed

T = TypeVar("T")
P = TypeVar("P", ASR, LLM, TTS)

_log = structlog.get_logger("voicebot.providers")


@dataclass(frozen=True)
class Skipped:
    """A provider that was tried and skipped for one request."""

    provider: str
    reason: str


class AllProvidersFailed(Exception):
    """No provider of the stage could serve the request; the message lists why, provider by provider."""

    def __init__(self, stage: Stage, skipped: Sequence[Skipped]) -> None:
        self.stage = stage
        self.skipped = tuple(skipped)
        reasons = "; ".join(f"{item.provider}: {item.reason}" for item in skipped)
        prefix = "" if len(skipped) == 1 else "no provider answered. "
        super().__init__(prefix + reasons)


class _Fallback(Generic[P]):
    """The list of providers and the bookkeeping every stage shares."""

    stage: Stage

    def __init__(self, providers: Sequence[P], timeouts: StageTimeouts) -> None:
        if not providers:
            raise ValueError("a stage needs at least one provider")
        self.providers: tuple[P, ...] = tuple(providers)
        self.timeouts = timeouts
        self.name = ",".join(provider.name for provider in providers)
        self.model = ",".join(provider.model for provider in providers)
        self._notify: Callable[[FallbackUsed], None] | None = None

    def notifying(self, notify: Callable[[FallbackUsed], None]) -> Self:
        """This stage, reporting to ``notify`` each request a provider other than the first answered."""
        view = copy.copy(self)
        view._notify = notify
        return view

    def warm(self) -> None:
        for provider in self.providers:
            provider.warm()

    def _skip(self, skipped: list[Skipped], provider: P, exc: BaseException, waited: str) -> None:
        reason = f"no output within {waited}" if isinstance(exc, TimeoutError) else _reason(exc)
        skipped.append(Skipped(provider.name, reason))
        _log.warning("provider_skipped", stage=self.stage.value, provider=provider.name, reason=reason)

    def _answered(self, provider: P, skipped: list[Skipped]) -> None:
        if skipped and self._notify is not None:
            self._notify(FallbackUsed(self.stage, provider.name, tuple((s.provider, s.reason) for s in skipped)))

    def _first_byte_s(self) -> float:
        return min(self.timeouts.first_byte_s, self.timeouts.total_s)

    async def _first_answer(self, open_stream: Callable[[P], AsyncIterator[T]]) -> AsyncIterator[tuple[P, T]]:
        """The items of the first provider whose stream yields within ``first_byte_s``, each with that
        provider. Providers that fail or stay silent before their first item are skipped; after it,
        a failure or running past ``total_s`` fails the request (no retry: it was already heard)."""
        skipped: list[Skipped] = []
        loop = asyncio.get_running_loop()
        for provider in self.providers:
            deadline = loop.time() + self.timeouts.total_s
            stream = open_stream(provider)
            try:
                got, first = await _first(stream, self._first_byte_s())
            except Exception as exc:  # noqa: BLE001 - any failure before output: try the next one
                await _close(stream)
                self._skip(skipped, provider, exc, f"{self._first_byte_s():g} s")
                continue
            self._answered(provider, skipped)
            try:
                if got and first is not None:
                    yield provider, first
                    async for item in _rest(stream, deadline, provider.name, self.timeouts.total_s):
                        yield provider, item
            finally:
                await _close(stream)
            return
        raise AllProvidersFailed(self.stage, skipped)


def _reason(exc: BaseException) -> str:
    return exc.reason if isinstance(exc, ProviderFailed) else describe_error(exc)


async def _close(stream: AsyncIterator[object]) -> None:
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        with contextlib.suppress(Exception):
            await aclose()


async def _first(stream: AsyncIterator[T], timeout_s: float) -> tuple[bool, T | None]:
    """(True, first item) or (False, None) for an empty stream, within ``timeout_s``."""
    async with asyncio.timeout(timeout_s):
        try:
            return True, await anext(stream)
        except StopAsyncIteration:
            return False, None


async def _rest(stream: AsyncIterator[T], deadline: float, provider: str, total_s: float) -> AsyncIterator[T]:
    """The remaining items, failing the request when the stream runs past ``deadline``."""
    while True:
        try:
            async with asyncio.timeout_at(deadline):
                item = await anext(stream)
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise ProviderFailed(provider, f"took longer than {total_s:g} s in all") from None
        yield item


@contextlib.asynccontextmanager
async def _closing(stream: AsyncIterator[T]) -> AsyncIterator[AsyncIterator[T]]:
    """Close ``stream`` when the block ends, even when the consumer stops early (a barge-in), so the
    provider's connection is released at once rather than when the generator is collected."""
    try:
        yield stream
    finally:
        await _close(stream)


class FallbackASR(_Fallback[ASR]):
    """ASR over a list of providers. The transcript is one piece, so it must come within
    ``min(first_byte_s, total_s)``; any failure before it moves on to the next provider."""

    stage = Stage.ASR

    async def transcribe(self, pcm: bytes, sample_rate: int) -> str:
        skipped: list[Skipped] = []
        limit = self._first_byte_s()
        for provider in self.providers:
            try:
                async with asyncio.timeout(limit):
                    text = await provider.transcribe(pcm, sample_rate)
            except Exception as exc:  # noqa: BLE001 - any failure before output: try the next one
                self._skip(skipped, provider, exc, f"{limit:g} s")
                continue
            self._answered(provider, skipped)
            return text
        raise AllProvidersFailed(self.stage, skipped)


class FallbackLLM(_Fallback[LLM]):
    """LLM over a list of providers: the first that yields a token streams the whole reply."""

    stage = Stage.LLM

    async def stream_reply(self, history: Sequence[Message], options: ReplyOptions = NO_OPTIONS) -> AsyncIterator[str]:
        async with _closing(self._first_answer(lambda provider: provider.stream_reply(history, options))) as answer:
            async for _provider, piece in answer:
                yield piece


class FallbackTTS(_Fallback[TTS]):
    """TTS over a list of providers, tried anew for each sentence. Audio is always at the first
    provider's sample rate: another provider's audio is resampled to it (the page was told one rate)."""

    stage = Stage.TTS

    def __init__(self, providers: Sequence[TTS], timeouts: StageTimeouts) -> None:
        super().__init__(providers, timeouts)
        self.sample_rate: int = self.providers[0].sample_rate

    async def synthesize(self, text: str) -> AsyncIterator[bytes]:
        resampler: PcmResampler | None = None
        async with _closing(self._first_answer(lambda provider: provider.synthesize(text))) as answer:
            async for provider, chunk in answer:
                if resampler is None and provider.sample_rate != self.sample_rate:
                    resampler = PcmResampler(provider.sample_rate, self.sample_rate)
                if out := resampler.feed(chunk) if resampler else chunk:
                    yield out
        if resampler is not None and (tail := resampler.flush()):
            yield tail
