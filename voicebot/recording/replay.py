"""``voicebot replay``: run a recorded session again with the providers configured now.

Two modes:

- **pipeline** (default): each recorded turn's user audio goes through the turn pipeline (ASR → LLM →
  TTS) with the conversation history that turn had, and replay prints, turn by turn, the transcript,
  the reply and the stage timings then and now.
- **messages** (``--messages``): a fresh session on an in-process server receives the recorded client
  messages (actions, audio frames, barge-ins with their ``played_ms``) with their recorded timing,
  and replay compares what the server sent then and now. Timing is kept relative to the server event
  each message followed (for example "start_listening 180 ms after audio_start of turn 1"), so a
  barge-in lands at the same point of the reply even when the stages run faster or slower than then.

``--html OUT.html`` also writes the timeline page (see :mod:`voicebot.recording.timeline`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from voicebot import audio
from voicebot.client import VoiceClient
from voicebot.providers.base import Stages
from voicebot.recording.reader import RecordedTurn, Recording, RecordingError, find_recording, load_recording
from voicebot.session.protocol import INPUT_SAMPLE_RATE, ProtocolError, SetTimeZone, parse_action
from voicebot.settings import Settings
from voicebot.tools.base import ToolContext
from voicebot.tools.timers import TimerBoard
from voicebot.turn.engine import NO_CONTEXT, TurnContext
from voicebot.turn.outcome import TurnOutcome
from voicebot.turn.pipeline import PipelineEngine
from voicebot.turn.tools import RecordedResults, Toolbox

JSON = dict[str, Any]

#: Timings shown first, in this order (others follow alphabetically).
TIMING_ORDER = ("asr_ms", "llm_first_token_ms", "llm_ms", "tts_first_audio_ms", "tts_ms")
#: Server events a client message can be timed from (``response_text`` pieces vary in number).
ANCHOR_TYPES = frozenset(
    {"status", "transcript", "response_done", "audio_start", "audio_done", "response_interrupted", "error"}
)


# --- pipeline mode --------------------------------------------------------------------------------


def _then(turn: RecordedTurn) -> JSON:
    return {
        "outcome": turn.outcome,
        "transcript": turn.transcript,
        "nothing_heard": turn.nothing_heard,
        "reply": turn.reply,
        "heard": turn.heard,
        "played_ms": turn.played_ms,
        "error": turn.error,
        "timings": {k: round(v) for k, v in turn.timings.items()},
        "tools": [{"name": tool["name"], "ok": tool["ok"], "text": tool["text"]} for tool in turn.tools],
    }


def turn_context(recording: Recording, turn: RecordedTurn, recorded_tools: bool) -> TurnContext:
    """The tools' view of the turn as it was then: the page's time zone and the turn's own moment (so
    "what time is it?" and the clock in the system prompt are what they were), with the recorded tool
    results when asked (``--recorded-tools``), or the tools run again."""
    then = datetime.fromisoformat(str(recording.meta["started_at"])) + timedelta(seconds=turn.t)
    zone = None
    for line in recording.lines:
        if line["kind"] == "client" and line["t"] <= turn.t:
            with contextlib.suppress(ProtocolError):
                action = parse_action(str(line.get("text", "")))
                if isinstance(action, SetTimeZone):
                    zone = action.time_zone
    tools = ToolContext(time_zone=zone, clock=lambda: then, timers=TimerBoard())
    return TurnContext(tools=tools, recorded_tools=RecordedResults(turn.tools) if recorded_tools else None)


async def run_turn_again(
    stages: Stages, settings: Settings, turn: RecordedTurn, context: TurnContext = NO_CONTEXT
) -> tuple[JSON, list[JSON]]:
    """Run one recorded turn's audio through the pipeline now; return what it produced and its stage marks."""
    now = TurnOutcome()
    started = time.perf_counter()
    toolbox = Toolbox.from_settings(settings.tools) if settings.tools.enabled else None
    utterance = PipelineEngine(stages, settings.session, toolbox).listen(
        turn.history, lambda event: now.add(event, (time.perf_counter() - started) * 1000), context
    )
    utterance.feed(turn.user_pcm())
    started = time.perf_counter()  # the turn starts when the user "releases the button"
    try:
        await utterance.respond(started)
    finally:
        await utterance.aclose()
    result: JSON = {
        "transcript": now.transcript,
        "nothing_heard": now.nothing_heard,
        "reply": now.reply,
        "error": now.error,
        "timings": {k: round(v) for k, v in now.timings.items()},
        "tools": [{"name": tool["name"], "ok": tool["ok"], "text": tool["text"]} for tool in now.tools],
    }
    return result, now.marks


