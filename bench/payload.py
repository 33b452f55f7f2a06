"""The bytes every benchmark streams, built the same way by the server and by
the checks: OpenAI-style SSE chunks, and a raw text body of the same size.

Deterministic, so a client can verify it decoded exactly the answer that
was sent (a fast wrong decoder must not win). The words include non-ASCII
letters, a newline and Markdown-sensitive characters, as real answers do.
"""

from __future__ import annotations

import json
from functools import lru_cache

WORDS = ("The ", "quick ", "brown ", "fox ", "jümps ", "över ", "the ", "lazy ", "dog. ",
         "Ça ", "va? ", "`x<y` ", "and ", "**bold** ", "ok\n", "42 ")
DONE = b"data: [DONE]\n\n"


def chunk_text(i: int, size: int = 0) -> str:
    """The text of chunk ``i``: one word, or words up to at least ``size`` chars."""
    text = WORDS[i % len(WORDS)]
    k = i
    while len(text) < size:
        k += 7
        text += WORDS[k % len(WORDS)]
    return text


def sse_event(i: int, text: str) -> bytes:
    chunk = {
        "id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1700000000,
        "model": "gpt-3.5-turbo",
        "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}],
    }
    return b"data: " + json.dumps(chunk, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n"


@lru_cache(maxsize=8)
def answer(n: int, size: int = 0) -> str:
    """The full answer text of an ``n``-chunk stream."""
    return "".join(chunk_text(i, size) for i in range(n))


@lru_cache(maxsize=8)
def sse_events(n: int, size: int = 0) -> tuple:
    """Each SSE event of the stream, the closing ``[DONE]`` last."""
    return tuple(sse_event(i, chunk_text(i, size)) for i in range(n)) + (DONE,)


@lru_cache(maxsize=8)
def sse_body(n: int, size: int = 0) -> bytes:
    return b"".join(sse_events(n, size))


@lru_cache(maxsize=8)
def raw_body(n: int, size: int = 0) -> bytes:
    """Raw UTF-8 text exactly as long (in bytes) as the SSE body of the same stream."""
    target = len(sse_body(n, size))
    unit = answer(n, size).encode()
    body = (unit * (target // len(unit) + 1))[:target]
    # Cutting may split a character: pad its remains with ASCII to keep the size.
    text = body.decode("utf-8", "ignore")
    return text.encode() + b"." * (target - len(text.encode()))


def raw_pieces(n: int, size: int = 0) -> list:
    """The raw body cut into ``n`` pieces (for a paced raw stream)."""
    body = raw_body(n, size)
    step = max(1, len(body) // n)
    return [body[i:i + step] for i in range(0, len(body), step)]


def expected_raw_text(n: int, size: int = 0) -> str:
    return raw_body(n, size).decode("utf-8")
