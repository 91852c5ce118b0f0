"""MCP tools against a real stdio server started by the test (tests/tools/mcp_server.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from voicebot.tools.base import ToolContext, ToolRegistry
from voicebot.tools.builtins import add_builtin_tools
from voicebot.tools.mcp_client import McpTools
from voicebot.tools.settings import McpServerSettings

pytestmark = pytest.mark.slow  # soaks, property runs or real processes: not in the fast tier

SERVER = str(Path(__file__).with_name("mcp_server.py"))


def server_settings(**overrides: object) -> McpServerSettings:
    settings: dict[str, object] = {
        "name": "test",
        "command": sys.executable,
        "args": (SERVER,),
        "allowed_tools": ("add", "weather", "broken", "slow"),
        "timeout_s": 10,
        "tool_timeouts_s": {"slow": 0.3},
    }
    settings.update(overrides)
    return McpServerSettings.model_validate(settings)


async def test_allowed_tools_are_registered_called_and_removed() -> None:
    registry = add_builtin_tools(ToolRegistry(), ["get_time", "what_can_you_do"])
    context = ToolContext()
    async with McpTools([server_settings()], registry) as tools:
        assert tools.failed == {}
        assert tools.tool_names == ["test__add", "test__weather", "test__broken", "test__slow"]
        assert "test__secret" not in registry  # not on the allowlist
        assert registry.timeout_for("test__slow") == 0.3
        assert registry.timeout_for("test__add") == 10
        assert not registry.read_only("test__add")  # its server says read-only: a hint, not trusted

        add = next(tool for tool in registry.anthropic_tools() if tool["name"] == "test__add")
        assert add["description"] == "Add two integers. Returns their sum."
        assert add["input_schema"]["required"] == ["a", "b"]
        openai_names = [tool["function"]["name"] for tool in registry.openai_tools()]
        assert openai_names[-4:] == tools.tool_names

        result = await registry.call("test__add", {"a": 2, "b": 3}, context)
        assert result.ok and result.text == "5" and result.data == {"result": 5}

        weather = await registry.call("test__weather", '{"city": "Paris"}', context)
        assert weather.ok
        assert weather.data == {"city": "Paris", "sky": "clear", "temperature_c": 21}

        broken = await registry.call("test__broken", {}, context)
        assert not broken.ok and broken.error is not None and "the sensor is unplugged" in broken.error

        slow = await registry.call("test__slow", {"seconds": 5}, context)
        assert not slow.ok and slow.error == "it took longer than 0.3 seconds"

        # the server is still usable after a timed-out call
        again = await registry.call("test__add", {"a": 20, "b": 22}, context)
        assert again.ok and again.text == "42"

        bad = await registry.call("test__add", {"a": "two", "b": 3}, context)
        assert not bad.ok and bad.error == "the argument 'a' must be an integer"

        skills = await registry.call("what_can_you_do", {}, context)
        assert "use test's add (add two integers)" in skills.spoken
    assert registry.names == ["get_time", "what_can_you_do"]


async def test_broken_servers_are_skipped_and_reported() -> None:
    registry = ToolRegistry()
    servers = [
        server_settings(name="missing", command="/nonexistent/mcp-server", args=()),
        server_settings(name="mute", args=("-c", "import time; time.sleep(60)"), connect_timeout_s=0.5),
        server_settings(name="good", allowed_tools=("*",)),
    ]
    async with McpTools(servers, registry) as tools:
        assert set(tools.failed) == {"missing", "mute"}
        assert tools.failed["mute"] == "it did not answer in time"
        assert tools.failed["missing"].startswith("FileNotFoundError")
        assert "good__secret" in registry  # "*" allows every tool
        result = await registry.call("good__add", {"a": 1, "b": 1}, ToolContext())
        assert result.ok and result.text == "2"
    assert len(registry) == 0
