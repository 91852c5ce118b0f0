"""Prometheus metrics of one server: what its sessions did, counted as they do it, for ``GET /metrics``.

Each app has its own :class:`Metrics` with its own ``CollectorRegistry``, so several apps in one
process (tests, ``voicebot bench``) never share or collide. Sessions feed it through the
:class:`~voicebot.session.observer.SessionObserver` seam; it reads the same typed turn events the log
and the recording are made of, so every number here is measured once, where the stage runs.

Labels are few and bounded (stage, provider as configured, outcome, error code, refusal reason); never
a session id or a text. With ``voicebot serve --workers N`` the workers share one metrics directory
(``PROMETHEUS_MULTIPROC_DIR``, set by the command) and every worker's ``/metrics`` answers for all of them.
"""

from __future__ import annotations

import os

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from voicebot.errors import Stage
from voicebot.turn.events import (
    AudioStarted,
    FallbackUsed,
    Interrupted,
    NothingHeard,
    SegmentAudio,
    StageEnded,
    TurnEvent,
    TurnFailed,
    TurnFinished,
)

#: Where worker processes keep their shared metric files (prometheus-client's multiprocess mode).
MULTIPROCESS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"

CONTENT_TYPE = CONTENT_TYPE_LATEST

#: Release to first reply audio: a voice reply feels instant under ~0.5 s and broken past a few seconds.
FIRST_AUDIO_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0)
#: One stage call: from a few ms (a cached TTS voice) to the stage's total timeout.
STAGE_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0)


class Metrics:
    """The server's metrics, and the observer every one of its sessions reports to."""

    def __init__(self) -> None:
        # Set only for the workers of ``voicebot serve --workers N``; prometheus-client reads it on import.
        multiprocess_dir = os.environ.get(MULTIPROCESS_DIR_ENV) or None
        self.registry = CollectorRegistry()
        # In multiprocess mode the values live in files; the registry reads every worker's files back.
        own = None if multiprocess_dir else self.registry
        if multiprocess_dir:
            MultiProcessCollector(self.registry, path=multiprocess_dir)  # type: ignore[no-untyped-call]
        self.first_audio = Histogram(
            "voicebot_first_audio_seconds",
            "Time from the user releasing the button to the first reply audio leaving the server.",
            buckets=FIRST_AUDIO_BUCKETS,
            registry=own,
        )
        self.stage = Histogram(
            "voicebot_stage_seconds",
            "Stage latency per turn: asr (transcription), llm_first_token and llm (the model's first call), "
            "tts_first_audio (first synthesis call to its first audio), first_segment (release to the first "
            "spoken segment synthesised).",
            ["stage"],
            buckets=STAGE_BUCKETS,
            registry=own,
        )
        self.sessions_open = Gauge(
            "voicebot_sessions_open", "WebSocket sessions open now.", registry=own, multiprocess_mode="livesum"
        )
        self.turns = Counter(
            "voicebot_turns",
            "Turns by how they ended: finished, interrupted, nothing_heard, failed.",
            ["outcome"],
            registry=own,
        )
        self.errors = Counter("voicebot_errors", "Error messages sent to pages, by code.", ["code"], registry=own)
        self.fallbacks = Counter(
            "voicebot_provider_fallbacks",
            "Requests answered by a provider other than the stage's first choice, by stage and answering provider.",
            ["stage", "provider"],
            registry=own,
        )
        self.failures = Counter(
            "voicebot_provider_failures",
            "Provider failures by stage and provider: each provider skipped before a fallback answered, and "
            "each turn failed by a stage (labelled with the stage's providers as configured).",
            ["stage", "provider"],
            registry=own,
        )
        self.barge_ins = Counter(
            "voicebot_barge_ins", "Times the user pressed the mic while the assistant was busy.", registry=own
        )
        self.dropped_audio_frames = Counter(
            "voicebot_dropped_audio_frames",
            "Microphone frames dropped (not listening, or a client flooding the server).",
            registry=own,
        )
        self.connections_refused = Counter(
            "voicebot_connections_refused", "WebSocket connections refused, by reason.", ["reason"], registry=own
        )
        self.stage_providers = Gauge(
            "voicebot_stage_provider",
            "The provider and model each stage uses (always 1).",
            ["stage", "provider", "model"],
            registry=own,
            multiprocess_mode="max",
        )
        self._providers: dict[str, str] = {}
        for outcome in ("finished", "interrupted", "nothing_heard", "failed"):
            self.turns.labels(outcome)  # present at 0 from the start, so rates work from the first scrape

    # --- what the server reports ------------------------------------------------------------------

    def models_ready(self, stages: dict[str, dict[str, str]]) -> None:
        """The loaded stages (``Stages.describe()``): their providers label failures of whole stages."""
        for stage, info in stages.items():
            self._providers[stage] = info["provider"]
            self.stage_providers.labels(stage, info["provider"], info["model"]).set(1)

    def connection_refused(self, reason: str) -> None:
        """A WebSocket connection was refused; ``reason`` is a short fixed word (``origin``, ``token``, …)."""
        self.connections_refused.labels(reason).inc()

    def exposition(self) -> bytes:
        """Every metric in the Prometheus text format (served with :data:`CONTENT_TYPE`)."""
        return generate_latest(self.registry)

    # --- the session observer ---------------------------------------------------------------------

    def session_opened(self) -> None:
        self.sessions_open.inc()

    def session_closed(self) -> None:
        self.sessions_open.dec()

    def error_sent(self, code: str) -> None:
        self.errors.labels(code).inc()

    def barge_in(self) -> None:
        self.barge_ins.inc()

    def audio_dropped(self) -> None:
        self.dropped_audio_frames.inc()

    def turn_event(self, event: TurnEvent, at_ms: float | None) -> None:
        if isinstance(event, StageEnded):
            self._stage_ended(event)
        elif isinstance(event, SegmentAudio) and event.index == 0 and at_ms is not None:
            self.stage.labels("first_segment").observe(at_ms / 1000)
        elif isinstance(event, AudioStarted) and at_ms is not None:
            self.first_audio.observe(at_ms / 1000)
        elif isinstance(event, FallbackUsed):
            self.fallbacks.labels(event.stage.value, event.provider).inc()
            for provider, _reason in event.skipped:
                self.failures.labels(event.stage.value, provider).inc()
        elif isinstance(event, TurnFinished):
            self.turns.labels("finished").inc()
        elif isinstance(event, Interrupted):
            self.turns.labels("interrupted").inc()
        elif isinstance(event, NothingHeard):
            self.turns.labels("nothing_heard").inc()
        elif isinstance(event, TurnFailed):
            self.turns.labels("failed").inc()
            if event.stage is not None:
                stage = event.stage.value
                self.failures.labels(stage, self._providers.get(stage, "unknown")).inc()

    def _stage_ended(self, event: StageEnded) -> None:
        """The same stage figures as the turn's summary (``TurnTimings``): completed calls only."""
        if event.error is not None:
            return
        if event.stage is Stage.ASR:
            self.stage.labels("asr").observe(event.duration_ms / 1000)
        elif event.stage is Stage.LLM and event.call == 1:
            self.stage.labels("llm").observe(event.duration_ms / 1000)
            if event.first_ms is not None:
                self.stage.labels("llm_first_token").observe(event.first_ms / 1000)
        elif event.stage is Stage.TTS and event.call == 1 and event.first_ms is not None:
            self.stage.labels("tts_first_audio").observe(event.first_ms / 1000)
