"""Hands-free listening: voice activity (Silero), endpointing, and the echo guard."""
