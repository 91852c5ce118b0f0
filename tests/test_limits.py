"""What one client may cost, over a real server and WebSocket: floods, garbage, oversized frames, a
client that stops reading, one that sends too fast, one that does nothing."""

from __future__ import annotations

import asyncio
import json

import pytest
import structlog
from websockets.asyncio.client import connect

from tests.fakes import FakeTTS
from tests.securitykit import SPEECH, closed_with, fake_stages, open_session, server_with, wait_until
from voicebot.client import VoiceClient


async def test_a_flood_of_audio_frames_costs_nothing_and_the_session_goes_on() -> None:
    async with server_with() as server:
        client = await VoiceClient.connect(server.ws_url)
        frame = b"\x00\x10" * 320
        for _ in range(10_000):  # as fast as possible, while idle: none of it is audio the server wants
            await client.send_raw(frame)
        turn = await client.utterance(SPEECH)  # then a normal turn works
        session = server.runtime.sessions[client.session_id or ""]
        await client.close()
    assert turn.errors == [] and turn.states[-1] == "idle"
    assert session.dropped_audio_frames >= 10_000


async def test_garbage_text_frames_get_errors_then_close_1008_at_the_threshold() -> None:
    async with server_with(limits={"malformed_messages": 5, "control_messages_per_s": 1000}) as server:
        connection = await open_session(server)
        with structlog.testing.capture_logs() as logs:
            for _ in range(200):
                await connection.send("this is not JSON")
            frames: list[dict[str, object]] = []
            try:
                async with asyncio.timeout(10):
                    while True:
                        frames.append(json.loads(await connection.recv()))
            except Exception:  # noqa: BLE001 - the close ends the loop
                pass
            code, reason = connection.close_code, connection.close_reason
        await wait_until(lambda: not server.runtime.sessions)
    assert [f["code"] for f in frames] == ["invalid_json"] * 5
    assert code == 1008 and "malformed" in (reason or "")
    assert any(line["event"] == "client_limit" for line in logs)


async def test_a_few_mistakes_between_good_messages_are_forgiven() -> None:
    async with server_with(limits={"malformed_messages": 3}) as server:
        client = await VoiceClient.connect(server.ws_url)
        for _ in range(10):
            await client.send_raw("{}")
            await client.send_raw(b"\x01")
            await client.send_action("reset")
            await client.wait_for(lambda f: isinstance(f, dict) and f.get("reason") == "reset")
        turn = await client.utterance(SPEECH)
        await client.close()
    assert turn.errors == [] and turn.states[-1] == "idle"


async def test_control_messages_too_fast_close_1008() -> None:
    async with server_with(limits={"control_messages_per_s": 5}) as server:
        connection = await open_session(server)
        for _ in range(100):
            await connection.send(json.dumps({"action": "reset"}))
        code, reason = await closed_with(connection)
    assert code == 1008 and "Too many messages" in reason


async def test_an_oversized_frame_closes_the_connection_with_1009() -> None:
    async with server_with(server={"max_message_bytes": 4096}) as server:
        connection = await open_session(server)
        await connection.send(b"\x00" * 100_000)
        code, _ = await closed_with(connection)
        await wait_until(lambda: not server.runtime.sessions)
    assert code == 1009


@pytest.mark.slow
async def test_a_client_that_stops_reading_is_closed_with_a_logged_reason() -> None:
    # Much reply audio, sent as fast as the client could take it: a client that reads nothing fills
    # the socket, then the bounded outbox, and is closed instead of growing the server's memory.
    tts = FakeTTS(ms_per_char=2000.0, chunk_ms=1000, sample_rate=192_000)
    async with server_with(
        fake_stages(tts=tts), limits={"outbox_frames": 16}, session={"audio_lead_ms": 60_000, "audio_frame_ms": 1000}
    ) as server:
        connection = await connect(server.ws_url, max_size=None, max_queue=1)  # stops reading after one frame
        with structlog.testing.capture_logs() as logs:
            await connection.send(json.dumps({"action": "start_listening"}))
            await connection.send(SPEECH)
            await connection.send(json.dumps({"action": "stop_listening"}))
            await wait_until(lambda: not server.runtime.sessions, timeout_s=30)
        connection.transport.abort()  # it would wait for a closing handshake it cannot read
    (line,) = [line for line in logs if line["event"] == "slow_client"]
    assert "read nothing" in line["reason"]


async def test_an_idle_session_is_closed_after_the_idle_timeout() -> None:
    async with server_with(limits={"idle_timeout_s": 0.3}) as server:
        connection = await open_session(server)
        code, reason = await closed_with(connection)
    assert code == 1000 and "without use" in reason


@pytest.mark.slow
async def test_a_flood_of_large_text_frames_is_closed_without_queueing_it_all() -> None:
    async with server_with(limits={"control_messages_per_s": 10_000, "malformed_messages": 100_000}) as server:
        connection = await open_session(server)
        big = json.dumps({"action": "reset", "pad": "x" * 60_000})
        with structlog.testing.capture_logs() as logs:
            try:
                for _ in range(10_000):
                    await connection.send(big)
            except Exception:  # noqa: BLE001 - the server closed while we were still sending
                pass
            code, reason = await closed_with(connection)
            await wait_until(lambda: not server.runtime.sessions)
    assert code == 1008 and "Too many messages" in reason
    assert any(line["event"] == "session_closing" and line["reason"] == "flood" for line in logs) or any(
        line["event"] == "client_limit" for line in logs
    )
