"""``voicebot bench``: time from ``stop_listening`` to the first reply-audio frame, streaming vs. naive.

Two real servers run as separate processes (``voicebot serve``, one with ``session.streaming: false``),
each with the configured models, as a user would run them. The questions are spoken by the configured
TTS voice and asked of both servers in alternation, one at a time, so machine noise hits both alike
and neither server competes with the other for the CPU.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from voicebot.audio import resample
from voicebot.client import VoiceClient
from voicebot.providers.base import TTS
from voicebot.providers.registry import build_tts
from voicebot.server.localserver import free_port
from voicebot.server.ready import wait_until_ready
from voicebot.session.protocol import INPUT_SAMPLE_RATE
from voicebot.settings import Settings

QUESTIONS = (
    "What is the capital of France?",
    "How many days are there in a week?",
    "Tell me a fun fact about cats.",
    "What color is the sky on a clear day?",
    "Can you recommend a good book?",
    "What is the tallest mountain in the world?",
    "How do I boil an egg?",
    "Why is the ocean salty?",
)


async def speak_to_input(tts: TTS, text: str, silence_ms: int = 300) -> bytes:
    """Synthesise ``text`` with ``tts`` as 16 kHz microphone audio, with a little silence around it."""
    pcm = b"".join([chunk async for chunk in tts.synthesize(text)])
    pad = b"\x00\x00" * (INPUT_SAMPLE_RATE * silence_ms // 1000)
    return pad + resample(pcm, tts.sample_rate, INPUT_SAMPLE_RATE) + pad


@contextmanager
def server_process(config: Path | None, env: dict[str, str]) -> Iterator[str]:
    """Run ``voicebot serve`` on a free port until the block ends; yield its WebSocket URL."""
    port = free_port()
    command = [sys.executable, "-m", "voicebot", "serve", "--host", "127.0.0.1", "--port", str(port)]
    if config is not None:
        command += ["--config", str(config)]
    quiet = {"VOICEBOT_LOGGING__LEVEL": "warning", "VOICEBOT_RECORDING__ENABLED": "false"}  # no bench recordings
    process = subprocess.Popen(command, env={**os.environ, **quiet, **env}, stderr=subprocess.DEVNULL)
    try:
        wait_until_ready(f"http://127.0.0.1:{port}/health", 180, process, what="voicebot serve")
        yield f"ws://127.0.0.1:{port}/ws/voice"
    finally:
        process.terminate()
        process.wait(timeout=30)


def _summary(values: list[float]) -> str:
    return f"median {statistics.median(values):6.0f} ms   worst {max(values):6.0f} ms   (n={len(values)})"


async def _ask_all(urls: dict[str, str], inputs: list[tuple[str, bytes]], rounds: int) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {mode: [] for mode in urls}
    for round_index in range(rounds):
        for question, pcm in inputs:
            for mode, url in urls.items():
                client = await VoiceClient.connect(url)  # a fresh session: the same history for both
                turn = await client.utterance(pcm)
                await client.close()
                latency = turn.first_audio_ms
                if latency is None:
                    print(f"  {mode:9s} no audio for {question!r} (errors: {turn.errors})")
                    continue
                results[mode].append(latency)
                print(
                    f"  round {round_index + 1} {mode:9s} {latency:6.0f} ms  "
                    f"{turn.transcript!r} → {(turn.reply or '')[:70]!r}"
                )
    return results


def run_bench(settings: Settings, config: Path | None, utterances: int = 5, rounds: int = 1) -> int:
    """Run the benchmark and print the summary; exit code 1 if a mode produced no audio at all."""
    print(f"voicebot bench: {utterances} questions x {rounds} rounds, streaming vs. naive servers")
    tts = build_tts(settings)
    questions = [QUESTIONS[i % len(QUESTIONS)] for i in range(utterances)]
    inputs = [(q, asyncio.run(speak_to_input(tts, q))) for q in questions]
    with (
        server_process(config, {"VOICEBOT_SESSION__STREAMING": "true"}) as streaming,
        server_process(config, {"VOICEBOT_SESSION__STREAMING": "false"}) as naive,
    ):
        results = asyncio.run(_ask_all({"streaming": streaming, "naive": naive}, inputs, rounds))
    print("\nstop_listening → first reply-audio frame")
    for mode, values in results.items():
        print(f"  {mode:9s} {_summary(values) if values else 'no audio'}")
    if results["streaming"] and results["naive"]:
        ratio = statistics.median(results["naive"]) / statistics.median(results["streaming"])
        print(f"  naive / streaming (medians): {ratio:.2f}x")
    return 0 if all(results.values()) else 1
