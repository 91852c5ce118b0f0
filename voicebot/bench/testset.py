"""A reproducible spoken test set for measuring recognition accuracy and speed.

Questions a user would ask a voice assistant (1.5–4 s each), spoken by several synthetic voices at
several rates: the embedded Piper voice (joe) at three speeds, and espeak-ng's American, British and
variant voices, some mixed with pink, brown or white noise by sox. The same text list and voice plan,
repeatable sox runs (``-R``: fixed noise and dither seeds) and noise-free Piper sampling give the same
set byte for byte every time, so the WER of two ASR engines measured on two days compares.

Output: 16 kHz mono 16-bit ``NNN-voice.wav`` files, each with its transcript in ``NNN-voice.txt``
beside it, and a ``manifest.json`` that lets a later call reuse the folder instead of synthesising
again. Generating all 72 takes a few seconds (Piper speaks 27 of them; espeak-ng and sox are fast).

    python -m voicebot.bench.testset --out /tmp/voicebot-testset
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

from voicebot.audio import read_wav

TESTSET_SAMPLE_RATE = 16_000
#: Bump when the synthesis recipe changes, so cached folders are rebuilt.
RECIPE_VERSION = 1

QUESTIONS: tuple[str, ...] = (
    "What is the weather like today?",
    "Will it rain tomorrow morning?",
    "What time is it in Tokyo?",
    "Set a timer for ten minutes.",
    "How far away is the moon?",
    "Who wrote Pride and Prejudice?",
    "What is the capital of Australia?",
    "How many ounces are in a pound?",
    "Remind me to call my mother tonight.",
    "Play some relaxing music please.",
    "What is the tallest mountain in the world?",
    "How do I make a cup of tea?",
    "Tell me a joke about computers.",
    "What does the word serendipity mean?",
    "How many days until Christmas?",
    "Turn off the lights in the kitchen.",
    "What is twelve times fifteen?",
    "Who painted the Mona Lisa?",
    "Where is the nearest train station?",
    "How long should I boil an egg?",
    "What is the population of Canada?",
    "Translate good morning into Spanish.",
    "Why is the sky blue?",
    "What year did the first man walk on the moon?",
    "Can you recommend a good book?",
    "How many calories are in a banana?",
    "What is the speed of light?",
    "Wake me up at seven tomorrow.",
    "What is the square root of eighty one?",
    "Who is the president of France?",
    "How do you spell necessary?",
    "What is the boiling point of water?",
    "Tell me something interesting about octopuses.",
    "How much is one hundred dollars in euros?",
    "What is the best way to learn a language?",
    "When does the sun set today?",
    "How many players are on a soccer team?",
    "What is the largest ocean on Earth?",
    "Add milk and bread to my shopping list.",
    "What movies are playing this weekend?",
    "How do plants make their food?",
    "What is the difference between a virus and bacteria?",
    "Give me a recipe for pancakes.",
    "How old is the universe?",
    "What language do they speak in Brazil?",
    "Explain how a rainbow forms.",
    "What is the longest river in Africa?",
    "How many bones are in the human body?",
    "Who invented the telephone?",
    "What should I cook for dinner tonight?",
    "Is it going to snow this week?",
    "How do I reset my password?",
    "What is the meaning of life?",
    "Count from one to five.",
    "What is the chemical symbol for gold?",
    "How fast can a cheetah run?",
    "What is the temperature outside right now?",
    "Tell me a short story about a dragon.",
    "Which planet is closest to the sun?",
    "How many hours are in a week?",
    "What causes earthquakes?",
    "Can you help me plan a trip to Italy?",
    "What are the symptoms of a cold?",
    "How do I get to the airport?",
    "What is the news today?",
    "Who won the world cup in two thousand eighteen?",
    "How much water should I drink every day?",
    "What is a black hole?",
    "Say hello to my friend Sarah.",
    "What is thirty percent of two hundred?",
    "How do bees make honey?",
    "Stop the music and pause the podcast.",
)


@dataclass(frozen=True)
class Voice:
    """One way of speaking: a synthesiser, its voice and rate, and optional noise mixed in."""

    name: str
    """Short label used in file names, e.g. ``espeak-us-150``."""
    engine: str
    """``piper`` (the embedded joe voice) or ``espeak`` (espeak-ng)."""
    voice: str = ""
    """espeak-ng voice, e.g. ``en-us`` or ``en-us+f3``; unused for Piper."""
    rate: float = 1.0
    """espeak-ng words per minute, or Piper's length scale (above 1 is slower)."""
    noise: str = ""
    """sox noise type (``pinknoise``, ``whitenoise``, ``brownnoise``) or "" for clean speech."""
    noise_level: float = 0.0
    """Noise amplitude (sox ``synth`` volume, full scale 1.0)."""