def _same(then: str | None, now: str | None) -> bool | None:
    if then is None and now is None:
        return True
    if then is None or now is None:
        return None if then is None else False
    return " ".join(then.split()).casefold() == " ".join(now.split()).casefold()


async def replay_pipeline(
    recording: Recording, settings: Settings, stages: Stages, recorded_tools: bool = False
) -> JSON:
    """Pipeline mode: every recorded turn's audio through the current providers."""
    turns: list[JSON] = []
    for turn in recording.turns:
        context = turn_context(recording, turn, recorded_tools)
        now, marks = await run_turn_again(stages, settings, turn, context)
        then = _then(turn)
        turns.append(
            {
                "turn": turn.turn,
                "audio_ms": round(turn.audio_ms),
                "then": then,
                "now": {**now, "marks": marks},
                "transcript_matches": _same(then["transcript"], now["transcript"]),
                "reply_matches": _same(then["reply"], now["reply"]),
            }
        )
    return {
        "mode": "pipeline",
        **_header(recording, stages),
        "turns": turns,
    }


def _header(recording: Recording, stages: Stages) -> JSON:
    return {
        "session_id": recording.session_id,
        "folder": str(recording.folder),
        "started_at": recording.meta.get("started_at"),
        "truncated": recording.truncated,
        "providers": {"then": recording.meta.get("providers", {}), "now": stages.describe()},
    }


# --- messages mode --------------------------------------------------------------------------------


def _anchor_base(event: JSON) -> tuple[str, int, str] | None:
    kind = event.get("type")
    if kind not in ANCHOR_TYPES:
        return None
    return (str(kind), int(event.get("turn") or 0), str(event.get("state") or event.get("code") or ""))


