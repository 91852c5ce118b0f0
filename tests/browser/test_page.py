"""The push-to-talk page in headless Chromium against the real server and models.

The fake microphone speaks a question (see speech.py). Assertions are on what a person sees
(bubbles, status line, latency readout) and on the frames the page really sent and received.
"""

from __future__ import annotations

import math
import re

import pytest
from playwright.sync_api import expect
from wire import REPLY_TIMEOUT_MS, hold_mic, received_events, sent_actions, wait_for_event, wire

pytestmark = pytest.mark.browser

SHORT_QUESTION = "What is the capital of France?"  # a short reply: about 2 s of speech
LONG_QUESTION = "Tell me about Paris, the capital of France."  # a reply long enough to interrupt
HOLD_MS = 3300  # the spoken question plus some of the silence after it


# True when the waveform canvas draws a signal rather than a flat line: its drawn pixels span
# more than a few rows.
WAVEFORM_MOVES = """() => {
    const canvas = document.querySelector("#waveform");
    const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
    let top = canvas.height, bottom = -1;
    for (let i = 3; i < pixels.length; i += 4) {
        if (pixels[i] === 0) continue;
        const row = Math.floor((i >> 2) / canvas.width);
        top = Math.min(top, row);
        bottom = Math.max(bottom, row);
    }
    return bottom - top > 8;
}"""


def same_words(a: str, b: str) -> bool:
    return a.split() == b.split()


def test_page_is_accessible_and_fits_a_phone(open_page) -> None:
    page = open_page(SHORT_QUESTION, viewport={"width": 360, "height": 720})

    assert page.get_by_role("button", name="Hold to talk").is_visible()
    assert page.get_by_role("button", name="New conversation").is_visible()
    assert page.get_by_role("status").inner_text() == "Ready"
    assert page.get_by_role("status").get_attribute("aria-live") == "polite"
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    mic = page.locator("#mic").bounding_box()
    assert mic["width"] >= 64 and mic["x"] >= 0 and mic["x"] + mic["width"] <= 360

    page.keyboard.press("Tab")  # focus lands on a control and is visibly outlined
    focused_outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert page.evaluate("document.activeElement.tagName") == "BUTTON"
    assert focused_outline != "none"


def test_socket_url_follows_the_page_scheme(open_page) -> None:
    page = open_page(SHORT_QUESTION)
    urls = page.evaluate(
        """async () => {
            const { Connection } = await import("/static/connection.js");
            return [Connection.voiceUrl({ protocol: "https:", host: "example.org" }),
                    Connection.voiceUrl({ protocol: "http:", host: "127.0.0.1:8000" })];
        }"""
    )
    assert urls == ["wss://example.org/ws/voice", "ws://127.0.0.1:8000/ws/voice"]


