"""Recordings hold voices: a session recorded over a real server leaves folders readable by the owner
only (0700) and files 0600, whatever the umask, and a recording folder that was wider is tightened."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from tests.securitykit import SPEECH, server_with, wait_until
from voicebot.client import VoiceClient


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_recording_folders_and_files_are_owner_only(tmp_path: Path) -> None:
    root = tmp_path / "recordings"
    root.mkdir(mode=0o755)
    root.chmod(0o755)
    old = os.umask(0o000)  # the most permissive umask: the modes must not depend on it
    try:
        async with server_with(recording={"enabled": True, "directory": str(root)}) as server:
            client = await VoiceClient.connect(server.ws_url)
            await client.utterance(SPEECH)
            await client.close()
            await wait_until(lambda: not server.runtime.sessions)
    finally:
        os.umask(old)
    (folder,) = root.iterdir()
    files = sorted(folder.iterdir())
    assert {p.name for p in files} >= {"session.json", "events.jsonl", "turn-001-user.wav", "turn-001-reply.wav"}
    assert mode(root) == 0o700 and mode(folder) == 0o700
    assert {p.name: mode(p) for p in files} == {p.name: 0o600 for p in files}
