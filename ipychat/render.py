"""Showing a streaming answer: coalesced display updates, and safe Markdown.

Re-rendering the whole answer on every chunk costs O(n^2) bytes on the wire
and floods IOPub (shared/DESIGN.md). A ``StreamView`` owns one display handle
and publishes at most one update per ``interval``: the first chunk at once,
later ones batched, a trailing flush so the last chunk is never held back,
and a final flush when the answer ends, however it ends.
"""

from __future__ import annotations

import re
import sys
import time
from typing import Callable, Optional

#: Publishing may take at most 1/SLOW_SHARE of the time between updates.
SLOW_SHARE = 4

# Any line that may open or close a fence in some container (list item, quote).
_FENCE_ISH = re.compile(r"[ \t]*(?:(?:[-+*]|\d{1,9}[.)])[ \t]+|>[ \t]?)*(?:`{3,}|~{3,})")
_OPENER = re.compile(r"( {0,3})(`{3,}|~{3,})(.*)")
# One line, no table pipe, not an escaped backtick: never wider than Markdown's own.
_CODE_SPAN = re.compile(r"(?<![`\\])(`+)(?!`)[^\n|]+?(?<!`)\1(?!`)")
# A link destination with a script scheme: inline ``](...)`` or a reference
# definition ``]: ...`` (also inside quotes and lists), after any spaces or
# control characters browsers strip, with the colon maybe backslash-escaped.
_SCRIPT_LINK = re.compile(r"(\]\(|\]:)([\x00-\x20]*)(?:javascript|vbscript|data)(?=\\?:)",
                          re.IGNORECASE)


def safe_markdown(text: str) -> str:
    """Markdown with raw HTML neutralised: model output must never run code.

    JupyterLab trusts outputs made in the running session, and its Markdown
    renderer then keeps raw HTML (``<script>``, ``onerror=``). We escape
    ``<`` outside code (where it shows literally anyway) and defuse
    script-scheme links. Code is left alone only where the renderer surely
    sees code too; anywhere in doubt we escape (at worst ``&lt;`` shows in
    code), since text we take for code but Markdown does not would run.
    """
    lines = text.splitlines(keepends=True)
    pieces, prose, i = [], [], 0
    while i < len(lines):
        if not _FENCE_ISH.match(lines[i]):
            prose.append(lines[i])
            i += 1
            continue
        end = _fence_end(lines, i)
        if end is None:  # a fence we cannot place for sure: escape all that follows
            prose.extend(lines[i:])
            break
        pieces += [_escape_prose("".join(prose)), "".join(lines[i:end])]
        prose, i = [], end
    pieces.append(_escape_prose("".join(prose)))
    return "".join(pieces)


def _fence_end(lines, start: int):
    """Index after the fence opened at ``lines[start]``, if it is surely a fence.

    The opener is indented ``k`` spaces: at top level, or in a list item whose
    content starts at ``k`` or before. Content lines indented at least ``k``
    (and a closer too) keep it a fence either way; one indented less may end
    the list item, and with it the fence, so we are no longer sure.
    """
    opener = _OPENER.fullmatch(lines[start].rstrip("\r\n"))
    if opener is None or (opener.group(2)[0] == "`" and "`" in opener.group(3)):
        return None
    indent, fence = len(opener.group(1)), opener.group(2)
    closer = re.compile(rf"( {{0,3}}){re.escape(fence[0])}{{{len(fence)},}}[ \t]*")
    for j in range(start + 1, len(lines)):
        line = lines[j].rstrip("\r\n")
        if line.strip() and _indent(line) < indent:
            return None
        if closer.fullmatch(line):
            return j + 1
    return len(lines)


def _indent(line: str) -> int:
    expanded = line.expandtabs(4)
    return len(expanded) - len(expanded.lstrip(" "))


def _escape_prose(text: str) -> str:
    out, last = [], 0
    for match in _CODE_SPAN.finditer(text):
        out.append(_escape_html(text[last:match.start()]))
        out.append(match.group(0))
        last = match.end()
    out.append(_escape_html(text[last:]))
    return "".join(out)


def _escape_html(text: str) -> str:
    text = text.replace("&", "&amp;").replace("<", "&lt;")
    return _SCRIPT_LINK.sub(r"\1\2#unsafe-link", text)


