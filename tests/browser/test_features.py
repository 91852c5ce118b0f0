"""The page's hands-free switch, tool chips, timers, time zone, growing transcript and timing
breakdown, in headless Chromium against the real server and models (issues 9, 12 and 13).

The fake microphone speaks a question (speech.py); for hands-free it is framed by silence so the
server's voice detector hears it start and end. Only the growing transcript is injected into the
page's socket: the default recogniser (Whisper) sends no partial transcripts.
"""

from __future__ import annotations

import json
import math
import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect
from wire import REPLY_TIMEOUT_MS, hold_mic, received_events, sent_actions, wait_for_event, wire

pytestmark = pytest.mark.browser

QUESTION = "What is the capital of France?"
LONG_QUESTION = "Tell me about Paris, the capital of France."  # a reply long enough to talk over
TIME_QUESTION = "What time is it?"
TIMER_QUESTION = "Set a timer for ten seconds."
HOLD_MS = 3000
PAGE_ZONE = "Asia/Tokyo"  # far from the server's zone, without daylight saving time


def assert_heard(page, word: str) -> None:
    """Waits for the turn's transcript and checks it holds the word: when the recogniser misheard,
    the failure says what it heard rather than timing out on a missing tool chip."""
    wait_for_event(page, "transcript")
    heard = received_events(page, "transcript")[0]["text"]
    assert word in heard.lower(), f"the server heard {heard!r}"


def audio_frames_sent(page) -> int:
    return sum(1 for frame in wire(page)["sent"] if frame["text"] is None)


def test_hands_free_completes_a_turn_without_any_press(open_page, artifacts) -> None:
    page = open_page(QUESTION, silence_before_s=1.0, silence_after_s=2.0)
    page.get_by_role("radio", name="Hands-free").check()

    assert {"action": "set_mode", "mode": "hands_free"} in sent_actions(page)
    page.wait_for_function("window.voicebot.mode === 'hands_free' && window.voicebot.streaming", timeout=10_000)
    expect(page.get_by_role("radio", name="Hands-free")).to_be_checked()
    assert page.evaluate("localStorage.getItem('voicebot.mode')") == "hands_free"

    # The server heard the question start and end by itself; the page showed it hearing the user.
    wait_for_event(page, "status", reason="voice")
    # The final transcript (partial ones grow in the same bubble while the user speaks).
    user = page.locator(".bubble.user:not([data-partial])").first
    user.wait_for(timeout=REPLY_TIMEOUT_MS)
    assert re.search(r"capital|france", user.inner_text(), re.IGNORECASE)
    reply = page.locator(".bubble.assistant").first
    reply.wait_for(timeout=REPLY_TIMEOUT_MS)
    page.wait_for_function("window.voicebot.playing", timeout=REPLY_TIMEOUT_MS)
    assert page.locator("body").get_attribute("data-live") == "speaking"
    assert not any(a["action"] in ("start_listening", "stop_listening") for a in sent_actions(page))
    states = [(e["state"], e.get("reason")) for e in received_events(page, "status")]
    assert ("listening", "voice") in states and ("transcribing", "voice") in states
    page.screenshot(path=str(artifacts / "hands-free.png"))

    # Back to push-to-talk: the page says so and stops streaming the microphone.
    page.get_by_role("radio", name="Hold to talk").check()
    assert sent_actions(page)[-1] == {"action": "set_mode", "mode": "push_to_talk"}
    page.wait_for_function("window.voicebot.mode === 'push_to_talk' && !window.voicebot.streaming", timeout=10_000)
    page.wait_for_timeout(200)  # frames the worklet had already posted
    frames = audio_frames_sent(page)
    page.wait_for_timeout(600)
    assert audio_frames_sent(page) == frames
    assert page.evaluate("localStorage.getItem('voicebot.mode')") == "push_to_talk"


def test_speaking_over_the_reply_in_hands_free_mode_silences_it(open_page) -> None:
    # The fake microphone repeats the question every few seconds: the repeat talks over the long reply.
    page = open_page(LONG_QUESTION, silence_before_s=1.0, silence_after_s=2.0)
    page.get_by_role("radio", name="Hands-free").check()
    page.wait_for_function("window.voicebot.playing", timeout=REPLY_TIMEOUT_MS)
    wait_for_event(page, "response_interrupted")
    page.wait_for_function("window.__wire.interrupts.length > 0")

    # The page silenced the reply itself, as a press does, without any press.
    interrupt = page.evaluate("window.__wire.interrupts")[0]
    assert interrupt == {"before": True, "after": False}
    assert not any(a["action"] == "start_listening" for a in sent_actions(page))
    interrupted = received_events(page, "response_interrupted")[0]
    reply = page.locator(f".turn[data-turn='{interrupted['turn']}'] .bubble.assistant")
    expect(reply).to_have_attribute("data-interrupted", "true")
    assert reply.locator(".unheard").inner_text().strip() != ""


