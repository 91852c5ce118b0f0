"""What the browser tests share: pressing the mic, and reading the frames the page sent and received
(recorded by conftest.WIRE_RECORDER with the page's own clock)."""

from __future__ import annotations

import json

REPLY_TIMEOUT_MS = 45_000


def hold_mic(page, ms: int) -> None:
    box = page.locator("#mic").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.wait_for_timeout(ms)
    page.mouse.up()


def wire(page) -> dict:
    return page.evaluate("window.__wire")


def sent_actions(page) -> list[dict]:
    return [json.loads(frame["text"]) for frame in wire(page)["sent"] if frame["text"] is not None]


def received_events(page, event_type: str | None = None) -> list[dict]:
    events = []
    for frame in wire(page)["received"]:
        if frame["text"] is None:
            continue
        event = json.loads(frame["text"]) | {"_t": frame["t"]}
        if event_type is None or event["type"] == event_type:
            events.append(event)
    return events


def wait_for_event(page, event_type: str, reason: str | None = None, timeout: int = REPLY_TIMEOUT_MS) -> None:
    """Waits until the page has received an event of this type (and reason, when given)."""
    page.wait_for_function(
        """([type, reason]) => window.__wire.received.some((frame) => {
            if (frame.text === null) return false;
            const event = JSON.parse(frame.text);
            return event.type === type && (reason === null || event.reason === reason);
        })""",
        arg=[event_type, reason],
        timeout=timeout,
    )