def bundle(text: str, fmt: str) -> dict:
    """The MIME bundle for ``text`` shown as ``fmt`` ("markdown" or "text")."""
    if fmt == "markdown":
        return {"text/markdown": safe_markdown(text), "text/plain": text}
    return {"text/plain": text}


class StreamView:
    """One live output for one answer, updated at most every ``interval`` s.

    ``schedule(delay, callback)`` arranges the trailing flush (e.g.
    ``loop.call_later``); without it the pending text waits for the next
    chunk, a ``tick()`` or ``finish()``.
    """

    def __init__(self, fmt: str = "markdown", interval: float = 0.1, header: str = "",
                 publish: Optional[Callable] = None, schedule: Optional[Callable] = None,
                 clock: Callable[[], float] = time.monotonic):
        self.fmt = fmt
        self.interval = interval
        self.header = header
        self._parts = []  # appended, not yet joined: ``text +=`` per chunk is O(n^2)
        self._text = ""
        self._gap = interval  # grows when publishing is slow (see flush)
        self.updates = 0
        self._publish = publish or _ipython_publisher()
        self._schedule = schedule
        self._clock = clock
        self._shown = None  # text last published
        self._last = float("-inf")
        self._timer = None
        self._handle = None

    def start(self, placeholder: str = "…") -> None:
        self._handle = self._publish(self._render(placeholder), None)

    @property
    def text(self) -> str:
        if self._parts:
            self._text += "".join(self._parts)
            self._parts = []
        return self._text

    def append(self, text: str) -> None:
        self._parts.append(text)
        wait = self._last + self._gap - self._clock()
        if wait <= 0:
            self.flush()
        elif self._timer is None and self._schedule is not None:
            self._timer = self._schedule(wait, self._trailing)

    def tick(self) -> None:
        """Flush if text waits and the interval has passed (for callers without a timer)."""
        if self.text != self._shown and self._clock() - self._last >= self._gap:
            self.flush()

    def flush(self, suffix: str = "") -> None:
        self._cancel_timer()
        shown = self.text + suffix
        if shown == self._shown:
            return
        self._shown = shown
        started = self._clock()
        self._handle = self._publish(self._render(shown), self._handle)
        self.updates += 1
        # A long answer costs more to render and send each time. Once that cost
        # passed the interval, every chunk would flush again (a 5 MB answer
        # then never ends): keep publishing under 1/SLOW_SHARE of the time.
        self._last = self._clock()
        self._gap = max(self.interval, SLOW_SHARE * (self._last - started))

    def finish(self, mark: str = "") -> None:
        """Final flush; ``mark`` (e.g. "interrupted") is shown after the text."""
        mark = _no_answer(mark, self.text)
        self.flush(f"\n\n*({mark})*" if mark and self.fmt == "markdown" else
                   f"\n({mark})" if mark else "")

    def _trailing(self) -> None:
        self._timer = None
        if self.text != self._shown:
            self.flush()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _render(self, text: str) -> dict:
        full = f"{self.header}\n\n{text}" if self.header else text
        return bundle(full, self.fmt)


def _no_answer(mark: str, text: str) -> str:
    """Word a mark for an answer that never started."""
    if mark and not text and mark.startswith("cut short"):
        return "no answer" + mark[len("cut short"):]
    return mark


def _ipython_publisher():
    from IPython.display import display, update_display

    def publish(data: dict, handle):
        if handle is None:
            return display(data, raw=True, display_id=True)
        update_display(data, raw=True, display_id=handle.display_id)
        return handle

    return publish


class TerminalView:
    """Plain streaming to a text stream (terminal IPython, scripts)."""

    def __init__(self, header: str = "", stream=None):
        self.header = header
        self.text = ""
        self.updates = 0
        self._stream = stream or sys.stdout

    def start(self, placeholder: str = "") -> None:
        if self.header:
            self._write(self.header + "\n")

    def append(self, text: str) -> None:
        self.text += text
        self._write(text)
        self.updates += 1

    def tick(self) -> None:
        pass

    def finish(self, mark: str = "") -> None:
        if self.text or self.header:
            self._write(f"\n({mark})\n" if mark and self.text else "\n")

    def _write(self, text: str) -> None:
        self._stream.write(text)
        self._stream.flush()
