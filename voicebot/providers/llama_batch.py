"""Several conversations generating at once on one llama.cpp context (continuous batching).

A llama.cpp context is not thread-safe, and one generation at a time made sessions queue: with four
people talking, the last one waited for three whole replies before the model wrote its first word.
Here one context holds up to ``parallel`` sequences (each with its own id and its own KV cache) and
one scheduler thread owns it. Each step decodes the next token of every sequence that is generating
in one batch, and prompt tokens of sequences that are starting (in chunks, so that a long prompt
does not stall the others for long) in a batch each; then each sequence samples its next token from
its own logits with its own seeded sampler. A new request joins at the next step instead of waiting for the
others to finish. On this CPU a sequence added to a step is far from free (see :func:`_due`), so a
step serves only the sequences whose time has come: batching here is about taking
turns token by token, not about getting more tokens per second.

Each slot keeps the tokens left in its cache after its request ends. A new request takes the free
slot whose tokens share the longest prefix with its prompt (the system prompt, or the same
conversation's earlier turns), and only the rest of the prompt is evaluated.

A reply must not depend on how its prompt reached the cache (read ahead while the user spoke, in
chunks of any size, beside other conversations, in any slot): a replayed session gets the same
replies, and so does a turn whose history was read ahead. llama.cpp's numbers are not that stable
by default. Its flash attention gives different logits for the same tokens read in chunks of 32 or
of 128, and in a cache shared by all sequences a sequence's tokens land in whatever cells are free,
which changes the order of the sums over them. So each sequence has a cache of its own (a stream,
``n_ctx / parallel`` tokens, where a token's cell is its position), attention is the plain kernel,
and no prompt token is ever read alone (a lone token goes through another kernel than two or more).
Measured on the embedded model, the same prompt then gives bit-identical logits whatever the
chunking, the riders and the slot; it is also faster here (a step attends over its own sequence's
cells, not over every conversation's).

Everything that touches llama.cpp (loading, decoding, sampling) runs on the scheduler thread: llama.cpp
built with OpenMP starts a team of compute threads for every OS thread that calls it, and teams on
different threads fight for the cores (see ``voicebot.threads.dedicated_thread``).
"""

from __future__ import annotations

import codecs
import ctypes
import queue
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from voicebot.threads import CORES, END, LoopInbox

#: Prompt tokens evaluated per step for the sequence needed first. Everyone waits for a step (it
#: cannot be interrupted): a long prompt is read in chunks, so a turn that needs the model meanwhile
#: waits at most one chunk, about 70 ms here. Bigger chunks hardly read faster with a cache per
#: sequence and plain attention: 256 tokens took 1.11 s in chunks of 16, 1.10 s in chunks of 32 and
#: 1.03 s in chunks of 128 (2 cores; a step of 128 took half a second).
_PROMPT_CHUNK = 16
#: ... and for all the other sequences together: they ride along in a step somebody else needs sooner.
_PROMPT_RIDE = 8
#: Room in the batch (a step holds far fewer tokens).
_BATCH = 512
#: The fewest prompt tokens a sequence reads in a step: a token read alone gets slightly different
#: numbers (see the module's docstring).
_FEWEST = 2
#: When every sequence is paused, the scheduler looks again this often (seconds).
_PAUSED_POLL_S = 0.02
#: Tokens llama.cpp computes at once (a batch is split into these). Its work buffers are sized for
#: it: 512 would cost about 100 MiB (mostly logits for every token), 128 about a quarter.
_UBATCH = 128


@dataclass
class GenerationRequest:
    """One reply to generate: the chat ``messages`` and how to sample."""

    messages: list[dict[str, Any]]
    max_tokens: int
    """0: only read the prompt into the cache (:meth:`BatchedLlama.read_ahead`)."""
    temperature: float
    seed: int
    post: Callable[[object], None]
    """Receives each text piece, then an exception or :data:`voicebot.threads.END` (called on the
    scheduler thread)."""
    stop: threading.Event = field(default_factory=threading.Event)
    may_pause: Callable[[], bool] | None = None
    """Asked before each step once the reply has begun: while true, this sequence sits the step out
    (another conversation needs the cores more; see ``voicebot.turn.urgency``)."""
    needed_by: Callable[[], float] | None = None
    """When the reply's next token is needed (``time.monotonic()``); by default, when it was submitted.
    A step takes the cores with the earliest of its sequences' deadlines (see ``voicebot.threads.Cores``)."""
    unfinished: bool = False
    """The last message is still being spoken: read it up to its last word, without the tokens that
    close it (see :meth:`BatchedLlama.read_ahead`)."""
    room: int = 0
    """Tokens to leave for the reply when the conversation is trimmed to fit the context (at least
    ``max_tokens``): a reading ahead leaves what its reply will write, so that both trim alike."""
    submitted: float = field(default_factory=time.monotonic)


