"""The page under its own security rules, in headless Chromium against a real server with fake
stages (in a thread of this process): no Content-Security-Policy violation while it loads, captures
(AudioWorklet) and plays a reply; the token from the URL fragment or a prompt; the busy reason."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from conftest import CHROMIUM, CHROMIUM_ARGS

from tests.fakes import FakeASR, FakeLLM, FakeTTS
from tests.securitykit import TOKEN, settings_with
from voicebot.providers.base import Stages
from voicebot.server.localserver import LocalServer, local_server

pytestmark = pytest.mark.browser


@contextmanager
def threaded_server(**sections: dict[str, Any]) -> Iterator[LocalServer]:
    """A real server with fake stages, on its own event loop in a thread (Playwright's sync API owns
    this thread's loop)."""
    started: list[LocalServer] = []
    ready, stop = threading.Event(), threading.Event()

    async def main() -> None:
        stages = Stages(FakeASR(), FakeLLM(), FakeTTS(ms_per_char=20.0))
        async with local_server(settings_with(**sections), stages) as server:
            started.append(server)
            ready.set()
            while not stop.is_set():  # noqa: ASYNC110 - a threading.Event cannot be awaited
                await asyncio.sleep(0.05)

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    assert ready.wait(30), "the server did not start"
    try:
        yield started[0]
    finally:
        stop.set()
        thread.join(10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        chromium = driver.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def watched_page(browser: Any) -> tuple[Any, list[str]]:
    """A page whose console errors and page errors (CSP violations among them) are collected. The page
    runs under its real policy, which forbids eval: wait predicates are functions, not expressions."""
    page = browser.new_context().new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    return page, problems


def test_the_page_talks_under_its_content_security_policy(browser: Any) -> None:
    with threaded_server() as server:
        page, problems = watched_page(browser)
        page.goto(server.http_url + "/")
        page.wait_for_function("() => window.voicebot && window.voicebot.connected", timeout=15_000)
        mic = page.locator("#mic")
        box = mic.bounding_box()
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.mouse.down()
        page.wait_for_function("() => window.voicebot.serverState === 'listening'", timeout=5000)
        page.wait_for_timeout(800)
        page.mouse.up()
        page.wait_for_function(
            "() => window.voicebot.turns >= 1 && window.voicebot.serverState === 'idle'", timeout=15_000
        )
        reply = page.locator(".bubble.assistant .text").last.inner_text()
        page.context.close()
    assert "fake reply" in reply
    assert not [p for p in problems if "Content Security Policy" in p or "Refused" in p], problems


def test_the_token_comes_from_the_fragment_and_leaves_the_address_bar(browser: Any) -> None:
    with threaded_server(security={"token": TOKEN}) as server:
        page, _ = watched_page(browser)
        page.goto(f"{server.http_url}/#token={TOKEN}")
        page.wait_for_function("() => window.voicebot && window.voicebot.connected", timeout=15_000)
        url = page.url
        page.context.close()
    assert TOKEN not in url


def test_without_a_token_the_page_asks_for_one(browser: Any) -> None:
    with threaded_server(security={"token": TOKEN}) as server:
        page, _ = watched_page(browser)
        asked: list[str] = []

        def answer(dialog: Any) -> None:
            asked.append(dialog.message)
            dialog.accept(TOKEN)

        page.on("dialog", answer)
        page.goto(server.http_url + "/")
        page.wait_for_function("() => window.voicebot && window.voicebot.connected", timeout=20_000)
        page.context.close()
    assert asked and "token" in asked[0]


def test_a_full_server_says_it_is_busy(browser: Any) -> None:
    with threaded_server(limits={"max_sessions": 1}) as server:
        first, _ = watched_page(browser)
        first.goto(server.http_url + "/")
        first.wait_for_function("() => window.voicebot && window.voicebot.connected", timeout=15_000)
        second, _ = watched_page(browser)
        second.goto(server.http_url + "/")
        second.wait_for_function("() => document.querySelector('#status').textContent.includes('busy')", timeout=15_000)
        first.context.close()
        second.context.close()
