"""Things the assistant can do besides talking: a registry of tools (built-in and from MCP servers),
the intent layer that answers known sentences without the LLM, and helpers for native tool calling.

See docs/tools.md. Nothing here knows about sessions or turns: the turn hands a ``ToolContext`` in and
gets ``ToolResult``s back.
"""

from voicebot.tools.base import FunctionTool, Tool, ToolContext, ToolError, ToolRegistry, ToolResult
from voicebot.tools.builtins import BUILTIN_NAMES, add_builtin_tools, timer_done_announcement
from voicebot.tools.timers import ManualClock, RealClock, Timer, TimerBoard

__all__ = [
    "BUILTIN_NAMES",
    "FunctionTool",
    "ManualClock",
    "RealClock",
    "Timer",
    "TimerBoard",
    "Tool",
    "ToolContext",
    "ToolError",
    "ToolRegistry",
    "ToolResult",
    "add_builtin_tools",
    "timer_done_announcement",
]
