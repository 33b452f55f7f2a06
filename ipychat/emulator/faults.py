"""Fault injection: which faults exist, how they are asked for, and which
request gets them.

Two ways in, one set of keys: a ``[[emulator key=value flag ...]]`` directive
inside the last user message (values may be quoted: ``body="bad gateway"``),
or ``POST /_emulator/faults`` with JSON ``{..., "count": N}`` for the next N
chat requests. A directive's keys win over queued ones. A "chat request" is
the one that answers (for OpenAssistant: ``/api/chat/events``); a request the
emulator rejects does not use up queued faults.

Keys: delay=S, chunks=N, status=NNN [body=TEXT], error_event, after=K (where
mid-stream faults happen, counted over reasoning and answer pieces, default
1), stall_first=S, stall_mid=S, drop, malformed, split_utf8, invalid_utf8,
big_line=N, empty, no_end, unknown_event, model_missing=N (the first N
requests answer Lockchat's "model does not exist" line: counted per
identical message list for a directive, since a retry carries it again; per
queued entry otherwise, whose count then defaults to N).

What the answer carries besides its text (``plan.py`` applies them):
reasoning=N (N words of reasoning before the answer, ``reply.reasoning_text``;
0 turns off what the request asked for; OpenAI, Anthropic and Ollama only),
think_form=reasoning_content|reasoning|tags (how OpenAI sends it), split_tags
(with think_form=tags: piece boundaries inside ``<think>`` and ``</think>``),
finish=WORD (the finish/stop reason reported, as written), no_limit (ignore
the request's token limit), no_usage (no usage chunk even when asked),
reject_stream_options (HTTP 400 to an OpenAI request carrying
``stream_options``), whole (a streaming request gets the non-streamed JSON
where the protocol has one: the OpenAI shapes, Anthropic, Ollama).

Tools (OpenAI, Anthropic, Ollama; ``tooluse.py``): call=NAME[,NAME...] or
call=* (answer with calls to tools the request offers), args=JSON (their
arguments, sent as given; a JSON array gives each call its own; default:
derived from each tool's schema), rounds=N (call again until N model turns
with calls followed the question; default 1), then the answer quotes the
results it was sent.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
import threading
from dataclasses import asdict, dataclass
from typing import Dict, List, Optional, Tuple

#: Longest pause a fault may ask for, in seconds (a typo must not hang a test run for hours).
MAX_PAUSE = 600.0
#: Longest ``big_line`` text, in bytes.
MAX_BIG_LINE = 64 * 1024 * 1024

_DIRECTIVE = re.compile(r"\[\[emulator\b(.*?)\]\]", re.DOTALL)


class FaultError(ValueError):
    """A directive or fault request that cannot be understood."""


@dataclass(frozen=True)
class Faults:
    delay: Optional[float] = None
    chunks: Optional[int] = None
    status: Optional[int] = None
    body: Optional[str] = None
    error_event: bool = False
    after: int = 1
    stall_first: float = 0.0
    stall_mid: float = 0.0
    drop: bool = False
    malformed: bool = False
    split_utf8: bool = False
    invalid_utf8: bool = False
    big_line: int = 0
    empty: bool = False
    no_end: bool = False
    unknown_event: bool = False
    model_missing: int = 0
    reasoning: Optional[int] = None
    think_form: Optional[str] = None
    split_tags: bool = False
    finish: Optional[str] = None
    no_limit: bool = False
    no_usage: bool = False
    reject_stream_options: bool = False
    whole: bool = False
    retry_after: Optional[str] = None
    retry_after_ms: Optional[int] = None
    should_retry: Optional[bool] = None
    reset: bool = False
    times: int = 0
    call: Optional[str] = None
    args: Optional[str] = None
    rounds: int = 1
    #: Set by the server, not by users: this request answers the model-missing quirk.
    quirk: bool = False

    def active(self) -> Dict[str, object]:
        """The faults that differ from a normal answer (for the request log)."""
        return {k: v for k, v in asdict(self).items() if v != getattr(NO_FAULTS, k)}


NO_FAULTS = Faults()
FLAGS = ("error_event", "drop", "malformed", "split_utf8", "invalid_utf8", "empty", "no_end",
         "unknown_event", "split_tags", "no_limit", "no_usage", "reject_stream_options", "whole",
         "should_retry", "reset")
#: The faults ``times=N`` limits to the first N requests of a message list.
RETRIED_FAULTS = ("status", "body", "retry_after", "retry_after_ms", "should_retry", "reset")
#: How an OpenAI-compatible server may send reasoning: the field of ``delta``
#: (DeepSeek, vLLM; Ollama's /v1 and OpenRouter), or ``<think>`` tags in the content.
THINK_FORMS = ("reasoning_content", "reasoning", "tags")


def _seconds(value) -> float:
    seconds = float(value)
    if not 0 <= seconds <= MAX_PAUSE:
        raise ValueError(f"must be between 0 and {MAX_PAUSE:g}")
    return seconds


def _count(limit):
    def convert(value) -> int:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError("must be a whole number")
        number = int(value)
        if not 0 <= number <= limit:
            raise ValueError(f"must be between 0 and {limit}")
        return number

    return convert


def _status(value) -> int:
    number = _count(599)(value)
    if number < 200:
        raise ValueError("must be an HTTP status from 200 to 599")
    return number


def _word(value) -> str:
    word = "" if isinstance(value, bool) else str(value)  # a bare ``finish`` says nothing
    if not word.strip():
        raise ValueError("must not be empty")
    return word


def _think_form(value) -> str:
    if value not in THINK_FORMS:
        raise ValueError(f"must be one of {', '.join(THINK_FORMS)}")
    return value


def _rounds(value) -> int:
    number = _count(1000)(value)
    if number < 1:
        raise ValueError("must be at least 1")
    return number


def _text(value) -> str:
    """Text as given, or JSON for a value that came as JSON (``POST /_emulator/faults``)."""
    return value if isinstance(value, str) else json.dumps(value)


def _flag(value) -> bool:
    if isinstance(value, bool):
        return value
    if str(value).lower() in ("1", "true", "yes", "on"):
        return True
    if str(value).lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError("must be true or false")


CONVERTERS = {
    "delay": _seconds, "stall_first": _seconds, "stall_mid": _seconds,
    "chunks": _count(1_000_000), "after": _count(1_000_000), "big_line": _count(MAX_BIG_LINE),
    "model_missing": _count(1000), "status": _status, "body": str,
    "reasoning": _count(100_000), "think_form": _think_form, "finish": _word,
    "retry_after": _word, "retry_after_ms": _count(3_600_000), "times": _count(1000),
    "call": _word, "args": _text, "rounds": _rounds,
    **{flag: _flag for flag in FLAGS},
}


def validated(raw: Dict[str, object]) -> Dict[str, object]:
    """Fault keys with their values converted; raises ``FaultError`` on anything unknown."""
    values = {}
    for key, value in raw.items():
        if key not in CONVERTERS:
            raise FaultError(f"unknown fault {key!r}; known: {', '.join(sorted(CONVERTERS))}")
        try:
            values[key] = CONVERTERS[key](value)
        except (TypeError, ValueError) as err:
            raise FaultError(f"fault {key}={value!r}: {err}") from None
    return values


def parse_directives(text: str) -> Dict[str, object]:
    """The faults of every ``[[emulator ...]]`` directive in ``text`` (later ones win)."""
    raw: Dict[str, object] = {}
    for match in _DIRECTIVE.finditer(text or ""):
        try:
            tokens = shlex.split(match.group(1))
        except ValueError as err:
            raise FaultError(f"cannot read directive {match.group(0)!r}: {err}") from None
        for token in tokens:
            key, equals, value = token.partition("=")
            raw[key] = value if equals else True
    return validated(raw)


@dataclass
class Queued:
    """Faults from ``POST /_emulator/faults`` for the next ``remaining`` chat requests."""

    values: Dict[str, object]
    remaining: int
    served: int = 0


class FaultBook:
    """Queued faults and the model-missing counters; thread-safe."""

    def __init__(self):
        self._lock = threading.Lock()
        self._queue: List[Queued] = []
        self._quirk_seen: Dict[str, int] = {}
        self._times_seen: Dict[str, int] = {}

    def push(self, request_json) -> Queued:
        if not isinstance(request_json, dict):
            raise FaultError("send a JSON object of faults, e.g. {\"status\": 500, \"count\": 1}")
        raw = dict(request_json)
        values = validated({k: v for k, v in raw.items() if k != "count"})
        default = max(1, int(values.get("model_missing", 0)))
        count = _count(1_000_000)(raw.get("count", default))
        entry = Queued(values, count)
        with self._lock:
            if count:
                self._queue.append(entry)
        return entry

    def pending(self) -> List[dict]:
        with self._lock:
            return [{**q.values, "count": q.remaining} for q in self._queue]

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()
            self._quirk_seen.clear()
            self._times_seen.clear()

    def take(self, directive: Dict[str, object], messages) -> Faults:
        """The faults for one chat request: the next queued ones, then its directive's."""
        queued, serial = self._next()
        values = {**queued, **directive}
        if directive.get("model_missing"):
            serial = self._count_per_messages(self._quirk_seen, messages)
        quirk = 0 < serial <= int(values.get("model_missing", 0))
        if directive.get("times") and (self._count_per_messages(self._times_seen, messages)
                                       > directive["times"]):
            values = {k: v for k, v in values.items() if k not in RETRIED_FAULTS}
        return Faults(**values, quirk=quirk)

    def _next(self) -> Tuple[Dict[str, object], int]:
        with self._lock:
            if not self._queue:
                return {}, 0
            entry = self._queue[0]
            entry.remaining -= 1
            entry.served += 1
            if entry.remaining <= 0:
                self._queue.pop(0)
            return dict(entry.values), entry.served

    def _count_per_messages(self, seen: Dict[str, int], messages) -> int:
        # A directive travels with the messages, so a client's retry carries it
        # again: count requests per identical message list.
        key = hashlib.sha256(json.dumps(messages, sort_keys=True).encode()).hexdigest()
        with self._lock:
            seen[key] = seen.get(key, 0) + 1
            return seen[key]

