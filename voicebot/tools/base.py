"""What a tool is, what it is given and what it returns, and the registry that calls tools safely.

Tools are shared by every session of the server: a tool keeps no per-session state of its own and
reads what belongs to the session (the page's time zone, its timers) from the ``ToolContext`` it is
called with. The registry is the only place that calls a tool, so one rule holds for every caller
(the intent layer, native tool calling of the Anthropic and OpenAI models, replay): a call never
raises. A tool that fails, hangs or gets bad arguments costs only that call; the result says why in
plain words and the turn goes on.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import TYPE_CHECKING, Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

if TYPE_CHECKING:
    from voicebot.tools.timers import TimerBoard

#: Tool names both the Anthropic and the OpenAI APIs accept (neither allows dots).
TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")

JsonSchema = Mapping[str, Any]


def wall_clock() -> datetime:
    """The real time, aware, in UTC (the default clock of a ``ToolContext``)."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class ToolResult:
    """What one tool call produced, for the model, for the speaker and for the page."""

    ok: bool
    """False when the tool failed, timed out or was called wrongly; ``error`` says why."""
    text: str
    """The result as the model should read it (sent back as the tool result)."""
    spoken: str
    """A short sentence that answers the user when no model rewrites the result (the intent layer)."""
    data: Mapping[str, Any] = field(default_factory=dict)
    """Structured result for the page's tool chip, the recording and templated answers."""
    error: str | None = None
    """A plain reason when ``ok`` is False, e.g. "it took longer than 5 seconds"."""
    elapsed_ms: float = 0.0
    """How long the call took, set by ``ToolRegistry.call``."""

    @classmethod
    def success(cls, text: str, spoken: str | None = None, **data: Any) -> ToolResult:
        """A result that worked; ``spoken`` defaults to ``text``."""
        return cls(ok=True, text=text, spoken=text if spoken is None else spoken, data=data)

    @classmethod
    def failure(cls, reason: str, spoken: str | None = None) -> ToolResult:
        """A result that did not work, with the plain reason (no stack traces: the model reads it)."""
        return cls(
            ok=False,
            text=f"Error: {reason}",
            spoken=spoken or f"Sorry, I could not do that: {reason}.",
            error=reason,
        )

    def to_dict(self) -> dict[str, Any]:
        """The result as JSON-ready data (for events, logs and recordings)."""
        return {
            "ok": self.ok,
            "text": self.text,
            "spoken": self.spoken,
            "data": dict(self.data),
            "error": self.error,
            "elapsed_ms": round(self.elapsed_ms, 1),
        }


def result_from_dict(data: Mapping[str, Any]) -> ToolResult:
    """The inverse of ``ToolResult.to_dict`` (replay with recorded tool results)."""
    return ToolResult(
        ok=bool(data["ok"]),
        text=str(data["text"]),
        spoken=str(data.get("spoken", data["text"])),
        data=dict(data.get("data") or {}),
        error=data.get("error"),
        elapsed_ms=float(data.get("elapsed_ms", 0.0)),
    )


def resolve_zone(name: str | None) -> tzinfo:
    """The IANA zone ``name`` (e.g. ``Europe/Paris``), or the server's local zone when None or unknown."""
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    local = datetime.now().astimezone().tzinfo
    return local if local is not None else UTC


@dataclass
class ToolContext:
    """What a tool may know about the session that calls it."""

    time_zone: str | None = None
    """The page's IANA time zone (sent when it connects), or None to use the server's zone."""
    clock: Callable[[], datetime] = wall_clock
    """Returns the current time as an aware datetime; tests inject a fixed one."""
    timers: TimerBoard | None = None
    """The session's timers; None where timers are not available (timer tools then fail politely)."""

    @property
    def zone(self) -> tzinfo:
        """The zone answers are given in: the page's if it is known, otherwise the server's."""
        return resolve_zone(self.time_zone)

    def now(self) -> datetime:
        """The current time in ``zone``."""
        return self.clock().astimezone(self.zone)


