"""The benchmark's numbers: medians and percentiles, the word error rate, and the printed table."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from typing import Any

from voicebot.bench.talk import TurnSample
from voicebot.bench.wer import word_errors

#: The server's stage timings shown per mode, in this order.
STAGES = ("asr_ms", "llm_first_token_ms", "first_segment_ms", "tts_first_audio_ms", "first_audio_ms")


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0–100), by linear interpolation between the nearest ranks."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    position = (len(ordered) - 1) * q / 100
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def spread(values: Iterable[float]) -> dict[str, float]:
    data = [value for value in values if value is not None]
    if not data:
        return {}
    return {
        "median": statistics.median(data),
        "p95": percentile(data, 95),
        "worst": max(data),
        "n": len(data),
    }


def summarize(samples: Sequence[TurnSample]) -> dict[str, Any]:
    """First audio at the client, each stage at the server, and the word error rate."""
    first_audio = [s.first_audio_ms for s in samples if s.first_audio_ms is not None]
    stages = {stage: spread(s.timings[stage] for s in samples if stage in s.timings) for stage in STAGES}
    pairs = [(s.reference, s.transcript or "") for s in samples if s.reference is not None]
    errors = word_errors(pairs) if pairs else None
    return {
        "turns": len(samples),
        "no_audio": sum(s.first_audio_ms is None for s in samples),
        "errors": sorted({code for s in samples for code in s.errors}),
        "first_audio_ms": spread(first_audio),
        "stages_ms": {stage: values for stage, values in stages.items() if values},
        "wer": None if errors is None else round(errors.wer, 4),
        "wer_words": None if errors is None else errors.words,
        "partials_per_turn": statistics.mean(s.partials for s in samples) if samples else 0.0,
        "turns_with_gaps": sum(bool(s.gaps_ms) for s in samples),
        "longest_gap_ms": max((gap for s in samples for gap in s.gaps_ms), default=0.0),
    }


def _ms(values: dict[str, float], key: str) -> str:
    return f"{values[key]:6.0f}" if key in values else "     –"


def table(results: dict[str, dict[str, Any]]) -> str:
    """One block per measured set (``name`` → summary)."""
    lines = []
    for name, summary in results.items():
        first = summary["first_audio_ms"]
        lines.append(f"{name}  ({summary['turns']} turns)")
        lines.append(
            "  stop_listening → first reply audio (client):  "
            f"median {_ms(first, 'median')} ms   p95 {_ms(first, 'p95')} ms   worst {_ms(first, 'worst')} ms"
        )
        for stage, values in summary["stages_ms"].items():
            lines.append(
                f"  {stage.removesuffix('_ms'):>18} (server):  median {_ms(values, 'median')} ms   "
                f"p95 {_ms(values, 'p95')} ms"
            )
        if summary["wer"] is not None:
            lines.append(f"  word error rate: {summary['wer']:.3f} over {summary['wer_words']} words")
        if summary.get("partials_per_turn"):
            lines.append(f"  partial transcripts per turn: {summary['partials_per_turn']:.1f}")
        if summary.get("turns_with_gaps"):
            lines.append(
                f"  turns whose audio broke off: {summary['turns_with_gaps']}; "
                f"longest break {summary['longest_gap_ms']:.0f} ms"
            )
        if summary["no_audio"] or summary["errors"]:
            lines.append(f"  turns without audio: {summary['no_audio']}; error codes: {summary['errors']}")
        for extra in ("rss_mb", "peak_rss_mb", "health_p99_ms"):
            if summary.get(extra) is not None:
                lines.append(f"  {extra}: {summary[extra]:.0f}")
        lines.append("")
    return "\n".join(lines)