@dataclass
class _Slot:
    seq_id: int
    tokens: list[int] = field(default_factory=list)
    """Tokens in this sequence's KV cache, from position 0."""
    request: GenerationRequest | None = None
    pending: list[int] = field(default_factory=list)
    """Prompt tokens not yet evaluated."""
    next_token: int | None = None
    """Sampled but not yet evaluated (fed in the next step)."""
    generated: int = 0
    sampler: Any = None
    text: Any = None  # an incremental UTF-8 decoder: a token may end inside a character
    logits_at: int | None = None
    """Index in the current batch whose logits this slot samples from."""


def _paused(slot: _Slot) -> bool:
    """Whether a generating sequence sits this step out: only between tokens of its reply (a prompt
    being read is always somebody's first words)."""
    request = slot.request
    return request is not None and request.may_pause is not None and slot.next_token is not None and request.may_pause()


def _deadline(slot: _Slot) -> float:
    request = slot.request
    assert request is not None
    return request.submitted if request.needed_by is None else request.needed_by()


def _due(active: list[_Slot], now: float) -> tuple[list[_Slot], float]:
    """The sequences a step serves, the one needed first first: that one, and every other whose
    deadline has come. The others wait for a later step. Also the first one's deadline: the step is
    needed then (each deadline is asked once a step; some move with the clock).

    Riders are not free on this CPU: a step of two or three sequences took 27 and 34 ms where one
    took 16 (2 threads), and 50 and 81 ms where one took 28 (1 thread), with the shared cache of
    before; with a cache per sequence, 21 and 27 ms where one took 12 (2 threads). Three turns that
    pressed at once wrote their first words together, three times slower, and their first segments
    then queued for the voice together; served in order, the first is spoken while the second is
    written. Work that can wait (a reply whose audio lasts, a conversation read ahead) runs in the
    steps nobody needs sooner, and joins as soon as its own time has come."""
    ordered = sorted(((_deadline(slot), slot) for slot in active), key=lambda pair: pair[0])
    first_deadline, first = ordered[0]
    return [first, *(slot for deadline, slot in ordered[1:] if deadline <= now)], first_deadline


def _prompt_part(pending: list[int], size: int) -> list[int]:
    """The next ``size`` prompt tokens to read, never one alone and never leaving one alone behind
    (see the module's docstring)."""
    size = max(size, _FEWEST)
    if len(pending) - size == 1:
        size += 1
    return pending[:size]


