"""``voicebot bench``: what a user feels, measured over real WebSockets against real server processes.

- :mod:`~voicebot.bench.speech`: the utterances (spoken by the configured voice, or WAV files);
- :mod:`~voicebot.bench.servers`: ``voicebot serve`` processes to measure;
- :mod:`~voicebot.bench.talk`: sessions that stream utterances in real time and time every turn;
- :mod:`~voicebot.bench.handsfree`: the hands-free numbers (end of speech to answer, false and
  missed turns, barge-in by voice);
- :mod:`~voicebot.bench.report`: medians, percentiles and the printed table.
"""

from voicebot.bench.speech import speak_to_input

__all__ = ["speak_to_input"]
