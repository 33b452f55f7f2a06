"""The events of one answer: what a provider hands up, kind by kind.

A provider's ``stream_events`` yields these instead of bare text, so what
the server says besides the answer (the model's thinking, token usage, why
it stopped, the tools it calls) reaches the notebook. Every event has a
``kind``; consumers switch on it and ignore kinds they do not know, so new
kinds can be added without touching them.

Pure: no I/O. Text events are made once per network read, not per token,
so the hot path stays as fast as the bare text it replaces.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Optional, Union


@dataclass(slots=True)
class Text:
    """A piece of the answer."""

    text: str
    kind: ClassVar[str] = "text"


@dataclass(slots=True)
class Reasoning:
    """A piece of the model's thinking: shown, never sent back to a model."""

    text: str
    kind: ClassVar[str] = "reasoning"


@dataclass(frozen=True)
class Usage:
    """Tokens as the server reported them; None where it did not."""

    input_tokens: Optional[int] = None
    output_tokens: Optional[int] = None
    kind: ClassVar[str] = "usage"

    def merged(self, later: "Usage") -> "Usage":
        """This usage updated by a later report (Anthropic sends input first, output last)."""
        return Usage(_pick(later.input_tokens, self.input_tokens),
                     _pick(later.output_tokens, self.output_tokens))

    def as_dict(self) -> dict:
        return {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens}


@dataclass(frozen=True)
class Finish:
    """Why the answer ended: ``stop``, ``length``, ``content_filter``, ``tool_calls``,
    or the server's own word; ``raw`` is what the server said."""

    reason: str
    raw: Optional[str] = None
    kind: ClassVar[str] = "finish"


@dataclass(frozen=True)
class Retry:
    """Not the answer: the request failed before it started and is sent again
    after ``wait_s`` seconds (retry ``attempt`` of ``retries``)."""

    attempt: int
    retries: int
    wait_s: float
    reason: str  # e.g. "HTTP 429"
    kind: ClassVar[str] = "retry"

    def line(self) -> str:
        """What the live output says while waiting."""
        return (f"{self.reason}, retrying in {seconds_text(self.wait_s)} "
                f"({self.attempt} of {self.retries})")


def seconds_text(value: float) -> str:
    """A wait as people say it: 250 ms, 1.5 s, 2 s, 30 s."""
    if value < 1:
        return f"{value * 1000:.0f} ms"
    return f"{value:.0f} s" if value >= 10 or float(value).is_integer() else f"{value:.1f} s"



@dataclass(frozen=True)
class ToolCall:
    """The model calls a tool. Made once the call is complete: providers
    assemble arguments that arrive in pieces. ``arguments`` is the JSON
    text as the model sent it (maybe not JSON at all: the caller checks)."""

    id: str
    name: str
    arguments: str
    kind: ClassVar[str] = "tool_call"


@dataclass(frozen=True)
class Note:
    """Something to tell the user about the answer that is not the answer."""

    text: str
    kind: ClassVar[str] = "note"


@dataclass(frozen=True)
class ToolRan:
    """A tool call that ran before: a replayed answer's, shown and never run
    again (``run`` is an ``answer.ToolRun``, result and all)."""

    run: object
    kind: ClassVar[str] = "tool_ran"


Event = Union[Text, Reasoning, Usage, Finish, ToolCall, ToolRan, Note, Retry]

#: Each protocol's word for why an answer ended, and ours.
_REASONS = {
    "stop": "stop", "end_turn": "stop", "stop_sequence": "stop", "eos": "stop",
    "length": "length", "max_tokens": "length", "model_length": "length",
    "model_context_window_exceeded": "length",
    "content_filter": "content_filter", "refusal": "content_filter", "safety": "content_filter",
    "tool_calls": "tool_calls", "tool_use": "tool_calls", "function_call": "tool_calls",
}


def finish(raw) -> Optional[Finish]:
    """The ``Finish`` for a server's reason (None when it gave none)."""
    if raw is None or raw == "":
        return None
    word = str(raw)
    return Finish(_REASONS.get(word.lower(), word), word)


def usage(input_tokens=None, output_tokens=None) -> Optional[Usage]:
    """A ``Usage`` from reported counts (non-integers count as unreported); None if none."""
    found = Usage(_count(input_tokens), _count(output_tokens))
    return found if found != Usage() else None


