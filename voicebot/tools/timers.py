"""A session's kitchen timers: set, list and cancel them, and learn when one ends.

Each session owns one ``TimerBoard``. Time comes from an injected ``Clock`` (monotonic seconds plus a
matching ``sleep``), so tests drive timers with ``ManualClock.advance`` instead of waiting. The board
does not speak: when a timer ends it calls ``on_fire(timer)``, and the session decides when to say it
(at once when idle, after the turn when the user is talking).

``TimerBoard.run()`` is the one task per session that waits for the next expiry; setting or cancelling
a timer wakes it so it always sleeps until the right deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol


class Clock(Protocol):
    """Monotonic time and a way to wait on it."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` on this clock."""
        ...


class RealClock:
    """The event loop's own time."""

    def monotonic(self) -> float:
        """``time.monotonic()``."""
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        """``asyncio.sleep``."""
        await asyncio.sleep(max(0.0, seconds))


class ManualClock:
    """A clock for tests: time moves only when ``advance`` is called, and sleepers wake then."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def monotonic(self) -> float:
        """The current manual time."""
        return self.now

    async def sleep(self, seconds: float) -> None:
        """Wait until ``advance`` moves time past now + ``seconds``."""
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + seconds, next(self._order), future))
        await future

    def advance(self, seconds: float) -> None:
        """Move time forward and wake every sleeper whose deadline has come."""
        self.now += seconds
        while self._sleepers and self._sleepers[0][0] <= self.now:
            _, _, future = heapq.heappop(self._sleepers)
            if not future.done():
                future.set_result(None)

    @property
    def sleepers(self) -> int:
        """How many sleeps are still waiting (cancelled ones included until their time comes)."""
        return sum(1 for *_, future in self._sleepers if not future.done())


class TimerError(Exception):
    """A timer cannot be set or found; the message is a plain reason the user may hear."""


@dataclass
class Timer:
    """One running timer."""

    id: int
    """Number of the timer in its session, 1, 2, ..."""
    duration_s: float
    """How long it was set for."""
    started: float
    """Clock time when it was set."""
    label: str | None = None
    """A name the user gave it ("pasta"), if any."""
    deadline: float = field(init=False)
    """Clock time when it ends."""

    def __post_init__(self) -> None:
        self.deadline = self.started + self.duration_s

    def remaining_s(self, now: float) -> float:
        """Seconds left at clock time ``now`` (0 once it has ended)."""
        return max(0.0, self.deadline - now)

    def describe(self) -> str:
        """How people call it: "the pasta timer" or "the 5 minute timer"."""
        if self.label:
            return f"the {self.label} timer"
        return f"the {format_duration(self.duration_s, compact=True)} timer"

    def to_dict(self, now: float) -> dict[str, Any]:
        """The timer for the page (which shows a countdown) and the logs."""
        return {
            "id": self.id,
            "label": self.label,
            "duration_s": self.duration_s,
            "remaining_s": round(self.remaining_s(now), 3),
        }


def _plural(count: int, unit: str) -> str:
    return f"{count} {unit}" + ("" if count == 1 else "s")


def format_duration(seconds: float, compact: bool = False) -> str:
    """Seconds as people say them: "1 hour and 5 minutes", "30 seconds"; ``compact`` gives the form
    used before "timer" ("5 minute", "1 hour 30 minute")."""
    total = round(seconds)
    if total <= 0:
        return "0 seconds" if not compact else "0 second"
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    parts: list[str] = []
    for count, unit in ((hours, "hour"), (minutes, "minute"), (secs, "second")):
        if count:
            parts.append(f"{count} {unit}" if compact else _plural(count, unit))
    if compact:
        return " ".join(parts)
    if len(parts) == 1:
        return parts[0]
    return ", ".join(parts[:-1]) + " and " + parts[-1]


OnFire = Callable[[Timer], None]


class TimerBoard:
    """The timers of one session, with limits on how many and how long."""

    def __init__(
        self,
        on_fire: OnFire | None = None,
        clock: Clock | None = None,
        max_timers: int = 10,
        max_duration_s: float = 24 * 3600,
    ) -> None:
        self.on_fire = on_fire
        """Called once for each timer that ends (from ``fire_due``; keep it short)."""
        self.clock: Clock = clock or RealClock()
        self.max_timers = max_timers
        self.max_duration_s = max_duration_s
        self._timers: dict[int, Timer] = {}
        self._ids = itertools.count(1)
        self._changed = asyncio.Event()

    def __len__(self) -> int:
        return len(self._timers)

    def now(self) -> float:
        """The board's clock time."""
        return self.clock.monotonic()

    def set(self, duration_s: float, label: str | None = None) -> Timer:
        """Start a timer of ``duration_s`` seconds; raises ``TimerError`` over the limits."""
        if duration_s < 1:
            raise TimerError("a timer must run for at least one second")
        if duration_s > self.max_duration_s:
            raise TimerError(f"timers can run for at most {format_duration(self.max_duration_s)}")
        if len(self._timers) >= self.max_timers:
            raise TimerError(f"there are already {_plural(self.max_timers, 'timer')} running, the most I can keep")
        clean_label = " ".join(label.split()).strip() if label else None
        timer = Timer(id=next(self._ids), duration_s=float(duration_s), started=self.now(), label=clean_label or None)
        self._timers[timer.id] = timer
        self._changed.set()
        return timer

    def running(self) -> list[Timer]:
        """Running timers, the one that ends first first."""
        return sorted(self._timers.values(), key=lambda timer: (timer.deadline, timer.id))

    def find(self, label: str | None = None, timer_id: int | None = None) -> list[Timer]:
        """Running timers that match ``timer_id`` or ``label`` (a name, or a length such as "5 minute"
        for unnamed timers); all of them when neither is given."""
        timers = self.running()
        if timer_id is not None:
            return [timer for timer in timers if timer.id == timer_id]
        if label:
            wanted = " ".join(label.lower().split())
            named = [timer for timer in timers if timer.label and timer.label.lower() == wanted]
            if named:
                return named
            # "the 5 minute timer": unnamed timers are called by their length
            return [
                timer
                for timer in timers
                if not timer.label and format_duration(timer.duration_s, compact=True) == wanted
            ]
        return timers

    def cancel(self, label: str | None = None, timer_id: int | None = None, every: bool = False) -> list[Timer]:
        """Cancel the matching timer(s) and return them. Without ``label``/``timer_id``: the only
        timer, or all of them with ``every``; several running timers without ``every`` is an error
        (the user should say which)."""
        matches = self.find(label, timer_id)
        if not matches:
            raise TimerError("there is no timer like that" if (label or timer_id) else "no timer is running")
        if len(matches) > 1 and not every and label is None and timer_id is None:
            raise TimerError(f"{_plural(len(matches), 'timer')} are running; say which one, or cancel all of them")
        for timer in matches:
            del self._timers[timer.id]
        self._changed.set()
        return matches

    def cancel_all(self) -> list[Timer]:
        """Cancel every timer (the session is closing); returns them."""
        timers = self.running()
        self._timers.clear()
        self._changed.set()
        return timers

    def next_deadline(self) -> float | None:
        """Clock time of the next expiry, or None when no timer runs."""
        return min((timer.deadline for timer in self._timers.values()), default=None)

    def fire_due(self) -> list[Timer]:
        """Remove every timer whose deadline has come, call ``on_fire`` for each (earliest first) and
        return them."""
        now = self.now()
        due = [timer for timer in self.running() if timer.deadline <= now]
        for timer in due:
            del self._timers[timer.id]
        for timer in due:
            if self.on_fire is not None:
                self.on_fire(timer)
        return due

    async def wait_fired(self) -> list[Timer]:
        """Wait until at least one timer ends, fire it (see ``fire_due``) and return what fired.

        Setting or cancelling timers meanwhile is taken into account; with no timer running this waits
        until one is set and ends.
        """
        while True:
            due = self.fire_due()
            if due:
                return due
            self._changed.clear()
            deadline = self.next_deadline()
            changed = asyncio.ensure_future(self._changed.wait())
            waiters: set[asyncio.Future[Any]] = {changed}
            if deadline is not None:
                waiters.add(asyncio.ensure_future(self.clock.sleep(deadline - self.now())))
            try:
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waiters:
                    waiter.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await waiter

    async def run(self) -> None:
        """Fire timers as they end, until cancelled (one task per session)."""
        while True:
            await self.wait_fired()
