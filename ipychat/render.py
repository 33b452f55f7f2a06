"""Showing a streaming answer: coalesced display updates, and safe Markdown.

Re-rendering the whole answer on every chunk costs O(n^2) bytes on the wire
and floods IOPub (shared/DESIGN.md). A ``StreamView`` owns one display handle
and publishes at most one update per ``interval``: the first chunk at once,
later ones batched, a trailing flush so the last chunk is never held back,
and a final flush when the answer ends, however it ends.
"""

from __future__ import annotations

import sys
import time
from typing import Callable, Optional

from .markdown import safe_markdown, segment_end

#: Publishing may take at most 1/SLOW_SHARE of the time between updates.
SLOW_SHARE = 4

#: Past this many characters, the ``text/plain`` copy that goes next to
#: ``text/markdown`` holds only the start of the answer. Frontends show the
#: Markdown; the plain copy is for consoles and logs, and a second full copy
#: of a huge answer would double every update, its memory and the notebook.
PLAIN_COPY_LIMIT = 100_000
#: An answer longer than this many characters continues in a new output (cut
#: between paragraphs): each update then carries at most this much, not the
#: whole answer again, in the kernel's memory, on IOPub and in the browser.
SEGMENT_CHARS = 1_000_000


def bundle(text: str, fmt: str, header: str = "", suffix: str = "") -> dict:
    """The MIME bundle for ``text`` shown as ``fmt`` ("markdown" or "text"),
    after ``header`` (and a blank line) and before ``suffix`` (a mark)."""
    head = f"{header}\n\n" if header else ""
    if fmt == "markdown":
        plain = _joined(head, _plain_copy(text), suffix)
        return {"text/markdown": safe_markdown(head, text, suffix), "text/plain": plain}
    return {"text/plain": _joined(head, text, suffix)}


def _plain_copy(text: str) -> str:
    if len(text) <= PLAIN_COPY_LIMIT:
        return text
    left = len(text) - PLAIN_COPY_LIMIT
    return (f"{text[:PLAIN_COPY_LIMIT]}\n… ({left:,} more characters: the Markdown output "
            "has the whole answer)")


def _joined(*texts: str) -> str:
    """Concatenation that returns a lone text itself (a big answer is not copied)."""
    texts = [t for t in texts if t]
    return texts[0] if len(texts) == 1 else "".join(texts)


class StreamView:
    """One live output for one answer, updated at most every ``interval`` s.

    ``schedule(delay, callback)`` arranges the trailing flush (e.g.
    ``loop.call_later``); without it the pending text waits for the next
    chunk, a ``tick()`` or ``finish()``. Past ``segment`` characters the
    answer continues in a new output (``publish(data, None)``), the header
    on the first, the mark on the last.
    """

    def __init__(self, fmt: str = "markdown", interval: float = 0.1, header: str = "",
                 publish: Optional[Callable] = None, schedule: Optional[Callable] = None,
                 clock: Callable[[], float] = time.monotonic,
                 segment: Optional[int] = SEGMENT_CHARS):
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
        self._shown = None  # (length of the text, suffix) last published: text only grows
        self._last = float("-inf")
        self._timer = None
        self._handle = None
        self.segment = segment
        self._start = 0  # where the current output's part of the text begins

    def start(self, placeholder: str = "…") -> None:
        self._handle = self._publish(bundle(placeholder, self.fmt, self.header), None)

    @property
    def text(self) -> str:
        if self._parts:
            # One join into a new string; the old text is freed right after.
            self._text = "".join([self._text, *self._parts])
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
        if self._unshown() and self._clock() - self._last >= self._gap:
            self.flush()

    def flush(self, suffix: str = "") -> None:
        self._cancel_timer()
        text = self.text
        if (len(text), suffix) == self._shown:
            return
        self._shown = (len(text), suffix)
        started = self._clock()
        self._seal_full_outputs(text)
        part = text if self._start == 0 else text[self._start:]
        self._handle = self._publish(bundle(part, self.fmt, self._header(), suffix), self._handle)
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

    def _seal_full_outputs(self, text: str) -> None:
        """Give each output that is full its last update; go on in a new one."""
        while self.segment and len(text) - self._start > self.segment:
            end = segment_end(text, self._start, self.segment)
            self._publish(bundle(text[self._start:end], self.fmt, self._header()), self._handle)
            self.updates += 1
            self._handle, self._start = None, end

    def _header(self) -> str:
        return self.header if self._start == 0 else ""

    def _trailing(self) -> None:
        self._timer = None
        if self._unshown():
            self.flush()

    def _unshown(self) -> bool:
        return (len(self.text), "") != self._shown

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


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
