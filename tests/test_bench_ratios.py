"""The bench's ratios: what streaming gains over the naive pipeline, and how sessions talking at once
compare with one alone (the issue's target: their p95 at most three times its median)."""

from __future__ import annotations

import pytest

from voicebot.bench.run import AT_RELEASE, BenchOptions, first_audio_ratios, server_modes
from voicebot.settings import Settings


def _set(median: float, p95: float) -> dict[str, object]:
    return {"first_audio_ms": {"median": median, "p95": p95, "worst": p95, "n": 8}}


def test_each_ratio_divides_the_named_statistics() -> None:
    results = {
        "streaming": _set(100, 200),
        "naive": _set(800, 900),
        "long streaming": _set(50, 60),
        "long naive": _set(1000, 1100),
        "4 sessions at once": _set(150, 270),
        "streaming, reply at release": _set(135, 180),
    }

    ratios = first_audio_ratios(results, sessions=4)

    assert ratios == {
        "naive median / streaming median": pytest.approx(8.0),
        "long naive median / long streaming median": pytest.approx(20.0),
        "4 sessions at once p95 / streaming median": pytest.approx(2.7),
        "4 sessions at once p95 / streaming, reply at release median": pytest.approx(2.0),
    }


def test_a_set_not_measured_or_without_audio_gives_no_ratio() -> None:
    results = {"streaming": _set(100, 200), "4 sessions at once": {"first_audio_ms": {}}}

    assert first_audio_ratios(results, sessions=4) == {}
    assert first_audio_ratios({"streaming": _set(100, 200), "naive": _set(800, 900)}, sessions=1) == {
        "naive median / streaming median": pytest.approx(8.0)
    }


def test_the_reply_at_release_is_measured_only_for_the_sessions_ratio_and_with_the_early_reply_on() -> None:
    on, off = Settings(), Settings.model_validate({"session": {"early_reply_ms": 0}})

    assert AT_RELEASE in server_modes(on, BenchOptions(sessions=4))
    assert server_modes(on, BenchOptions(sessions=4))[AT_RELEASE]["VOICEBOT_SESSION__EARLY_REPLY_MS"] == "0"
    assert AT_RELEASE not in server_modes(on, BenchOptions(sessions=1))
    assert AT_RELEASE not in server_modes(off, BenchOptions(sessions=4))
    assert list(server_modes(off, BenchOptions(sessions=4, naive=False))) == ["streaming"]
