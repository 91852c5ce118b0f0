"""One error hierarchy for the pipeline: each error has a stable, machine-readable ``code`` that the
page receives, and a message written for people."""

from __future__ import annotations

from enum import StrEnum


class Stage(StrEnum):
    """A stage of the turn pipeline."""

    ASR = "asr"
    LLM = "llm"
    TTS = "tts"


class VoicebotError(Exception):
    """Base of every error voicebot reports to the page."""

    code = "internal_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class StageError(VoicebotError):
    """A stage (ASR, LLM or TTS) failed for this turn. The session goes back to idle."""

    def __init__(self, stage: Stage, message: str) -> None:
        super().__init__(message)
        self.stage = stage
        self.code = f"{stage.value}_failed"


class ProviderUnavailable(VoicebotError):
    """A provider cannot be used at all (missing model file, missing key, unreachable service).

    Raised at start-up so the server refuses to start with a message that says how to fix it.
    """

    code = "provider_unavailable"


class ProviderFailed(VoicebotError):
    """One provider could not serve one request (refused key, rate limit, timeout, cut stream, …).

    ``reason`` is a plain sentence for people and never holds a secret. Within a stage's fallback
    list the next provider is tried, unless this one had already produced output.
    """

    code = "provider_failed"

    def __init__(self, provider: str, reason: str) -> None:
        super().__init__(f"{provider}: {reason}")
        self.provider = provider
        self.reason = reason
