"""The state machine: every legal transition leads where the table says, every other one is refused
and leaves the state unchanged."""

from __future__ import annotations

import pytest

from voicebot.session.machine import TRANSITIONS, Change, IllegalTransition, SessionMachine, State, Trigger

LEGAL: dict[tuple[State, Trigger], State] = {
    (source, trigger): dest for trigger, sources, dest in TRANSITIONS for source in sources
}
EXPECTED_LEGAL = {
    (State.IDLE, Trigger.START_LISTENING): State.LISTENING,
    (State.TRANSCRIBING, Trigger.START_LISTENING): State.LISTENING,
    (State.THINKING, Trigger.START_LISTENING): State.LISTENING,
    (State.SPEAKING, Trigger.START_LISTENING): State.LISTENING,
    (State.LISTENING, Trigger.STOP_LISTENING): State.TRANSCRIBING,
    (State.TRANSCRIBING, Trigger.TRANSCRIBED): State.THINKING,
    (State.TRANSCRIBING, Trigger.NOTHING_HEARD): State.IDLE,
    (State.THINKING, Trigger.SPEAK): State.SPEAKING,
    (State.THINKING, Trigger.FINISH): State.IDLE,
    (State.SPEAKING, Trigger.FINISH): State.IDLE,
    (State.TRANSCRIBING, Trigger.FAIL): State.IDLE,
    (State.THINKING, Trigger.FAIL): State.IDLE,
    (State.SPEAKING, Trigger.FAIL): State.IDLE,
    **{(state, Trigger.RESET): State.IDLE for state in State},
    (State.IDLE, Trigger.ANNOUNCE): State.SPEAKING,  # a timer ended: the assistant speaks unprompted
}


def machine_in(state: State) -> SessionMachine:
    """A machine driven into ``state`` through legal triggers only."""
    path = {
        State.IDLE: [],
        State.LISTENING: [Trigger.START_LISTENING],
        State.TRANSCRIBING: [Trigger.START_LISTENING, Trigger.STOP_LISTENING],
        State.THINKING: [Trigger.START_LISTENING, Trigger.STOP_LISTENING, Trigger.TRANSCRIBED],
        State.SPEAKING: [Trigger.START_LISTENING, Trigger.STOP_LISTENING, Trigger.TRANSCRIBED, Trigger.SPEAK],
    }[state]
    machine = SessionMachine()
    for trigger in path:
        machine.fire(trigger)
    assert machine.state is state
    return machine


def test_the_table_is_exactly_the_designed_one() -> None:
    assert LEGAL == EXPECTED_LEGAL


def test_starts_idle() -> None:
    assert SessionMachine().state is State.IDLE


@pytest.mark.parametrize(("source", "trigger"), sorted(EXPECTED_LEGAL))
def test_legal_transition(source: State, trigger: Trigger) -> None:
    changes: list[Change] = []
    machine = machine_in(source)
    machine._on_change = changes.append
    assert machine.can(trigger)
    change = machine.fire(trigger)
    assert machine.state is EXPECTED_LEGAL[(source, trigger)]
    assert change == Change(source=source, dest=machine.state, trigger=trigger)
    assert changes == [change]


ILLEGAL = sorted((state, trigger) for state in State for trigger in Trigger if (state, trigger) not in EXPECTED_LEGAL)


@pytest.mark.parametrize(("source", "trigger"), ILLEGAL)
def test_illegal_transition_is_refused_and_changes_nothing(source: State, trigger: Trigger) -> None:
    changes: list[Change] = []
    machine = machine_in(source)
    machine._on_change = changes.append
    assert not machine.can(trigger)
    with pytest.raises(IllegalTransition) as refused:
        machine.fire(trigger)
    assert refused.value.state is source and refused.value.trigger is trigger
    assert machine.state is source
    assert changes == []


def test_each_state_allows_exactly_the_designed_triggers() -> None:
    # Asked of the transitions library itself, state by state, not of our own table.
    for state in State:
        machine = machine_in(state)
        allowed = {trigger for trigger in Trigger if machine.can(trigger)}
        assert allowed == {trigger for (source, trigger) in EXPECTED_LEGAL if source is state}, state


def test_busy_only_while_a_turn_runs() -> None:
    assert {state for state in State if machine_in(state).busy} == {
        State.TRANSCRIBING,
        State.THINKING,
        State.SPEAKING,
    }


def test_a_whole_turn() -> None:
    machine = SessionMachine()
    seen = [machine.state]
    for trigger in (
        Trigger.START_LISTENING,
        Trigger.STOP_LISTENING,
        Trigger.TRANSCRIBED,
        Trigger.SPEAK,
        Trigger.FINISH,
    ):
        machine.fire(trigger)
        seen.append(machine.state)
    assert seen == [State.IDLE, State.LISTENING, State.TRANSCRIBING, State.THINKING, State.SPEAKING, State.IDLE]


def test_an_announcement_speaks_from_idle_and_can_be_interrupted_or_finish() -> None:
    machine = SessionMachine()
    machine.fire(Trigger.ANNOUNCE)
    assert machine.state is State.SPEAKING and machine.busy
    machine.fire(Trigger.START_LISTENING)  # barge-in, as over any reply
    assert machine.state is State.LISTENING
    assert not machine.can(Trigger.ANNOUNCE)  # never over the user's turn