def test_what_time_is_it_shows_a_get_time_chip_in_the_page_time_zone(open_page, artifacts) -> None:
    # Silence after the question outlasts the press: the fake microphone loops its file.
    page = open_page(TIME_QUESTION, silence_after_s=3.0, timezone_id=PAGE_ZONE)
    assert sent_actions(page)[0] == {"action": "set_time_zone", "time_zone": PAGE_ZONE}

    asked_at = datetime.now(ZoneInfo(PAGE_ZONE))
    hold_mic(page, HOLD_MS)
    assert_heard(page, "time")
    chip = page.locator(".bubble.assistant .chip[data-tool='get_time']")
    chip.wait_for(timeout=REPLY_TIMEOUT_MS)
    expect(chip).to_have_attribute("data-status", "ok", timeout=REPLY_TIMEOUT_MS)
    result = next(e for e in received_events(page, "tool_result") if e["name"] == "get_time")
    assert chip.locator(".chip-name").inner_text() == "get_time"
    assert chip.locator(".chip-result").inner_text() == result["text"]

    # The answer is the page's local time, not the server's.
    match = re.search(r"(\d{1,2}):(\d{2})\s*([AP]M)", result["text"])
    assert match, result["text"]
    told = {match.group(0).replace(" ", "")}
    possible = {(asked_at + timedelta(minutes=m)).strftime("%I:%M%p").lstrip("0") for m in range(-1, 3)}
    assert told & possible, (result["text"], possible)

    # After the turn, the timing breakdown sits beside the latency readout.
    page.locator(".bubble.assistant[data-settled='true']").wait_for(timeout=REPLY_TIMEOUT_MS)
    wait_for_event(page, "metrics")
    metrics = received_events(page, "metrics")[-1]
    breakdown = page.locator(".bubble.assistant .breakdown").last
    expect(breakdown).to_have_text(re.compile(r"^ASR \d+( · LLM \d+)?( · TTS \d+)? ms$"))
    asr_ms = math.floor(metrics["timings"]["asr_ms"] + 0.5)  # as the page's Math.round (0.5 -> 1)
    assert f"ASR {asr_ms}" in breakdown.inner_text()
    page.screenshot(path=str(artifacts / "tool-chip-and-breakdown.png"))


def test_a_timer_counts_down_and_its_announcement_gets_a_reply_bubble(open_page, artifacts) -> None:
    # Silence after the question outlasts the press: the fake microphone loops its file.
    page = open_page(TIMER_QUESTION, viewport={"width": 360, "height": 720}, silence_after_s=3.0)
    hold_mic(page, HOLD_MS)
    assert_heard(page, "timer")

    chip = page.locator(".bubble.assistant .chip[data-tool='set_timer']")
    chip.wait_for(timeout=REPLY_TIMEOUT_MS)
    timer = page.locator("#timers .timer")
    timer.wait_for(timeout=10_000)
    expect(chip).to_have_attribute("data-status", "ok")
    assert re.fullmatch(r"0:(0\d|10)", timer.locator(".timer-time").inner_text())
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    page.screenshot(path=str(artifacts / "tool-chip-and-timer.png"))
    first = int(timer.get_attribute("data-remaining-s"))
    page.wait_for_function(f"Number(document.querySelector('#timers .timer')?.dataset.remainingS) < {first}")

    # The timer ends: the assistant says so on its own, in a reply bubble with no question before it.
    announcement = page.locator(".bubble.assistant[data-announcement='timer']")
    announcement.wait_for(timeout=30_000)
    wait_for_event(page, "status", reason="timer")
    status = next(e for e in received_events(page, "status") if e.get("reason") == "timer")
    turn = page.locator(f".turn[data-turn='{status['turn']}']")
    expect(turn.locator(".bubble.assistant[data-settled='true']")).to_have_count(1, timeout=REPLY_TIMEOUT_MS)
    assert turn.locator(".bubble.user").count() == 0
    done = next(e for e in received_events(page, "response_done") if e["turn"] == status["turn"])
    expect(announcement.locator(".text")).to_have_text(done["text"])
    expect(page.locator("#timers")).to_be_hidden()


def test_partial_transcripts_grow_in_the_user_bubble(open_page) -> None:
    page = open_page(QUESTION)
    box = page.locator("#mic").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.wait_for_function("window.voicebot.serverState === 'listening'", timeout=5000)
    upcoming = received_events(page, "status")[-1]["turn"] + 1
    for text in ("what is", "what is the capital"):  # what a streaming recogniser would send
        event = json.dumps({"type": "partial_transcript", "turn": upcoming, "text": text})
        page.evaluate("(data) => window.__sockets.at(-1).dispatchEvent(new MessageEvent('message', { data }))", event)
        expect(page.locator(".bubble.user[data-partial='true'] .text")).to_have_text(text)
    page.wait_for_timeout(HOLD_MS)
    page.mouse.up()

    # The final transcript replaces the growing words in the same bubble.
    final = page.locator(".bubble.user:not([data-partial])")
    final.wait_for(timeout=REPLY_TIMEOUT_MS)
    assert page.locator(".bubble.user").count() == 1
    transcript = received_events(page, "transcript")[0]
    assert final.inner_text() == transcript["text"]
