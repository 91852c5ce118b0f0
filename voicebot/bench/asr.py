"""Accuracy and speed of each speech recogniser on the same spoken test set.

For every ASR choice (faster-whisper tiny.en with its full 30 s window, tiny.en with the window
trimmed to the utterance, Moonshine tiny-en in one batch pass, and Moonshine streamed while the
audio arrives) this measures, warm and on a fixed number of threads: word error rate over the set,
per-utterance latency (median, 95th percentile, worst; each utterance's fastest of ``--repeat`` runs, since
other processes share this machine's cores) and resident memory. Each engine runs in its
own process, so memory and thread pools do not mix, and one engine's crash does not hide the others.

    python -m voicebot.bench.asr --out /tmp/asr-bench

The test set (``voicebot.bench.testset``) is generated into ``OUT/testset`` once and reused; ``--wav DIR``
measures a folder of 16 kHz WAV files with ``.txt`` transcripts instead. Results also go to
``OUT/results.json`` with every utterance's transcript, so errors can be read, not only counted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from voicebot.audio import pcm_to_float, read_wav
from voicebot.bench.testset import Utterance, describe, generate, load
from voicebot.bench.wer import word_errors

ENGINES = ("whisper-30s", "whisper-trim", "moonshine", "moonshine-stream")
"""The default engines; ``whisper-trim:S`` sets the trimmed window's minimum to S seconds (default 10)."""
#: How often the streamed engine re-transcribes while audio arrives (ms of audio between partials).
PARTIAL_EVERY_MS = 400
FEED_MS = 100

Samples = npt.NDArray[np.float32]


@dataclass
class UtteranceResult:
    """One utterance as one engine heard it."""

    wav: str
    reference: str
    hypothesis: str
    ms: float
    """Latency: the batch call, or for a stream the ``finish()`` call after the last partial."""
    cpu_ms: float
    """CPU time the process spent on the same call (all its threads). Unlike the latency it hardly
    changes when other processes compete for the cores, so it compares engines on a busy machine."""
    errors: int


@dataclass
class EngineResult:
    """One engine over the whole set."""

    engine: str
    model: str
    threads: int
    wer: float
    errors: int
    words: int
    median_ms: float
    p95_ms: float
    max_ms: float
    cpu_median_ms: float
    rss_mib: float
    """Resident memory of the engine's process after the run (Python, numpy and the model)."""
    base_rss_mib: float
    """Resident memory of the same process before the model was loaded."""
    load_s: float
    partial_median_ms: float | None = None
    """For streams: the median cost of one partial pass while audio arrives."""
    reused: int | None = None
    """For streams: how many finals were the newest partial (only silence after it), costing no pass."""
    utterances: list[UtteranceResult] = field(default_factory=list)


def _rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _load_batch(engine: str, threads: int) -> tuple[str, Callable[[Samples], str]]:
    """``(model description, transcribe function)`` for a batch engine, loaded and warmed."""
    if engine == "whisper-30s":
        from voicebot.providers.faster_whisper import FasterWhisperASR
        from voicebot.settings import FasterWhisperSettings

        whisper = FasterWhisperASR(FasterWhisperSettings(cpu_threads=threads))
        whisper.warm()
        return whisper.model, whisper._transcribe_samples
    if engine == "whisper-trim" or engine.startswith("whisper-trim:"):
        from voicebot.providers.whisper_trim import TrimmedWhisperASR
        from voicebot.settings import TrimmedWhisperSettings

        window = float(engine.partition(":")[2] or 10)
        trimmed = TrimmedWhisperASR(TrimmedWhisperSettings(cpu_threads=threads, min_window_s=window))
        trimmed.warm()
        return f"{trimmed.model}, window ≥ {window:g} s", trimmed.transcribe_samples
    if engine == "moonshine":
        from voicebot.providers.moonshine import MoonshineASR
        from voicebot.settings import MoonshineSettings

        moonshine = MoonshineASR(MoonshineSettings(threads=threads))
        moonshine.warm()
        return moonshine.model, moonshine.transcribe_samples
    raise ValueError(f"unknown engine {engine!r}; choose from {', '.join(ENGINES)}")


