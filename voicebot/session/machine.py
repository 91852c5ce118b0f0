"""The session state machine: which state a voice session is in and which triggers may move it.

This module does no I/O. The session fires triggers from a single task and reports each change to the
page; the table below is the single source of truth for what is legal, and the unit tests walk it.
We use a plain (synchronous) ``transitions.Machine``: callbacks are short and never await, so a
transition runs to completion before any other task can observe the state.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from transitions import Machine, MachineError


class State(StrEnum):
    """Where a session is in the conversation loop."""

    IDLE = "idle"
    LISTENING = "listening"
    TRANSCRIBING = "transcribing"
    THINKING = "thinking"
    SPEAKING = "speaking"


class Trigger(StrEnum):
    """Everything that can move a session from one state to another."""

    START_LISTENING = "start_listening"
    """The user pressed the mic (from idle, or a barge-in while a reply is in progress)."""
    STOP_LISTENING = "stop_listening"
    """The user released the mic: the utterance is complete and the turn starts."""
    TRANSCRIBED = "transcribed"
    """Speech recognition produced a transcript."""
    NOTHING_HEARD = "nothing_heard"
    """The utterance was silence or too short: back to idle without a reply."""
    SPEAK = "speak"
    """The first audio of the reply is ready."""
    FINISH = "finish"
    """The reply is complete (all text and audio sent)."""
    FAIL = "fail"
    """A stage failed; the turn is abandoned."""
    RESET = "reset"
    """The user asked for a new conversation."""
    ANNOUNCE = "announce"
    """The assistant speaks on its own, unprompted (a timer ended), from idle."""


#: States in which a turn (ASR, LLM, TTS work) is running.
BUSY_STATES: frozenset[State] = frozenset({State.TRANSCRIBING, State.THINKING, State.SPEAKING})

#: The transition table: trigger, the states it may fire from, and the state it leads to.
TRANSITIONS: tuple[tuple[Trigger, tuple[State, ...], State], ...] = (
    (Trigger.START_LISTENING, (State.IDLE, *sorted(BUSY_STATES)), State.LISTENING),
    (Trigger.STOP_LISTENING, (State.LISTENING,), State.TRANSCRIBING),
    (Trigger.TRANSCRIBED, (State.TRANSCRIBING,), State.THINKING),
    (Trigger.NOTHING_HEARD, (State.TRANSCRIBING,), State.IDLE),
    (Trigger.SPEAK, (State.THINKING,), State.SPEAKING),
    (Trigger.FINISH, (State.THINKING, State.SPEAKING), State.IDLE),
    (Trigger.FAIL, tuple(sorted(BUSY_STATES)), State.IDLE),
    (Trigger.RESET, tuple(State), State.IDLE),
    (Trigger.ANNOUNCE, (State.IDLE,), State.SPEAKING),
)


class IllegalTransition(Exception):
    """A trigger was fired in a state that does not allow it."""

    def __init__(self, trigger: Trigger, state: State) -> None:
        super().__init__(f"cannot {trigger.value} while {state.value}")
        self.trigger = trigger
        self.state = state


@dataclass(frozen=True)
class Change:
    """One completed transition."""

    source: State
    dest: State
    trigger: Trigger


class SessionMachine:
    """A typed wrapper around ``transitions.Machine`` for one session.

    ``on_change`` is called synchronously after every transition (including reset from idle to idle)
    and must stay short: it may log or queue a message, never do long work.
    """

    state: State

    def __init__(self, on_change: Callable[[Change], None] | None = None) -> None:
        self._on_change = on_change
        self._machine = Machine(
            model=self,
            states=State,
            initial=State.IDLE,
            auto_transitions=False,
            ignore_invalid_triggers=False,
        )
        for trigger, sources, dest in TRANSITIONS:
            self._machine.add_transition(trigger.value, [s.name for s in sources], dest.name)

    def can(self, trigger: Trigger) -> bool:
        """Whether ``trigger`` is legal in the current state."""
        return trigger.value in self._machine.get_triggers(self.state.name)

    def fire(self, trigger: Trigger) -> Change:
        """Fire ``trigger``; raise :class:`IllegalTransition` when the current state forbids it."""
        source = self.state
        try:
            self._machine.events[trigger.value].trigger(self)
        except MachineError as exc:
            raise IllegalTransition(trigger, source) from exc
        change = Change(source=source, dest=self.state, trigger=trigger)
        if self._on_change is not None:
            self._on_change(change)
        return change

    @property
    def busy(self) -> bool:
        """Whether a turn is in progress (transcribing, thinking or speaking)."""
        return self.state in BUSY_STATES