def _count(value) -> Optional[int]:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return int(value) if value >= 0 else None


def _pick(new, old):
    return old if new is None else new


class ThinkSplitter:
    """Separates a ``<think>...</think>`` block at the start of the content
    (servers without a reasoning parser send it so) from the answer.

    Fed content pieces split anywhere, even inside a tag; returns events.
    Only a block that opens the content counts: a ``<think>`` later in an
    answer is answer text (a model explaining the tag, say).
    """

    OPEN, CLOSE = "<think>", "</think>"

    def __init__(self):
        self._state = "start"  # start -> thinking -> after -> answer
        self._held = ""  # what may still turn out to be (part of) a tag

    def feed(self, piece: str) -> list:
        if self._state == "after":  # the line breaks that follow </think> are layout
            piece = piece.lstrip("\r\n")
            self._state = "answer" if piece else "after"
        if self._state == "answer":
            return [Text(piece)] if piece else []
        text = self._held + piece
        self._held = ""
        if self._state == "start":
            return self._start(text)
        return self._thinking(text)

    def close(self) -> list:
        """What was held back when the stream ends (a tag cut short is text)."""
        held, self._held = self._held, ""
        if not held:
            return []
        return [Reasoning(held) if self._state == "thinking" else Text(held)]

    def _start(self, text: str) -> list:
        stripped = text.lstrip()
        if self.OPEN.startswith(stripped):  # still could be the tag: wait for more
            self._held = text
            return []
        if not stripped.startswith(self.OPEN):
            self._state = "answer"
            return [Text(text)]
        self._state = "thinking"
        return self._thinking(stripped[len(self.OPEN):])

    def _thinking(self, text: str) -> list:
        end = text.find(self.CLOSE)
        if end < 0:
            keep = _partial_suffix(text, self.CLOSE)
            self._held = text[len(text) - keep:] if keep else ""
            body = text[:len(text) - keep]
            return [Reasoning(body)] if body else []
        self._state = "after"
        events = [Reasoning(text[:end])] if end else []
        return events + self.feed(text[end + len(self.CLOSE):])


def _partial_suffix(text: str, tag: str) -> int:
    """Length of the longest end of ``text`` that starts ``tag``."""
    for size in range(min(len(tag) - 1, len(text)), 0, -1):
        if tag.startswith(text[-size:]):
            return size
    return 0


def from_foreign(chunk) -> Optional[Event]:
    """The event a g4f-style class meant by ``chunk``, or None to skip it.

    Today's gpt4free yields response objects besides ``str``: ``Reasoning``
    (``token``; a ``status`` such as "Thinking..." is progress, not text),
    ``Usage``, ``FinishReason`` and ``ToolCalls``. They are read by class
    name and attributes, so g4f needs not be installed; anything else is
    skipped, never shown as a repr. Tool calls from such a class become a
    note: it was offered no tools by us, so nothing of ours may run.
    """
    if isinstance(chunk, str):
        return Text(chunk) if chunk else None
    if isinstance(chunk, (Text, Reasoning, Usage, Finish, Note)):
        return chunk
    if isinstance(chunk, ToolCall):
        return _not_run([chunk.name])
    name = type(chunk).__name__
    if name == "Reasoning":
        token = getattr(chunk, "token", None)
        return Reasoning(token) if isinstance(token, str) and token else None
    if name == "Usage":
        return usage(_attr(chunk, "prompt_tokens", "input_tokens"),
                     _attr(chunk, "completion_tokens", "output_tokens"))
    if name == "FinishReason":
        return finish(getattr(chunk, "reason", None))
    if name == "ToolCalls":
        return _not_run(_call_names(getattr(chunk, "list", None)))
    return None


def _not_run(names) -> Note:
    called = ", ".join(names) or "a tool"
    return Note(f"the provider asked to call {called}; ipychat runs tools only for "
                "openai, anthropic and ollama, so nothing was run")


def _call_names(calls) -> list:
    """Function names in a g4f ``ToolCalls`` list (OpenAI-shaped dicts)."""
    names = []
    for call in calls if isinstance(calls, list) else []:
        function = call.get("function") if isinstance(call, dict) else None
        name = function.get("name") if isinstance(function, dict) else None
        if isinstance(name, str) and name:
            names.append(name)
    return names


def _attr(value, *names):
    for name in names:
        found = getattr(value, name, None)
        if found is not None:
            return found
    return None