class Tool(Protocol):
    """Something the assistant can do. Implementations must be safe to share between sessions."""

    @property
    def name(self) -> str:
        """Unique name, ``[a-zA-Z0-9_-]{1,64}`` (what the model calls)."""
        ...

    @property
    def description(self) -> str:
        """What it does and when to use it, written for the model."""
        ...

    @property
    def parameters(self) -> JsonSchema:
        """JSON schema (an object) of the arguments."""
        ...

    @property
    def summary(self) -> str:
        """What it lets the assistant do, as words that follow "I can", e.g. "tell you the time"."""
        ...

    @property
    def read_only(self) -> bool:
        """Whether a call only looks something up and changes nothing (the time, a sum). Such a call
        may run for a reply prepared while the user pauses, which is dropped unheard if they go on;
        a tool that acts (sets a timer, calls a service) runs only once the user is done."""
        ...

    async def run(self, arguments: Mapping[str, Any], context: ToolContext) -> ToolResult:
        """Do it. May raise ``ToolError`` (or anything else): the registry turns it into a failure."""
        ...


class ToolError(Exception):
    """A tool cannot do what was asked; the message is a plain reason the user may hear."""


ToolFunction = Callable[[Mapping[str, Any], ToolContext], Awaitable[ToolResult]]


@dataclass(frozen=True)
class FunctionTool:
    """A ``Tool`` made of its description and one async function."""

    name: str
    description: str
    parameters: JsonSchema
    summary: str
    function: ToolFunction
    read_only: bool = False

    async def run(self, arguments: Mapping[str, Any], context: ToolContext) -> ToolResult:
        """Call the function."""
        return await self.function(arguments, context)


def object_schema(properties: Mapping[str, Any] | None = None, required: Iterable[str] = ()) -> dict[str, Any]:
    """A JSON schema of an object with these properties and no others."""
    return {
        "type": "object",
        "properties": dict(properties or {}),
        "required": list(required),
        "additionalProperties": False,
    }


_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "number": (int, float),
    "integer": (int,),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
}


def check_arguments(schema: JsonSchema, arguments: Mapping[str, Any]) -> str | None:
    """The first way ``arguments`` break the top level of ``schema`` (required keys, unknown keys,
    simple types, enums), or None. Models get these wrong often enough that a plain reason helps them
    retry; deeper validation is the tool's own job."""
    properties: Mapping[str, Any] = schema.get("properties", {})
    for key in schema.get("required", ()):
        if key not in arguments:
            return f"the argument {key!r} is missing"
    for key, value in arguments.items():
        spec = properties.get(key)
        if spec is None:
            if schema.get("additionalProperties", True) is False:
                return f"there is no argument {key!r}"
            continue
        kind = spec.get("type")
        if isinstance(kind, str) and kind in _JSON_TYPES:
            wrong_bool = isinstance(value, bool) and kind in ("number", "integer")
            if wrong_bool or not isinstance(value, _JSON_TYPES[kind]):
                return f"the argument {key!r} must be {'an' if kind[0] in 'aeiou' else 'a'} {kind}"
        if "enum" in spec and value not in spec["enum"]:
            return f"the argument {key!r} must be one of {', '.join(map(str, spec['enum']))}"
    return None


def parse_arguments(arguments: Mapping[str, Any] | str | None) -> dict[str, Any]:
    """Arguments as a dict: models send a JSON object, sometimes as a string, sometimes empty."""
    if arguments is None:
        return {}
    if isinstance(arguments, str):
        if not arguments.strip():
            return {}
        try:
            parsed = json.loads(arguments)
        except json.JSONDecodeError as exc:
            raise ToolError(f"the arguments are not valid JSON ({exc.msg})") from None
        if not isinstance(parsed, dict):
            raise ToolError("the arguments must be a JSON object")
        return parsed
    return dict(arguments)


def _seconds(value: float) -> str:
    return f"{value:g} second" + ("" if value == 1 else "s")


