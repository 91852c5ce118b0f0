"""The timeline page of a recorded session: one self-contained HTML file (inline CSS and SVG).

Per turn it shows the waveform of the user's audio, the transcript and the reply (then, and now when
the page comes with a replay report), and a time axis with 0 at the moment the user released the
button: the utterance before it, each stage call (ASR, LLM, TTS per spoken segment, with a tick at
its first output) as a bar, the reply's playback, and a red line where a barge-in cut it.
"""

from __future__ import annotations

import html
from typing import Any

import numpy as np

from voicebot import audio
from voicebot.recording.reader import RecordedTurn, Recording

JSON = dict[str, Any]

WIDTH = 960
LABEL = 120
ROW = 22
WAVE_HEIGHT = 64
WAVE_BUCKETS = 480

_STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 24px auto; max-width: 1000px; color: #1d232a; }
h1 { font-size: 20px; } h2 { font-size: 16px; margin: 0 0 8px; }
.meta { color: #5b6570; } .meta td { padding: 0 12px 0 0; vertical-align: top; }
section.turn { border: 1px solid #d8dde3; border-radius: 8px; padding: 14px 16px; margin: 18px 0; }
.badge { font-size: 12px; padding: 1px 8px; border-radius: 10px; background: #e6ebf0; margin-left: 8px; }
.badge.interrupted { background: #fde2e1; color: #a4161a; } .badge.failed { background: #fde2e1; }
.badge.finished { background: #dff3e4; color: #1b5e20; }
dl { display: grid; grid-template-columns: 110px 1fr; gap: 2px 12px; margin: 10px 0; }
dt { color: #5b6570; } dd { margin: 0; } .now { color: #3949ab; } .differs { color: #a4161a; }
mark { background: #fff1a8; } del { color: #9aa3ad; }
svg text { font: 11px system-ui, sans-serif; fill: #5b6570; }
.bar-user { fill: #90a4ae; } .bar-asr { fill: #26a69a; } .bar-llm { fill: #5c6bc0; } .bar-tts { fill: #ffa726; }
.bar-play { fill: #66bb6a; } .bar-unplayed { fill: #c8e6c9; } .bar-open { opacity: .45; }
.bar-now { opacity: .55; } .first { stroke: #1d232a; stroke-width: 2; } .grid { stroke: #eceff1; }
.zero { stroke: #78909c; stroke-dasharray: 3 3; } .cut { stroke: #e53935; stroke-width: 2; }
.wave { stroke: #546e7a; stroke-width: 1; } .legend span { display: inline-block; margin-right: 14px; }
.legend i { display: inline-block; width: 12px; height: 10px; margin-right: 4px; vertical-align: middle; }
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


# --- waveform -------------------------------------------------------------------------------------


def waveform_svg(pcm: bytes, width: int = WIDTH, height: int = WAVE_HEIGHT) -> str:
    """The utterance as an SVG min/max envelope, scaled to its peak."""
    samples = audio.pcm_to_float(pcm[: len(pcm) - len(pcm) % 2]) if pcm else np.zeros(1, dtype=np.float32)
    buckets = max(1, min(WAVE_BUCKETS, len(samples)))
    edges = np.linspace(0, len(samples), buckets + 1).astype(int)
    peak = float(np.abs(samples).max()) or 1.0  # scaled to the loudest sample: quiet speech stays visible
    middle, half = height / 2, (height / 2 - 2) / peak
    step = width / buckets
    parts = []
    for index in range(buckets):
        chunk = samples[edges[index] : max(edges[index + 1], edges[index] + 1)]
        low, high = float(chunk.min()), float(chunk.max())
        x = index * step + step / 2
        parts.append(f"M{x:.1f} {middle - high * half:.1f}V{middle - low * half + 0.5:.1f}")
    seconds = len(samples) / 16_000
    return (
        f'<svg class="waveform" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img">'
        f"<title>user audio, {seconds:.1f} s</title>"
        f'<path class="wave" d="{"".join(parts)}"/></svg>'
    )


# --- time axis ------------------------------------------------------------------------------------


def _stage_bars(marks: list[JSON], open_end: float) -> list[tuple[str, float, float, float | None, str]]:
    """(stage, start, end, first-output time or None, note) per stage call, from started/ended marks."""
    starts: dict[tuple[str, int], float] = {}
    bars = []
    for mark in marks:
        key = (str(mark.get("stage")), int(mark.get("call", 1)))
        if mark.get("event") == "stage_started":
            starts[key] = float(mark["at_ms"])
        elif mark.get("event") == "stage_ended":
            end = float(mark["at_ms"])
            start = end - float(mark.get("duration_ms") or 0.0)
            starts.pop(key, None)
            first = mark.get("first_ms")
            bars.append(
                (key[0], start, end, None if first is None else start + float(first), str(mark.get("error") or ""))
            )
    for (stage, _), start in starts.items():  # started, never ended (cut by a barge-in or the end of the session)
        bars.append((stage, start, max(open_end, start), None, "open"))
    return bars


def _step(span: float) -> float:
    for step in (100, 200, 250, 500, 1000, 2000, 5000, 10_000, 30_000, 60_000):
        if span / step <= 12:
            return step
    return 120_000.0


def timeline_svg(turn: RecordedTurn, now_marks: list[JSON] | None = None) -> str:
    """The turn on a time axis (ms; 0 = the user released the button)."""
    t0 = turn.t
    events = [(round((float(e["t"]) - t0) * 1000, 1), e["event"]) for e in turn.events]
    audio_start = next((at for at, e in events if e.get("type") == "audio_start"), None)
    last_event = max([float(at) for at, _ in events] + [0.0])
    barge = None if turn.barge_in_t is None else (turn.barge_in_t - t0) * 1000
    reply = turn.reply_audio()
    reply_ms = audio.duration_ms(len(reply[0]), reply[1]) if reply else 0.0
    open_end = barge if barge is not None else last_event
    rows: list[tuple[str, list[str]]] = []
    then_bars = _stage_bars(turn.marks, open_end)
    now_bars = _stage_bars(now_marks, 0.0) if now_marks else []
    ends = [last_event, barge or 0.0, *(b[2] for b in then_bars), *(b[2] for b in now_bars)]
    if audio_start is not None:
        ends.append(audio_start + reply_ms)
    lo, hi = -turn.audio_ms, max(ends) + 100
    scale = (WIDTH - LABEL - 10) / max(hi - lo, 1.0)

    def x(ms: float) -> float:
        return LABEL + (ms - lo) * scale

    def rect(start: float, end: float, css: str, title: str) -> str:
        return (
            f'<rect class="{css}" x="{x(start):.1f}" y="{{y}}" width="{max(1.0, (end - start) * scale):.1f}" '
            f'height="{ROW - 8}" rx="2"><title>{_e(title)}</title></rect>'
        )

    def tick(at: float, title: str) -> str:
        return (
            f'<line class="first" x1="{x(at):.1f}" x2="{x(at):.1f}" y1="{{y}}" y2="{{y2}}">'
            f"<title>{_e(title)}</title></line>"
        )

    rows.append(("you", [rect(lo, 0.0, "bar-user", f"you spoke: {turn.audio_ms / 1000:.2f} s")]))
    for label, bars, extra in (("", then_bars, ""), (" now", now_bars, " bar-now")):
        for stage in ("asr", "llm", "tts"):
            shapes = []
            for name, start, end, first, note in bars:
                if name != stage:
                    continue
                css = f"bar-{stage}{extra}" + (" bar-open" if note else "")
                detail = f"{stage}{label}: {start:.0f}–{end:.0f} ms ({end - start:.0f} ms)" + (
                    f", {note}" if note else ""
                )
                shapes.append(rect(start, end, css, detail))
                if first is not None:
                    shapes.append(tick(first, f"first {'token' if stage == 'llm' else 'audio'} at {first:.0f} ms"))
            if shapes or not label:
                rows.append((stage + label, shapes))
    if audio_start is not None and reply_ms:
        played = reply_ms
        if turn.barge_in_t is not None:
            played = float(turn.played_ms) if turn.played_ms is not None else max(0.0, (barge or 0.0) - audio_start)
            played = min(played, reply_ms)
        shapes = [rect(audio_start, audio_start + played, "bar-play", f"reply audio played: {played:.0f} ms")]
        if played < reply_ms:
            shapes.append(
                rect(
                    audio_start + played,
                    audio_start + reply_ms,
                    "bar-unplayed",
                    f"not heard: {reply_ms - played:.0f} ms",
                )
            )
        rows.append(("playback", shapes))
    height = 24 + ROW * len(rows)
    out = [f'<svg class="timeline" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" role="img">']
    step = _step(hi - lo)
    mark = (lo // step) * step
    while mark <= hi:
        if mark >= lo:
            out.append(f'<line class="grid" x1="{x(mark):.1f}" x2="{x(mark):.1f}" y1="0" y2="{height - 18}"/>')
            out.append(f'<text x="{x(mark):.1f}" y="{height - 4}" text-anchor="middle">{mark / 1000:g} s</text>')
        mark += step
    out.append(
        f'<line class="zero" x1="{x(0):.1f}" x2="{x(0):.1f}" y1="0" y2="{height - 18}"><title>released</title></line>'
    )
    for index, (label, shapes) in enumerate(rows):
        y = 4 + index * ROW
        out.append(f'<text x="4" y="{y + ROW - 10}">{_e(label)}</text>')
        out.extend(shape.replace("{y}", str(y)).replace("{y2}", str(y + ROW - 8)) for shape in shapes)
    if barge is not None:
        played_text = "" if turn.played_ms is None else f", page played {turn.played_ms} ms"
        out.append(
            f'<line class="cut" x1="{x(barge):.1f}" x2="{x(barge):.1f}" y1="0" y2="{height - 18}">'
            f"<title>barge-in at {barge:.0f} ms{_e(played_text)}</title></line>"
            f'<text x="{x(barge) + 4:.1f}" y="12" style="fill:#e53935">barge-in</text>'
        )
    out.append("</svg>")
    return "".join(out)


# --- the page -------------------------------------------------------------------------------------


def _reply_html(reply: str | None, heard: str | None, interrupted: bool) -> str:
    if not reply:
        return "–"
    if not interrupted:
        return _e(reply)
    if heard and reply.startswith(heard):
        return f"<mark>{_e(heard)}</mark><del>{_e(reply[len(heard) :])}</del>"
    return f"<del>{_e(reply)}</del> (heard: <mark>{_e(heard or 'nothing')}</mark>)"


def _providers(providers: JSON) -> str:
    return ", ".join(f"{stage} {p.get('provider')}:{p.get('model')}" for stage, p in providers.items())


def _now_for(report: JSON | None, number: int) -> JSON | None:
    for turn in (report or {}).get("turns", []):
        if turn.get("turn") == number:
            now: JSON | None = turn.get("now")
            return now
    return None


def _differs(then: str | None, now: str | None) -> str:
    same = " ".join((then or "").split()).casefold() == " ".join((now or "").split()).casefold()
    return "now" if same else "now differs"


def render_timeline(recording: Recording, report: JSON | None = None) -> str:
    """The whole page for ``recording``; with a replay ``report``, each turn also shows what it gives now."""
    meta = recording.meta
    client = meta.get("client", {})
    providers = meta.get("providers", {})
    now_providers = (report or {}).get("providers", {}).get("now")
    rows = [
        ("session", recording.session_id),
        ("started", meta.get("started_at", "?")),
        ("client", f"{client.get('client', '?')} · {client.get('user_agent', '?')}"),
        ("providers", _providers(providers)),
    ]
    if now_providers:
        rows.append(
            ("replayed with", ", ".join(f"{k} {v.get('provider')}:{v.get('model')}" for k, v in now_providers.items()))
        )
        rows.append(("replay mode", report.get("mode", "?") if report else "?"))
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>voicebot session {_e(recording.session_id)}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>Session {_e(recording.session_id)}</h1>",
        '<table class="meta">' + "".join(f"<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>" for k, v in rows) + "</table>",
        '<p class="legend">'
        + "".join(
            f'<span><i class="{css}" style="background:{color}"></i>{_e(name)}</span>'
            for name, css, color in (
                ("you speaking", "bar-user", "#90a4ae"),
                ("ASR", "bar-asr", "#26a69a"),
                ("LLM", "bar-llm", "#5c6bc0"),
                ("TTS (per segment)", "bar-tts", "#ffa726"),
                ("reply played", "bar-play", "#66bb6a"),
                ("reply not heard", "bar-unplayed", "#c8e6c9"),
                ("barge-in", "cut", "#e53935"),
            )
        )
        + " Ticks: first token / first audio. 0 s: the button was released.</p>",
    ]
    if recording.truncated:
        parts.append(
            "<p><strong>The recording's last line was cut off (the server stopped while writing it).</strong></p>"
        )
    if not recording.turns:
        parts.append("<p>No turns were recorded.</p>")
    for turn in recording.turns:
        now = _now_for(report, turn.turn)
        interrupted = turn.outcome == "interrupted"
        items = [
            (
                "transcript",
                _e(turn.transcript or (f"(nothing heard: {turn.nothing_heard})" if turn.nothing_heard else "–")),
            )
        ]
        if now is not None and "transcript" in now:
            css = _differs(turn.transcript, now.get("transcript"))
            items.append((css, f'<span class="{css}">{_e(now.get("transcript") or "–")}</span>'))
        items.append(("reply", _reply_html(turn.reply, turn.heard, interrupted)))
        if now is not None and "reply" in now:
            css = _differs(turn.reply, now.get("reply"))
            items.append((css, f'<span class="{css}">{_e(now.get("reply") or "–")}</span>'))
        if interrupted:
            played = "not reported" if turn.played_ms is None else f"{turn.played_ms} ms"
            items.append(("barge-in", f"page played {_e(played)}; kept in the conversation: “{_e(turn.heard or '')}”"))
        if turn.error:
            items.append(("error", _e(turn.error)))
        if turn.timings:
            items.append(("timings", _e(", ".join(f"{k} {v:.0f}" for k, v in turn.timings.items()))))
        now_marks = now.get("marks") if now else None
        parts.append(
            f'<section class="turn" id="turn-{turn.turn}"><h2>Turn {turn.turn}'
            f'<span class="badge {_e(turn.outcome)}">{_e(turn.outcome)}</span></h2>'
            + waveform_svg(turn.user_pcm())
            + "<dl>"
            + "".join(f"<dt>{_e(k)}</dt><dd>{v}</dd>" for k, v in items)
            + "</dl>"
            + timeline_svg(turn, now_marks if isinstance(now_marks, list) else None)
            + "</section>"
        )
    parts.append("</body></html>")
    return "\n".join(parts)
