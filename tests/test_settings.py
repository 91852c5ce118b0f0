"""Settings: the shipped file is valid, environment overrides apply, wrong values name their key."""

from __future__ import annotations

from pathlib import Path

import pytest

from voicebot.settings import DEFAULT_SETTINGS_FILE, Settings, SettingsError, load_settings


def test_shipped_settings_file_is_the_embedded_default() -> None:
    settings = load_settings(DEFAULT_SETTINGS_FILE, environ={})
    assert settings.asr.providers == ("moonshine", "faster_whisper")
    assert settings.asr.moonshine.model == settings.asr.faster_whisper.model == "embedded"
    assert settings.llm.provider == "llama_cpp" and settings.llm.llama_cpp.model_path == "embedded"
    assert settings.tts.provider == "piper" and settings.tts.piper.voice == "embedded"
    assert (settings.server.host, settings.server.port) == ("127.0.0.1", 8000)


def test_environment_overrides_nested_keys() -> None:
    settings = load_settings(
        DEFAULT_SETTINGS_FILE,
        environ={
            "VOICEBOT_SERVER__PORT": "9100",
            "VOICEBOT_SESSION__STREAMING": "false",
            "VOICEBOT_LLM__LLAMA_CPP__N_THREADS": "4",
            "VOICEBOT_LLM__SYSTEM_PROMPT": "Be brief: very brief.",
            "OTHER": "ignored",
        },
    )
    assert settings.server.port == 9100
    assert settings.session.streaming is False
    assert settings.llm.llama_cpp.n_threads == 4
    assert settings.llm.system_prompt == "Be brief: very brief."


def test_wrong_value_names_the_key_and_the_variable(tmp_path: Path) -> None:
    path = tmp_path / "settings.yaml"
    path.write_text("server:\n  port: lots\n")
    with pytest.raises(SettingsError) as error:
        load_settings(path, environ={})
    assert "server.port" in str(error.value) and "VOICEBOT_SERVER__PORT" in str(error.value)


def test_wrong_env_value_is_reported() -> None:
    with pytest.raises(SettingsError) as error:
        load_settings(DEFAULT_SETTINGS_FILE, environ={"VOICEBOT_SESSION__MAX_UTTERANCE_S": "-3"})
    assert "session.max_utterance_s" in str(error.value)


def test_unknown_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "settings.yaml"
    path.write_text("llm:\n  provder: llama_cpp\n")
    with pytest.raises(SettingsError) as error:
        load_settings(path, environ={})
    assert "llm.provder" in str(error.value) and "unknown key" in str(error.value)


def test_unknown_provider_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "settings.yaml"
    path.write_text("tts:\n  provider: shouting\n")
    with pytest.raises(SettingsError) as error:
        load_settings(path, environ={})
    assert "tts.provider" in str(error.value)


def test_broken_yaml_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "settings.yaml"
    path.write_text("server: [unclosed\n")
    with pytest.raises(SettingsError, match="not valid YAML"):
        load_settings(path, environ={})
    with pytest.raises(SettingsError, match="does not exist"):
        load_settings(tmp_path / "missing.yaml", environ={})


def test_defaults_match_the_shipped_file() -> None:
    assert load_settings(DEFAULT_SETTINGS_FILE, environ={}) == Settings()
