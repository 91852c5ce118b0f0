"""Tools from MCP servers, through the official ``mcp`` Python SDK (2.x).

``McpTools`` starts the servers listed in the settings (a stdio command, or a Streamable HTTP URL),
lists their tools and registers the allowed ones in a ``ToolRegistry`` as ``<server>__<tool>`` (the
Anthropic and OpenAI APIs refuse dots in tool names), each with its own timeout. Calls then go through
the registry like any other tool, so a slow or broken server costs only that call.

One ``McpTools`` serves the whole process: start it once (e.g. in the app's start-up) and stop it in
the same task, because the SDK's clients hold anyio task groups that must be left where they were
entered. A server that cannot be started or listed in time is skipped and reported in ``failed``; the
assistant still starts.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import mcp
import structlog
from mcp import Client, StdioServerParameters

from voicebot.tools.base import ToolContext, ToolError, ToolRegistry, ToolResult, object_schema
from voicebot.tools.settings import McpServerSettings

_log = structlog.get_logger("voicebot.tools")

#: Separator between the server's name and the tool's name in registered tool names.
NAMESPACE_SEPARATOR = "__"

#: Longest text of a result kept for the model (MCP servers may return whole files).
MAX_RESULT_CHARS = 8000


def namespaced(server: str, tool: str) -> str:
    """The registry name of ``tool`` of ``server``: ``home__lights``."""
    return f"{server}{NAMESPACE_SEPARATOR}{tool}"


def result_from_mcp(result: mcp.types.CallToolResult) -> ToolResult:
    """An MCP ``CallToolResult`` as a ``ToolResult``: text blocks joined for the model, structured
    content as ``data``, ``is_error`` as a failure whose reason is the server's text."""
    texts: list[str] = []
    for block in result.content:
        if isinstance(block, mcp.types.TextContent):
            texts.append(block.text)
        else:
            texts.append(f"[{block.type} content]")
    text = "\n".join(texts).strip()
    if len(text) > MAX_RESULT_CHARS:
        text = text[:MAX_RESULT_CHARS] + " [truncated]"
    if result.is_error:
        return ToolResult.failure(text or "the tool reported an error")
    structured = result.structured_content
    data: dict[str, Any] = dict(structured) if isinstance(structured, Mapping) else {}
    if structured is not None and not isinstance(structured, Mapping):
        data["result"] = structured
    return ToolResult(ok=True, text=text or "(no output)", spoken=text[:300] or "Done.", data=data)


@dataclass(frozen=True)
class McpTool:
    """One allowed tool of one MCP server, as a ``Tool``."""

    server: McpServer
    remote_name: str
    """The tool's name on its server."""
    description: str
    parameters: Mapping[str, Any]

    @property
    def read_only(self) -> bool:
        """False: an MCP server's ``readOnlyHint`` is only a hint (the MCP specification says not to
        rely on it), so its tools run only once the user is done."""
        return False

    @property
    def name(self) -> str:
        """``<server>__<tool>``."""
        return namespaced(self.server.settings.name, self.remote_name)

    @property
    def summary(self) -> str:
        """For "what can you do": the first sentence of the description, or the tool's name."""
        first = self.description.split(".")[0].strip()
        if first and len(first) <= 80:
            return f"use {self.server.settings.name}'s {self.remote_name} ({first[0].lower() + first[1:]})"
        return f"use {self.server.settings.name}'s {self.remote_name}"

    async def run(self, arguments: Mapping[str, Any], context: ToolContext) -> ToolResult:
        """Call the tool on its server (the registry applies the timeout)."""
        return await self.server.call(self.remote_name, arguments)


