"""SIGTERM to a real ``python -m voicebot serve`` process with four sessions in the middle of spoken
replies: each page is told with close 1001 and a reason, every recording is flushed, the process
exits with 0 and logs no traceback or "Task was destroyed" noise. (Exit times are measured by
``python -m tests.measure sigterm``, not asserted here.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.measure import sigterm_run

pytestmark = pytest.mark.slow  # soaks, property runs or real processes: not in the fast tier


async def test_sigterm_with_live_sessions_closes_each_with_1001_and_flushes_recordings(tmp_path: Path) -> None:
    run = await sigterm_run(4, tmp_path)
    assert run["exit_code"] == 0, run["stderr"][-2000:]
    assert [code for code, _ in run["closes"]] == [1001] * 4
    assert all("restarting" in reason for _, reason in run["closes"])
    assert run["recordings_flushed"] == [True] * 4
    for noise in ("Traceback", "Task was destroyed", "Exception in callback", "never retrieved"):
        assert noise not in run["stderr"], run["stderr"][-2000:]
    assert '"event": "shutting_down"' in run["stderr"] and '"sessions": 4' in run["stderr"]


async def test_sigterm_when_idle_exits_cleanly(tmp_path: Path) -> None:
    run = await sigterm_run(0, tmp_path)
    assert run["exit_code"] == 0 and run["closes"] == []
    assert "Traceback" not in run["stderr"] and "Task was destroyed" not in run["stderr"]
