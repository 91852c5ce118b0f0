"""Waiting for a server to answer: the one start-and-poll loop every launcher shares (the in-process
test server, ``voicebot bench``'s server processes, the browser tests, a model server)."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any


class NotReady(RuntimeError):
    """The server exited, or did not answer in time."""


def get_json(url: str, timeout_s: float = 2.0) -> tuple[int, Any]:
    """(HTTP status, decoded JSON body or ``None``) of a GET; raises ``OSError`` when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            body = response.read()
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        body, status = exc.read(), exc.code
    try:
        return status, json.loads(body)
    except ValueError:
        return status, None


def wait_until_ready(
    url: str,
    timeout_s: float,
    process: subprocess.Popen[bytes] | None = None,
    ready: Callable[[int, Any], bool] = lambda status, _body: status == 200,
    interval_s: float = 0.05,
    what: str = "server",
) -> None:
    """Poll ``url`` until ``ready(status, body)``; raise :class:`NotReady` when ``process`` (if given)
    exits first or ``timeout_s`` passes. Blocking: from async code run it in a thread."""
    deadline = time.monotonic() + timeout_s
    while True:
        if process is not None and process.poll() is not None:
            raise NotReady(f"{what} exited with code {process.returncode} before it answered {url}")
        try:
            if ready(*get_json(url)):
                return
        except (OSError, TimeoutError):
            pass
        if time.monotonic() > deadline:
            raise NotReady(f"{what} did not answer {url} within {timeout_s:g} s")
        time.sleep(interval_s)
