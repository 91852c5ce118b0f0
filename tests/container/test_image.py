"""The image, built from the repository's Dockerfile and run with podman: it starts, answers /health,
passes its own HEALTHCHECK, runs as a non-root user, records to its volume, loads its models with no
network at all, and completes a real voice turn over the WebSocket.

Slow the first time (the base image, the Python packages); podman's layer cache makes later runs
quick. Skipped only where podman is not installed (``apt-get install -y podman runc mmdebstrap``).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.conftest import QUESTION
from tests.container.podman import Podman, build_image, build_plan, ensure_base_image, host_llama_wheel
from voicebot.client import VoiceClient
from voicebot.server.localserver import free_port

pytestmark = [pytest.mark.container, pytest.mark.models]

IMAGE = "localhost/voicebot:test"


def words(text: str) -> list[str]:
    return "".join(ch.lower() if ch.isalnum() or ch.isspace() else " " for ch in text).split()


@pytest.fixture(scope="module")
def podman(tmp_path_factory: pytest.TempPathFactory) -> Podman:
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed: apt-get install -y podman runc mmdebstrap")
    return Podman.configured(tmp_path_factory.mktemp("podman"))


@pytest.fixture(scope="module")
def image(podman: Podman, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The image, built on a local Debian base with the host's CA bundle, pip settings and wheel."""
    started = time.monotonic()
    made_base = ensure_base_image(podman)
    plan = build_plan(tmp_path_factory.mktemp("wheels"), host_llama_wheel())
    build_image(podman, IMAGE, plan)
    print(
        f"\nimage {IMAGE} built in {time.monotonic() - started:.0f} s "
        f"(base image {'made' if made_base else 'cached'}; llama-cpp-python "
        f"{'from ' + plan.wheel.name if plan.wheel else 'compiled in the build'})"
    )
    return IMAGE


@dataclass(frozen=True)
class Running:
    name: str
    port: int

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def get_health(url: str) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(url + "/health", timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, {}


def wait_until_healthy(podman: Podman, running: Running, timeout_s: float = 240.0) -> dict[str, object]:
    """Poll /health until 200 (503 while the models load); fail early when the container stops."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        state = podman("inspect", "--format", "{{.State.Running}}", running.name).stdout.strip()
        if state != "true":
            raise AssertionError(f"the container stopped:\n{podman('logs', running.name, check=False).stderr[-4000:]}")
        try:
            status, health = get_health(running.http_url)
        except OSError:
            status, health = 0, {}
        if status == 200:
            return health
        time.sleep(0.5)
    logs = podman("logs", running.name, check=False)
    raise AssertionError(f"/health did not answer 200 within {timeout_s} s:\n{(logs.stdout + logs.stderr)[-4000:]}")


@pytest.fixture(scope="module")
def container(podman: Podman, image: str) -> Iterator[Running]:
    """The image running with host networking on a free port; removed afterwards."""
    running = Running(f"voicebot-test-{os.getpid()}", free_port())
    podman("rm", "--force", "--ignore", running.name)
    podman(
        "run",
        "--detach",
        "--name",
        running.name,
        "--network",
        "host",
        "--health-interval",
        "disable",  # no systemd for the timer: the test runs the check by hand
        "--env",
        f"VOICEBOT_SERVER__PORT={running.port}",
        image,
    )
    try:
        started = time.monotonic()
        wait_until_healthy(podman, running)
        print(f"\ncontainer healthy {time.monotonic() - started:.1f} s after start")
        yield running
    finally:
        podman("rm", "--force", "--volumes", "--time", "10", running.name, check=False)


def test_the_image_declares_user_volume_healthcheck_and_command(podman: Podman, image: str) -> None:
    (inspected,) = json.loads(podman("image", "inspect", image).stdout)
    config = inspected["Config"]
    assert config["User"] == "10001:10001"
    assert "/data" in config["Volumes"]
    assert "VOICEBOT_RECORDING__DIRECTORY=/data/recordings" in config["Env"]
    assert config["Cmd"] == ["voicebot", "serve", "--host", "0.0.0.0"]
    healthcheck = inspected.get("Healthcheck") or config["Healthcheck"]  # podman keeps it beside Config
    health_test = healthcheck["Test"]
    assert health_test[0] == "CMD" and "/health" in health_test[-1]


def test_models_load_without_any_network(podman: Podman, image: str) -> None:
    """Everything the default settings need is inside the image: load and warm every stage with no
    network interface but loopback."""
    script = (
        "from voicebot.providers.registry import load_stages; from voicebot.settings import load_settings; "
        "s = load_stages(load_settings()); print(s.asr.model, s.llm.model, s.tts.model, sep='|')"
    )
    result = podman("run", "--rm", "--network", "none", image, "python", "-c", script, timeout=300)
    asr, llm, tts = result.stdout.strip().splitlines()[-1].split("|")
    assert "tiny" in asr.lower() and "smollm2" in llm.lower() and "joe" in tts.lower()


def test_health_and_the_containers_own_healthcheck(podman: Podman, container: Running) -> None:
    status, health = get_health(container.http_url)
    assert status == 200 and health["status"] == "ok" and health["sessions"] == 0
    checked = podman("healthcheck", "run", container.name, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert podman("exec", container.name, "id", "-u").stdout.strip() == "10001"


async def test_a_voice_turn_against_the_container(podman: Podman, container: Running, speech: dict[str, bytes]) -> None:
    client = await VoiceClient.connect(f"ws://127.0.0.1:{container.port}/ws/voice")
    turn = await client.utterance(speech[QUESTION])
    await client.close()

    assert turn.errors == []
    assert turn.states == ["transcribing", "thinking", "speaking", "idle"]
    assert {"capital", "france"} <= set(words(turn.transcript or ""))
    assert turn.reply and turn.reply.strip()
    assert turn.audio_format is not None and len(turn.audio) > turn.audio_format["sample_rate"] * 2 * 0.3

    # The session was recorded by the non-root user onto the volume (finished as the session ends),
    # in a folder named <start time>-<session id>.
    find = ("find", "/data/recordings", "-path", f"*-{client.session_id}/*", "-type", "f", "-user", "10001")
    expected = {"events.jsonl", "turn-001-user.wav", "turn-001-reply.wav"}
    found: set[str] = set()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not expected <= found:
        listed = await asyncio.to_thread(podman, "exec", container.name, *find, check=False)
        found = {path.rsplit("/", 1)[-1] for path in listed.stdout.split()}
        await asyncio.sleep(0.5)
    assert expected <= found, found
