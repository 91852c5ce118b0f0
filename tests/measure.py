"""Measurements of abuse cases (flood, soak, SIGTERM; reported in the issue notes), and the machinery
of the SIGTERM test: ``python -m tests.measure sigterm|flood|soak|all`` prints JSON. Not a test:
numbers are measured here, never asserted on time.

The SIGTERM run is a real ``python -m voicebot serve`` process whose three stages are the OpenAI
providers pointed at the wire-level fake OpenAI service (tests/fakeservers.py), so no model loads.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from tests.fakeservers import FakeService, openai_app, running
from tests.securitykit import SPEECH, closed_with, server_with, wait_until
from tests.test_soak import rss_mb, soak
from voicebot.client import VoiceClient
from voicebot.server.localserver import free_port
from voicebot.server.ready import wait_until_ready

ROOT = Path(__file__).resolve().parents[1]
#: A reply of many sentences: each is half a second of speech from the fake, so a turn speaks for a while.
LONG_REPLY = tuple(f"Sentence number {n} of a long answer. " for n in range(12))


def serve_settings(openai_port: int, port: int, recordings: Path, graceful_s: float) -> dict[str, Any]:
    remote = {"base_url": f"http://127.0.0.1:{openai_port}/v1", "api_key_env": None}
    return {
        "server": {"host": "127.0.0.1", "port": port, "graceful_timeout_s": graceful_s},
        "session": {"audio_lead_ms": 200},
        "asr": {"provider": "openai", "openai": remote},
        "llm": {"provider": "openai", "openai": remote},
        "tts": {"provider": "openai", "openai": remote},
        "logging": {"format": "json", "level": "info"},
        "recording": {"enabled": True, "directory": str(recordings)},
    }


async def sigterm_run(live_sessions: int, workdir: Path, graceful_s: float = 5.0) -> dict[str, Any]:
    """Start ``python -m voicebot serve``, open ``live_sessions`` sessions each in the middle of a spoken
    reply, send SIGTERM, and report how it ended."""
    service = FakeService(reply=LONG_REPLY)
    async with running(openai_app(service), service):
        port = free_port()
        recordings = workdir / "recordings"
        config = workdir / "settings.yaml"
        config.write_text(yaml.safe_dump(serve_settings(service.port, port, recordings, graceful_s)))
        env = {k: v for k, v in os.environ.items() if not k.startswith("VOICEBOT_")}
        env["PYTHONPATH"] = str(ROOT)
        process = subprocess.Popen(  # noqa: ASYNC220 - starting it does not block; waits run in threads
            [sys.executable, "-m", "voicebot", "serve", "--config", str(config)],
            cwd=workdir,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            await asyncio.to_thread(wait_until_ready, f"http://127.0.0.1:{port}/health", 60, process)
            clients = [await VoiceClient.connect(f"ws://127.0.0.1:{port}/ws/voice") for _ in range(live_sessions)]
            for client in clients:
                await client.say(SPEECH)
            for client in clients:
                await client.wait_for(lambda f: isinstance(f, dict) and f.get("state") == "speaking", timeout=30)
            closes = [asyncio.create_task(closed_with(client.connection, 30)) for client in clients]
            started = time.monotonic()
            process.send_signal(signal.SIGTERM)
            code = await asyncio.to_thread(process.wait, graceful_s + 10)
            exit_s = time.monotonic() - started
            close_codes = [await close for close in closes]
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        out, err = process.communicate()
    folders = sorted(recordings.iterdir()) if recordings.exists() else []
    ended = [
        any(json.loads(line).get("event") == "session_ended" for line in (f / "events.jsonl").read_text().splitlines())
        for f in folders
    ]
    return {
        "live_sessions": live_sessions,
        "exit_code": code,
        "exit_s": round(exit_s, 3),
        "graceful_timeout_s": graceful_s,
        "closes": close_codes,
        "recordings_flushed": ended,
        "stderr": err.decode(errors="replace"),
        "stdout": out.decode(errors="replace"),
    }


async def flood(frames: int = 10_000) -> dict[str, Any]:
    """Memory of this process (server and client) before and after ``frames`` audio frames sent as
    fast as possible, then the same number of garbage text frames (which end in a close 1008)."""
    async with server_with() as server:
        client = await VoiceClient.connect(server.ws_url)
        await client.utterance(SPEECH)
        gc.collect()
        before = rss_mb()
        started = time.monotonic()
        for _ in range(frames):
            await client.send_raw(b"\x00\x10" * 320)
        turn = await client.utterance(SPEECH)
        audio_s = time.monotonic() - started
        session = server.runtime.sessions[client.session_id or ""]
        dropped = session.dropped_audio_frames
        gc.collect()
        after_audio = rss_mb()
        for _ in range(frames):
            with contextlib.suppress(Exception):
                await client.send_raw("not json")
        close = await closed_with(client.connection)
        await wait_until(lambda: not server.runtime.sessions)
        gc.collect()
        after_text = rss_mb()
    return {
        "frames": frames,
        "rss_before_mb": round(before, 1),
        "rss_after_audio_flood_mb": round(after_audio, 1),
        "rss_after_text_flood_mb": round(after_text, 1),
        "audio_flood_s": round(audio_s, 2),
        "turn_after_flood": turn.states,
        "dropped_audio_frames": dropped,
        "text_flood_close": close,
    }


async def main(what: str) -> None:
    results: dict[str, Any] = {}
    if what in ("flood", "all"):
        results["flood"] = await flood()
    if what in ("soak", "all"):
        started = time.monotonic()
        soaked = await soak()
        soaked.pop("left", None)
        results["soak"] = {**soaked, "seconds": round(time.monotonic() - started, 1)}
    if what in ("sigterm", "all"):
        for live in (0, 4):
            with tempfile.TemporaryDirectory() as tmp:
                run = await sigterm_run(live, Path(tmp))
            noise = [w for w in ("Traceback", "Task was destroyed", "Exception in callback") if w in run["stderr"]]
            results[f"sigterm_{live}_sessions"] = {
                **{k: v for k, v in run.items() if k not in ("stderr", "stdout")},
                "noise": noise,
            }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("what", choices=["sigterm", "flood", "soak", "all"])
    asyncio.run(main(parser.parse_args().what))
