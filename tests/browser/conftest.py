"""Fixtures for the browser tests: the real voicebot server, Debian's Chromium with a fake
microphone that speaks a question, and pages whose WebSocket traffic the tests can read.

They are module-scoped: Playwright's sync API runs an event loop of its own, which must be gone
before the pytest-asyncio tests of other modules start theirs.

Nothing here is faked on the server side: the server runs as `python -m voicebot serve` with
its embedded models. Chromium is driven by Python playwright through `executable_path`.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from speech import write_question_wav

from voicebot.server.localserver import free_port
from voicebot.server.ready import NotReady, wait_until_ready

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "tests" / "artifacts"
CHROMIUM = Path("/usr/bin/chromium")
SERVER_READY_TIMEOUT_S = 90
# Chromium's fake microphone starts its file when the page opens the microphone (the first press),
# and a busy machine loses the first few hundred ms while the capture worklet loads (a question
# heard as "is the capital of France. What?"): questions start after a quiet moment, so what is
# lost is silence, never their first words.
QUIET_START_S = 0.5

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-quic",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
]

# Records every WebSocket frame with the page's own clock (performance.now()), the time of each
# release of the mic button or the space bar (so tests can compare the page's latency readout
# with when the audio really arrived), and each text the newest reply bubble showed (to see it
# stream). It wraps the socket and watches the DOM; the page's code is untouched.
WIRE_RECORDER = """
window.__wire = { sent: [], received: [], releasedAt: [], interrupts: [] };
window.__sockets = [];  // to inject events a server of this build cannot send (see test_features.py)
const NativeWebSocket = window.WebSocket;
window.WebSocket = class extends NativeWebSocket {
  constructor(...args) {
    super(...args);
    window.__sockets.push(this);
    this.addEventListener("message", (event) => {
      const text = typeof event.data === "string" ? event.data : null;
      window.__wire.received.push({ t: performance.now(), text, bytes: text === null ? event.data.byteLength : 0 });
      if (text !== null && text.includes('"response_interrupted"')) {
        // Whether the reply was playing just before the page handled the event, and just after.
        const before = Boolean(window.voicebot && window.voicebot.playing);
        setTimeout(() => window.__wire.interrupts.push({ before, after: window.voicebot.playing }), 0);
      }
    });
  }
  send(data) {
    const text = typeof data === "string" ? data : null;
    window.__wire.sent.push({ t: performance.now(), text, bytes: text === null ? data.byteLength : 0 });
    super.send(data);
  }
};
window.__replyText = [];  // every text the newest reply bubble showed, in order, with data-settled
new MutationObserver(() => {
  const bubbles = document.querySelectorAll(".bubble.assistant");
  const reply = bubbles[bubbles.length - 1];
  if (!reply) return;
  const seen = { text: reply.querySelector(".text").textContent, settled: reply.dataset.settled };
  const last = window.__replyText[window.__replyText.length - 1];
  if (!last || last.text !== seen.text || last.settled !== seen.settled) window.__replyText.push(seen);
}).observe(document, { subtree: true, childList: true, characterData: true, attributes: true });
window.addEventListener("pointerup", () => window.__wire.releasedAt.push(performance.now()), true);
window.addEventListener("keyup", (e) => e.code === "Space" && window.__wire.releasedAt.push(performance.now()), true);
"""


class VoicebotServer:
    """`python -m voicebot serve` as a subprocess on a fixed port, so it can be stopped and restarted."""

    def __init__(self, port: int, log_path: Path) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}/"
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "voicebot", "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self.wait_ready()

    def wait_ready(self) -> None:
        try:
            wait_until_ready(
                self.url + "health",
                SERVER_READY_TIMEOUT_S,
                self.process,
                ready=lambda status, body: status == 200 and isinstance(body, dict) and body.get("status") == "ok",
                what="voicebot server",
            )
        except NotReady as exc:
            raise RuntimeError(f"{exc}:\n{self.log_tail()}") from None

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


@pytest.fixture(scope="module")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="module")
def server(artifacts: Path) -> Iterator[VoicebotServer]:
    log_path = artifacts / "browser-server.log"
    log_path.write_bytes(b"")
    server = VoicebotServer(free_port(), log_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def playwright_driver() -> Iterator[object]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium package (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def launch_browser(playwright_driver, tmp_path_factory) -> Iterator[object]:
    """Returns a function: (question text, silence before it) -> a Chromium whose fake microphone asks
    it (one per question and silence)."""
    browsers: dict[tuple[str, float, float], object] = {}
    wav_dir = tmp_path_factory.mktemp("fake-mic")

    def launch(question: str, silence_before_s: float = 0.0, silence_after_s: float = 1.5):
        key = (question, silence_before_s, silence_after_s)
        if key not in browsers:
            wav = write_question_wav(
                wav_dir / f"question-{len(browsers)}.wav",
                question,
                silence_after_s=silence_after_s,
                silence_before_s=silence_before_s,
            )
            browsers[key] = playwright_driver.chromium.launch(
                executable_path=str(CHROMIUM),
                args=[*CHROMIUM_ARGS, f"--use-file-for-fake-audio-capture={wav}"],
            )
        return browsers[key]

    yield launch
    for browser in browsers.values():
        browser.close()


@pytest.fixture
def open_page(launch_browser, server: VoicebotServer) -> Iterator[object]:
    """Returns a function: question -> a fresh page (own context, so the fake mic starts the
    question from its beginning) connected to the server, with the wire recorder installed."""
    contexts = []

    def open_(
        question: str,
        viewport: dict | None = None,
        silence_before_s: float = QUIET_START_S,
        silence_after_s: float = 1.5,
        **context_options: object,
    ):
        browser = launch_browser(question, silence_before_s, silence_after_s)
        # bypass_csp: these tests poll with string predicates, which Playwright evaluates with eval();
        # the page under its real policy is tested in test_access.py (with function predicates).
        context = browser.new_context(
            viewport=viewport or {"width": 1000, "height": 760}, bypass_csp=True, **context_options
        )
        contexts.append(context)
        context.add_init_script(WIRE_RECORDER)
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(server.url)
        page.wait_for_function("window.voicebot && window.voicebot.connected", timeout=15_000)
        return page

    errors: list[str] = []
    yield open_
    for context in contexts:
        context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"
