"""What the emulator answers: a short, deterministic Markdown text that shows
what it received, the reasoning it may send first, and how both are cut into
streamed pieces.

Pure functions only, so a test computes the exact text a request will get.
"""

from __future__ import annotations

import re
from typing import List, Optional

from ..messages import format_prompt, last_user_text

#: Protocols whose request carries one flattened prompt instead of messages.
FLATTENED = ("cromicle", "openassistant")
#: The answer of ``chunks=N`` is N times this.
FILLER = "tok "
#: Added to the answer by ``split_utf8``: characters of 2 and 4 UTF-8 bytes.
UTF8_SAMPLE = "UTF-8 check: café, déjà vu, 😀 and 😀."
CLOSING = (
    "This is ipychat's built-in emulator, not a language model. To get real answers, "
    "pick a real provider (or pass base_url=) and give it an API key or cookies where it needs them."
)

#: The reasoning text is these words, cycled: ``reasoning_text(12)`` is one sentence.
REASONING_WORDS = ("Let", "me", "think", "about", "this", "request", "step", "by", "step",
                   "before", "I", "answer.")
#: Words of reasoning when the request asks for some and no directive says how many.
DEFAULT_REASONING = len(REASONING_WORDS)
THINK_OPEN, THINK_CLOSE = "<think>", "</think>\n\n"

_ROLE_LINE = re.compile(r"^(System|User|Assistant): ", re.MULTILINE)
_PIECE = re.compile(r"\S+\s*|\s+")


def content_text(content) -> str:
    """Message content as text: a string, or the text parts of a list of blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            part.get("text", "") for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return ""


def blockquote(text: str) -> str:
    if not text:
        return "> (empty)"
    return "\n".join(f"> {line}" if line else ">" for line in text.split("\n"))


def question_text(messages) -> str:
    """The last user message that says something: a user message holding only
    tool results (Anthropic's form) is no question."""
    for message in reversed(messages):
        if message.get("role") == "user" and content_text(message.get("content")):
            return content_text(message["content"])
    return last_user_text(messages)


def results_lines(results) -> List[str]:
    """The tool results an answer quotes (``tooluse.Result``), or none."""
    if not results:
        return []
    quoted = "\n".join(f"{r.name}{' (error)' if r.is_error else ''}: {r.content}"
                       for r in results)
    return ["Tool results received:", "", blockquote(quoted), ""]


def reply_text(protocol: str, messages, model: Optional[str] = None, results=()) -> str:
    """The full answer to a request of ``protocol`` carrying ``messages`` (and
    the tool ``results`` sent since its question)."""
    if protocol in FLATTENED:
        label, quoted = "The prompt as received:", format_prompt(messages)
    else:
        label, quoted = "The last user message:", question_text(messages)
    count = len(messages)
    lines = [
        f"**Emulator answer ({protocol})**",
        "",
        f"- protocol: `{protocol}`",
        f"- messages received: {count}",
        f"- model: `{model}`" if model else "- model: none sent",
        "",
        label,
        "",
        blockquote(quoted),
        "",
        *results_lines(results),
        CLOSING,
    ]
    return "\n".join(lines)


def split_pieces(text: str) -> List[str]:
    """About a word per piece, each with its trailing whitespace; joined they give ``text``."""
    return _PIECE.findall(text)


def answer_pieces(protocol: str, messages, model: Optional[str], faults=None,
                  results=()) -> List[str]:
    """The text pieces a request gets, given its faults (``faults.Faults`` or None)."""
    if faults is not None and faults.chunks is not None:
        pieces = [FILLER] * faults.chunks
    else:
        text = reply_text(protocol, messages, model, results)
        if faults is not None and faults.split_utf8:
            text += "\n\n" + UTF8_SAMPLE
        pieces = split_pieces(text)
    if faults is not None and faults.big_line:
        pieces.insert(min(faults.after, len(pieces)), "x" * faults.big_line)
    return pieces


def reasoning_text(words: int) -> str:
    """``words`` words of deterministic reasoning, cycling ``REASONING_WORDS``."""
    cycle = len(REASONING_WORDS)
    return " ".join(REASONING_WORDS[i % cycle] for i in range(words))


def reasoning_pieces(words: int) -> List[str]:
    """The reasoning as streamed: one piece per word, so ``words`` pieces."""
    return split_pieces(reasoning_text(words))


def tagged_pieces(reasoning: List[str], split_tags: bool = False) -> List[str]:
    """Reasoning pieces inside ``<think>...</think>\\n\\n``, the tags pieces of their own
    (two more pieces). ``split_tags`` moves both tag boundaries inside the tags
    (``<th`` | ``ink>...``, ``...</th`` | ``ink>\\n\\n``), as a tokenizer may cut them."""
    if not reasoning:
        return []
    pieces = [THINK_OPEN, *reasoning, THINK_CLOSE]
    if not split_tags:
        return pieces
    text = "".join(pieces)
    bounds = _bounds(pieces)
    close = len(text) - len(THINK_CLOSE)
    bounds = (bounds - {len(THINK_OPEN), close}) | {3, close + 4}
    cuts = [0, *sorted(bounds)]
    return [text[a:b] for a, b in zip(cuts, cuts[1:])]


def _bounds(pieces: List[str]) -> set:
    """Where one piece ends and the next begins, as offsets in the joined text."""
    ends, at = set(), 0
    for piece in pieces:
        at += len(piece)
        ends.add(at)
    return ends


def answer_text(protocol: str, messages, model: Optional[str], faults=None,
                results=()) -> str:
    """The whole text of ``answer_pieces``: what a client should show."""
    return "".join(answer_pieces(protocol, messages, model, faults, results))


def unflatten(prompt: str) -> List[dict]:
    """Messages back from a ``format_prompt`` string, when it round-trips exactly;
    otherwise the prompt as one user message."""
    whole = [{"role": "user", "content": prompt}]
    tail = "\nAssistant:"
    if not prompt.endswith(tail):
        return whole
    body = prompt[: -len(tail)]
    parts = _ROLE_LINE.split(body)
    if parts[0] != "":
        return whole
    messages = [
        {"role": role.lower(), "content": content[:-1] if content.endswith("\n") else content}
        for role, content in zip(parts[1::2], parts[2::2])
    ]
    if not messages or format_prompt(messages) != prompt:
        return whole
    return messages


def flattened_directive_source(prompt: str) -> str:
    """Where a directive counts in a flattened prompt: after the last line that
    starts with ``User: ``, or the whole prompt when there is none (one message)."""
    if prompt.startswith("User: ") or "\nUser: " in prompt:
        start = prompt.rfind("\nUser: ")
        return prompt[start + 1:] if start >= 0 else prompt
    return prompt


def word_count(messages) -> int:
    """A deterministic stand-in for a token count."""
    return sum(len(content_text(m.get("content")).split()) for m in messages)