def test_hold_to_talk_gets_a_spoken_reply(open_page) -> None:
    page = open_page(SHORT_QUESTION)
    mic = page.locator("#mic")

    box = mic.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.wait_for_function("window.voicebot.serverState === 'listening'", timeout=5000)
    assert page.locator("body").get_attribute("data-state") == "listening"
    assert mic.get_attribute("aria-pressed") == "true"
    assert page.get_by_role("status").inner_text() == "Listening…"
    page.wait_for_function(WAVEFORM_MOVES, timeout=2000)  # the microphone's signal
    page.wait_for_timeout(HOLD_MS)
    page.mouse.up()
    assert page.evaluate(WAVEFORM_MOVES) is False  # flat again once released

    # The microphone went out as 16 kHz PCM s16le in small whole-sample frames, for about the hold.
    sent = wire(page)["sent"]
    audio_frames = [frame["bytes"] for frame in sent if frame["text"] is None]
    assert audio_frames and all(640 <= size <= 3200 and size % 2 == 0 for size in audio_frames)
    audio_seconds = sum(audio_frames) / 2 / 16000
    # As long as the button was really held (a busy machine releases it later than asked).
    pressed_at = next(f["t"] for f in sent if f["text"] is not None and "start_listening" in f["text"])
    held_s = (wire(page)["releasedAt"][-1] - pressed_at) / 1000
    assert held_s - 0.8 < audio_seconds < held_s + 0.3, (audio_seconds, held_s)
    actions = [a["action"] for a in sent_actions(page)]
    assert actions == ["set_time_zone", "start_listening", "stop_listening"]

    # The transcript bubble shows what was said.
    user_bubble = page.locator(".bubble.user:not([data-partial])").first  # final, not a partial one
    user_bubble.wait_for(timeout=REPLY_TIMEOUT_MS)
    assert re.search(r"capital|france", user_bubble.inner_text(), re.IGNORECASE)

    # The reply streams into its bubble, then settles to the server's final text.
    reply = page.locator(".bubble.assistant").first
    page.locator(".bubble.assistant[data-settled='true']").wait_for(timeout=REPLY_TIMEOUT_MS)
    done = received_events(page, "response_done")[0]
    pieces = [event["text"] for event in received_events(page, "response_text")]
    assert len(pieces) > 1 and "".join(pieces) == done["text"] and done["text"].strip()
    assert same_words(reply.locator(".text").inner_text(), done["text"])
    shown = page.evaluate("window.__replyText")
    streaming = [seen["text"] for seen in shown if seen["settled"] == "false" and seen["text"]]
    assert len(streaming) > 1 and all(done["text"].startswith(text) for text in streaming)
    assert shown[-1] == {"text": done["text"], "settled": "true"}

    # The reply is heard: the page goes to speaking, then back to ready once playback ends.
    page.wait_for_function("window.voicebot.playing", timeout=REPLY_TIMEOUT_MS)
    assert page.locator("body").get_attribute("data-state") == "speaking"
    page.wait_for_function(WAVEFORM_MOVES, timeout=1500)  # the assistant's voice
    page.wait_for_function("!window.voicebot.playing", polling="raf", timeout=REPLY_TIMEOUT_MS)
    drained_at = page.evaluate("performance.now()")
    page.wait_for_function("window.voicebot.state === 'idle'", timeout=5000)
    expect(page.get_by_role("status")).to_have_text("Ready")

    # All of the reply's audio was played, back to back: as long as the server said it lasts.
    duration_ms = received_events(page, "audio_done")[0]["duration_ms"]
    assert abs(page.evaluate("window.voicebot.playedMs") - duration_ms) < 30
    first_sound_at = wire(page)["releasedAt"][-1] + page.evaluate("window.voicebot.lastLatencyMs")
    assert abs((drained_at - first_sound_at) - duration_ms) < 250

    # Latency: from the release to the first sound, never before the reply's audio arrived.
    latency = page.evaluate("window.voicebot.lastLatencyMs")
    released_at = wire(page)["releasedAt"][-1]
    audio_arrived_at = received_events(page, "audio_start")[0]["_t"]
    assert audio_arrived_at - released_at - 5 <= latency <= audio_arrived_at - released_at + 500
    assert reply.get_attribute("data-latency-ms") == str(latency)
    assert reply.locator(".latency-value").inner_text() == f"{latency} ms to first sound"
    assert page.locator("#latency").inner_text() == f"Last reply: {latency} ms from release to first sound"


def test_a_very_short_press_says_nothing_was_heard(open_page) -> None:
    page = open_page(SHORT_QUESTION)
    hold_mic(page, 100)
    wait_for_event(page, "status", reason="nothing_heard")
    nothing_heard = [e for e in received_events(page, "status") if e.get("reason") == "nothing_heard"][-1]
    expect(page.get_by_role("status")).to_have_text(nothing_heard["message"])
    assert page.locator(".bubble").count() == 0