def _measure_batch(engine: str, threads: int, audio: Sequence[tuple[Utterance, Samples]], repeat: int) -> EngineResult:
    base = _rss_mib()
    started = time.perf_counter()
    model, transcribe = _load_batch(engine, threads)
    load_s = time.perf_counter() - started
    results = []
    for utterance, samples in audio:
        times = []
        for _ in range(repeat):
            began, cpu = time.perf_counter(), time.process_time()
            text = transcribe(samples)
            times.append(((time.perf_counter() - began) * 1000, (time.process_time() - cpu) * 1000))
        results.append(_result(utterance, text, *map(min, zip(*times, strict=True))))
    return _summarise(engine, model, threads, results, base, load_s)


def _measure_stream(threads: int, audio: Sequence[tuple[Utterance, bytes]], repeat: int) -> EngineResult:
    """Feed each utterance in 100 ms pieces, take a partial every 400 ms of audio, then time ``finish``
    (which costs nothing when only silence followed the last partial: the set's files end with 250 ms
    of silence, so that happens when the last partial falls in it)."""
    from voicebot.providers.moonshine import MoonshineASR
    from voicebot.settings import MoonshineSettings

    base = _rss_mib()
    started = time.perf_counter()
    moonshine = MoonshineASR(MoonshineSettings(threads=threads))
    moonshine.warm()
    load_s = time.perf_counter() - started
    piece = 16_000 * 2 * FEED_MS // 1000
    results: list[UtteranceResult] = []
    partial_ms: list[float] = []

    async def one(pcm: bytes) -> tuple[str, float, float, bool]:
        stream = moonshine.open_stream(16_000)
        for offset in range(0, len(pcm), piece):
            stream.feed(pcm[offset : offset + piece])
            fed = min(len(pcm), offset + piece)
            if fed < len(pcm) and (fed // piece) % (PARTIAL_EVERY_MS // FEED_MS) == 0:
                began = time.perf_counter()
                await stream.partial()
                partial_ms.append((time.perf_counter() - began) * 1000)
        began, cpu = time.perf_counter(), time.process_time()
        text = await stream.finish()
        return text, (time.perf_counter() - began) * 1000, (time.process_time() - cpu) * 1000, stream.reused

    reused = 0
    for utterance, pcm in audio:
        runs = [asyncio.run(one(pcm)) for _ in range(repeat)]
        results.append(_result(utterance, runs[0][0], min(r[1] for r in runs), min(r[2] for r in runs)))
        reused += runs[0][3]
    summary = _summarise("moonshine-stream", moonshine.model + ", final pass", threads, results, base, load_s)
    summary.partial_median_ms = float(np.median(partial_ms)) if partial_ms else None
    summary.reused = reused
    return summary


def _result(utterance: Utterance, text: str, ms: float, cpu_ms: float) -> UtteranceResult:
    errors = word_errors([(utterance.text, text)]).errors
    return UtteranceResult(utterance.wav.name, utterance.text, text, ms, cpu_ms, errors)


def _summarise(
    engine: str, model: str, threads: int, results: list[UtteranceResult], base: float, load_s: float
) -> EngineResult:
    totals = word_errors((r.reference, r.hypothesis) for r in results)
    latencies = [r.ms for r in results]
    return EngineResult(
        engine=engine,
        model=model,
        threads=threads,
        wer=totals.wer,
        errors=totals.errors,
        words=totals.words,
        median_ms=float(np.median(latencies)),
        p95_ms=float(np.percentile(latencies, 95)),
        max_ms=max(latencies),
        cpu_median_ms=float(np.median([r.cpu_ms for r in results])),
        rss_mib=_rss_mib(),
        base_rss_mib=base,
        load_s=load_s,
        utterances=results,
    )


def measure(engine: str, folder: Path, threads: int = 1, repeat: int = 1) -> EngineResult:
    """Measure one engine in this process on the WAV/TXT pairs in ``folder``. With ``repeat`` > 1 each
    utterance is recognised that many times and its fastest time kept (the cost on a quiet machine,
    when other processes share the cores)."""
    utterances = load(folder)
    if not utterances:
        raise ValueError(f"{folder}: no .wav files with a .txt transcript beside them")
    pcms = []
    for utterance in utterances:
        pcm, rate = read_wav(utterance.wav)
        if rate != 16_000:
            raise ValueError(f"{utterance.wav}: {rate} Hz; the bench needs 16 kHz mono")
        pcms.append((utterance, pcm))
    if engine == "moonshine-stream":
        return _measure_stream(threads, pcms, repeat)
    return _measure_batch(engine, threads, [(u, pcm_to_float(pcm)) for u, pcm in pcms], repeat)


def run(folder: Path, engines: Sequence[str], threads: int = 1, repeat: int = 1) -> list[EngineResult]:
    """Measure each engine in a fresh process (isolated memory and thread pools)."""
    results = []
    for engine in engines:
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        command = [sys.executable, "-m", "voicebot.bench.asr", "--worker", engine, "--wav", str(folder)]
        command += ["--threads", str(threads), "--repeat", str(repeat)]
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            print(f"{engine}: failed\n{done.stderr[-2000:]}", file=sys.stderr)
            continue
        data = json.loads(done.stdout.strip().splitlines()[-1])
        data["utterances"] = [UtteranceResult(**u) for u in data["utterances"]]
        results.append(EngineResult(**data))
    return results


def table(results: Sequence[EngineResult]) -> str:
    """The results as a Markdown table."""
    lines = [
        "| engine | model | threads | WER | errors/words | median ms | p95 ms | worst ms | CPU ms (median) "
        "| RSS MiB (model Δ) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        extra = ""
        if r.partial_median_ms is not None:
            extra = (
                f" (partials: median {r.partial_median_ms:.0f} ms; {r.reused} of {len(r.utterances)} finals reused one)"
            )
        lines.append(
            f"| {r.engine} | {r.model}{extra} | {r.threads} | {r.wer:.3f} | {r.errors}/{r.words} | "
            f"{r.median_ms:.0f} | {r.p95_ms:.0f} | {r.max_ms:.0f} | {r.cpu_median_ms:.0f} | "
            f"{r.rss_mib:.0f} ({r.rss_mib - r.base_rss_mib:+.0f}) |"
        )
    return "\n".join(lines)


def voice_table(results: Sequence[EngineResult]) -> str:
    """WER per voice (the part of each file name after its number) and engine, as a Markdown table."""
    voices = sorted({u.wav.removesuffix(".wav").partition("-")[2] for r in results for u in r.utterances})
    lines = ["| voice | " + " | ".join(r.engine for r in results) + " |", "|---" * (len(results) + 1) + "|"]
    for voice in voices:
        cells = []
        for r in results:
            mine = [u for u in r.utterances if u.wav.removesuffix(".wav").partition("-")[2] == voice]
            total = word_errors((u.reference, u.hypothesis) for u in mine)
            cells.append(f"{total.errors}/{total.words}")
        lines.append(f"| {voice} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m voicebot.bench.asr --out DIR [--engines a,b] [--threads N] [--wav DIR]``."""
    parser = argparse.ArgumentParser(description="Word error rate, latency and memory of each ASR engine.")
    parser.add_argument("--out", type=Path, help="folder for the generated test set and results.json")
    parser.add_argument("--wav", type=Path, help="measure this folder of WAV + TXT pairs instead of the test set")
    parser.add_argument("--engines", default=",".join(ENGINES), help=f"comma-separated, from {', '.join(ENGINES)}")
    parser.add_argument("--threads", type=int, default=1, help="inference threads per call (default 1)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per utterance; the fastest counts (default 3)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        result = measure(args.worker, args.wav, args.threads, args.repeat)
        print(json.dumps(asdict(result)))
        return 0
    if args.out is None and args.wav is None:
        parser.error("give --out DIR (and optionally --wav DIR)")
    folder = args.wav or args.out / "testset"
    if args.wav is None:
        generate(folder)
    print(f"test set {folder}: {describe(load(folder))}", flush=True)
    results = run(folder, [e.strip() for e in args.engines.split(",") if e.strip()], args.threads, args.repeat)
    print(table(results))
    print()
    print(voice_table(results))
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "results.json").write_text(json.dumps([asdict(r) for r in results], indent=1) + "\n")
    return 0 if results else 1


if __name__ == "__main__":
    sys.exit(main())
