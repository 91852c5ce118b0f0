"""``voicebot bench``: time from ``stop_listening`` to the first reply-audio frame, streaming vs. naive.

Both modes run in one process over real WebSockets against the same loaded models: one server with
``session.streaming: true`` and one with ``false`` share the providers, and the questions alternate
between them, so machine noise hits both alike. The questions are spoken by the configured TTS voice.
"""

from __future__ import annotations

import asyncio
import socket
import statistics
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from voicebot.app import create_app
from voicebot.audio import resample
from voicebot.client import VoiceClient
from voicebot.logs import configure_logging
from voicebot.protocol import INPUT_SAMPLE_RATE
from voicebot.providers.base import TTS, Stages
from voicebot.providers.registry import load_stages
from voicebot.server import serve
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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@asynccontextmanager
async def running_server(settings: Settings, stages: Stages) -> AsyncIterator[str]:
    """Serve ``create_app(settings, stages)`` on a free loopback port; yield its WebSocket URL."""
    port = free_port()
    server_settings = settings.model_copy(
        update={"server": settings.server.model_copy(update={"host": "127.0.0.1", "port": port})}
    )
    shutdown = asyncio.Event()
    task = asyncio.create_task(serve(create_app(server_settings, stages), server_settings, shutdown))
    try:
        for _ in range(200):
            try:
                _reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                break
            except OSError:
                await asyncio.sleep(0.05)
        yield f"ws://127.0.0.1:{port}/ws/voice"
    finally:
        shutdown.set()
        await task


def _summary(values: list[float]) -> str:
    return f"median {statistics.median(values):7.0f} ms   worst {max(values):7.0f} ms   (n={len(values)})"


async def _bench(settings: Settings, utterances: int, rounds: int) -> dict[str, list[float]]:
    stages = await asyncio.to_thread(load_stages, settings)
    questions = [QUESTIONS[i % len(QUESTIONS)] for i in range(utterances)]
    inputs = [await speak_to_input(stages.tts, q) for q in questions]
    modes = {
        "streaming": settings.model_copy(
            update={"session": settings.session.model_copy(update={"streaming": True})}
        ),
        "naive": settings.model_copy(update={"session": settings.session.model_copy(update={"streaming": False})}),
    }
    results: dict[str, list[float]] = {mode: [] for mode in modes}
    async with running_server(modes["streaming"], stages) as url_streaming, running_server(
        modes["naive"], stages
    ) as url_naive:
        urls = {"streaming": url_streaming, "naive": url_naive}
        for round_index in range(rounds):
            for question, pcm in zip(questions, inputs, strict=True):
                for mode, url in urls.items():
                    client = await VoiceClient.connect(url)  # fresh session: same history for both
                    turn = await client.utterance(pcm)
                    await client.close()
                    latency = turn.first_audio_ms
                    if latency is None:
                        print(f"  {mode:9s} no audio for {question!r} (errors: {turn.errors})")
                        continue
                    results[mode].append(latency)
                    reply = (turn.reply or "")[:60]
                    print(
                        f"  round {round_index + 1} {mode:9s} {latency:6.0f} ms  "
                        f"heard {turn.transcript!r} → {reply!r}"
                    )
    return results


def run_bench(settings: Settings, utterances: int = 5, rounds: int = 1) -> int:
    """Run the benchmark and print the summary; exit code 1 if a mode produced no audio at all."""
    configure_logging(settings.logging)
    print(f"voicebot bench: {utterances} utterances x {rounds} rounds, streaming vs. naive, same process")
    results = asyncio.run(_bench(settings, utterances, rounds))
    print("\nstop_listening → first audio frame")
    for mode, values in results.items():
        print(f"  {mode:9s} {_summary(values) if values else 'no audio'}")
    if results["streaming"] and results["naive"]:
        ratio = statistics.median(results["naive"]) / statistics.median(results["streaming"])
        print(f"  naive / streaming median ratio: {ratio:.2f}x")
    return 0 if all(results.values()) else 1
