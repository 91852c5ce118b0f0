"""Measure what hands-free listening costs per session: CPU per second of audio and memory.

    PYTHONPATH=$PWD /work/main/.venv/bin/python -m tests.vad.measure

Feeds a minute of speech (the embedded Piper voice) over room noise, in 20 ms frames as the page
sends them, through the Silero detector alone, then through the whole :class:`HandsFreeListener`
with the assistant silent (the user talking throughout), then with the assistant speaking and its
echo in the microphone throughout (the echo guard judges nearly every window): the worst cases. CPU is process time of
this single thread (ONNX Runtime runs each call on one thread), best of three runs.
"""

from __future__ import annotations

import os
import time
import tracemalloc
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from tests.vad.signals import RATE, from_pcm, room_echo, to_pcm
from voicebot.handsfree import HandsFreeListener
from voicebot.vad import SileroModel, SileroVad, shared_model

SECONDS = 60
FRAME_BYTES = 640  # 20 ms


def _rss_kib() -> int:
    """Resident set size now (Linux), in KiB."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def _frames(pcm: bytes) -> list[bytes]:
    return [pcm[start : start + FRAME_BYTES] for start in range(0, len(pcm), FRAME_BYTES)]


def _cpu_ms_per_s(make_run: Callable[[], Callable[[], object]]) -> float:
    """CPU per second of audio of the best of three runs (the machine is shared: the best run is
    the one least disturbed), each on a fresh object from ``make_run``."""
    best = float("inf")
    for _ in range(3):
        run = make_run()
        start = time.process_time()
        run()
        best = min(best, time.process_time() - start)
    return best * 1000 / SECONDS


def _speech() -> npt.NDArray[np.float32]:
    """A minute of the embedded Piper voice talking (the reply, or the user: speech throughout)."""
    import asyncio

    from tests.vad.conftest import REPLY
    from voicebot.bench import speak_to_input
    from voicebot.providers.piper import PiperTTS
    from voicebot.settings import load_settings

    tts = PiperTTS(load_settings(environ={}).tts.piper)
    once = from_pcm(asyncio.run(speak_to_input(tts, REPLY, silence_ms=200)))
    return np.resize(once, SECONDS * RATE)


def main() -> None:
    """Print the measurements."""
    rss_start = _rss_kib()
    import onnxruntime  # noqa: F401 - the server has it loaded already (Piper)

    rss_runtime = _rss_kib() - rss_start
    rss_before = _rss_kib()
    model = shared_model()
    rss_model = _rss_kib() - rss_before
    rss_before = _rss_kib()
    second = SileroModel()  # what the model itself costs, once the runtime's environment exists
    rss_second = _rss_kib() - rss_before
    del second
    speech = _speech()
    rng = np.random.default_rng(0)
    noise = (rng.standard_normal(SECONDS * RATE) * 0.003).astype(np.float32)
    audio = speech + noise
    frames = _frames(to_pcm(audio))
    echo_frames = _frames(to_pcm(room_echo(speech, 0.3, 150) + noise))
    SileroVad(model).process(frames[0] * 100)  # warm up

    def vad_run() -> Callable[[], object]:
        vad = SileroVad(model)
        return lambda: [vad.process(frame) for frame in frames]

    def listener_run(speaking: bool) -> Callable[[], Callable[[], object]]:
        def make() -> Callable[[], object]:
            listener = HandsFreeListener(model=model)
            if speaking:  # the worst case: a reply playing the whole minute, its echo in the mic
                listener.set_assistant_speaking(True)
                listener.play(to_pcm(speech), at_ms=0)
                return lambda: [listener.feed(frame) for frame in echo_frames]
            return lambda: [listener.feed(frame) for frame in frames]

        return make

    vad_ms = _cpu_ms_per_s(vad_run)
    quiet_ms = _cpu_ms_per_s(listener_run(False))
    speaking_ms = _cpu_ms_per_s(listener_run(True))

    calls = HandsFreeListener(model=model)
    calls.set_assistant_speaking(True)
    calls.play(to_pcm(speech), at_ms=0)
    durations = []
    for frame in echo_frames[:1500]:
        start = time.perf_counter()
        calls.feed(frame)
        durations.append((time.perf_counter() - start) * 1000)

    tracemalloc.start()
    session = HandsFreeListener(model=model)
    for frame in frames[: 10 * 50]:
        session.feed(frame)
    session_bytes, session_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    print(f"audio: {SECONDS} s in 20 ms frames; CPU as process time of one thread")
    print(f"  Silero alone:                       {vad_ms:6.2f} ms CPU per s of audio")
    print(f"  listener, assistant silent:         {quiet_ms:6.2f} ms CPU per s of audio")
    print(f"  listener, assistant speaking (echo): {speaking_ms:6.2f} ms CPU per s of audio")
    print(
        f"  one feed() of a 20 ms frame, assistant speaking: median {np.median(durations):.2f} ms, "
        f"p99 {np.percentile(durations, 99):.2f} ms (wall)"
    )
    print(f"memory: importing onnxruntime +{rss_runtime / 1024:.1f} MiB RSS (already paid by Piper in the server)")
    print(f"  loading the shared Silero model +{rss_model / 1024:.1f} MiB RSS (once per process), of which the model")
    print(f"  itself (a second copy) +{rss_second / 1024:.1f} MiB; the rest is ONNX Runtime's first session")
    print(f"  per session: {session_bytes / 1024:.0f} KiB held after 10 s of speech (the utterance so far), ", end="")
    print(f"peak {session_peak / 1024:.0f} KiB")
    _latencies(model)


def _latencies(model: SileroModel) -> None:
    """Detection delays on the scripted scenes of tests/vad/test_handsfree.py."""
    import asyncio
    import tempfile
    from pathlib import Path

    from tests.vad.conftest import QUESTION, REPLY, USER_INTERRUPTION, espeak
    from tests.vad.test_handsfree import listen, onset_ms, room
    from voicebot.bench import speak_to_input
    from voicebot.endpointing import BargeIn, SpeechEnded
    from voicebot.providers.piper import PiperTTS
    from voicebot.settings import load_settings

    tts = PiperTTS(load_settings(environ={}).tts.piper)
    reply = from_pcm(asyncio.run(speak_to_input(tts, REPLY, silence_ms=0)))
    question = from_pcm(asyncio.run(speak_to_input(tts, QUESTION, silence_ms=0)))
    with tempfile.TemporaryDirectory() as directory:
        folder = Path(directory)
        user = espeak(USER_INTERRUPTION, folder)
        user = (user * (0.05 / float(np.sqrt(np.mean(np.square(user[np.abs(user) > 0.01])))))).astype(np.float32)
        scene = np.concatenate([np.zeros(RATE, dtype=np.float32), question, np.zeros(2 * RATE, dtype=np.float32)])
        events = listen(HandsFreeListener(model=model), scene + room(folder, len(scene) / RATE))
        ended = [event for event in events if isinstance(event, SpeechEnded)]
        speech_end_ms = 1000 + len(question) / RATE * 1000
        print("end of turn (question over room noise):")
        print(f"  last speech window ends {ended[0].at_ms - speech_end_ms:+.0f} ms from the end of the audio; ", end="")
        print(f"SpeechEnded decided {ended[0].detected_at_ms - speech_end_ms:.0f} ms after it")
        print("barge-in (reply echo through the room + the user's voice, espeak-ng):")
        for gain, user_at_s, user_gain in ((0.1, 1.5, 1.0), (0.1, 4.1, 1.0), (0.3, 2.0, 2.0)):
            listener = HandsFreeListener(model=model)
            listener.set_assistant_speaking(True)
            listener.play(to_pcm(reply), at_ms=500)
            echo = np.concatenate([np.zeros(RATE // 2, dtype=np.float32), room_echo(reply, gain, 150)])
            mic = echo + room(folder, len(echo) / RATE)
            start = int(user_at_s * RATE)
            mic[start : start + len(user)] += user[: len(mic) - start] * user_gain
            barge = [event for event in listen(listener, mic) if isinstance(event, BargeIn)]
            onset = user_at_s * 1000 + onset_ms(user)
            print(f"  echo gain {gain}, user x{user_gain} at {user_at_s} s: ", end="")
            print(
                f"confirmed {barge[0].detected_at_ms - onset:.0f} ms after the user's first sound"
                if barge
                else "missed"
            )


if __name__ == "__main__":
    main()
