"""``voicebot bench``: the command. It starts the servers it measures as separate processes, makes the
utterances, lets sessions talk, and prints the table (or JSON).

Sets measured, each against the same utterances in the same run (so machine noise hits them alike):

- ``streaming``: the server as configured;
- ``naive`` (unless ``--no-naive``): the same server with ``session.streaming: false`` (the whole
  reply is written before any of it is spoken): what streaming gains;
- ``long``: requests whose replies are long ("Tell me a story…"), streaming and naive;
- with ``--sessions N``: N sessions talking at once to the streaming server, with ``/health``
  polled meanwhile; and, when the early reply is on, ``streaming, reply at release``: one session
  with ``session.early_reply_ms: 0``. With the early reply, a turn alone is mostly answered before
  the release, so the single-session median measures what was prepared in the pause more than the
  turn's work; this set gives the work from the release, for the four-session ratio.

``--hands-free`` measures the hands-free mode instead (see :mod:`voicebot.bench.handsfree`).
"""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from voicebot.bench.report import summarize, table
from voicebot.bench.servers import ServerProcess, server_process
from voicebot.bench.speech import LONG_REQUESTS, QUESTIONS, Utterance, spoken, wav_folder
from voicebot.bench.talk import HealthProbe, TurnSample, talk, talk_together
from voicebot.providers.registry import build_tts
from voicebot.settings import Settings

#: Where ``--testset`` keeps the generated test set (made once, reused while its recipe holds).
TESTSET_DIR = Path(".cache") / "voicebot-testset"


@dataclass(frozen=True)
class BenchOptions:
    utterances: int = 5
    """How many of the built-in questions to ask (ignored with ``wav``)."""
    wav: Path | None = None
    """A folder of 16 kHz WAV files (``.txt`` transcripts beside them) to say instead."""
    testset: bool = False
    """Say the generated test set (several voices, rates and noises; see ``voicebot.bench.testset``)."""
    sessions: int = 1
    rounds: int = 1
    naive: bool = True
    long: bool = True
    hands_free: bool = False
    json: bool = False


def _utterances(settings: Settings, options: BenchOptions) -> tuple[list[Utterance], list[Utterance]]:
    if options.wav is not None:
        questions = wav_folder(options.wav)
    elif options.testset:
        from voicebot.bench import testset

        testset.generate(TESTSET_DIR)
        questions = wav_folder(TESTSET_DIR)
    else:
        questions = []
    tts = build_tts(settings)
    if not questions:
        texts = [QUESTIONS[index % len(QUESTIONS)] for index in range(options.utterances)]
        questions = asyncio.run(spoken(tts, texts))
    long = asyncio.run(spoken(tts, list(LONG_REQUESTS))) if options.long else []
    return questions * options.rounds, long * options.rounds


async def _measure(url: str, utterances: list[Utterance]) -> list[TurnSample]:
    return await talk(url, utterances)


async def _together(
    server: ServerProcess, utterances: list[Utterance], sessions: int
) -> tuple[list[TurnSample], HealthProbe]:
    probe = HealthProbe(f"{server.http_url}/health")
    polling = asyncio.create_task(probe.run())
    try:
        samples = await talk_together(server.ws_url, utterances, sessions)
    finally:
        polling.cancel()
    return samples, probe


#: The single-session set whose reply begins at the release (``session.early_reply_ms: 0``).
AT_RELEASE = "streaming, reply at release"


def server_modes(settings: Settings, options: BenchOptions) -> dict[str, dict[str, str]]:
    """Each measured server setup: its name and the settings it overrides."""
    modes = {"streaming": {"VOICEBOT_SESSION__STREAMING": "true"}}
    if options.sessions > 1 and settings.session.early_reply_ms > 0:
        modes[AT_RELEASE] = {"VOICEBOT_SESSION__STREAMING": "true", "VOICEBOT_SESSION__EARLY_REPLY_MS": "0"}
    if options.naive:
        modes["naive"] = {"VOICEBOT_SESSION__STREAMING": "false"}
    return modes


def first_audio_ratios(results: dict[str, dict[str, Any]], sessions: int) -> dict[str, float]:
    """What streaming gains over the naive pipeline (medians of first audio), and how the sessions
    talking at once compare with one alone: their p95 over its median (the latency target is at most
    3), alone as configured and alone with the reply begun at the release (see the module's docstring)."""
    ratios: dict[str, float] = {}

    def first_audio(name: str, statistic: str) -> float | None:
        spread = results.get(name, {}).get("first_audio_ms") or {}
        return spread.get(statistic) or None

    for prefix in ("", "long "):
        streaming, naive = first_audio(f"{prefix}streaming", "median"), first_audio(f"{prefix}naive", "median")
        if streaming and naive:
            ratios[f"{prefix}naive median / {prefix}streaming median"] = naive / streaming
    together = first_audio(f"{sessions} sessions at once", "p95")
    for alone in ("streaming", AT_RELEASE):
        median = first_audio(alone, "median")
        if together and median:
            ratios[f"{sessions} sessions at once p95 / {alone} median"] = together / median
    return ratios


def run_bench(settings: Settings, config: Path | None, options: BenchOptions) -> int:
    """Run the benchmark and print the report; exit code 1 if a set produced no audio at all."""
    if options.hands_free:
        from voicebot.bench.handsfree import run_hands_free

        return run_hands_free(settings, config, options)
    questions, long = _utterances(settings, options)
    print(f"voicebot bench: {len(questions)} utterances, {len(long)} long requests", file=sys.stderr)
    results: dict[str, dict[str, Any]] = {}
    samples: dict[str, list[TurnSample]] = {}
    for mode, overrides in server_modes(settings, options).items():
        with server_process(config, overrides) as server:
            samples[mode] = asyncio.run(_measure(server.ws_url, questions))
            results[mode] = summarize(samples[mode])
            if long and mode != AT_RELEASE:
                samples[f"long {mode}"] = asyncio.run(_measure(server.ws_url, long))
                results[f"long {mode}"] = summarize(samples[f"long {mode}"])
            if mode == "streaming" and options.sessions > 1:
                together, probe = asyncio.run(_together(server, questions, options.sessions))
                name = f"{options.sessions} sessions at once"
                samples[name] = together
                results[name] = {**summarize(together), "health_p99_ms": probe.p99()}
            results[mode]["rss_mb"] = server.rss_mb()
            results[mode]["peak_rss_mb"] = server.rss_mb("VmHWM")
    ratios = first_audio_ratios(results, options.sessions)
    if options.json:
        report = {
            "results": results,
            "ratios": ratios,
            "turns": {k: [asdict(s) for s in v] for k, v in samples.items()},
        }
        print(json.dumps(report, indent=2))
    else:
        print(table(results))
        for name, ratio in ratios.items():
            print(f"{name}: {ratio:.2f}x")
    return 0 if all(summary["first_audio_ms"] for summary in results.values()) else 1
