"""The malloc arena cap applies on this (glibc) machine and is harmless to repeat."""

from __future__ import annotations

import platform

import pytest

from voicebot.server.memory import limit_malloc_arenas


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt arenas are a glibc feature")
def test_the_arena_cap_applies_and_can_be_repeated() -> None:
    assert limit_malloc_arenas() is True
    assert limit_malloc_arenas(2) is True
