"""The malloc arena cap applies on this (glibc) machine and is harmless to repeat; free memory is given
back when turns end, but not more often than every few seconds."""

from __future__ import annotations

import platform

import pytest

from voicebot.server import memory
from voicebot.server.memory import limit_malloc_arenas


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt arenas are a glibc feature")
def test_the_arena_cap_applies_and_can_be_repeated() -> None:
    assert limit_malloc_arenas() is True
    assert limit_malloc_arenas(2) is True


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is a glibc feature")
def test_free_memory_is_given_back_at_most_every_few_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory, "_last_trim", -memory.TRIM_INTERVAL_S)
    assert memory.give_back_free_memory() is True
    assert memory.give_back_free_memory() is False  # just done
    monkeypatch.setattr(memory, "_last_trim", memory._last_trim - memory.TRIM_INTERVAL_S)
    assert memory.give_back_free_memory() is True
