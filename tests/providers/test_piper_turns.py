"""The voice takes one piece at a time, and a piece needed much sooner stops the one being
synthesised (which is then synthesised again, whole): a turn's first words do not wait for
another reply's long sentence. With the embedded Piper voice."""

from __future__ import annotations

import functools
import threading
import time

import pytest

from voicebot.providers.piper import GIVES_WAY_S, PiperTTS, VoiceTurns
from voicebot.settings import PiperSettings

pytestmark = pytest.mark.models

LONG = "The moon is Earth's only natural satellite, and it shapes our tides, our calendars and our nights."
SHORT = "The capital of France"


@pytest.fixture(scope="module")
def voice() -> PiperTTS:
    return PiperTTS(PiperSettings())


def _run_two(voice: PiperTTS, turns: VoiceTurns, later_in_s: float) -> list[tuple[str, bytes]]:
    """A long piece needed ``later_in_s`` from now starts; while it is synthesised, a short piece
    needed now comes. The pieces in the order they were done."""
    done: list[tuple[str, bytes]] = []

    def synthesise(name: str, text: str, deadline: float) -> None:
        audio = turns.run(functools.partial(voice._piece, text), deadline)
        done.append((name, b"".join(audio)))

    later = threading.Thread(target=synthesise, args=("later", LONG, time.monotonic() + later_in_s))
    later.start()
    while not turns.busy():
        time.sleep(0.001)
    time.sleep(0.03)  # well inside the long piece's synthesis (hundreds of milliseconds)
    synthesise("sooner", SHORT, time.monotonic())
    later.join()
    return done


def test_a_piece_needed_much_sooner_stops_the_one_being_synthesised(voice: PiperTTS) -> None:
    alone = b"".join(voice._piece(LONG, None))
    turns = VoiceTurns()
    done = _run_two(voice, turns, later_in_s=GIVES_WAY_S + 5)
    assert [name for name, _ in done] == ["sooner", "later"]
    assert turns.stopped == 1
    later = dict(done)["later"]
    # Synthesised again from its start: the whole sentence (Piper's timing varies a little run to run).
    assert 0.8 * len(alone) < len(later) < 1.25 * len(alone)
    assert not turns.busy()


def test_a_piece_needed_about_as_soon_is_not_stopped(voice: PiperTTS) -> None:
    turns = VoiceTurns()
    done = _run_two(voice, turns, later_in_s=GIVES_WAY_S / 2)
    assert [name for name, _ in done] == ["later", "sooner"]
    assert turns.stopped == 0


def test_a_stopped_piece_nobody_wants_any_more_is_not_synthesised_again(voice: PiperTTS) -> None:
    """A barge-in while the reply's piece waits to be synthesised again: the piece is dropped."""
    turns = VoiceTurns()
    unwanted = threading.Event()
    results: list[list[bytes] | None] = []

    def later() -> None:
        results.append(turns.run(functools.partial(voice._piece, LONG), time.monotonic() + 10, unwanted))

    thread = threading.Thread(target=later)
    thread.start()
    while not turns.busy():
        time.sleep(0.001)
    time.sleep(0.03)
    unwanted.set()  # the listener barged in
    assert turns.run(functools.partial(voice._piece, SHORT), time.monotonic())
    thread.join()
    assert results == [None] and turns.stopped == 1
