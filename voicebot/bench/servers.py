"""``voicebot serve`` processes for the benchmark: run as a user runs them, measured from outside."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from voicebot.server.localserver import free_port
from voicebot.server.ready import wait_until_ready


@dataclass(frozen=True)
class ServerProcess:
    process: subprocess.Popen[bytes]
    port: int

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/voice"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def rss_mb(self, field: str = "VmRSS") -> float:
        """The process's resident memory now (``VmHWM``: its peak so far), in MiB (Linux)."""
        try:
            status = Path(f"/proc/{self.process.pid}/status").read_text()
        except OSError:
            return 0.0
        for line in status.splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
        return 0.0


@contextmanager
def server_process(config: Path | None, env: dict[str, str]) -> Iterator[ServerProcess]:
    """Run ``voicebot serve`` on a free port until the block ends (no recordings, quiet logs)."""
    port = free_port()
    command = [sys.executable, "-m", "voicebot", "serve", "--host", "127.0.0.1", "--port", str(port)]
    if config is not None:
        command += ["--config", str(config)]
    quiet = {"VOICEBOT_LOGGING__LEVEL": "warning", "VOICEBOT_RECORDING__ENABLED": "false"}
    process = subprocess.Popen(command, env={**os.environ, **quiet, **env}, stderr=subprocess.DEVNULL)
    try:
        wait_until_ready(f"http://127.0.0.1:{port}/health", 300, process, what="voicebot serve")
        yield ServerProcess(process, port)
    finally:
        process.terminate()
        process.wait(timeout=30)
