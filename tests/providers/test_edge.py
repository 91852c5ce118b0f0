"""edge-tts against a WebSocket fake that speaks its protocol (MP3 in binary ``Path:audio``
messages), and the PyAV decoding of that MP3 to the session's PCM."""

from __future__ import annotations

import pytest

from tests.fakeservers import FakeService, mp3_bytes, sine_pcm
from tests.providers.conftest import make_settings
from voicebot import audio
from voicebot.errors import ProviderFailed
from voicebot.providers.codec import Mp3Decoder, PcmResampler
from voicebot.providers.edge import EdgeTTS
from voicebot.providers.fallback import AllProvidersFailed, FallbackTTS

TONE_S = 0.6  # the fake's MP3 is 0.6 s of a 440 Hz tone at 0.3 of full scale


def edge(**tts: object) -> EdgeTTS:
    settings = make_settings(tts={"edge_tts": {"voice": "en-GB-SoniaNeural", **tts}})
    return EdgeTTS(settings.tts.edge_tts, settings.tts.timeouts)


async def speak(tts: EdgeTTS, text: str = "Hello there.") -> bytes:
    return b"".join([chunk async for chunk in tts.synthesize(text)])


async def test_mp3_from_the_service_is_streamed_as_pcm(edge_fake: FakeService) -> None:
    tts = edge()
    chunks = [chunk async for chunk in tts.synthesize("Hello & welcome.")]
    pcm = b"".join(chunks)
    assert len(chunks) > 1  # decoded as the MP3 arrives, not at the end
    assert tts.sample_rate == 24_000
    # MP3 adds encoder delay and padding (tens of ms) but keeps the length and the loudness.
    assert audio.duration_ms(len(pcm), 24_000) == pytest.approx(TONE_S * 1000, abs=80)
    assert audio.rms(pcm) == pytest.approx(0.3 / 2**0.5, rel=0.15)

    (request,) = edge_fake.calls("/edge/v1")
    config, ssml = request.body
    assert "Path:speech.config" in config and "audio-24khz-48kbitrate-mono-mp3" in config
    assert "Path:ssml" in ssml and "SoniaNeural" in ssml and "Hello &amp; welcome." in ssml


async def test_audio_is_resampled_to_the_configured_rate(edge_fake: FakeService) -> None:
    pcm = await speak(edge(sample_rate=16_000))
    assert audio.duration_ms(len(pcm), 16_000) == pytest.approx(TONE_S * 1000, abs=80)


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("401", "the service refused the connection (HTTP 401)"),
        ("403", "the service refused the connection (HTTP 403; a newer edge-tts may be needed)"),
        ("no_audio", "no audio came back (is the voice 'en-GB-SoniaNeural' right?)"),
    ],
)
async def test_refusals_become_plain_reasons(edge_fake: FakeService, mode: str, reason: str) -> None:
    edge_fake.reset(mode)
    with pytest.raises(ProviderFailed) as error:
        await speak(edge())
    assert (error.value.provider, error.value.reason) == ("edge_tts", reason)


async def test_a_connection_closed_mid_way_keeps_the_audio_so_far(edge_fake: FakeService) -> None:
    """edge-tts reads a closed WebSocket as the end of the audio: the sentence is cut short, and the
    next one is asked on a new connection."""
    edge_fake.reset("cut")
    pcm = await speak(edge())
    assert 0 < audio.duration_ms(len(pcm), 24_000) < TONE_S * 1000 - 100
    edge_fake.reset()
    assert audio.duration_ms(len(await speak(edge())), 24_000) > TONE_S * 1000 - 80


async def test_a_silent_service_is_skipped_after_the_first_byte_timeout(edge_fake: FakeService) -> None:
    edge_fake.reset("hang")
    settings = make_settings(tts={"timeouts": {"first_byte_s": 0.5}})
    tts = FallbackTTS([EdgeTTS(settings.tts.edge_tts, settings.tts.timeouts)], settings.tts.timeouts)
    with pytest.raises(AllProvidersFailed, match=r"edge_tts: no output within 0.5 s"):
        async for _ in tts.synthesize("Hello."):
            pass


async def test_check_connects_to_the_service(edge_fake: FakeService) -> None:
    await edge().check()


def test_mp3_decoder_skips_tags_and_streams() -> None:
    mp3 = b"ID3\x04\x00\x00\x00\x00\x00\x0a" + b"\x00" * 10 + mp3_bytes(0.5, 24_000)  # an ID3v2 tag first
    decoder = Mp3Decoder(24_000)
    pcm = b"".join(decoder.feed(mp3[i : i + 700]) for i in range(0, len(mp3), 700)) + decoder.flush()
    assert audio.duration_ms(len(pcm), 24_000) == pytest.approx(500, abs=80)


def test_pcm_resampler_keeps_duration_across_odd_chunks() -> None:
    source = sine_pcm(1.0, 22_050)
    resampler = PcmResampler(22_050, 24_000)
    out = b"".join(resampler.feed(source[i : i + 999]) for i in range(0, len(source), 999)) + resampler.flush()
    assert len(out) % 2 == 0
    assert audio.duration_ms(len(out), 24_000) == pytest.approx(1000, abs=5)
    assert audio.rms(out) == pytest.approx(audio.rms(source), rel=0.05)
