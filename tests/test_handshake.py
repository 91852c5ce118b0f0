"""Who may connect, over a real server and real WebSocket handshakes: the Origin allowlist (403), the
shared token (401, never logged), the session cap (1013 with a reason), the page's security headers."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from typing import Any

import pytest
import structlog
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.securitykit import TOKEN, closed_with, open_session, server_with
from voicebot.server.ready import get_json


def fetch_page(url: str) -> tuple[Any, str]:
    with urllib.request.urlopen(url) as response:
        return response.headers, response.read().decode()


async def refused_status(url: str, **kwargs: object) -> int:
    with pytest.raises(InvalidStatus) as refused:
        await connect(url, **kwargs)  # type: ignore[arg-type]
    return refused.value.response.status_code


async def test_a_foreign_origin_is_refused_with_403_and_logged() -> None:
    async with server_with() as server:
        with structlog.testing.capture_logs() as logs:
            status = await refused_status(server.ws_url, origin="http://evil.example")
        assert not server.runtime.sessions
    assert status == 403
    (line,) = [line for line in logs if line["event"] == "connection_refused"]
    assert line["origin"] == "http://evil.example" and line["status"] == 403


@pytest.mark.parametrize(
    "origin",
    ["http://127.0.0.1:{port}", "http://localhost:{port}", "http://[::1]:{port}", "https://voice.example.com"],
)
async def test_loopback_own_and_listed_origins_are_accepted(origin: str) -> None:
    async with server_with(security={"allowed_origins": ["https://voice.example.com"]}) as server:
        connection = await open_session(server, origin=origin.format(port=server.port))
        await connection.close()


@pytest.mark.parametrize(
    "origin",
    ["null", "http://localhost:1", "https://voice.example.com.evil.example", "http://localhost.evil.example:{port}"],
)
async def test_near_misses_are_refused(origin: str) -> None:
    async with server_with(security={"allowed_origins": ["https://voice.example.com"]}) as server:
        assert await refused_status(server.ws_url, origin=origin.format(port=server.port)) == 403


async def test_a_rebound_host_name_is_not_its_own_origin_without_a_token() -> None:
    """DNS rebinding: the attacker's name points at 127.0.0.1, so Origin and Host agree. The
    connection goes to 127.0.0.1 while the URL (hence Host) names another host."""
    async with server_with() as server:
        host = f"rebind.example:{server.port}"
        status = await refused_status(
            f"ws://{host}/ws/voice", origin=f"http://{host}", host="127.0.0.1", port=server.port
        )
        # The same page's own origin is fine when it is an IP address (no name to rebind)...
        ip_host = f"192.0.2.7:{server.port}"
        connection = await connect(
            f"ws://{ip_host}/ws/voice", origin=f"http://{ip_host}", host="127.0.0.1", port=server.port
        )
        await connection.close()
    assert status == 403
    # ...or when a token is required (a rebinding page does not know it).
    async with server_with(security={"token": TOKEN}) as server:
        host = f"voice.lan:{server.port}"
        connection = await connect(
            f"ws://{host}/ws/voice?token={TOKEN}", origin=f"http://{host}", host="127.0.0.1", port=server.port
        )
        await connection.close()


async def test_missing_and_wrong_tokens_are_refused_with_401_and_never_logged() -> None:
    async with server_with(security={"token": TOKEN}) as server:
        with structlog.testing.capture_logs() as logs:
            missing = await refused_status(server.ws_url)
            wrong = await refused_status(server.ws_url + "?token=not-the-token-at-all")
            wrong_protocol = await refused_status(server.ws_url, subprotocols=["voicebot", "token.nope"])
        assert not server.runtime.sessions
    assert (missing, wrong, wrong_protocol) == (401, 401, 401)
    assert "not-the-token" not in json.dumps(logs) and TOKEN not in json.dumps(logs)
    assert [line["reason"] for line in logs if line["event"] == "connection_refused"] == ["bad_token"] * 3


async def test_the_token_opens_a_session_by_query_or_subprotocol() -> None:
    async with server_with(security={"token": TOKEN}) as server:
        with structlog.testing.capture_logs() as logs:
            by_query = await connect(f"{server.ws_url}?token={TOKEN}")
            first = json.loads(await by_query.recv())
            by_protocol = await connect(server.ws_url, subprotocols=["voicebot", f"token.{TOKEN}"])
            await by_protocol.recv()
            assert by_protocol.subprotocol == "voicebot"  # the token is never echoed back
            await by_query.close()
            await by_protocol.close()
    assert first["type"] == "status" and first["state"] == "idle"
    assert TOKEN not in json.dumps(logs, default=str)


async def test_past_the_session_cap_a_connection_is_closed_with_1013_and_health_reports_it() -> None:
    async with server_with(limits={"max_sessions": 2}) as server:
        first, second = await open_session(server), await open_session(server)
        third = await connect(server.ws_url)
        code, reason = await closed_with(third)
        _, health = await asyncio.to_thread(get_json, server.http_url + "/health")
        await first.close()
        await second.close()
    assert code == 1013 and "busy" in reason
    assert health["sessions"] == 2 and health["max_sessions"] == 2


async def test_a_draining_server_refuses_new_connections() -> None:
    async with server_with() as server:
        server.runtime.draining = True
        assert await refused_status(server.ws_url) == 503
        server.runtime.draining = False


async def test_the_page_carries_security_headers_and_no_inline_script() -> None:
    async with server_with() as server:
        headers, page = await asyncio.to_thread(fetch_page, server.http_url + "/")
    policy = headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy and "frame-ancestors 'none'" in policy
    assert headers["X-Content-Type-Options"] == "nosniff" and headers["Referrer-Policy"] == "no-referrer"
    assert "<script>" not in page and "onclick" not in page.lower() and "style=" not in page


async def test_auth_tells_the_page_whether_its_token_would_be_accepted() -> None:
    def status(url: str, token: str | None) -> int:
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
        try:
            with urllib.request.urlopen(request) as response:
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return exc.code

    async with server_with(security={"token": TOKEN}) as server:
        url = server.http_url + "/auth"
        codes = [await asyncio.to_thread(status, url, token) for token in (None, "wrong-wrong-wrong", TOKEN)]
    async with server_with() as server:
        codes.append(await asyncio.to_thread(status, server.http_url + "/auth", None))
    assert codes == [401, 401, 204, 204]


def test_voicebot_token_is_a_setting_and_never_shown() -> None:
    from voicebot.settings import SettingsError, load_settings

    settings = load_settings(environ={"VOICEBOT_TOKEN": "1234567890123456789"})  # digits stay text
    assert settings.security.token is not None
    assert settings.security.token.get_secret_value() == "1234567890123456789"
    assert "1234567890" not in json.dumps(settings.model_dump(mode="json"))  # what recordings store
    with pytest.raises(SettingsError) as error:
        load_settings(environ={"VOICEBOT_TOKEN": "short-secret"})
    assert "short-secret" not in str(error.value) and "VOICEBOT_TOKEN" in str(error.value)


def test_exposure_warning_only_beyond_loopback_without_token() -> None:
    from tests.securitykit import settings_with
    from voicebot.server.security import exposure_warning

    assert exposure_warning(settings_with(server={"host": "127.0.0.1"})) is None
    assert exposure_warning(settings_with(server={"host": "0.0.0.0"})) is not None
    assert exposure_warning(settings_with(server={"host": "0.0.0.0"}, security={"token": TOKEN})) is None
