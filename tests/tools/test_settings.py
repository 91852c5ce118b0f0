"""Tools settings validate with messages that say what is wrong."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from voicebot.tools.builtins import BUILTIN_NAMES
from voicebot.tools.settings import McpServerSettings, ToolsSettings


def test_defaults_enable_every_builtin_and_intents() -> None:
    settings = ToolsSettings()
    assert settings.enabled == BUILTIN_NAMES
    assert settings.intents is True
    assert settings.mcp_servers == ()


def test_unknown_tool_names_are_refused() -> None:
    with pytest.raises(ValidationError, match="unknown tools teleport; choose from get_time"):
        ToolsSettings(enabled=("get_time", "teleport"))
    assert ToolsSettings(enabled=()).enabled == ()


def test_limits_are_checked() -> None:
    with pytest.raises(ValidationError, match="max_timers"):
        ToolsSettings(max_timers=0)
    with pytest.raises(ValidationError, match="timeout_s"):
        ToolsSettings(timeout_s=0)


def test_mcp_server_needs_exactly_one_transport() -> None:
    with pytest.raises(ValidationError, match="set exactly one of 'command'"):
        McpServerSettings(name="files")
    with pytest.raises(ValidationError, match="set exactly one of 'command'"):
        McpServerSettings(name="files", command="python", url="http://127.0.0.1:9000/mcp")
    with pytest.raises(ValidationError, match="letters, digits"):
        McpServerSettings(name="my.server", command="python")


def test_mcp_allowlist_and_timeouts() -> None:
    server = McpServerSettings(
        name="home", command="python", allowed_tools=("lights",), timeout_s=3, tool_timeouts_s={"lights": 1}
    )
    assert server.allows("lights") and not server.allows("door")
    assert server.timeout_for("lights") == 1 and server.timeout_for("other") == 3
    assert McpServerSettings(name="all", url="http://x/mcp", allowed_tools=("*",)).allows("anything")
    assert not McpServerSettings(name="none", url="http://x/mcp").allows("anything")


def test_loads_from_yaml_like_data_and_refuses_duplicates() -> None:
    data = {
        "enabled": ["get_time", "calculator"],
        "mcp_servers": [{"name": "a", "command": "python", "args": ["-m", "server"], "allowed_tools": ["*"]}],
    }
    settings = ToolsSettings.model_validate(data)
    assert settings.mcp_servers[0].args == ("-m", "server")
    with pytest.raises(ValidationError, match="unique: a"):
        ToolsSettings.model_validate({"mcp_servers": [data["mcp_servers"][0], data["mcp_servers"][0]]})  # type: ignore[index]
