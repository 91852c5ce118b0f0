// Running timers (issue 13): the server sends the whole list whenever a timer is set, cancelled
// or ends (`timers`, docs/protocol.md); the page counts each one down by itself from its
// `remaining_s`. When a timer ends the server says so as a normal reply and sends the new list.
// Everything is written with textContent: labels come from what the user said.

const TICK_MS = 250;

export class TimerList {
  /** @param {HTMLElement} list the <ul> that shows the timers (hidden while there are none) */
  constructor(list) {
    this.list = list;
    this.timers = []; // {id, label, durationS, endsAt (performance.now() ms), item, time}
    this.ticker = 0;
  }

  /** Replaces the list with the server's (a `timers` event). */
  update(timers) {
    const now = performance.now();
    this.timers = timers.map((timer) => this.view(timer, now));
    this.list.replaceChildren(...this.timers.map((timer) => timer.item));
    this.list.hidden = this.timers.length === 0;
    clearInterval(this.ticker);
    if (this.timers.length > 0) this.ticker = setInterval(() => this.tick(), TICK_MS);
    this.tick();
  }

  clear() {
    this.update([]);
  }

  view(timer, now) {
    const item = document.createElement("li");
    item.className = "timer";
    item.dataset.timerId = String(timer.id);
    const name = document.createElement("span");
    name.className = "timer-name";
    name.textContent = timer.label || `${formatLength(timer.duration_s)} timer`;
    const time = document.createElement("span");
    time.className = "timer-time";
    item.append(name, time);
    return { endsAt: now + Math.max(0, Number(timer.remaining_s) || 0) * 1000, item, time };
  }

  tick() {
    const now = performance.now();
    for (const timer of this.timers) {
      const seconds = Math.max(0, Math.ceil((timer.endsAt - now) / 1000));
      const text = formatClock(seconds);
      if (timer.time.textContent !== text) timer.time.textContent = text;
      timer.item.dataset.remainingS = String(seconds);
    }
  }
}

/** 75 -> "1:15", 3725 -> "1:02:05". */
export function formatClock(seconds) {
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  const mm = h > 0 ? String(m).padStart(2, "0") : String(m);
  return `${h > 0 ? `${h}:` : ""}${mm}:${String(s).padStart(2, "0")}`;
}

/** 300 -> "5 min", 90 -> "1 min 30 s", 20 -> "20 s". */
function formatLength(seconds) {
  const total = Math.round(Number(seconds) || 0);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  return [h && `${h} h`, m && `${m} min`, s && `${s} s`].filter(Boolean).join(" ") || "0 s";
}
