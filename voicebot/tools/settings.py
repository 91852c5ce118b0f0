"""Settings of the tools: which built-ins are on, timer limits, time limits, MCP servers, intents.

A frozen pydantic section in the style of ``voicebot/settings.py`` so the lead can mount it as
``Settings.tools`` (``tools:`` in ``settings.yaml``, ``VOICEBOT_TOOLS__…`` in the environment).
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from voicebot.tools.builtins import BUILTIN_NAMES


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


_SERVER_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,20}$")


class McpServerSettings(_Section):
    """One MCP server whose tools the assistant may call (see docs/tools.md)."""

    name: str
    """Short name; its tools are offered to models as ``<name>__<tool>``. Letters, digits, _ and -."""
    command: str | None = None
    """Program to start for a stdio server, e.g. ``uvx`` or ``python``. Set this or ``url``."""
    args: tuple[str, ...] = ()
    """Arguments of ``command``."""
    env: dict[str, str] = Field(default_factory=dict)
    """Extra environment variables of ``command`` (secrets are better passed from the server's own
    environment: the process inherits it)."""
    url: str | None = None
    """Streamable HTTP endpoint of a running server, e.g. ``http://127.0.0.1:9000/mcp``. Set this or
    ``command``."""
    allowed_tools: tuple[str, ...] = ()
    """The server's tools that may be used, by their MCP names; ``["*"]`` allows all of them. Tools not
    listed are never offered to a model (an empty list offers none)."""
    timeout_s: float = Field(10.0, gt=0, le=300)
    """Seconds one call of this server's tools may take."""
    tool_timeouts_s: dict[str, float] = Field(default_factory=dict)
    """Per-tool overrides of ``timeout_s``, by MCP tool name."""
    connect_timeout_s: float = Field(15.0, gt=0, le=300)
    """Seconds to start the server and list its tools; a server that takes longer is skipped (logged)."""

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _SERVER_NAME.match(value):
            raise ValueError("use 1 to 20 letters, digits, '_' or '-' (it prefixes tool names)")
        return value

    @field_validator("tool_timeouts_s")
    @classmethod
    def _timeouts(cls, value: dict[str, float]) -> dict[str, float]:
        for tool, seconds in value.items():
            if not 0 < seconds <= 300:
                raise ValueError(f"timeout of {tool!r} must be more than 0 and at most 300 seconds")
        return value

    @model_validator(mode="after")
    def _one_transport(self) -> McpServerSettings:
        if (self.command is None) == (self.url is None):
            raise ValueError(f"MCP server {self.name!r}: set exactly one of 'command' (stdio) or 'url' (HTTP)")
        return self

    def allows(self, tool: str) -> bool:
        """Whether the MCP tool ``tool`` is on this server's allowlist."""
        return "*" in self.allowed_tools or tool in self.allowed_tools

    def timeout_for(self, tool: str) -> float:
        """The time limit of one call of ``tool``."""
        return self.tool_timeouts_s.get(tool, self.timeout_s)


class ToolsSettings(_Section):
    """What the assistant can do besides talking (see docs/tools.md)."""

    enabled: tuple[str, ...] = BUILTIN_NAMES
    """Built-in tools offered to models and to the intent layer. Known: get_time, get_date, calculator,
    calendar_facts, set_timer, timer_status, cancel_timer, what_can_you_do. An empty list turns tools off."""
    intents: bool = True
    """Answer matching sentences ("what time is it?", "set a timer for five minutes") with a tool and a
    templated reply before the LLM. Meant for the embedded model, which cannot call tools; it is also
    the fastest path for the cloud models."""
    timeout_s: float = Field(5.0, gt=0, le=300)
    """Seconds one call of a built-in tool may take."""
    max_timers: int = Field(10, ge=1, le=100)
    """Most timers one session may have running."""
    max_timer_s: float = Field(86_400, ge=1, le=7 * 86_400)
    """Longest timer, in seconds."""
    mcp_servers: tuple[McpServerSettings, ...] = ()
    """MCP servers whose allowed tools are offered to models (not to the intent layer)."""

    @field_validator("enabled", mode="before")
    @classmethod
    def _enabled(cls, value: Any) -> Any:
        names = [value] if isinstance(value, str) else value
        unknown = [name for name in names if name not in BUILTIN_NAMES]
        if unknown:
            raise ValueError(f"unknown tools {', '.join(unknown)}; choose from {', '.join(BUILTIN_NAMES)}")
        return tuple(names)

    @field_validator("mcp_servers")
    @classmethod
    def _unique(cls, value: tuple[McpServerSettings, ...]) -> tuple[McpServerSettings, ...]:
        names = [server.name for server in value]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"MCP server names must be unique: {', '.join(duplicates)}")
        return value