class _AnchorCounter:
    """Names server events so that the n-th ``status listening`` of turn 1 then and now match."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, int, str], int] = {}

    def key(self, event: JSON) -> tuple[str, int, str, int] | None:
        base = _anchor_base(event)
        if base is None:
            return None
        number = self.counts.get(base, 0)
        self.counts[base] = number + 1
        return (*base, number)


@dataclass(frozen=True)
class ClientStep:
    """One client frame to send: ``delay_s`` after the server event ``anchor`` (``None``: the connection)."""

    anchor: tuple[str, int, str, int] | None
    delay_s: float
    data: str | bytes
    t: float


def client_steps(recording: Recording) -> list[ClientStep]:
    """The recorded client frames in arrival order, each timed from the server event it followed."""
    items: list[tuple[float, int, str | bytes]] = []
    order = 0
    for line in recording.lines:
        if line["kind"] == "client" and isinstance(line.get("text"), str):
            items.append((float(line["t"]), order, line["text"]))
            order += 1
    for turn in recording.turns:
        pcm = turn.user_pcm()
        offset = 0
        for at, size in turn.frames:
            items.append((at, order, pcm[offset : offset + size]))
            offset += size
            order += 1
    items.sort(key=lambda item: (item[0], item[1]))
    anchors: list[tuple[float, tuple[str, int, str, int]]] = []
    counter = _AnchorCounter()
    for line in recording.server_events():
        key = counter.key(line["event"])
        if key is not None:
            anchors.append((float(line["t"]), key))
    steps: list[ClientStep] = []
    index = -1
    for at, _, data in items:
        # A frame follows only what the server said before its sound began: in hands-free mode the
        # first frame of an utterance (the audio kept from before the voice was heard) is recorded
        # just after the "listening" that the sound in it caused, and waiting for that event before
        # sending the frame would wait for ever.
        began = at - audio.duration_ms(len(data), INPUT_SAMPLE_RATE) / 1000 if isinstance(data, bytes) else at
        while index + 1 < len(anchors) and anchors[index + 1][0] <= began:
            index += 1
        anchor_t, anchor = anchors[index] if index >= 0 else (0.0, None)
        steps.append(ClientStep(anchor, max(0.0, at - anchor_t), data, at))
    return steps


class _Seen:
    """Server events received now, by anchor key, with their arrival time."""

    def __init__(self) -> None:
        self.at: dict[tuple[str, int, str, int], float] = {}
        self.counter = _AnchorCounter()
        self.changed = asyncio.Event()

    def add(self, event: JSON, at: float) -> None:
        key = self.counter.key(event)
        if key is not None:
            self.at[key] = at
            self.changed.set()

    async def wait(self, key: tuple[str, int, str, int], timeout: float) -> float | None:
        deadline = time.monotonic() + timeout
        while key not in self.at:
            self.changed.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            try:
                await asyncio.wait_for(self.changed.wait(), remaining)
            except TimeoutError:
                return None
        return self.at[key]


def summarize_events(events: Iterable[JSON]) -> dict[int, JSON]:
    """Per turn, what the page was told: states, transcript, reply, what was heard, errors."""
    turns: dict[int, JSON] = {}
    for event in events:
        number = event.get("turn")
        if not isinstance(number, int) or number < 1:
            continue
        turn = turns.setdefault(
            number, {"states": [], "transcript": None, "reply": None, "heard": None, "errors": [], "audio_ms": None}
        )
        kind = event.get("type")
        if kind == "status":
            turn["states"].append(event.get("state"))
        elif kind == "transcript":
            turn["transcript"] = event.get("text")
        elif kind == "response_done":
            turn["reply"] = event.get("text")
        elif kind == "response_interrupted":
            turn["heard"] = event.get("heard")
        elif kind == "audio_done":
            turn["audio_ms"] = event.get("duration_ms")
        elif kind == "error":
            turn["errors"].append(event.get("code"))
    return turns


#: How long messages mode waits for a server event before it gives up on it: this long, plus
#: :data:`PATIENCE_FACTOR` times what the event took then after the frame sent before it (replayed
#: with other models or on a busier machine, the server may be slower than it was).
PATIENCE_S = 10.0
PATIENCE_FACTOR = 3.0


def _patience(then_s: float, cap_s: float) -> float:
    """How long to wait now for an event that came ``then_s`` after the frame before it, at most ``cap_s``."""
    return min(cap_s, PATIENCE_S + PATIENCE_FACTOR * max(0.0, then_s))


async def replay_messages(
    recording: Recording, settings: Settings, stages: Stages, anchor_timeout_s: float = 60.0
) -> JSON:
    """Messages mode: re-send the recorded client frames to a fresh session and compare what comes back."""
    from voicebot.server.localserver import local_server  # the server stack only when this mode runs

    steps = client_steps(recording)
    server_events = recording.server_events()
    counter = _AnchorCounter()
    last_anchor, last_anchor_t = None, 0.0
    for line in server_events:
        key = counter.key(line["event"])
        if key is not None:
            last_anchor, last_anchor_t = key, float(line["t"])
    # Not recorded again.
    quiet = settings.model_copy(update={"recording": settings.recording.model_copy(update={"enabled": False})})
    received: list[JSON] = []
    divergences: list[str] = []
    async with local_server(quiet, stages) as server:
        client = await VoiceClient.connect(server.ws_url)
        seen = _Seen()
        started = time.monotonic()
        seen.add({"type": "status", "state": "idle", "turn": 0}, started)

        async def read() -> None:
            while True:
                frame = await client.next_event(timeout=3600)
                if isinstance(frame, dict):
                    received.append(frame)
                    seen.add(frame, time.monotonic())

        reader = asyncio.create_task(read())
        # An anchor that never came is waited for once: the frames recorded after it are then timed
        # from when the wait gave up (a hands-free session that heard a turn differently follows
        # hundreds of audio frames with the event it is missing now).
        given_up: dict[tuple[str, int, str, int], float] = {}
        sent_t = 0.0  # when the frame sent last was sent then (the recording's clock)
        try:
            for step in steps:
                base = started
                if step.anchor is not None:
                    at = given_up.get(step.anchor)
                    if at is None:
                        then_s = step.t - step.delay_s - sent_t
                        at = await seen.wait(step.anchor, _patience(then_s, anchor_timeout_s))
                    if at is None:
                        divergences.append(f"never saw {_describe(step.anchor)}; sent the next frame anyway")
                        at = given_up[step.anchor] = time.monotonic()
                    base = at
                delay = base + step.delay_s - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                await client.send_raw(step.data)
                sent_t = step.t
            patience = _patience(last_anchor_t - sent_t, anchor_timeout_s)
            if last_anchor is not None and await seen.wait(last_anchor, patience) is None:
                divergences.append(f"the session never reached {_describe(last_anchor)} as it did then")
        finally:
            reader.cancel()
            await client.close()
            for _ in range(200):  # let the session see the close and end
                if not server.runtime.sessions:
                    break
                await asyncio.sleep(0.01)
    then = summarize_events(line["event"] for line in server_events)
    now = summarize_events(received)
    turns = []
    for number in sorted(set(then) | set(now)):
        a, b = then.get(number), now.get(number)
        matches = {
            key: (a is not None and b is not None and _same_value(a[key], b[key]))
            for key in ("states", "transcript", "reply", "heard", "errors")
        }
        turns.append({"turn": number, "then": a, "now": b, "matches": matches})
    return {
        "mode": "messages",
        **_header(recording, stages),
        "client_frames": len(steps),
        "divergences": divergences,
        "turns": turns,
    }


def _same_value(a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return bool(_same(a, b))
    return bool(a == b)


def _describe(key: tuple[str, int, str, int]) -> str:
    kind, turn, detail, number = key
    what = f"{kind} {detail}".strip()
    return f"{what} of turn {turn}" + (f" (#{number + 1})" if number else "")


# --- output ---------------------------------------------------------------------------------------


def _text(value: str | None, empty: str = "–") -> str:
    return " ".join(value.split()) if value else empty


def _providers(providers: JSON) -> str:
    return ", ".join(f"{stage} {p.get('provider')}:{p.get('model')}" for stage, p in providers.items())


def _timings_table(then: dict[str, float], now: dict[str, float]) -> list[str]:
    keys = [k for k in TIMING_ORDER if k in then or k in now]
    keys += sorted(k for k in {*then, *now} if k not in TIMING_ORDER)
    if not keys:
        return ["  timings     –"]
    names = [k.removesuffix("_ms") for k in keys]
    widths = [max(len(n), 6) for n in names]
    row = "  ".join(n.rjust(w) for n, w in zip(names, widths, strict=True))
    lines = [f"  timings ms        {row}"]
    for label, values in (("then", then), ("now", now)):
        cells = "  ".join(
            (f"{values[k]:.0f}" if k in values else "–").rjust(w) for k, w in zip(keys, widths, strict=True)
        )
        lines.append(f"              {label:4}  {cells}")
    return lines


def _mark(match: bool | None) -> str:
    return {True: "(same)", False: "(differs)", None: ""}[match]


def format_report(report: JSON) -> str:
    """The replay report for people."""
    lines = [
        f"voicebot replay: session {report['session_id']} ({report['mode']} mode)",
        f"  recording       {report['folder']}",
        f"  providers then  {_providers(report['providers']['then'])}",
        f"  providers now   {_providers(report['providers']['now'])}",
    ]
    if report.get("truncated"):
        lines.append("  note: the recording's last line was cut off (the server stopped mid-write)")
    if not report["turns"]:
        lines.append("  (no turns were recorded)")
    for turn in report["turns"]:
        lines.append("")
        if report["mode"] == "pipeline":
            lines.extend(_pipeline_turn(turn))
        else:
            lines.extend(_messages_turn(turn))
    for divergence in report.get("divergences", []):
        lines.append(f"  ! {divergence}")
    return "\n".join(lines)


def _nothing(why: str | None) -> str:
    return f"(nothing heard: {why})" if why else "–"


def _pipeline_turn(turn: JSON) -> list[str]:
    then, now = turn["then"], turn["now"]
    outcome = then["outcome"]
    if outcome == "interrupted":
        played = "" if then["played_ms"] is None else f", {then['played_ms']} ms played"
        outcome += f" (heard {_text(then['heard'], 'nothing')!r}{played})"
    lines = [f"turn {turn['turn']}  ·  {turn['audio_ms'] / 1000:.1f} s of speech  ·  then: {outcome}"]
    for label, key, match in (
        ("transcript", "transcript", turn["transcript_matches"]),
        ("reply", "reply", turn["reply_matches"]),
    ):
        empty_then = _nothing(then["nothing_heard"]) if key == "transcript" else "–"
        empty_now = _nothing(now["nothing_heard"]) if key == "transcript" else "–"
        lines.append(f"  {label:10}  then  {_text(then[key], empty_then)}")
        lines.append(f"  {'':10}  now   {_text(now[key], empty_now)}  {_mark(match)}".rstrip())
    if then["error"] or now["error"]:
        lines.append(f"  error       then  {then['error'] or '–'}   now  {now['error'] or '–'}")
    lines.extend(_timings_table(then["timings"], now["timings"]))
    return lines


def _messages_turn(turn: JSON) -> list[str]:
    then, now, matches = turn["then"] or {}, turn["now"] or {}, turn["matches"]
    lines = [f"turn {turn['turn']}"]
    lines.append(f"  {'states':10}  then  {' → '.join(then.get('states', [])) or '–'}")
    lines.append(f"  {'':10}  now   {' → '.join(now.get('states', [])) or '–'}  {_mark(matches['states'])}")
    for key in ("transcript", "reply", "heard"):
        if then.get(key) is None and now.get(key) is None:
            continue
        label = key if key != "heard" else "kept"
        lines.append(f"  {label:10}  then  {_text(then.get(key))}")
        lines.append(f"  {'':10}  now   {_text(now.get(key))}  {_mark(matches[key])}")
    if then.get("errors") or now.get("errors"):
        lines.append(f"  errors      then  {then.get('errors')}   now  {now.get('errors')}")
    return lines


# --- the command ----------------------------------------------------------------------------------


def run_replay(
    settings: Settings,
    session: str,
    *,
    json_output: bool = False,
    messages: bool = False,
    recorded_tools: bool = False,
    html: Path | None = None,
    stages: Stages | None = None,
    out: TextIO | None = None,
) -> int:
    """``voicebot replay``: 0 when it ran, 1 (with the reason on stderr) when the recording is missing
    or damaged. ``stages``: ready providers (tests); by default the configured ones are loaded."""
    out = out or sys.stdout
    try:
        recording = load_recording(find_recording(session, settings.recording.directory))
        if messages:
            client_steps(recording)  # read every turn's audio now: a damaged file fails before models load
    except RecordingError as exc:
        print(f"voicebot replay: {exc}", file=sys.stderr)
        return 1
    if stages is None:
        from voicebot.providers.registry import load_stages

        stages = load_stages(settings)
    if messages:
        report = asyncio.run(replay_messages(recording, settings, stages))
    else:
        report = asyncio.run(replay_pipeline(recording, settings, stages, recorded_tools))
    if html is not None:
        from voicebot.recording.timeline import render_timeline

        html.write_text(render_timeline(recording, report), encoding="utf-8")
        report["html"] = str(html)
    if json_output:
        out.write(json.dumps(report, ensure_ascii=False, indent=2) + "\n")
    else:
        out.write(format_report(report) + "\n")
        if html is not None:
            out.write(f"\ntimeline written to {html}\n")
    return 0
