"""One answer as a result: what arrived, what it cost, how it ended.

``session.stream_into`` fills an ``Answer`` from a provider's events; the
magic and the panel record it; ``last_result()`` hands the last one to the
user. Pure: no I/O, no IPython.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import List, Optional

from .messages import without_image_bytes

#: ``Answer.status`` values.
STREAMING, COMPLETE, INTERRUPTED, ERROR = "streaming", "complete", "interrupted", "error"

#: What a finished answer's mark says for a finish reason other than ``stop``.
FINISH_MARKS = {
    "length": "stopped at the token limit: raise it with --max-tokens",
    "content_filter": "stopped by the provider's content filter",
}


@dataclass
class ToolRun:
    """One tool call of an answer: what the model asked, what came of it.

    ``arguments`` is what the model sent, as a dict when it was a JSON
    object, else as the text itself; ``raw_arguments`` is always the text.
    Exactly one of ``result`` and ``error`` is set once the call ended.
    """

    id: str
    name: str
    arguments: object
    raw_arguments: str = "{}"
    result: Optional[str] = None
    error: Optional[str] = None
    seconds: Optional[float] = None

    @classmethod
    def asked(cls, id: str, name: str, raw_arguments: str, **ended) -> "ToolRun":
        """A call as the model sent it (``ended``: result or error, seconds)."""
        return cls(id, name, shown_arguments(raw_arguments), raw_arguments, **ended)

    @property
    def done(self) -> bool:
        return self.result is not None or self.error is not None

    def as_dict(self) -> dict:
        return {"id": self.id, "name": self.name, "arguments": self.raw_arguments,
                "result": self.result, "error": self.error, "seconds": self.seconds}

    def __repr__(self) -> str:
        outcome = f"error={self.error!r}" if self.error is not None else f"result={self.result!r}"
        return f"ToolRun({self.name}, arguments={self.arguments!r}, {outcome})"


def shown_arguments(raw: str):
    """A call's arguments for ``ToolRun.arguments``: a dict when they are a JSON object."""
    try:
        value = json.loads(raw) if raw.strip() else {}
    except ValueError:
        return raw
    return value if isinstance(value, dict) else raw


@dataclass
class Round:
    """One model turn of an answer that used tools: its text and the calls it made."""

    text: str
    calls: List[ToolRun] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"text": self.text, "calls": [run.as_dict() for run in self.calls]}

    @classmethod
    def of(cls, found: dict) -> "Round":
        """The round ``as_dict`` gave (from the log)."""
        return cls(found.get("text") or "", [
            ToolRun.asked(c["id"], c["name"], c.get("arguments") or "{}", result=c.get("result"),
                          error=c.get("error"), seconds=c.get("seconds"))
            for c in found.get("calls") or ()])


@dataclass
class Answer:
    """A question and its answer, complete or not.

    ``usage`` holds ``input_tokens`` and ``output_tokens`` as the server
    reported them (None: not reported, which is not zero). ``first_token_s``
    is the time from sending to the first piece of text or reasoning.

    What was sent rides along, so the log can keep it and replay can find
    the answer again: ``messages`` (system prompt, history, prompt; an image
    as its size and digest),
    ``options`` (the body options: temperature, limits, ``--param``; never a
    key, a cookie or a proxy) and ``base_url`` (where it went, credentials
    hidden; "built-in emulator" in demo mode). ``conversation`` names the
    conversation the answer belongs to (None: a one-off). ``tools`` are the
    schemas of the tools offered: they decide the answer too. ``replayed`` is
    the date of the logged answer it was replayed from (None: live).
    """

    prompt: str
    provider: str
    model: Optional[str] = None
    messages: list = field(default_factory=list)
    options: dict = field(default_factory=dict)
    base_url: Optional[str] = None
    conversation: Optional[str] = None
    #: When it was asked, seconds since the epoch.
    asked_at: float = field(default_factory=time.time)
    replayed: Optional[str] = None
    text: str = ""
    reasoning: str = ""
    usage: dict = field(default_factory=lambda: {"input_tokens": None, "output_tokens": None})
    finish_reason: Optional[str] = None
    first_token_s: Optional[float] = None
    duration_s: Optional[float] = None
    status: str = STREAMING
    error: Optional[str] = None
    #: The model turns of an answer that called tools (empty when it called none).
    rounds: List[Round] = field(default_factory=list)
    #: The tool round limit, when the model still asked for tools once it was reached.
    tool_limit: Optional[int] = None
    #: The tools offered (``ToolBox.schemas``); empty when none were.
    tools: list = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return self.status == COMPLETE

    @property
    def tool_calls(self) -> List[ToolRun]:
        """Every tool call of this answer, in order."""
        return [run for turn in self.rounds for run in turn.calls]

    def mark(self) -> str:
        """The mark a complete answer carries (why it stopped early), or ''."""
        if not self.complete:
            return ""
        if self.tool_limit is not None:
            return (f"stopped after {self.tool_limit} tool rounds: raise the limit with "
                    "--max-tool-rounds")
        return FINISH_MARKS.get(self.finish_reason or "", "")

    def key(self) -> str:
        """What decides the answer, as a digest: provider, model, base URL,
        the messages sent and the body options. Equal keys, equal questions."""
        decides = {"provider": self.provider, "model": self.model, "base_url": self.base_url,
                   "messages": without_image_bytes(self.messages), "options": self.options}
        if self.tools:  # only then: the keys of answers without tools stay as they were
            decides["tools"] = self.tools
        text = json.dumps(decides, sort_keys=True, ensure_ascii=False, separators=(",", ":"),
                          default=str)
        return hashlib.sha256(text.encode()).hexdigest()

    def stats(self) -> str:
        """One short line: model, time to first text, total time, tokens, speed."""
        parts = [self.model or self.provider]
        if self.first_token_s is not None:
            parts.append(f"first text {_seconds(self.first_token_s)}")
        if self.duration_s is not None:
            parts.append(f"{_seconds(self.duration_s)} in all")
        tokens_in, tokens_out = self.usage.get("input_tokens"), self.usage.get("output_tokens")
        if tokens_in is not None or tokens_out is not None:
            parts.append(f"{_count(tokens_in)} → {_count(tokens_out)} tokens")
        calls = len(self.tool_calls)
        if calls:
            parts.append(f"{calls} tool call{'s' if calls > 1 else ''}")
        rate = self.tokens_per_second()
        if rate is not None:
            parts.append(f"{rate:.1f} tokens/s")
        return " · ".join(parts)

    def tokens_per_second(self) -> Optional[float]:
        """Output tokens over the time they took to stream (after the first one,
        tools not counted)."""
        tokens = self.usage.get("output_tokens")
        if not tokens or self.duration_s is None:
            return None
        # Time spent inside tools is not streaming time.
        tools = sum(run.seconds or 0.0 for run in self.tool_calls)
        streaming = self.duration_s - (self.first_token_s or 0.0) - tools
        return tokens / streaming if streaming > 0 else None

    def __repr__(self) -> str:
        words = " ".join(self.text.split()[:8])
        return (f"Answer({self.status}, provider={self.provider!r}, model={self.model!r}, "
                f"finish_reason={self.finish_reason!r}, text={words!r}…)")


def _seconds(value: float) -> str:
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.1f} s"


def _count(value: Optional[int]) -> str:
    return "?" if value is None else f"{value:,}"


_last: Optional[Answer] = None


def last_result() -> Optional[Answer]:
    """The last answer of ``%%chat`` or the panel, complete or not; None before any."""
    return _last


def remember_last(answer: Answer) -> None:
    global _last
    _last = answer
