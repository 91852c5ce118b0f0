"""Providers for the three stages (ASR, LLM, TTS), chosen by name in the settings."""