class ToolRegistry:
    """The enabled tools, exported for each model API, and the one safe way to call them."""

    def __init__(self, tools: Iterable[Tool] = (), default_timeout_s: float = 5.0) -> None:
        self._tools: dict[str, Tool] = {}
        self._timeouts: dict[str, float] = {}
        self.default_timeout_s = default_timeout_s
        for tool in tools:
            self.add(tool)

    def add(self, tool: Tool, timeout_s: float | None = None) -> None:
        """Register ``tool`` (optionally with its own timeout); its name must be new and API-safe."""
        if not TOOL_NAME.match(tool.name):
            raise ValueError(f"tool name {tool.name!r} must match {TOOL_NAME.pattern} (no dots or spaces)")
        if tool.name in self._tools:
            raise ValueError(f"a tool named {tool.name!r} is already registered")
        self._tools[tool.name] = tool
        if timeout_s is not None:
            self._timeouts[tool.name] = timeout_s

    def remove(self, name: str) -> None:
        """Forget the tool ``name`` (e.g. when its MCP server stops); unknown names are ignored."""
        self._tools.pop(name, None)
        self._timeouts.pop(name, None)

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __len__(self) -> int:
        return len(self._tools)

    @property
    def names(self) -> list[str]:
        """Names of the registered tools, in the order they were added."""
        return list(self._tools)

    @property
    def tools(self) -> list[Tool]:
        """The registered tools, in the order they were added."""
        return list(self._tools.values())

    def get(self, name: str) -> Tool | None:
        """The tool called ``name``, or None."""
        return self._tools.get(name)

    def read_only(self, name: str) -> bool:
        """Whether the tool ``name`` changes nothing (False for a tool not registered)."""
        tool = self.get(name)
        return tool is not None and tool.read_only

    def timeout_for(self, name: str) -> float:
        """The time limit of one call of ``name``."""
        return self._timeouts.get(name, self.default_timeout_s)

    def anthropic_tools(self) -> list[dict[str, Any]]:
        """The tools as the Anthropic Messages API's ``tools`` parameter."""
        return [
            {"name": tool.name, "description": tool.description, "input_schema": dict(tool.parameters)}
            for tool in self._tools.values()
        ]

    def openai_tools(self) -> list[dict[str, Any]]:
        """The tools as the OpenAI Chat Completions API's ``tools`` parameter."""
        return [
            {
                "type": "function",
                "function": {
                    "name": tool.name,
                    "description": tool.description,
                    "parameters": dict(tool.parameters),
                },
            }
            for tool in self._tools.values()
        ]

    async def call(
        self,
        name: str,
        arguments: Mapping[str, Any] | str | None,
        context: ToolContext,
        timeout_s: float | None = None,
    ) -> ToolResult:
        """Run the tool ``name`` and return its result. Never raises (other than the caller's own
        cancellation, which must reach the caller for barge-in to work): an unknown tool, bad
        arguments, an exception or a timeout each become a result with ``ok=False`` and a plain reason.
        """
        started = time.perf_counter()
        result = await self._call(name, arguments, context, timeout_s)
        elapsed_ms = (time.perf_counter() - started) * 1000
        return ToolResult(
            ok=result.ok,
            text=result.text,
            spoken=result.spoken,
            data=result.data,
            error=result.error,
            elapsed_ms=elapsed_ms,
        )

    async def _call(
        self,
        name: str,
        arguments: Mapping[str, Any] | str | None,
        context: ToolContext,
        timeout_s: float | None,
    ) -> ToolResult:
        tool = self._tools.get(name)
        if tool is None:
            return ToolResult.failure(f"there is no tool named {name!r}", spoken="Sorry, I cannot do that.")
        try:
            parsed = parse_arguments(arguments)
        except ToolError as exc:
            return ToolResult.failure(str(exc))
        problem = check_arguments(tool.parameters, parsed)
        if problem is not None:
            return ToolResult.failure(problem)
        limit = self.timeout_for(name) if timeout_s is None else timeout_s
        try:
            async with asyncio.timeout(limit) as scope:
                result = await tool.run(parsed, context)
        except ToolError as exc:
            return ToolResult.failure(str(exc))
        except TimeoutError:
            if scope.expired():
                return ToolResult.failure(f"it took longer than {_seconds(limit)}", spoken="Sorry, that took too long.")
            return ToolResult.failure("it timed out")
        except Exception as exc:  # noqa: BLE001 - a tool's bug must cost only this call
            return ToolResult.failure(f"the tool failed ({type(exc).__name__}: {exc})")
        if not isinstance(result, ToolResult):
            return ToolResult.failure(f"the tool returned {type(result).__name__}, not a ToolResult")
        return result
