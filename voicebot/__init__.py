"""voicebot: a self-hosted, real-time voice assistant served over a WebSocket."""

__version__ = "0.1.0"