@dataclass
class McpServer:
    """A running connection to one MCP server."""

    settings: McpServerSettings
    client: Client | None = None
    tools: list[McpTool] = field(default_factory=list)

    async def call(self, tool: str, arguments: Mapping[str, Any]) -> ToolResult:
        """Call ``tool`` with ``arguments``; protocol errors become a ``ToolError``."""
        if self.client is None:
            raise ToolError(f"the {self.settings.name} server is not running")
        try:
            result = await self.client.call_tool(tool, dict(arguments))
        except mcp.MCPError as exc:
            raise ToolError(f"the {self.settings.name} server refused the call: {exc}") from None
        return result_from_mcp(result)


def _target(settings: McpServerSettings) -> StdioServerParameters | str:
    if settings.url is not None:
        return settings.url
    assert settings.command is not None  # the settings validator ensures one of the two
    return StdioServerParameters(command=settings.command, args=list(settings.args), env=dict(settings.env) or None)


class McpTools:
    """Starts MCP servers, registers their allowed tools, and stops them again (an async context)."""

    def __init__(self, servers: Sequence[McpServerSettings], registry: ToolRegistry) -> None:
        self.registry = registry
        self.servers = [McpServer(settings) for settings in servers]
        self.failed: dict[str, str] = {}
        """Servers that could not be started or listed, with the reason."""
        self._stack: AsyncExitStack | None = None

    @property
    def tool_names(self) -> list[str]:
        """Registry names of every registered MCP tool."""
        return [tool.name for server in self.servers for tool in server.tools]

    async def start(self) -> None:
        """Start every server and register its allowed tools; failures are logged and skipped."""
        self._stack = AsyncExitStack()
        for server in self.servers:
            try:
                await self._start(server, self._stack)
            except Exception as exc:  # noqa: BLE001 - one broken server must not stop the assistant
                reason = "it did not answer in time" if isinstance(exc, TimeoutError) else _reason(exc)
                self.failed[server.settings.name] = reason
                server.client = None
                _log.warning("mcp_server_failed", server=server.settings.name, reason=reason)

    async def _start(self, server: McpServer, stack: AsyncExitStack) -> None:
        settings = server.settings
        client = Client(_target(settings), client_info=mcp.Implementation(name="voicebot", version="0.1.0"))
        # Enter the client in its own stack first: if listing fails, only this server is closed.
        own = AsyncExitStack()
        try:
            async with asyncio.timeout(settings.connect_timeout_s):
                await own.enter_async_context(client)
                listed = await _list_all_tools(client)
        except BaseException:
            with contextlib.suppress(Exception):
                await own.aclose()
            raise
        stack.push_async_callback(own.aclose)
        server.client = client
        for tool in listed:
            if not settings.allows(tool.name):
                continue
            schema = tool.input_schema if tool.input_schema.get("type") == "object" else object_schema()
            mcp_tool = McpTool(
                server=server,
                remote_name=tool.name,
                description=tool.description or tool.title or tool.name,
                parameters=schema,
            )
            try:
                self.registry.add(mcp_tool, timeout_s=settings.timeout_for(tool.name))
            except ValueError as exc:
                _log.warning("mcp_tool_skipped", server=settings.name, tool=tool.name, reason=str(exc))
                continue
            server.tools.append(mcp_tool)
        _log.info("mcp_server_started", server=settings.name, tools=[tool.remote_name for tool in server.tools])

    async def stop(self) -> None:
        """Unregister the tools and stop every server (in the task that called ``start``)."""
        for server in self.servers:
            for tool in server.tools:
                self.registry.remove(tool.name)
            server.tools.clear()
            server.client = None
        if self._stack is not None:
            stack, self._stack = self._stack, None
            with contextlib.suppress(Exception):
                await stack.aclose()

    async def __aenter__(self) -> McpTools:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self.stop()


async def _list_all_tools(client: Client) -> list[mcp.types.Tool]:
    tools: list[mcp.types.Tool] = []
    cursor: str | None = None
    for _ in range(100):  # a server that pages forever must not hang the start-up
        page = await client.list_tools(cursor=cursor)
        tools.extend(page.tools)
        cursor = page.next_cursor
        if not cursor:
            break
    return tools


def _reason(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(_reason(inner) for inner in exc.exceptions)
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
