"""A conversation as the panel shows it: one message per question and per
answer, each a small dict of safe Markdown; and as a Markdown file.

Markdown goes through ``safe_markdown``, the rules of ``%%chat``'s output, so
nothing a model writes can run in the page. An answer past ``SEGMENT_CHARS``
is cut into parts between paragraphs (``markdown.segment_end``), as the
magic cuts its outputs: an update of a streaming answer carries only the
parts that changed, never more than that many characters of text. An
answer's tool calls go as their lines (``calls.call_line``), plain text the
page shows as text, and only when one changed.
"""

from __future__ import annotations

import datetime
from typing import Iterable, List, Optional

from .answer import COMPLETE, ERROR, INTERRUPTED, STREAMING, Answer
from .calls import call_line, fenced
from .markdown import safe_markdown, segment_end
from .render import SEGMENT_CHARS

USER = "You"


class Parts:
    """What of one answer's message the page has: where its text is cut into
    parts of at most ``limit`` characters, how much reasoning it shows, and
    which tool call lines."""

    def __init__(self, limit: int = SEGMENT_CHARS):
        self.limit = limit
        self.ends: List[int] = []
        self.reasoning = -1  # length of the reasoning sent last (-1: none yet)
        self.calls: Optional[List[str]] = None  # the call lines sent last

    def grow(self, text: str) -> int:
        """Seal the parts ``text`` has filled; the index of the first part
        that may differ from what was shown before."""
        first = len(self.ends)
        start = self.ends[-1] if self.ends else 0
        while len(text) - start > self.limit:
            start = segment_end(text, start, self.limit)
            self.ends.append(start)
        return first

    def markdown(self, text: str, first: int = 0) -> List[str]:
        bounds = [0, *self.ends, len(text)]
        return [safe_markdown(text[bounds[i]:bounds[i + 1]]) for i in range(first, len(bounds) - 1)]


def question(answer: Answer, uid: str) -> dict:
    return {"id": f"{uid}q", "role": "user", "who": USER,
            "parts": [safe_markdown(answer.prompt)], "text": answer.prompt}


def reply(answer: Answer, uid: str, parts: Optional[Parts] = None, update: bool = False) -> dict:
    """The answer's message, whole, or (``update``) only what changed since
    the last one made with the same ``parts``: the open part of the text,
    and the reasoning and the call lines only when they changed.

    The raw text (for the copy button) goes only with an answer that ended:
    while it streams, each update would carry the whole text twice.
    """
    parts = parts or Parts()
    first = parts.grow(answer.text)
    if not update:
        first = 0
    message = {"id": f"{uid}a", "role": "assistant", "who": who(answer), "state": answer.status,
               "parts": parts.markdown(answer.text, first),
               "mark": _mark(answer), "error": answer.error if answer.status == ERROR else "",
               "stats": answer.stats() if answer.status == COMPLETE else ""}
    if update:
        message["from"] = first  # the parts before it are as the page has them
    if not update or len(answer.reasoning) != parts.reasoning:
        parts.reasoning = len(answer.reasoning)
        message["reasoning"] = safe_markdown(answer.reasoning)
        message["words"] = len(answer.reasoning.split())
    calls = [call_line(run) for run in answer.tool_calls]
    if not update or calls != parts.calls:
        parts.calls = message["calls"] = calls
    if answer.status != STREAMING:
        message["text"] = answer.text
    return message


def who(answer: Answer) -> str:
    return answer.provider


#: The panel's words for a finish reason that needs one: its controls, not --options.
PANEL_MARKS = {"length": "stopped at the token limit: raise Max tokens"}


def _mark(answer: Answer) -> str:
    if answer.status == INTERRUPTED:
        return "interrupted"
    mark = answer.mark()
    if mark and answer.tool_limit is not None:
        # The panel shows cells' answers too: name the setting both have.
        return f"stopped after {answer.tool_limit} tool rounds: raise max_tool_rounds"
    return PANEL_MARKS.get(answer.finish_reason or "", mark) if mark else ""


def as_markdown(answers: Iterable[Answer], scope: str, system: Optional[str] = None,
                now: Optional[datetime.datetime] = None) -> str:
    """The conversation as a Markdown document: the text as the model wrote
    it (a file, not the page: nothing is escaped), each answer's mark and stats."""
    now = now or datetime.datetime.now()
    lines = ["# Chat", "", f"*Exported by ipychat on {now:%Y-%m-%d %H:%M}: {scope}.*", ""]
    if system:
        lines += ["**System prompt:** " + system, ""]
    for answer in answers:
        lines += [f"## {USER}", "", answer.prompt, "", f"## {who(answer)}", ""]
        lines += [answer.text or "*(no text)*", ""]
        if answer.tool_calls:
            lines += [fenced(call_line(run) for run in answer.tool_calls), ""]
        ending = answer.error if answer.status == ERROR else _mark(answer)
        if ending:
            lines += [f"*({ending})*", ""]
        if answer.status == COMPLETE:
            lines += [f"*{answer.stats()}*", ""]
    return "\n".join(lines)
