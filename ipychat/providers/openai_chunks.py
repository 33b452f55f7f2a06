"""OpenAI-style chat-completion chunks over SSE, shared by Lockchat,
Vitalentum and the OpenAI-compatible provider."""

from __future__ import annotations

from typing import AsyncIterator, List, Optional

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


async def chunk_texts(response: aiohttp.ClientResponse, call: Call,
                      watch: Optional[callable] = None) -> AsyncIterator[str]:
    """Yield the text of the chunks of each network read, joined, until ``data: [DONE]``.

    ``watch(line)`` may inspect each raw line first (Lockchat's quirk).
    A stream that closes before ``[DONE]`` raises ``StreamCutShort``.
    """
    async for batch in sse_data(response, watch):
        texts = []
        try:
            for data in batch:
                if data == DONE:
                    break
                text = delta_text(parse_json(data, call), call)
                if text:
                    texts.append(text)
        except errors.ChatError:
            if texts:  # the text before a bad chunk still reaches the user
                yield "".join(texts)
            raise
        if texts:
            yield "".join(texts)
        if data == DONE:
            return
    raise errors.StreamCutShort("the stream ended before its [DONE] marker", provider=call.provider)
