"""The Anthropic provider against a wire-level fake of the streaming Messages API."""

from __future__ import annotations

import pytest

from tests.fakeservers import REPLY, FakeService
from tests.providers.conftest import FAST, KEYS, make_settings
from voicebot.errors import ProviderFailed
from voicebot.providers.anthropic_api import AnthropicLLM, anthropic_messages
from voicebot.providers.base import Message


def anthropic(fake: FakeService, **llm: object) -> AnthropicLLM:
    settings = make_settings(llm={"anthropic": {"base_url": fake.url}, "timeouts": FAST, **llm})
    return AnthropicLLM(settings.llm, KEYS)


def sent_key(headers: dict[str, str]) -> str | None:
    """The key as the client sent it: ``x-api-key``, or a bearer token (newer client versions)."""
    bearer = headers.get("authorization", "")
    return headers.get("x-api-key") or (bearer.removeprefix("Bearer ") if bearer.startswith("Bearer ") else None)


async def collect(llm: AnthropicLLM, history: list[Message]) -> list[str]:
    return [piece async for piece in llm.stream_reply(history)]


async def test_streams_the_reply_and_sends_a_messages_request(anthropic_fake: FakeService) -> None:
    llm = anthropic(anthropic_fake, system_prompt="Be brief.", max_tokens=50)
    history = [
        Message("assistant", "Hello!"),  # the API wants the user first: dropped
        Message("user", "Hi."),
        Message("assistant", ""),  # a reply the user cut before hearing anything
        Message("user", "What is the capital of France?"),
    ]
    assert await collect(llm, history) == list(REPLY)

    (request,) = anthropic_fake.calls("/v1/messages")
    assert sent_key(request.headers) == KEYS["ANTHROPIC_API_KEY"]
    assert request.headers["anthropic-version"]
    assert request.body["model"] == "claude-haiku-4-5"
    assert request.body["stream"] is True
    assert request.body["max_tokens"] == 50
    assert request.body["system"] == "Be brief."
    assert request.body["messages"] == [{"role": "user", "content": "Hi.\nWhat is the capital of France?"}]


def test_messages_alternate_and_start_with_the_user() -> None:
    history = [Message("assistant", "a"), Message("user", "b"), Message("assistant", "c"), Message("user", "d")]
    assert [m["role"] for m in anthropic_messages(history)] == ["user", "assistant", "user"]


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("401", "the API key was refused (HTTP 401)"),
        ("429", "rate limited or out of quota (HTTP 429)"),
        ("500", "the service had an internal error (HTTP 500)"),
        ("529", "the service is overloaded (HTTP 529)"),
        ("hang", "no answer in time"),
    ],
)
async def test_errors_before_the_reply_become_plain_reasons(
    anthropic_fake: FakeService, mode: str, reason: str
) -> None:
    anthropic_fake.reset(mode)
    pieces: list[str] = []
    with pytest.raises(ProviderFailed) as error:
        async for piece in anthropic(anthropic_fake).stream_reply([Message("user", "Hi.")]):
            pieces.append(piece)
    assert pieces == []
    assert error.value.provider == "anthropic"
    assert error.value.reason == reason
    assert KEYS["ANTHROPIC_API_KEY"] not in str(error.value)


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("error_event", "the service is overloaded in the middle of the reply"),
        ("cut", "the connection was cut off mid-way"),
        ("truncated", "the reply stream ended before the reply was complete"),
        ("stall", "no answer in time"),
    ],
)
async def test_a_stream_broken_mid_way_fails_after_its_first_words(
    anthropic_fake: FakeService, mode: str, reason: str
) -> None:
    anthropic_fake.reset(mode)
    pieces: list[str] = []
    with pytest.raises(ProviderFailed) as error:
        async for piece in anthropic(anthropic_fake).stream_reply([Message("user", "Hi.")]):
            pieces.append(piece)
    assert pieces == [REPLY[0]]
    assert error.value.reason == reason


async def test_check_lists_models_with_the_key(anthropic_fake: FakeService) -> None:
    llm = anthropic(anthropic_fake)
    await llm.check()
    (request,) = anthropic_fake.calls("/v1/models")
    assert sent_key(request.headers) == KEYS["ANTHROPIC_API_KEY"]
    anthropic_fake.reset("401")
    with pytest.raises(ProviderFailed, match="the API key was refused"):
        await llm.check()
