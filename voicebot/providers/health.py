"""Whether each configured provider is reachable, for ``/health``.

Remote providers have a cheap ``check()`` (listing models proves the server answers and the key is
accepted; for edge-tts a TCP connection). Embedded providers have none: they were loaded in this
process, so they are there. Results are cached for ``ttl_s``; a refresh runs in the background, all
checks at once, and ``/health`` waits for it at most ``wait_s`` before answering with what it has.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from voicebot.errors import ProviderFailed
from voicebot.providers.base import Provider, Stages
from voicebot.providers.remote import describe_error

#: Seconds one provider's check may take.
CHECK_TIMEOUT_S = 3.0


@dataclass(frozen=True)
class Reachability:
    reachable: bool
    detail: str
    checked_at: float


def stage_providers(stage: Provider) -> tuple[Provider, ...]:
    """The providers behind a stage: a fallback's list, or the stage itself (a fake, say)."""
    providers: tuple[Provider, ...] = getattr(stage, "providers", (stage,))
    return providers


async def check_provider(provider: Provider, timeout_s: float = CHECK_TIMEOUT_S) -> Reachability:
    check: Callable[[], Awaitable[None]] | None = getattr(provider, "check", None)
    if check is None:
        return Reachability(True, "runs in this process", time.monotonic())
    try:
        async with asyncio.timeout(timeout_s):
            await check()
    except ProviderFailed as exc:
        return Reachability(False, exc.reason, time.monotonic())
    except TimeoutError:
        return Reachability(False, f"no answer within {timeout_s:g} s", time.monotonic())
    except Exception as exc:  # noqa: BLE001 - whatever a check raises means "not reachable"
        return Reachability(False, describe_error(exc), time.monotonic())
    return Reachability(True, "answered", time.monotonic())


class HealthMonitor:
    """Cached reachability of every provider of ``stages``."""

    def __init__(
        self, stages: Stages, ttl_s: float = 30.0, wait_s: float = 2.0, check_timeout_s: float = CHECK_TIMEOUT_S
    ) -> None:
        self._stages = {"asr": stages.asr, "llm": stages.llm, "tts": stages.tts}
        self._ttl_s = ttl_s
        self._wait_s = wait_s
        self._check_timeout_s = check_timeout_s
        self._results: dict[int, Reachability] = {}
        self._checked_at: float | None = None
        self._refresh: asyncio.Task[None] | None = None

    async def _check_all(self) -> None:
        providers = [p for stage in self._stages.values() for p in stage_providers(stage)]
        results = await asyncio.gather(*(check_provider(p, self._check_timeout_s) for p in providers))
        self._results = {id(p): r for p, r in zip(providers, results, strict=True)}
        self._checked_at = time.monotonic()

    async def refresh_if_stale(self) -> None:
        stale = self._checked_at is None or time.monotonic() - self._checked_at > self._ttl_s
        if stale and (self._refresh is None or self._refresh.done()):
            self._refresh = asyncio.create_task(self._check_all(), name="health-checks")
        if self._refresh is not None and not self._refresh.done():
            # Past wait_s, answer with the previous results; the refresh goes on in the background.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._refresh), self._wait_s)

    async def report(self) -> dict[str, Any]:
        """``{"status": "ok" | "degraded", "stages": {...}, "providers": {...}}``: ``stages`` names each
        stage's provider and model, ``providers`` lists each stage's providers with their
        reachability; degraded when a stage has no reachable provider."""
        await self.refresh_if_stale()
        now = time.monotonic()
        stages: dict[str, Any] = {}
        providers: dict[str, Any] = {}
        degraded = False
        for name, stage in self._stages.items():
            entries = []
            for provider in stage_providers(stage):
                result = self._results.get(id(provider))
                entry: dict[str, Any] = {"name": provider.name, "model": provider.model}
                if result is None:
                    entry.update(reachable=None, detail="not checked yet")
                else:
                    entry.update(
                        reachable=result.reachable,
                        detail=result.detail,
                        checked_s_ago=round(now - result.checked_at, 1),
                    )
                entries.append(entry)
            if entries and all(entry["reachable"] is False for entry in entries):
                degraded = True
            stages[name] = {"provider": stage.name, "model": stage.model}
            providers[name] = entries
        return {"status": "degraded" if degraded else "ok", "stages": stages, "providers": providers}