def test_barge_in_silences_the_reply_and_listens(open_page, artifacts) -> None:
    page = open_page(LONG_QUESTION)
    hold_mic(page, HOLD_MS)

    # Interrupt once about a second of the reply has been played, while the server still speaks.
    page.wait_for_function("window.voicebot.playing && window.voicebot.playedMs > 1000", timeout=REPLY_TIMEOUT_MS)
    assert page.evaluate("window.voicebot.serverState") == "speaking", "reply ended before the barge-in"
    played_before = page.evaluate("window.voicebot.playedMs")
    page.mouse.down()
    assert page.evaluate("window.voicebot.playing") is False  # silenced at once, by the page itself

    start = [a for a in sent_actions(page) if a["action"] == "start_listening"][-1]
    # played_ms is whole milliseconds (rounded by the page), played_before is not.
    assert math.floor(played_before) <= start["played_ms"] <= played_before + 300

    # The server cut the reply where the page said; the bubble shows heard and unheard parts.
    page.wait_for_function("window.voicebot.serverState === 'listening'", timeout=10_000)
    listening = [e for e in received_events(page, "status") if e["state"] == "listening"][-1]
    assert listening.get("reason") == "interrupted"
    interrupted = received_events(page, "response_interrupted")[0]
    reply = page.locator(".bubble.assistant[data-interrupted='true']")
    assert same_words(reply.locator(".heard").inner_text(), interrupted["heard"]) and interrupted["heard"].strip()
    assert reply.locator(".unheard").inner_text().strip() != ""
    assert reply.locator(".tag").inner_text().startswith("Interrupted")
    heard_opacity = float(reply.locator(".heard").evaluate("e => getComputedStyle(e).opacity"))
    unheard_opacity = float(reply.locator(".unheard").evaluate("e => getComputedStyle(e).opacity"))
    assert unheard_opacity < heard_opacity

    # No audio of the old reply is played after the barge-in, though some may still arrive.
    page.wait_for_timeout(300)
    assert page.evaluate("window.voicebot.playing") is False
    assert page.locator("body").get_attribute("data-state") == "listening"
    page.screenshot(path=str(artifacts / "page.png"))
    page.mouse.up()


def test_space_bar_talks_and_new_conversation_resets(open_page) -> None:
    page = open_page(SHORT_QUESTION)
    page.keyboard.down("Space")
    page.wait_for_function("window.voicebot.serverState === 'listening'", timeout=5000)
    page.wait_for_timeout(HOLD_MS)
    page.keyboard.up("Space")
    page.locator(".bubble.user").wait_for(timeout=REPLY_TIMEOUT_MS)
    page.locator(".bubble.assistant").wait_for(timeout=REPLY_TIMEOUT_MS)

    page.get_by_role("button", name="New conversation").click()
    assert page.locator(".bubble").count() == 0
    assert page.locator(".empty-hint").is_visible()
    assert page.evaluate("window.voicebot.playing") is False
    assert sent_actions(page)[-1] == {"action": "reset"}
    assert page.evaluate("document.activeElement.id") == "mic"  # Space talks again, not resets again
    wait_for_event(page, "status", reason="reset", timeout=10_000)
    page.wait_for_function("window.voicebot.state === 'idle'")
    page.wait_for_timeout(500)  # late events of the forgotten turn must not bring bubbles back
    assert page.locator(".bubble").count() == 0


def test_reconnects_after_the_server_restarts(open_page, server) -> None:
    page = open_page(SHORT_QUESTION)
    first_session = page.evaluate("window.voicebot.sessionId")

    server.stop()
    page.wait_for_function("!window.voicebot.connected", timeout=10_000)
    assert page.locator("body").get_attribute("data-state") == "offline"
    assert re.search(r"reconnecting", page.get_by_role("status").inner_text(), re.IGNORECASE)
    assert page.locator("#connection").inner_text() == "Offline"

    server.start()
    page.wait_for_function("window.voicebot.connected", timeout=30_000)
    assert page.evaluate("window.voicebot.sessionId") != first_session
    assert page.get_by_role("status").inner_text() == "Ready"
    assert page.locator("#connection").inner_text() == "Connected"
