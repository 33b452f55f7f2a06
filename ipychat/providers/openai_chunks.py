"""OpenAI-style chat-completion chunks over SSE, shared by Lockchat,
Vitalentum and the OpenAI-compatible provider."""

from __future__ import annotations

from typing import AsyncIterator, Optional

import aiohttp

from .. import errors
from ..streams import LineSplitter, SSEDecoder
from .http import Call, parse_json

DONE = "[DONE]"


def delta_text(chunk, call: Call) -> str:
    """The text of one chunk: ``choices[0].delta.content`` ('' when absent)."""
    if not isinstance(chunk, dict):
        raise errors.MalformedStreamError("a chunk is not a JSON object", str(chunk)[:80],
                                          provider=call.provider)
    if chunk.get("error"):
        raise errors.ProviderError(error_message(chunk["error"]), provider=call.provider)
    choices = chunk.get("choices")
    if not choices:
        return ""
    try:
        return choices[0].get("delta", {}).get("content") or ""
    except (AttributeError, TypeError, IndexError):
        raise errors.MalformedStreamError("unexpected chunk shape", str(chunk)[:80],
                                          provider=call.provider) from None


def error_message(error) -> str:
    if isinstance(error, dict):
        return str(error.get("message") or error.get("type") or error)
    return str(error)


async def sse_data(response: aiohttp.ClientResponse,
                   watch: Optional[callable] = None) -> AsyncIterator[str]:
    """The ``data`` of each SSE event in ``response``, as text.

    ``watch(line)`` sees every raw line first, SSE or not: a server may put
    an error on a line that is no event at all.
    """
    decoder = SSEDecoder()
    lines = LineSplitter()
    async for chunk in response.content.iter_any():
        if watch is not None:
            for line in lines.feed(chunk):
                watch(line.decode("utf-8", "replace"))
        for event in decoder.feed(chunk):
            yield event.data
        decoder.check()
    if watch is not None:
        watch((lines.close() or b"").decode("utf-8", "replace"))
    decoder.close()


async def chunk_texts(response: aiohttp.ClientResponse, call: Call,
                      watch: Optional[callable] = None) -> AsyncIterator[str]:
    """Yield the text of every chunk until ``data: [DONE]``.

    ``watch(line)`` may inspect each raw line first (Lockchat's quirk).
    A stream that closes before ``[DONE]`` raises ``StreamCutShort``.
    """
    async for data in sse_data(response, watch):
        if data == DONE:
            return
        text = delta_text(parse_json(data, call), call)
        if text:
            yield text
    raise errors.StreamCutShort("the stream ended before its [DONE] marker", provider=call.provider)
