"""Tool calls as they show under an answer: one line per call, and the
foldable section holding them.

A line is ``name(arg=value, ...)`` then ``…`` while the call runs, ``→`` and
a short preview of its result, or ``✗`` and its error. Lines sit in a code
block, so nothing a tool returns can be read as HTML or Markdown.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Tuple

from .markdown import open_fence, safe_markdown

#: The most characters of a call's arguments, and of its result, on its line.
PREVIEW_CHARS = 80
#: What starts a call's line in plain text (consoles, logs, the terminal).
TAG = "[tool] "
_BACKTICKS = re.compile(r"`+")


def call_head(run) -> str:
    """``name(arguments)`` of a call (``answer.ToolRun``)."""
    arguments = run.arguments
    if isinstance(arguments, dict):
        arguments = ", ".join(f"{key}={json.dumps(value, ensure_ascii=False)}"
                              for key, value in arguments.items())
    return f"{run.name}({preview(str(arguments))})"


def call_tail(run, previews: bool = True) -> str:
    """What came of a call: `` → result``, `` ✗ error``; without previews
    only `` ✓`` or the error's first part (its type)."""
    if run.error is not None:
        return f" ✗ {preview(run.error) if previews else preview(run.error.split(':')[0], 40)}"
    return f" → {preview(run.result)}" if previews else " ✓"


def call_line(run, previews: bool = True) -> str:
    return call_head(run) + (call_tail(run, previews) if run.done else " …")


def count(calls: int) -> str:
    """``1 tool call``, ``3 tool calls``."""
    return f"{calls} tool call{'s' if calls != 1 else ''}"


def preview(text: str, limit: int = PREVIEW_CHARS) -> str:
    """``text`` on one line, cut to ``limit`` characters."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[:limit - 1] + "…"


def fenced(lines) -> str:
    """``lines`` as a code block whose fence no backticks in them can close."""
    body = "\n".join(lines)
    fence = "`" * max(3, 1 + max(map(len, _BACKTICKS.findall(body)), default=0))
    return f"{fence}text\n{body}\n{fence}"


@dataclass(frozen=True)
class Calls:
    """What goes under an answer's text: its call lines and notes."""

    lines: Tuple[str, ...] = ()
    #: Open while a call is the latest thing; folded once the text goes on.
    opened: bool = False
    notes: Tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.lines or self.notes)

    def markdown(self, text: str = "") -> str:
        """The section (after ``text``, whose code block it closes if one is open)."""
        if not self:
            return ""
        out = [open_fence(text)]
        if self.lines:
            shown = " open" if self.opened else ""
            out.append(f"\n\n<details{shown}><summary>{count(len(self.lines))}</summary>\n\n"
                       f"{fenced(self.lines)}\n\n</details>")
        out += [safe_markdown(f"\n\n*(note: {note})*") for note in self.notes]
        return "".join(out)

    def plain(self, text: str = "") -> str:
        """The lines for consoles and logs, after ``text`` (a blank line between)."""
        if not self:
            return ""
        lines = [f"{TAG}{line}" for line in self.lines] + [f"(note: {n})" for n in self.notes]
        return ("\n\n" if text else "") + "\n".join(lines)


NO_CALLS = Calls()