VOICES: tuple[Voice, ...] = (
    Voice("piper", "piper"),
    Voice("piper-slow", "piper", rate=1.25),
    Voice("piper-fast-pink", "piper", rate=0.85, noise="pinknoise", noise_level=0.05),
    Voice("espeak-us-150", "espeak", "en-us", 150),
    Voice("espeak-us-190", "espeak", "en-us", 190),
    Voice("espeak-gb-170-brown", "espeak", "en-gb", 170, "brownnoise", 0.1),
    Voice("espeak-f3-160", "espeak", "en-us+f3", 160),
    Voice("espeak-m3-175-white", "espeak", "en-us+m3", 175, "whitenoise", 0.02),
)


@dataclass(frozen=True)
class Utterance:
    """One file of the test set."""

    wav: Path
    text: str


def plan(count: int | None = None) -> list[tuple[int, str, Voice]]:
    """``(index, text, voice)`` for every utterance: question i goes to voice i mod len(VOICES)."""
    questions = QUESTIONS if count is None else QUESTIONS[:count]
    return [(index, text, VOICES[index % len(VOICES)]) for index, text in enumerate(questions)]


def _recipe_hash(items: Sequence[tuple[int, str, Voice]]) -> str:
    recipe = {"version": RECIPE_VERSION, "items": [(index, text, asdict(voice)) for index, text, voice in items]}
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]


