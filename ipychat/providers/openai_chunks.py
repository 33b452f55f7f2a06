"""OpenAI-style chat-completion chunks over SSE, shared by Lockchat,
Vitalentum and the OpenAI-compatible provider: chunks become events.

Reasoning arrives as ``delta.reasoning_content`` (DeepSeek, llama.cpp, vLLM)
or ``delta.reasoning`` (Ollama's ``/v1``, OpenRouter), or, from servers
without a reasoning parser, as a ``<think>`` block opening the content.
Usage comes in a last chunk with ``"choices": []`` when asked for with
``stream_options``.
"""

from __future__ import annotations

from typing import AsyncIterator, List, Optional

import aiohttp

from .. import errors
from ..events import Event, Reasoning, ThinkSplitter, finish, usage
from ..streams import LineSplitter, SSEDecoder
from .http import Call, parse_json

DONE = "[DONE]"


class ChunkReader:
    """Turns the chunks of one answer into events, a network read at a time.

    Pieces of one kind within a read are joined into one event: a fast
    stream brings hundreds of chunks per read, and every event crosses
    every layer above.
    """

    def __init__(self, call: Call):
        self.call = call
        self.think = ThinkSplitter()
        self._runs: list = []  # [kind, [pieces]] or [None, event], in order

    def add(self, chunk) -> None:
        """Take one parsed chunk (``error`` raises)."""
        if not isinstance(chunk, dict):
            raise errors.MalformedStreamError("a chunk is not a JSON object", str(chunk)[:80],
                                              provider=self.call.provider)
        if chunk.get("error"):
            raise errors.ProviderError(error_message(chunk["error"]), provider=self.call.provider)
        choices = chunk.get("choices")
        if choices:
            try:
                choice = choices[0]
                self._delta(choice.get("delta") or choice.get("message") or {})
                reason = choice.get("finish_reason")
            except (AttributeError, TypeError, IndexError):
                raise errors.MalformedStreamError("unexpected chunk shape", str(chunk)[:80],
                                                  provider=self.call.provider) from None
            if reason:
                self._event(finish(reason))
        if isinstance(chunk.get("usage"), dict):
            self._event(usage_of(chunk["usage"]))

    def _delta(self, delta: dict) -> None:
        thought = delta.get("reasoning_content") or delta.get("reasoning")
        if thought and isinstance(thought, str):
            self._piece("reasoning", thought)
        content = delta.get("content")
        if content:
            self._piece("text", content)

    def _piece(self, kind: str, text: str) -> None:
        last = self._runs[-1] if self._runs else None
        if last is not None and last[0] == kind:
            last[1].append(text)
        else:
            self._runs.append([kind, [text]])

    def _event(self, event: Optional[Event]) -> None:
        if event is not None:
            self._runs.append([None, event])

    def events(self) -> List[Event]:
        """The events of what was added since the last call."""
        out: List[Event] = []
        for kind, value in self._runs:
            if kind == "text":
                out += self.think.feed(value[0] if len(value) == 1 else "".join(value))
            elif kind == "reasoning":
                out.append(Reasoning("".join(value)))
            else:
                out.append(value)
        self._runs = []
        return out

    def close(self) -> List[Event]:
        return self.events() + self.think.close()


def max_tokens_field(call: Call) -> dict:
    """The OpenAI-style token limit, for the protocols that copy it."""
    return {} if call.max_tokens is None else {"max_tokens": call.max_tokens}


def usage_of(data: dict):
    return usage(data.get("prompt_tokens"), data.get("completion_tokens"))


def error_message(error) -> str:
    if isinstance(error, dict):
        return str(error.get("message") or error.get("type") or error)
    return str(error)


async def sse_data(response: aiohttp.ClientResponse,
                   watch: Optional[callable] = None) -> AsyncIterator[List[str]]:
    """The ``data`` of the SSE events in ``response``: one list per network read.

    Per read, not per event: each ``yield`` crosses every async-generator
    layer above (provider, base class, adapter), and a fast stream brings
    hundreds of events per read.

    ``watch(line)`` sees every raw line first, SSE or not: a server may put
    an error on a line that is no event at all.
    """
    decoder = SSEDecoder()
    lines = LineSplitter()
    async for chunk in response.content.iter_any():
        if watch is not None:
            for line in lines.feed(chunk):
                watch(line.decode("utf-8", "replace"))
        events = decoder.feed(chunk)
        if events:
            yield [event.data for event in events]
        decoder.check()
    if watch is not None:
        watch((lines.close() or b"").decode("utf-8", "replace"))
    decoder.close()


async def chunk_events(response: aiohttp.ClientResponse, call: Call,
                       watch: Optional[callable] = None) -> AsyncIterator[Event]:
    """The events of the chunks of each network read, until ``data: [DONE]``.

    ``watch(line)`` may inspect each raw line first (Lockchat's quirk).
    A stream that closes before ``[DONE]`` raises ``StreamCutShort``.
    A server that answered the streaming request with one whole JSON
    answer (some proxies and mocks do) gets that answer read whole.
    """
    if is_json(response):
        for event in answer_events(parse_json(await response.read(), call,
                                              "the answer is not JSON"), call):
            yield event
        return
    reader = ChunkReader(call)
    data = None
    async for batch in sse_data(response, watch):
        try:
            for data in batch:
                if data == DONE:
                    break
                reader.add(parse_json(data, call))
        except errors.ChatError:  # the events before a bad chunk still reach the user
            for event in reader.events():
                yield event
            raise
        for event in reader.close() if data == DONE else reader.events():
            yield event
        if data == DONE:
            return
    raise errors.StreamCutShort("the stream ended before its [DONE] marker", provider=call.provider)


def is_json(response: aiohttp.ClientResponse) -> bool:
    return response.content_type == "application/json"


def answer_events(reply, call: Call) -> List[Event]:
    """The events of a whole (non-streamed) chat completion."""
    reader = ChunkReader(call)
    reader.add(reply)
    return reader.close()
