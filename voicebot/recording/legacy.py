"""Format 1 recordings (written before turn events existed) read as format 2.

A format-1 turn's outcome lived only in ``log`` lines named ``transcript``, ``nothing_heard``,
``reply``, ``barge_in``, ``turn_failed``, ``turn_finished``, ``stage_started`` and ``stage_ended``.
Each becomes the ``turn`` line its typed event would have written, so the reader has one path.
"""

from __future__ import annotations

from typing import Any

#: Fields of a format-1 log line that are not the event's own.
_CONTEXT = {"t", "kind", "level", "event", "turn", "state", "session_id"}


def _event(line: dict[str, Any]) -> dict[str, Any] | None:
    name = line.get("event")
    if name == "transcript":
        return {"type": "transcript", "text": line.get("text", "")}
    if name == "nothing_heard":
        return {"type": "nothing_heard", "why": line.get("why") or "nothing"}
    if name == "reply":
        return {"type": "reply", "text": line.get("text", "")}
    if name == "barge_in":
        return {"type": "barge_in", "heard": line.get("heard") or "", "played_ms": line.get("played_ms")}
    if name == "turn_failed":
        return {"type": "turn_failed", "code": line.get("code") or "failed", "message": line.get("error", "")}
    if name == "turn_finished":
        timings = {k: float(v) for k, v in line.items() if k not in _CONTEXT and isinstance(v, int | float)}
        return {"type": "turn_finished", "timings": timings}
    if name in ("stage_started", "stage_ended"):
        fields = {k: v for k, v in line.items() if k not in _CONTEXT}
        return {"type": name, **fields}
    return None


def turn_lines(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``lines`` with every format-1 turn log line replaced by the ``turn`` line it stands for."""
    converted: list[dict[str, Any]] = []
    for line in lines:
        event = _event(line) if line.get("kind") == "log" and isinstance(line.get("turn"), int) else None
        if event is None:
            converted.append(line)
            continue
        turn_line: dict[str, Any] = {"t": line["t"], "kind": "turn", "turn": line["turn"], "event": event}
        if event["type"] in ("stage_started", "stage_ended") and isinstance(event.get("at_ms"), int | float):
            turn_line["at_ms"] = event["at_ms"]
        converted.append(turn_line)
    return converted
