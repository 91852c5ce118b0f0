"""Tools as the turn uses them: the intent layer answers the sentences it knows (the embedded model
cannot call tools reliably), a model that calls tools natively gets them between its rounds, and
every call is a ``ToolCalled`` / ``ToolReturned`` pair of turn events, logged, recorded and replayed
like the rest of the turn.

A tool that takes longer than ``FILLER_AFTER_S`` makes the assistant say "Let me check." so the user
is not left in silence; a fast one (the built-ins take milliseconds) says nothing extra. Replay can
hand the turn the results recorded then (``voicebot replay --recorded-tools``), so a replayed "what
time is it?" gives the answer it gave then.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from voicebot.tools.base import ToolContext, ToolRegistry, ToolResult, result_from_dict
from voicebot.tools.builtins import add_builtin_tools
from voicebot.tools.intents import IntentLayer, IntentMatch
from voicebot.tools.native import ToolCall, call_all
from voicebot.tools.settings import McpServerSettings, ToolsSettings
from voicebot.tools.timers import Clock, RealClock
from voicebot.turn.events import ToolCalled, ToolReturned
from voicebot.turn.timing import Emit

#: What the assistant says when a tool keeps it waiting.
FILLER = "Let me check."
#: How long a tool may run before the filler is spoken.
FILLER_AFTER_S = 0.3


@dataclass
class Toolbox:
    """The server's tools, shared by every session: the registry and the intent layer."""

    registry: ToolRegistry
    intents: IntentLayer | None
    settings: ToolsSettings
    timer_clock: Clock = field(default_factory=RealClock)
    """The clock sessions' timers run on (tests pass a ``ManualClock``)."""

    @classmethod
    def from_settings(cls, settings: ToolsSettings, timer_clock: Clock | None = None) -> Toolbox:
        registry = add_builtin_tools(ToolRegistry(default_timeout_s=settings.timeout_s), settings.enabled)
        intents = IntentLayer(registry) if settings.intents and len(registry) else None
        return cls(registry, intents, settings, timer_clock or RealClock())

    @property
    def timers(self) -> bool:
        """Whether sessions keep timers (the timer tools are on)."""
        return "set_timer" in self.registry


class McpLifetime:
    """The MCP servers of the settings, started once per process in a task of their own (the SDK's
    clients must be entered and left in one task) and stopped with the server."""

    def __init__(self, servers: Sequence[McpServerSettings]) -> None:
        self._servers = servers
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self, registry: ToolRegistry) -> None:
        """Start the servers and register their allowed tools; a server that fails is skipped (logged)."""
        ready = asyncio.Event()

        from voicebot.tools.mcp_client import McpTools  # the SDK only when MCP servers are configured

        async def hold() -> None:
            async with McpTools(self._servers, registry):  # servers that fail are logged and skipped
                ready.set()
                await self._stop.wait()

        self._task = asyncio.create_task(hold(), name="mcp-servers")
        waiting = asyncio.create_task(ready.wait())
        await asyncio.wait({self._task, waiting}, return_when=asyncio.FIRST_COMPLETED)
        waiting.cancel()
        if self._task.done():
            self._task.result()  # starting failed as a whole: raise its error

    async def stop(self) -> None:
        if self._task is not None:
            self._stop.set()
            await self._task


@dataclass(frozen=True)
class RecordedResults:
    """Tool results recorded in an earlier run of the turn, handed out in order (replay)."""

    results: Sequence[dict[str, Any]]
    _next: itertools.count[int] = field(default_factory=itertools.count)

    def next(self) -> ToolResult:
        index = next(self._next)
        if index >= len(self.results):
            return ToolResult.failure("no recorded result for this call (the replay went another way)")
        return result_from_dict(self.results[index])


class TurnTools:
    """One turn's view of the toolbox: runs calls, reports them, and fills long silences."""

    def __init__(
        self,
        box: Toolbox,
        context: ToolContext,
        emit: Emit,
        say: Callable[[str], None],
        recorded: RecordedResults | None = None,
        ready: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        """``ready``: awaited before a tool that acts runs (a reply prepared early runs no such tool
        until the end of the turn is decided: the user may still go on). Read-only tools run at once,
        so that an answer they give is ready at the release like any other reply."""
        self._ready = ready
        self._box = box
        self._context = context
        self._emit = emit
        self._say = say
        self._recorded = recorded
        self._ids = itertools.count(1)

    async def _until_allowed(self, names: Sequence[str]) -> None:
        """Wait for the end of the turn to be decided unless every tool called only looks up."""
        if self._ready is not None and not all(self._box.registry.read_only(name) for name in names):
            await self._ready()

    def match(self, text: str) -> IntentMatch | None:
        """The intent ``text`` asks for, if the intent layer knows it."""
        return None if self._box.intents is None else self._box.intents.match(text)

    def anthropic_tools(self) -> list[dict[str, Any]]:
        return self._box.registry.anthropic_tools()

    def openai_tools(self) -> list[dict[str, Any]]:
        return self._box.registry.openai_tools()

    async def answer(self, match: IntentMatch) -> str:
        """Call the intent's tool and return the sentence that answers the user."""
        await self._until_allowed([match.tool])
        call_id = f"intent_{next(self._ids)}"
        self._emit(ToolCalled(call_id, match.tool, dict(match.arguments), "intent"))
        if self._recorded is not None:
            result = self._recorded.next()
        else:
            result = await self._box.registry.call(match.tool, dict(match.arguments), self._context)
        self._emit(_returned(call_id, match.tool, result))
        return match.spoken_answer(result)

    async def run(self, calls: Sequence[ToolCall]) -> list[ToolResult]:
        await self._until_allowed([call.name for call in calls])
        for call in calls:
            self._emit(ToolCalled(call.id, call.name, call.arguments, "model"))
        if self._recorded is not None:
            results = [self._recorded.next() for _ in calls]
        else:
            running = asyncio.ensure_future(call_all(self._box.registry, calls, self._context))
            done, _ = await asyncio.wait({running}, timeout=FILLER_AFTER_S)
            if not done:
                self._say(FILLER)
            results = await running
        for call, result in zip(calls, results, strict=True):
            self._emit(_returned(call.id, call.name, result))
        return results


def _returned(call_id: str, name: str, result: ToolResult) -> ToolReturned:
    return ToolReturned(
        call_id,
        name,
        result.ok,
        result.text,
        result.spoken,
        result.error,
        result.elapsed_ms,
        dict(result.data),
    )
