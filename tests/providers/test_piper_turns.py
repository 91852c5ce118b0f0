"""The voice takes one piece at a time, and a piece needed much sooner stops the one being
synthesised (which is then synthesised again, whole): a turn's first words do not wait for
another reply's long sentence. With the embedded Piper voice."""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from collections.abc import Callable

import pytest

from voicebot.providers import piper
from voicebot.providers.piper import GIVES_WAY_S, PiperTTS, VoiceTurns
from voicebot.settings import PiperSettings
from voicebot.threads import StopEvent

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
    _while_synthesising(turns, lambda: synthesise("sooner", SHORT, time.monotonic()))
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


def _while_synthesising(turns: VoiceTurns, act: Callable[[], object]) -> None:
    while not turns.busy():
        time.sleep(0.001)
    time.sleep(0.03)  # well inside the long piece's synthesis (hundreds of milliseconds)
    act()


def _until_free(turns: VoiceTurns) -> None:
    while turns.busy():
        time.sleep(0.001)


def test_a_stopped_piece_nobody_wants_any_more_is_not_synthesised_again(voice: PiperTTS) -> None:
    """A barge-in while the reply's piece waits to be synthesised again: the piece is dropped."""
    turns = VoiceTurns()
    unwanted = StopEvent()
    results: list[list[bytes] | None] = []

    def later() -> None:
        results.append(turns.run(functools.partial(voice._piece, LONG), time.monotonic() + 10, unwanted))

    def barge_in_then_synthesise(options: object) -> list[bytes]:
        unwanted.set()  # the listener barged in while the sooner piece holds the voice
        return voice._piece(SHORT, options)

    thread = threading.Thread(target=later)
    thread.start()
    _while_synthesising(turns, lambda: turns.run(barge_in_then_synthesise, time.monotonic()))
    thread.join()
    assert results == [None]
    assert (turns.stopped, turns.dropped) == (1, 0)


def test_a_piece_nobody_wants_any_more_is_stopped_mid_synthesis(voice: PiperTTS) -> None:
    """A barge-in while the reply's piece is being synthesised: the run itself is cut short (without
    that it would end with its audio), so the cores are free for the user's next words."""
    turns = VoiceTurns()
    unwanted = StopEvent()
    results: list[list[bytes] | None] = []

    def reply() -> None:
        results.append(turns.run(functools.partial(voice._piece, LONG), time.monotonic(), unwanted))

    thread = threading.Thread(target=reply)
    thread.start()
    _while_synthesising(turns, unwanted.set)
    thread.join()
    assert results == [None]
    assert (turns.stopped, turns.dropped) == (0, 1)
    assert not turns.busy()


async def test_a_listener_that_leaves_stops_the_piece_being_synthesised(voice: PiperTTS) -> None:
    """Through the provider: the turn's task is cancelled (a barge-in) while its piece is synthesised."""
    dropped_before = piper._VOICE_TURNS.dropped
    heard: list[bytes] = []

    async def listen() -> None:
        async for chunk in voice.synthesize(LONG):
            heard.append(chunk)

    task = asyncio.create_task(listen())
    await asyncio.to_thread(_while_synthesising, piper._VOICE_TURNS, task.cancel)
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.to_thread(_until_free, piper._VOICE_TURNS)
    assert heard == []
    assert piper._VOICE_TURNS.dropped == dropped_before + 1
