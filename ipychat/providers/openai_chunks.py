"""OpenAI-style chat-completion chunks over SSE, shared by Lockchat,
Vitalentum and the OpenAI-compatible provider: chunks become events.

Reasoning arrives as ``delta.reasoning_content`` (DeepSeek, llama.cpp, vLLM)
or ``delta.reasoning`` (Ollama's ``/v1``, OpenRouter), or, from servers
without a reasoning parser, as a ``<think>`` block opening the content.
Usage comes in a last chunk with ``"choices": []`` when asked for with
``stream_options``. Tool calls come as ``delta.tool_calls`` pieces keyed by
``index``, their ``arguments`` split anywhere; each becomes one ``ToolCall``
once the choice finishes (or the stream ends).
"""

from __future__ import annotations

import json
from typing import AsyncIterator, Dict, List, Optional

import aiohttp

from .. import errors
from ..events import Event, Reasoning, ThinkSplitter, ToolCall, finish, usage
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
        self.calls = CallPieces()
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
                self._calls_done()
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
        if delta.get("tool_calls"):
            self.calls.add(delta["tool_calls"])

    def _piece(self, kind: str, text: str) -> None:
        last = self._runs[-1] if self._runs else None
        if last is not None and last[0] == kind:
            last[1].append(text)
        else:
            self._runs.append([kind, [text]])

    def _event(self, event: Optional[Event]) -> None:
        if event is not None:
            self._runs.append([None, event])

    def _calls_done(self) -> None:
        for found in self.calls.done():
            self._event(found)

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
        self._calls_done()  # a stream that ended without a finish reason
        return self.events() + self.think.close()


class CallPieces:
    """Tool calls assembled from ``delta.tool_calls`` pieces.

    A piece names its call by ``index`` (OpenAI), or only by a new ``id``
    (some compatible servers), or by nothing (it continues the last call).
    The name and id come once; ``arguments`` pieces are joined.
    """

    def __init__(self):
        self._calls: Dict[object, list] = {}  # key -> [id, name, [argument pieces]]
        self._last = None

    def add(self, pieces) -> None:
        if not isinstance(pieces, list):
            raise TypeError("tool_calls is not a list")  # reported as an unexpected shape
        for piece in pieces:
            function = piece.get("function") or {}
            entry = self._calls.setdefault(self._key(piece), [None, "", []])
            entry[0] = entry[0] or piece.get("id")
            entry[1] = entry[1] or function.get("name") or ""
            arguments = function.get("arguments")
            if isinstance(arguments, (dict, list)):  # a server that sent an object
                arguments = json.dumps(arguments, ensure_ascii=False)
            if arguments:
                entry[2].append(str(arguments))

    def _key(self, piece: dict):
        if isinstance(piece.get("index"), int):
            key = piece["index"]
        elif piece.get("id"):
            key = next((key for key, entry in self._calls.items() if entry[0] == piece["id"]),
                       ("id", piece["id"]))
        else:
            key = 0 if self._last is None else self._last
        self._last = key
        return key

    def done(self) -> List[ToolCall]:
        """The calls so far, complete, in order of first appearance; forgotten after."""
        found = [ToolCall(entry[0] or f"call_{n}", entry[1], "".join(entry[2]))
                 for n, entry in enumerate(self._calls.values())]
        self._calls.clear()
        return found


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
