"""Measure what hands-free listening costs per session: CPU per second of audio and memory.

    PYTHONPATH=$PWD /work/main/.venv/bin/python -m tests.vad.measure

Feeds 60 s of room noise with speech in it, in 20 ms frames as the page sends them, through the
Silero detector alone, then through the whole :class:`HandsFreeListener` with the assistant silent,
then with the assistant speaking (the echo guard runs on every window). CPU is process time of
this single thread (ONNX Runtime runs each call on one thread).
"""

from __future__ import annotations

import resource
import time
import tracemalloc

import numpy as np

from tests.vad.signals import RATE, babble, to_pcm
from voicebot.handsfree import HandsFreeListener
from voicebot.vad import SileroVad, shared_model

SECONDS = 60
FRAME_BYTES = 640  # 20 ms


def _frames(pcm: bytes) -> list[bytes]:
    return [pcm[start : start + FRAME_BYTES] for start in range(0, len(pcm), FRAME_BYTES)]


def _cpu_ms_per_s(run: object) -> float:
    assert callable(run)
    start = time.process_time()
    run()
    return (time.process_time() - start) * 1000 / SECONDS


def main() -> None:
    """Print the measurements."""
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    model = shared_model()
    rss_model = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before
    rng = np.random.default_rng(0)
    audio = babble(SECONDS, seed=4) + (rng.standard_normal(SECONDS * RATE) * 0.003).astype(np.float32)
    frames = _frames(to_pcm(audio))
    SileroVad(model).process(frames[0] * 100)  # warm up

    vad = SileroVad(model)
    vad_ms = _cpu_ms_per_s(lambda: [vad.process(frame) for frame in frames])
    quiet = HandsFreeListener(model=model)
    quiet_ms = _cpu_ms_per_s(lambda: [quiet.feed(frame) for frame in frames])
    speaking = HandsFreeListener(model=model)
    speaking.set_assistant_speaking(True)
    speaking.play(to_pcm(audio), at_ms=0)  # the worst case: a reply playing the whole minute
    speaking_ms = _cpu_ms_per_s(lambda: [speaking.feed(frame) for frame in frames])

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
    print(f"memory: shared model load +{rss_model / 1024:.1f} MiB RSS (once per process)")
    print(f"  per session: {session_bytes / 1024:.0f} KiB held after 10 s, peak {session_peak / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
