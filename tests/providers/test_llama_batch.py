"""Batched generation on the embedded SmolLM2: several conversations on one llama.cpp context at
once, each isolated from the others, each able to leave early, none waiting for another's whole
reply; and a conversation too long for the context fails alone, with a clear error."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from voicebot.providers.llama_batch import BatchedLlama, GenerationRequest, common_prefix, without_oldest_turn
from voicebot.providers.llama_cpp import resolve_model_path
from voicebot.settings import EMBEDDED, LLMSettings
from voicebot.threads import END, model_call

pytestmark = pytest.mark.models

SYSTEM = LLMSettings().system_prompt
SEED = 1234


def chat(question: str) -> list[dict[str, Any]]:
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}]


@pytest.fixture(scope="module")
def engine() -> Iterator[BatchedLlama]:
    batched = BatchedLlama(resolve_model_path(EMBEDDED), n_ctx=2048, n_threads=2, parallel=3)
    yield batched
    batched.close()


async def collect(engine: BatchedLlama, question: str, log: list[str], max_tokens: int = 48) -> str:
    pieces = []
    async for piece in engine.stream(chat(question), max_tokens, 0.2, SEED):
        log.append(question)
        pieces.append(piece)
    return "".join(pieces)


def test_common_prefix() -> None:
    assert common_prefix([1, 2, 3], [1, 2, 4, 5]) == 2
    assert common_prefix([], [1]) == 0
    assert common_prefix([7, 8], [7, 8]) == 2


def test_the_same_conversation_gets_the_same_reply(engine: BatchedLlama) -> None:
    first = engine.generate(chat("What is the capital of France?"), 32, 0.2, SEED)
    engine.generate(chat("Name three colours."), 32, 0.2, SEED)  # another conversation in between
    assert "Paris" in first
    assert engine.generate(chat("What is the capital of France?"), 32, 0.2, SEED) == first


async def test_conversations_generate_at_once_and_stay_apart(engine: BatchedLlama) -> None:
    log: list[str] = []
    questions = ["What is the capital of France?", "What is the tallest mountain in the world?", "Tell me a story."]
    replies = await asyncio.gather(*(collect(engine, question, log) for question in questions))
    assert "Paris" in replies[0] and "Everest" not in replies[0]
    assert "Everest" in replies[1] and "Paris" not in replies[1]
    assert replies[2]
    # Interleaved, not one after the other: the story's first piece came before France's last.
    assert log.index(questions[2]) < len(log) - 1 - log[::-1].index(questions[0])


async def test_more_conversations_than_slots_wait_their_turn(engine: BatchedLlama) -> None:
    log: list[str] = []
    questions = [f"What is {n} plus {n}?" for n in range(1, 6)]  # five for three slots
    replies = await asyncio.gather(*(collect(engine, question, log, 16) for question in questions))
    assert all(replies)


async def test_leaving_early_frees_the_slot_and_spares_the_others(engine: BatchedLlama) -> None:
    async def leave_after_two() -> int:
        count = 0
        stream = engine.stream(chat("Tell me a long story about a dragon."), 96, 0.2, SEED)
        async for _ in stream:
            count += 1
            if count == 2:
                break
        await stream.aclose()  # type: ignore[attr-defined]
        return count

    alone = engine.generate(chat("What is the tallest mountain in the world?"), 32, 0.2, SEED)
    left = [asyncio.create_task(leave_after_two()) for _ in range(3)]  # every slot, then gone
    assert await asyncio.gather(*left) == [2, 2, 2]
    log: list[str] = []
    after = await collect(engine, "What is the tallest mountain in the world?", log, 32)
    assert after == alone  # a slot is free again, and nothing of the stories leaked into it


async def test_a_conversation_too_long_for_the_context_fails_alone(engine: BatchedLlama) -> None:
    long_question = "Please repeat: " + "a dragon sleeps under the old mountain. " * 300  # > 2048 tokens
    with pytest.raises(ValueError, match="does not fit the context"):
        await collect(engine, long_question, [])
    log: list[str] = []
    assert "Paris" in await collect(engine, "What is the capital of France?", log)


async def test_a_conversation_that_fills_its_share_of_the_context_ends_there_and_the_others_go_on() -> None:
    """Each conversation has its own share of the context (``n_ctx / parallel``, here 256 tokens): one
    that fills it fails with a clear error, and a conversation beside it is not touched."""
    small = BatchedLlama(resolve_model_path(EMBEDDED), n_ctx=768, n_threads=2, parallel=3)
    try:
        long_request = "Please repeat: " + "a dragon sleeps under the old mountain. " * 18  # about 200 tokens
        alone = await collect(small, "What is the capital of France?", [], 32)
        outcomes = await asyncio.gather(
            collect(small, long_request, [], 120),  # room for about 50 of its 120 tokens
            collect(small, "What is the capital of France?", [], 32),
            return_exceptions=True,
        )
        assert isinstance(outcomes[0], RuntimeError) and "context is full" in str(outcomes[0])
        assert outcomes[1] == alone
        assert await collect(small, "What is the capital of France?", [], 32) == alone  # its slot is usable again
    finally:
        small.close()


def test_without_oldest_turn_drops_the_first_exchange_and_keeps_the_system_and_the_question() -> None:
    system = {"role": "system", "content": "Be brief."}
    first = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]
    tool_turn = [
        {"role": "user", "content": "Time?"},
        {"role": "assistant", "content": "", "tool_calls": []},
        {"role": "tool", "content": "10:00"},
        {"role": "assistant", "content": "It is ten."},
    ]
    question = {"role": "user", "content": "And now?"}
    assert without_oldest_turn([system, *first, *tool_turn, question]) == [system, *tool_turn, question]
    assert without_oldest_turn([system, *tool_turn, question]) == [system, question]
    assert without_oldest_turn([system, question]) is None
    assert without_oldest_turn([*first, question]) == [question]


def _long_conversation() -> list[dict[str, Any]]:
    """194 tokens: too long for a share of 256 with room for a reply of 80."""
    turns = [
        ("Tell me about the moon.", "The moon is Earth's only natural satellite, and it shapes our tides. " * 3),
        ("And the sun?", "The sun is the star at the centre of our solar system, a ball of hot plasma. " * 2),
        ("What about Mars?", "Mars is the fourth planet from the sun, cold, dusty and red."),
    ]
    history: list[dict[str, Any]] = [{"role": "system", "content": SYSTEM}]
    for question, answer in turns:
        history += [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
    return [*history, {"role": "user", "content": "Which of them is the biggest?"}]


def test_a_conversation_longer_than_its_share_of_the_context_forgets_its_oldest_turns() -> None:
    """Rather than failing, a long conversation is answered as if its oldest turns had not been said:
    exactly the reply to the conversation without them."""
    small = BatchedLlama(resolve_model_path(EMBEDDED), n_ctx=768, n_threads=2, parallel=3)  # 256 tokens each
    try:
        asked = _long_conversation()
        shorter = without_oldest_turn(asked)
        assert shorter is not None
        long_reply = small.generate(asked, 80, 0.2, SEED)  # 194 tokens: no room for 80 more in 256
        assert long_reply  # answered, not failed
        assert small.generate(shorter, 80, 0.2, SEED) == long_reply  # 131 tokens: room enough
    finally:
        small.close()


def test_a_long_conversation_read_ahead_loses_the_same_oldest_turns_as_its_reply() -> None:
    """A reading ahead leaves room for the reply to come (``room``): a conversation too long for its
    share of the context is trimmed as its reply's prompt will be, so the reply finds all of it in the
    cache (without the room, the whole conversation was read, and the reply read its trimmed prompt
    again after the system prompt)."""
    small = BatchedLlama(resolve_model_path(EMBEDDED), n_ctx=256, n_threads=2, parallel=1)
    try:
        asked = _long_conversation()
        read = threading.Event()
        small.submit(GenerationRequest(asked, 0, 0.0, 0, _when_over(read), room=80))
        assert read.wait(30)
        before = small.prompt_tokens_read
        assert small.generate(asked, 80, 0.2, SEED)  # the prompt leaves out the moon: no room for 80 more
        assert small.prompt_tokens_read - before <= 2  # only the last two tokens, always read again
    finally:
        small.close()


async def test_a_paused_reply_sits_out_while_another_generates_then_ends_the_same() -> None:
    """``may_pause`` (a reply far ahead of its listener while another turn waits for its first
    audio): the paused reply writes nothing meanwhile, the other one runs alone, and once unpaused
    the paused reply carries on to the very words it would have written anyway."""
    story, question = "Tell me a story about a dragon.", "What is the capital of France?"
    engine = BatchedLlama(resolve_model_path(EMBEDDED), n_ctx=2048, n_threads=2, parallel=2)
    try:
        alone = engine.generate(chat(story), 40, 0.2, SEED)
        pause = False
        pieces: list[str] = []
        four_pieces = asyncio.Event()

        async def paused_story() -> str:
            async for piece in engine.stream(chat(story), 40, 0.2, SEED, may_pause=lambda: pause):
                pieces.append(piece)
                if len(pieces) == 4:
                    four_pieces.set()
            return "".join(pieces)

        telling = asyncio.create_task(paused_story())
        await four_pieces.wait()
        pause = True
        await asyncio.sleep(0.1)  # a token already sampled may still arrive
        before = len(pieces)
        answer = await collect(engine, question, [])
        assert "Paris" in answer
        assert len(pieces) == before  # nothing while the other reply generated
        pause = False
        assert await telling == alone
    finally:
        engine.close()


async def test_a_reply_that_can_wait_writes_after_the_one_needed_first_and_joins_when_its_time_comes() -> None:
    """A step serves the sequence needed first, and the others only once their own time has come:
    a reply needed later writes nothing while one needed now generates; one whose time comes during
    it joins it from then on. Each says exactly what it says alone."""
    engine = BatchedLlama(resolve_model_path(EMBEDDED), n_ctx=2048, n_threads=2, parallel=3)
    try:
        story, question = "Tell me a story about a dragon.", "What is the capital of France?"
        colours = "Name three colours."
        length = {story: 64, question: 24, colours: 24}
        alone = {text: engine.generate(chat(text), length[text], 0.2, SEED) for text in length}
        log: list[tuple[str, float]] = []

        async def reply(text: str, needed_by: Callable[[], float]) -> str:
            pieces = []
            async for piece in engine.stream(chat(text), length[text], 0.2, SEED, needed_by=needed_by):
                log.append((text, time.monotonic()))
                pieces.append(piece)
            return "".join(pieces)

        begun = time.monotonic()
        joins_at = begun + 0.25
        replies = await asyncio.gather(
            reply(story, lambda: begun),  # needed now
            reply(colours, lambda: time.monotonic() + 60),  # always a minute away: waits while anything else runs
            reply(question, lambda: joins_at),  # its time comes a quarter of a second in
        )
        assert replies == [alone[story], alone[colours], alone[question]]
        story_end = max(at for text, at in log if text == story)
        question_times = [at for text, at in log if text == question]
        assert min(at for text, at in log if text == colours) > max(story_end, max(question_times))
        assert min(question_times) >= joins_at
        assert min(question_times) < story_end  # it joined the story, not waited for its end
    finally:
        engine.close()


def test_a_reply_is_the_same_when_other_model_calls_come_and_go_during_it(engine: BatchedLlama) -> None:
    """While Piper or Moonshine runs (``model_call``) the model decodes with one thread, and with all
    of them again after: switching in the middle of a reply changes nothing in it."""
    question = chat("Tell me a story about a dragon.")
    alone = engine.generate(question, 48, 0.2, SEED)
    stop = threading.Event()

    def come_and_go() -> None:
        while not stop.is_set():
            with model_call():
                time.sleep(0.03)
            time.sleep(0.03)

    other = threading.Thread(target=come_and_go)
    other.start()
    try:
        beside = engine.generate(question, 48, 0.2, SEED)
    finally:
        stop.set()
        other.join()
    assert beside == alone


def _when_over(done: threading.Event) -> Callable[[object], None]:
    return lambda item: done.set() if item is END else None


def _at_first(piece_came: threading.Event) -> Callable[[object], None]:
    return lambda item: piece_came.set()


def test_a_conversation_read_ahead_is_not_read_again_and_gets_the_same_reply() -> None:
    """While the user speaks, the conversation so far is read into the cache (``read_ahead``): the
    reply then reads only the new question, and says exactly what it says without reading ahead,
    wherever the reading stopped, and with another conversation writing beside it meanwhile (so the
    prompt is read in other chunks, beside other tokens, in another slot)."""
    engine = BatchedLlama(resolve_model_path(EMBEDDED), n_ctx=2048, n_threads=2, parallel=2)
    history = [
        *chat("Tell me about the moon."),
        {"role": "assistant", "content": "The moon is Earth's only natural satellite. " * 6},
    ]
    asked = [*history, {"role": "user", "content": "How far away is it?"}]
    try:
        before = engine.prompt_tokens_read
        cold = engine.generate(asked, 24, 0.2, SEED)
        read_cold = engine.prompt_tokens_read - before
        for read_first in (20, 70, None):  # tokens read ahead before the user stops speaking (None: all)
            others = [threading.Event(), threading.Event()]  # both slots forget the conversation at once
            for question, done in zip(("What time is it?", "Name a colour."), others, strict=True):
                engine.submit(GenerationRequest(chat(question), 2, 0.2, SEED, _when_over(done)))
            assert all(done.wait(30) for done in others)
            writing = threading.Event()
            beside = GenerationRequest(chat("Tell me a story about a dragon."), 40, 0.2, SEED, _at_first(writing))
            engine.submit(beside)  # another conversation writes while this one is read ahead
            assert writing.wait(30)
            mark = engine.prompt_tokens_read
            read = threading.Event()
            reading = GenerationRequest(history, 0, 0.0, 0, _when_over(read))  # what ``read_ahead`` submits
            engine.submit(reading)
            deadline = time.monotonic() + 30
            while read_first and engine.prompt_tokens_read - mark < read_first and time.monotonic() < deadline:
                time.sleep(0.005)  # the user is still speaking
            if read_first:
                reading.stop.set()
            assert read.wait(30)
            read_ahead = engine.prompt_tokens_read - mark
            assert read_ahead >= (read_first or 60)
            before = engine.prompt_tokens_read
            warm = engine.generate(asked, 24, 0.2, SEED)
            assert warm == cold, f"read ahead: {read_ahead} tokens"
            assert engine.prompt_tokens_read - before <= read_cold - read_ahead + 8  # not read again
        assert read_cold > 60 and engine.prompt_tokens_read - before < 20  # only the new question, at the end
    finally:
        engine.close()


async def test_a_reply_takes_the_slot_of_a_conversation_read_ahead_when_none_is_free() -> None:
    """A conversation read ahead is needed only once nothing else is, so it may wait in its slot for a
    long time while replies are written; a reply that finds every slot busy takes its slot at once
    instead of waiting for the other reply to end."""
    engine = BatchedLlama(resolve_model_path(EMBEDDED), n_ctx=2048, n_threads=2, parallel=2)
    try:
        story, question = chat("Tell me a long story about a dragon."), chat("What is the capital of France?")
        log: list[str] = []
        begun = asyncio.Event()

        async def reply(name: str, messages: list[dict[str, Any]], tokens: int) -> str:
            pieces = []
            async for piece in engine.stream(messages, tokens, 0.2, SEED):
                log.append(name)
                begun.set()
                pieces.append(piece)
            return "".join(pieces)

        telling = asyncio.create_task(reply("story", story, 160))
        await begun.wait()
        history = [*chat("Tell me about the moon."), {"role": "assistant", "content": "The moon is far. " * 30}]
        reading = engine.read_ahead(history, needed_by=lambda: time.monotonic() + 60)  # never due: it waits
        await asyncio.sleep(0.2)  # both slots are taken now
        answer = await reply("answer", question, 24)
        assert "Paris" in answer
        assert "story" in log[log.index("answer") :] and not telling.done()  # answered while the story went on
        await telling
        reading.set()
    finally:
        engine.close()


def test_the_users_words_read_while_they_speak_leave_only_the_last_ones_to_read() -> None:
    """A partial transcript is read ahead ``unfinished``: up to its last word, without the tokens that
    close the message. The reply to the whole question then reads only the words after it and the
    closing marks, and says exactly what it says when read cold."""
    engine = BatchedLlama(resolve_model_path(EMBEDDED), n_ctx=2048, n_threads=2, parallel=1)
    asked = chat("Can you recommend a good book about the history of the Roman Empire?")
    spoken_so_far = chat("Can you recommend a good book about the history of")
    another = [{"role": "system", "content": "Another note."}, {"role": "user", "content": "Hi"}]
    try:
        engine.generate(another, 2, 0.2, SEED)
        before = engine.prompt_tokens_read
        cold = engine.generate(asked, 24, 0.2, SEED)
        read_cold = engine.prompt_tokens_read - before
        engine.generate(another, 2, 0.2, SEED)  # the cache forgets the question
        read = threading.Event()
        mark = engine.prompt_tokens_read
        engine.submit(GenerationRequest(spoken_so_far, 0, 0.0, 0, _when_over(read), unfinished=True))
        assert read.wait(30)
        read_ahead = engine.prompt_tokens_read - mark
        before = engine.prompt_tokens_read
        warm = engine.generate(asked, 24, 0.2, SEED)
        read_warm = engine.prompt_tokens_read - before
        assert warm == cold
        assert read_ahead > read_cold - 20  # the system prompt and the words so far ...
        assert read_warm <= 12  # ... leave " the Roman Empire?", and the marks that close it and open the reply
    finally:
        engine.close()