def without_oldest_turn(messages: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    """``messages`` without the oldest exchange after the system messages: its first message and
    whatever follows up to the next user message. None when only the last user message would be
    left to drop."""
    start = next((i for i, message in enumerate(messages) if message.get("role") != "system"), len(messages))
    following = next(
        (i for i in range(start + 1, len(messages)) if messages[i].get("role") == "user"),
        None,
    )
    if following is None:
        return None
    return [*messages[:start], *messages[following:]]


def _reads_only(slot: _Slot) -> bool:
    """Whether the slot's request only reads its prompt (writes nothing)."""
    return slot.request is not None and slot.request.max_tokens == 0


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """Length of the longest common prefix of two token lists."""
    count = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        count += 1
    return count


class BatchedLlama:
    """One GGUF model and one context serving up to ``parallel`` generations at once."""

    def __init__(self, model_path: Path, n_ctx: int, n_threads: int, parallel: int) -> None:
        self._parallel = parallel
        self.prompt_tokens_read = 0
        """Prompt tokens evaluated so far (those found in the cache are not)."""
        self._requests: queue.SimpleQueue[GenerationRequest | None] = queue.SimpleQueue()
        self._next: GenerationRequest | None = None
        """A request taken from the queue while every slot was busy (see :meth:`_admit`)."""
        self._closed = False
        loaded: queue.SimpleQueue[BaseException | None] = queue.SimpleQueue()
        self._thread = threading.Thread(
            target=self._run, args=(model_path, n_ctx, n_threads, loaded), name="voicebot-llama", daemon=True
        )
        self._thread.start()
        error = loaded.get()
        if error is not None:
            raise error

    # -- the caller's side ------------------------------------------------------------------------

    def submit(self, request: GenerationRequest) -> None:
        """Queue a request; its pieces go to ``request.post`` from the scheduler thread."""
        self._requests.put(request)

    async def stream(
        self,
        messages: list[dict[str, Any]],
        max_tokens: int,
        temperature: float,
        seed: int,
        may_pause: Callable[[], bool] | None = None,
        needed_by: Callable[[], float] | None = None,
    ) -> AsyncIterator[str]:
        """The reply's text pieces as they are sampled. Leaving early (a barge-in) ends the
        generation at the next step and frees its slot. ``may_pause``, ``needed_by``: see
        ``GenerationRequest``."""
        stop = threading.Event()
        inbox: LoopInbox[str] = LoopInbox(stop)
        request = GenerationRequest(messages, max_tokens, temperature, seed, inbox.post, stop, may_pause, needed_by)
        self.submit(request)
        try:
            async for piece in inbox.items():
                yield piece
        finally:
            stop.set()
            self._requests.put(None)  # wake the scheduler if it sleeps

    def read_ahead(
        self,
        messages: list[dict[str, Any]],
        needed_by: Callable[[], float] | None = None,
        unfinished: bool = False,
        reply_tokens: int = 0,
    ) -> threading.Event:
        """Read ``messages`` into the cache now, writing nothing: a later request that begins with them
        reads only the rest. ``unfinished``: the last message is the user's words so far; they are
        read, but not the tokens that end the message (the words go on). ``reply_tokens``: the
        ``max_tokens`` of the reply to come, so that a conversation too long for its share of the
        context loses the same oldest turns here as in the reply (else what was read is not its
        prompt). Set the returned event to give up (when the request comes first)."""
        request = GenerationRequest(
            messages, 0, 0.0, 0, lambda item: None, needed_by=needed_by, unfinished=unfinished, room=reply_tokens
        )
        self.submit(request)
        return request.stop

    def generate(self, messages: list[dict[str, Any]], max_tokens: int, temperature: float, seed: int) -> str:
        """The whole reply, blocking (for warming up and tests; not on the event loop)."""
        done: queue.SimpleQueue[object] = queue.SimpleQueue()
        self.submit(GenerationRequest(messages, max_tokens, temperature, seed, done.put))
        text = []
        while (item := done.get()) is not END:
            if isinstance(item, BaseException):
                raise item
            text.append(str(item))
        return "".join(text)

    def close(self) -> None:
        """Stop the scheduler (requests in flight end with what they have)."""
        self._closed = True
        self._requests.put(None)

    # -- the scheduler thread ---------------------------------------------------------------------

    def _run(
        self, model_path: Path, n_ctx: int, n_threads: int, loaded: queue.SimpleQueue[BaseException | None]
    ) -> None:
        try:
            self._load(model_path, n_ctx, n_threads)
        except BaseException as exc:  # noqa: BLE001 - handed to the constructor
            loaded.put(exc)
            return
        loaded.put(None)
        slots = [_Slot(seq_id) for seq_id in range(self._parallel)]
        while not self._closed:
            self._admit(slots, wait=not any(slot.request for slot in slots))
            if any(slot.request for slot in slots) and not self._step(slots):
                self._admit(slots, wait=True, timeout=_PAUSED_POLL_S)  # all paused: look again soon

    def _load(self, model_path: Path, n_ctx: int, n_threads: int) -> None:
        import llama_cpp
        from llama_cpp import _internals
        from llama_cpp._logger import set_verbose
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        set_verbose(False)  # llama.cpp's own log: errors only
        llama_cpp.llama_backend_init()
        model_params = llama_cpp.llama_model_default_params()
        self._model = _internals.LlamaModel(path_model=str(model_path), params=model_params, verbose=False)
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = n_ctx
        params.n_batch, params.n_ubatch = _BATCH, _UBATCH
        params.n_threads = params.n_threads_batch = n_threads
        self._n_threads = self._threads_now = n_threads
        params.n_seq_max = self._parallel
        params.kv_unified = False  # a cache per sequence, and plain attention: see the module's docstring
        params.flash_attn_type = llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED
        self._ctx = _internals.LlamaContext(model=self._model, params=params, verbose=False)
        self._seq_ctx = int(llama_cpp.llama_n_ctx_seq(self._ctx.ctx))
        self._batch = llama_cpp.llama_batch_init(_BATCH, 0, 1)
        self._vocab = llama_cpp.llama_model_get_vocab(self._model.model)
        self._llama_cpp: Any = llama_cpp
        self._internals: Any = _internals
        metadata = self._model.metadata()
        template = metadata.get("tokenizer.chat_template")
        if not template:
            raise ValueError(f"{model_path.name} has no chat template")
        eos = self._model.token_eos()
        bos = self._model.token_bos()
        self._formatter: Any = Jinja2ChatFormatter(
            template=template,
            eos_token=self._model.token_get_text(eos) if eos != -1 else "",
            bos_token=self._model.token_get_text(bos) if bos != -1 else "",
            stop_token_ids=[eos],
        )

    def _prompt(self, messages: list[dict[str, Any]], unfinished: bool = False) -> list[int]:
        formatted = self._formatter(messages=messages)
        text: str = formatted.prompt
        if unfinished and messages:  # up to the last message's words, not the marks that close it
            words = str(messages[-1].get("content") or "")
            at = text.rfind(words) if words else -1
            if at >= 0:
                text = text[: at + len(words)]
        add_bos = not formatted.added_special
        tokens: list[int] = self._model.tokenize(text.encode("utf-8"), add_bos=add_bos, special=True)
        return tokens

    def _fitting_prompt(self, request: GenerationRequest) -> list[int]:
        """The request's prompt, without the conversation's oldest turns while it leaves no room for
        the reply in the sequence's share of the context: a long conversation goes on, forgetting its
        beginning, rather than failing. A single message too long for the share is an error."""
        messages = request.messages
        prompt = self._prompt(messages, request.unfinished)
        room = max(request.max_tokens, request.room)
        while len(prompt) + room > self._seq_ctx:
            shorter = without_oldest_turn(messages)
            if shorter is None:
                break
            messages = shorter
            prompt = self._prompt(messages, request.unfinished)
        if len(prompt) + _FEWEST > self._seq_ctx:
            raise ValueError(
                f"the conversation ({len(prompt)} tokens) does not fit the context"
                f" ({self._seq_ctx} tokens for each of {self._parallel} conversations)"
            )
        return prompt

    def _admit(self, slots: list[_Slot], wait: bool, timeout: float | None = None) -> None:
        """Take queued requests into free slots (sleeping until one comes, or ``timeout`` passes,
        when ``wait``)."""
        while True:
            self._finish_stopped(slots)  # e.g. a reading ahead superseded by the next: its slot is free
            free = [slot for slot in slots if slot.request is None]
            if not free and self._gives_way(slots):
                continue
            if not free:
                if timeout is not None:
                    time.sleep(timeout)  # every slot is busy, and paused
                return
            request, self._next = self._next, None
            if request is None:
                try:
                    request = self._requests.get(block=wait, timeout=timeout)
                except queue.Empty:
                    return
            wait = False
            if request is None or request.stop.is_set():
                continue  # a wake-up, or a request its consumer already left
            try:
                prompt = self._fitting_prompt(request)
            except Exception as exc:  # noqa: BLE001 - handed to the consumer
                request.post(exc)
                continue
            slot = max(free, key=lambda candidate: common_prefix(candidate.tokens, prompt))
            self._start(slot, request, prompt, slots)

    def _gives_way(self, slots: list[_Slot]) -> bool:
        """Every slot is busy: whether a conversation being read ahead gave its slot to a reply
        waiting for one. A reading ahead is only needed once nothing else is (it may wait for a long
        time while replies are written) and only saves time later; a reply is somebody's answer.
        Looks at the next request without losing its place (it is admitted first)."""
        reader = next((slot for slot in slots if _reads_only(slot)), None)
        if reader is None:
            return False
        while self._next is None:
            try:
                request = self._requests.get_nowait()
            except queue.Empty:
                return False
            if request is not None and not request.stop.is_set():
                self._next = request
        if self._next.max_tokens == 0:
            return False  # another reading ahead: it waits like any request
        self._finish(reader)  # what it read stays in the cache
        return True

    def _start(self, slot: _Slot, request: GenerationRequest, prompt: list[int], slots: list[_Slot]) -> None:
        # The prompt's last tokens are always read: the last gives the logits, and it is not read alone.
        last = max(0, len(prompt) - _FEWEST)
        keep = min(common_prefix(slot.tokens, prompt), last)
        # Another slot (even a busy one) may hold more of this prompt, e.g. the system prompt while
        # this slot is empty: copy its cache (a copy of the data, a few milliseconds: far less
        # than reading the tokens again).
        donor = max(slots, key=lambda other: common_prefix(other.tokens, prompt))
        shared = min(common_prefix(donor.tokens, prompt), last)
        if donor is not slot and shared > keep:
            self._ctx.kv_cache_seq_rm(slot.seq_id, 0, -1)
            self._ctx.kv_cache_seq_cp(donor.seq_id, slot.seq_id, -1, -1)  # across caches only whole ones
            self._ctx.kv_cache_seq_rm(slot.seq_id, shared, -1)
            keep = shared
        else:
            self._ctx.kv_cache_seq_rm(slot.seq_id, keep, -1)
        slot.tokens = prompt[:keep]
        slot.pending = prompt[keep:]
        slot.request = request
        slot.next_token = None
        slot.generated = 0
        slot.text = codecs.getincrementaldecoder("utf-8")(errors="replace")
        slot.sampler = self._sampler(request)

    def _sampler(self, request: GenerationRequest) -> Any:
        """The same chain as llama-cpp-python's chat completion, seeded per request: a conversation
        gets the same reply whatever else is generating."""
        sampler = self._internals.LlamaSampler()
        if request.temperature <= 0:
            sampler.add_greedy()
            return sampler
        sampler.add_top_k(40)
        sampler.add_top_p(0.95, 1)
        sampler.add_min_p(0.05, 1)
        sampler.add_temp(request.temperature)
        sampler.add_dist(request.seed)
        return sampler

    def _finish_stopped(self, slots: list[_Slot]) -> None:
        """End the requests whose consumers left (a barge-in, a reading ahead given up)."""
        for slot in slots:
            if slot.request is not None and slot.request.stop.is_set():
                self._finish(slot)

    def _finish(self, slot: _Slot, outcome: object = END) -> None:
        request, slot.request = slot.request, None
        slot.pending, slot.next_token, slot.sampler = [], None, None
        if request is not None:
            request.post(outcome)

    def _step(self, slots: list[_Slot]) -> bool:
        """One decoding step of every sequence that is not paused; whether there was one."""
        self._finish_stopped(slots)
        active = [slot for slot in slots if slot.request is not None and not _paused(slot)]
        if not active:
            return not any(slot.request for slot in slots)
        active, needed_at = _due(active, time.monotonic())
        # What each slot feeds this step: its sampled token, or the next part of its prompt (a chunk
        # for the reader needed first, a little for the others).
        readers = [slot for slot in active if slot.next_token is None and slot.pending]
        feeds: dict[int, list[int]] = {}
        ride = _PROMPT_RIDE
        for slot in active:
            if slot.next_token is not None:
                feeds[slot.seq_id] = [slot.next_token]
            elif readers and slot is readers[0]:
                feeds[slot.seq_id] = _prompt_part(slot.pending, _PROMPT_CHUNK)
            elif slot.pending and ride > 0:
                feeds[slot.seq_id] = _prompt_part(slot.pending, ride)
                ride -= len(feeds[slot.seq_id])
        for slot in active:
            if len(slot.tokens) + len(feeds.get(slot.seq_id, [])) > self._seq_ctx:
                del feeds[slot.seq_id]  # its own share of the context is full; the others go on
                self._finish(slot, RuntimeError(f"the context is full ({self._seq_ctx} tokens for this conversation)"))
        active = [slot for slot in active if slot.request is not None]
        if not active:
            return True
        # The generated tokens are decoded together, each prompt part apart: llama.cpp splits a batch
        # into parts with as many tokens of each sequence, and a prompt part beside a generated token
        # would be read one token alone, then the rest (see the module's docstring). Apart, the step
        # costs the same: the parts were computed one after the other anyway.
        writing = [slot for slot in active if slot.next_token is not None]
        groups = [writing] if writing else []
        groups += [[slot] for slot in active if slot.next_token is None and feeds.get(slot.seq_id)]
        cores = CORES.take(self._n_threads, needed_at)
        try:
            self._use_threads(cores)
            for group in groups:
                self._fill_batch(group, feeds)
                if self._decode(group):
                    self._advance(group, feeds)
        finally:
            CORES.give(cores)
        return True

    def _fill_batch(self, group: list[_Slot], feeds: dict[int, list[int]]) -> None:
        batch = self._batch
        batch.n_tokens = 0
        for slot in group:
            tokens = feeds[slot.seq_id]
            read_all = len(tokens) == len(slot.pending)
            gives_logits = slot.next_token is not None or (read_all and not _reads_only(slot))
            slot.logits_at = None
            for offset, token in enumerate(tokens):
                i = batch.n_tokens
                batch.token[i] = token
                batch.pos[i] = len(slot.tokens) + offset
                batch.n_seq_id[i] = 1
                batch.seq_id[i][0] = slot.seq_id
                batch.logits[i] = gives_logits and offset == len(tokens) - 1
                batch.n_tokens += 1
            if gives_logits:
                slot.logits_at = batch.n_tokens - 1

    def _advance(self, group: list[_Slot], feeds: dict[int, list[int]]) -> None:
        """After a decode: the group's tokens are in the cache; sample the next ones."""
        for slot in group:
            tokens = feeds[slot.seq_id]
            slot.tokens.extend(tokens)
            if slot.next_token is not None:
                slot.next_token = None
            else:
                slot.pending = slot.pending[len(tokens) :]
                self.prompt_tokens_read += len(tokens)
            if slot.logits_at is not None:
                self._sample(slot)
            elif not slot.pending and _reads_only(slot):
                self._finish(slot)  # a prompt read ahead (see ``read_ahead``): now in the cache

    def _use_threads(self, count: int) -> None:
        """Decode with ``count`` threads from now on: as many as the step got cores (see
        ``voicebot.threads.Cores``)."""
        if count != self._threads_now:
            self._llama_cpp.llama_set_n_threads(self._ctx.ctx, count, count)
            self._threads_now = count

    def _decode(self, active: list[_Slot]) -> bool:
        """Decode the batch; if llama.cpp cannot (each sequence's share of the context is checked
        before, so this is not expected), give up the longest conversation (its consumer gets the
        error) and let the others try again."""
        code = self._llama_cpp.llama_decode(self._ctx.ctx, self._batch)
        if code == 0:
            return True
        for slot in active:  # whatever the failed step wrote is not part of any sequence
            self._ctx.kv_cache_seq_rm(slot.seq_id, len(slot.tokens), -1)
        longest = max(active, key=lambda slot: len(slot.tokens) + len(slot.pending))
        self._ctx.kv_cache_seq_rm(longest.seq_id, 0, -1)
        longest.tokens = []
        self._finish(longest, RuntimeError(f"llama.cpp could not decode (code {code})"))
        return False

    def _piece(self, token: int) -> bytes:
        buffer = ctypes.create_string_buffer(64)
        length = self._llama_cpp.llama_token_to_piece(self._vocab, token, buffer, len(buffer), 0, False)
        return buffer.raw[: max(0, length)]

    def _sample(self, slot: _Slot) -> None:
        request = slot.request
        assert request is not None and slot.logits_at is not None
        token = int(slot.sampler.sample(self._ctx, slot.logits_at))
        if self._llama_cpp.llama_vocab_is_eog(self._vocab, token):
            self._finish(slot)
            return
        piece = slot.text.decode(self._piece(token))
        if piece:
            request.post(piece)
        slot.generated += 1
        if slot.generated >= request.max_tokens:
            tail = slot.text.decode(b"", final=True)
            if tail:
                request.post(tail)
            self._finish(slot)
            return
        slot.next_token = token