def _run(command: Sequence[str], stdin: bytes | None = None) -> bytes:
    result = subprocess.run(list(command), input=stdin, capture_output=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{command[0]} failed ({result.returncode}): {result.stderr.decode(errors='replace')}")
    return result.stdout


def _finish(source: list[str], target: Path, voice: Voice) -> None:
    """sox: ``source`` (a sox input spec) → 16 kHz mono 16-bit with 250 ms silence either side, noise mixed
    in when the voice asks for it."""
    pad = ["pad", "0.25", "0.25"]
    if not voice.noise:
        _run(
            [
                "sox",
                "-R",
                *source,
                "-r",
                str(TESTSET_SAMPLE_RATE),
                "-c",
                "1",
                "-b",
                "16",
                str(target),
                "rate",
                "-h",
                *pad,
            ]
        )
        return
    clean = target.with_suffix(".clean.wav")
    _run(["sox", "-R", *source, "-r", str(TESTSET_SAMPLE_RATE), "-c", "1", "-b", "16", str(clean), "rate", "-h", *pad])
    seconds = float(_run(["soxi", "-D", str(clean)]).strip())
    # -R: repeatable (sox seeds its noise generator with a constant), so the set is the same every time.
    noise = target.with_suffix(".noise.wav")
    synth = ["synth", f"{seconds:.4f}", voice.noise, "vol", str(voice.noise_level)]
    _run(["sox", "-R", "-n", "-r", str(TESTSET_SAMPLE_RATE), "-c", "1", "-b", "16", str(noise), *synth])
    _run(["sox", "-R", "-m", "-v", "1", str(clean), "-v", "1", str(noise), str(target), "norm", "-1"])
    clean.unlink()
    noise.unlink()


def _espeak(text: str, voice: Voice, target: Path) -> None:
    raw = target.with_suffix(".espeak.wav")
    _run(["espeak-ng", "-v", voice.voice, "-s", str(int(voice.rate)), "-w", str(raw), text])
    _finish([str(raw)], target, voice)
    raw.unlink()


def _piper_finish(source: list[str], target: Path, voice: Voice, raw: Path) -> None:
    _finish(source, target, voice)
    raw.unlink()


def _piper_pcm(texts: Sequence[tuple[str, float]]) -> tuple[list[bytes], int]:
    """Synthesise with the embedded joe voice; returns PCM s16le per text and the voice's sample rate."""
    from piper import PiperVoice, SynthesisConfig

    from voicebot.providers.piper import resolve_voice
    from voicebot.settings import EMBEDDED

    model, config = resolve_voice(EMBEDDED)
    piper = PiperVoice.load(model, config_path=config)
    pcms = []
    for text, scale in texts:
        # No noise in the voice model: Piper's sampling is not seeded, and the set must not change.
        settings = SynthesisConfig(length_scale=scale, noise_scale=0.0, noise_w_scale=0.0)
        pcms.append(b"".join(chunk.audio_int16_bytes for chunk in piper.synthesize(text, syn_config=settings)))
    return pcms, int(piper.config.sample_rate)


def generate(out: Path, count: int | None = None) -> list[Utterance]:
    """Write the test set into ``out`` (created if needed) and return its utterances. A folder already
    holding the same recipe (same texts, voices and version) is reused as it is."""
    if shutil.which("espeak-ng") is None or shutil.which("sox") is None:
        raise RuntimeError("the test set needs espeak-ng and sox: apt-get install -y espeak-ng sox")
    items = plan(count)
    recipe = _recipe_hash(items)
    out.mkdir(parents=True, exist_ok=True)
    manifest = out / "manifest.json"
    utterances = [Utterance(out / f"{index:03d}-{voice.name}.wav", text) for index, text, voice in items]
    complete = all(u.wav.is_file() and u.wav.with_suffix(".txt").is_file() for u in utterances)
    if complete and manifest.is_file() and json.loads(manifest.read_text()).get("recipe") == recipe:
        return utterances
    for stale in [*out.glob("*.wav"), *out.glob("*.txt")]:
        stale.unlink()
    piper_items = [(index, text, voice) for index, text, voice in items if voice.engine == "piper"]
    pcms, piper_rate = _piper_pcm([(text, voice.rate) for _, text, voice in piper_items])
    jobs: list[Callable[[], None]] = []
    for (index, _text, voice), pcm in zip(piper_items, pcms, strict=True):
        target = out / f"{index:03d}-{voice.name}.wav"
        raw = target.with_suffix(".piper.raw")
        raw.write_bytes(pcm)
        source = ["-t", "raw", "-r", str(piper_rate), "-e", "signed", "-b", "16", "-c", "1", str(raw)]
        jobs.append(partial(_piper_finish, source, target, voice, raw))
    for index, text, voice in items:
        if voice.engine == "espeak":
            target = out / f"{index:03d}-{voice.name}.wav"
            jobs.append(partial(_espeak, text, voice, target))
    with ThreadPoolExecutor(max_workers=2) as pool:
        for future in [pool.submit(job) for job in jobs]:
            future.result()
    for utterance in utterances:
        utterance.wav.with_suffix(".txt").write_text(utterance.text + "\n")
    manifest.write_text(json.dumps({"recipe": recipe, "count": len(utterances)}, indent=2) + "\n")
    return utterances


def load(folder: Path) -> list[Utterance]:
    """Every ``*.wav`` in ``folder`` that has a ``.txt`` transcript beside it, sorted by name."""
    return [
        Utterance(wav, wav.with_suffix(".txt").read_text().strip())
        for wav in sorted(folder.glob("*.wav"))
        if wav.with_suffix(".txt").is_file()
    ]


def describe(utterances: Sequence[Utterance]) -> str:
    """One line about the set: how many utterances, voices, and the spread of durations."""
    seconds = []
    for utterance in utterances:
        pcm, rate = read_wav(utterance.wav)
        seconds.append(len(pcm) / 2 / rate)
    voices = {utterance.wav.stem.split("-", 1)[-1] for utterance in utterances}
    if not seconds:
        return "0 utterances"
    return (
        f"{len(utterances)} utterances, {len(voices)} voices, "
        f"{min(seconds):.1f}–{max(seconds):.1f} s (total {sum(seconds):.0f} s)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m voicebot.bench.testset --out DIR [--count N]``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, required=True, help="folder for the WAV and TXT files")
    parser.add_argument("--count", type=int, default=None, help="only the first N questions")
    args = parser.parse_args(argv)
    utterances = generate(args.out, args.count)
    print(f"{args.out}: {describe(utterances)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
