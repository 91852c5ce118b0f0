"""A small stdio MCP server for the MCP client tests (run as a subprocess by test_mcp.py).

Built with the SDK's ``MCPServer`` (FastMCP in the 1.x SDK). Its tools cover what the client must
handle: a plain result, structured output, an error, a slow call and a tool that is not allowlisted.
"""

from __future__ import annotations

import asyncio

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations

server = MCPServer("voicebot-test")


@server.tool(annotations=ToolAnnotations(readOnlyHint=True))  # a hint the client must not trust
def add(a: int, b: int) -> int:
    """Add two integers. Returns their sum."""
    return a + b


@server.tool()
def weather(city: str) -> dict[str, object]:
    """Report the weather in a city."""
    return {"city": city, "sky": "clear", "temperature_c": 21}


@server.tool()
def broken() -> str:
    """Always fails."""
    raise ToolError("the sensor is unplugged")


@server.tool()
async def slow(seconds: float) -> str:
    """Answer after a while."""
    await asyncio.sleep(seconds)
    return "finally"


@server.tool()
def secret() -> str:
    """Not on the allowlist: the assistant must never see it."""
    return "the password"


if __name__ == "__main__":
    server.run()
