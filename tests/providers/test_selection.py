"""Choosing providers in the settings: lists in fallback order, API keys only from the environment,
and a missing key stopping start-up with the variable's name."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.providers.conftest import KEYS, make_settings
from voicebot.errors import ProviderUnavailable
from voicebot.providers.anthropic_api import AnthropicLLM
from voicebot.providers.edge import EdgeTTS
from voicebot.providers.openai_api import OpenAILLM
from voicebot.providers.registry import build_llm, build_tts, check_keys, load_stages
from voicebot.settings import DEFAULT_SETTINGS_FILE, SettingsError, load_settings


def test_default_is_the_embedded_stack() -> None:
    settings = load_settings(DEFAULT_SETTINGS_FILE, environ={})
    assert (settings.asr.provider, settings.llm.provider, settings.tts.provider) == (
        ("moonshine", "faster_whisper"),  # Moonshine hears you while you speak; Whisper is its fallback
        "llama_cpp",
        "piper",
    )
    assert (settings.asr.providers, settings.llm.providers, settings.tts.providers) == (
        ("moonshine", "faster_whisper"),
        ("llama_cpp",),
        ("piper",),
    )
    check_keys(settings, environ={})  # the embedded stack needs no key


def test_a_list_in_the_file_or_the_environment_is_a_fallback_order(tmp_path: Path) -> None:
    path = tmp_path / "settings.yaml"
    path.write_text("llm:\n  provider: [anthropic, openai, llama_cpp]\ntts:\n  provider: [edge_tts, piper]\n")
    settings = load_settings(path, environ={"VOICEBOT_ASR__PROVIDER": "[openai, faster_whisper]"})
    assert settings.llm.providers == ("anthropic", "openai", "llama_cpp")
    assert settings.tts.providers == ("edge_tts", "piper")
    assert settings.asr.providers == ("openai", "faster_whisper")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("[anthropic, claude]", "unknown provider 'claude': choose llama_cpp, anthropic, openai"),
        ("[openai, openai]", "a provider may appear only once"),
        ("[]", "name at least one provider"),
    ],
)
def test_wrong_provider_lists_name_the_key(value: str, message: str) -> None:
    with pytest.raises(SettingsError) as error:
        load_settings(DEFAULT_SETTINGS_FILE, environ={"VOICEBOT_LLM__PROVIDER": value})
    assert "llm.provider" in str(error.value) and message in str(error.value)


@pytest.mark.parametrize(
    ("stage", "variable"),
    [
        ({"llm": {"provider": ["anthropic", "llama_cpp"]}}, "ANTHROPIC_API_KEY"),
        ({"llm": {"provider": "openai"}}, "OPENAI_API_KEY"),
        ({"llm": {"provider": "openai", "openai": {"api_key_env": "GROQ_KEY"}}}, "GROQ_KEY"),
        ({"asr": {"provider": ["openai", "faster_whisper"]}}, "OPENAI_API_KEY"),
        ({"tts": {"provider": "openai", "openai": {"api_key_env": "SPEECH_KEY"}}}, "SPEECH_KEY"),
    ],
)
def test_a_missing_key_stops_start_up_before_any_model_loads(
    stage: dict[str, dict[str, object]], variable: str
) -> None:
    settings = make_settings(**stage)
    started = time.monotonic()
    with pytest.raises(ProviderUnavailable) as error:
        load_stages(settings, environ={"UNRELATED": "x"})
    assert time.monotonic() - started < 1.0  # no model was loaded first
    assert f"environment variable {variable} is not set" in str(error.value)
    assert "api_key_env" in str(error.value)


def test_keys_come_from_the_named_variable_only() -> None:
    settings = make_settings(llm={"provider": ["anthropic", "openai"], "openai": {"api_key_env": "MY_KEY"}})
    llm = build_llm(settings, environ={"ANTHROPIC_API_KEY": "a-key", "MY_KEY": "b-key", "OPENAI_API_KEY": "unused"})
    anthropic, openai = llm.providers
    assert isinstance(anthropic, AnthropicLLM) and isinstance(openai, OpenAILLM)
    assert anthropic._client.api_key == "a-key"
    assert openai._client.api_key == "b-key"


def test_servers_without_keys_and_edge_tts_need_none() -> None:
    settings = make_settings(
        llm={"provider": "openai", "openai": {"base_url": "http://127.0.0.1:11434/v1", "api_key_env": None}},
        tts={"provider": "edge_tts"},
    )
    check_keys(settings, environ={})
    assert build_llm(settings, environ={}).name == "openai"
    (edge,) = build_tts(settings, environ={}).providers
    assert isinstance(edge, EdgeTTS) and edge.model == "en-US-AriaNeural"


@pytest.mark.slow
def test_voicebot_serve_exits_2_naming_the_missing_variable(tmp_path: Path) -> None:
    config = tmp_path / "settings.yaml"
    config.write_text("llm:\n  provider: [anthropic, llama_cpp]\n")
    env = {k: v for k, v in os.environ.items() if k not in KEYS and not k.startswith("VOICEBOT_")}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    done = subprocess.run(
        [sys.executable, "-m", "voicebot", "serve", "--config", str(config), "--port", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "ANTHROPIC_API_KEY is not set" in done.stderr
    assert "serving on" not in done.stderr


def test_every_provider_in_settings_is_registered_and_every_registered_one_has_settings() -> None:
    from voicebot.errors import Stage
    from voicebot.providers.registry import registered
    from voicebot.settings import ASRSettings, LLMSettings, TTSSettings

    in_settings = {
        (stage, name)
        for stage, section in ((Stage.ASR, ASRSettings), (Stage.LLM, LLMSettings), (Stage.TTS, TTSSettings))
        for name in section.known_providers()
    }
    assert in_settings == set(registered())
    assert ("asr", "moonshine") in {(stage.value, name) for stage, name in in_settings}
