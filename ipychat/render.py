"""Showing a streaming answer: coalesced display updates, and safe Markdown.

Re-rendering the whole answer on every chunk costs O(n^2) bytes on the wire
and floods IOPub (shared/DESIGN.md). A ``StreamView`` owns one display handle
and publishes at most one update per ``interval``: the first chunk at once,
later ones batched, a trailing flush so the last chunk is never held back,
and a final flush when the answer ends, however it ends. The tools an answer
calls show as one line each (``calls.py``), folded under the text.
"""

from __future__ import annotations

import re
import sys
import time
from typing import Callable, Optional

from .calls import NO_CALLS, TAG, Calls, call_head, call_line, call_tail
from .markdown import safe_markdown, segment_end
from .pacing import Pacer

#: How reasoning is shown: open while thinking and folded once the answer
#: starts, always open, or only as a growing word count while thinking.
REASONING_MODES = ("collapsed", "shown", "hidden")
_LINE_END = re.compile(r"\r\n?|\n")

#: Past this many characters, the ``text/plain`` copy that goes next to
#: ``text/markdown`` holds only the start of the answer. Frontends show the
#: Markdown; the plain copy is for consoles and logs, and a second full copy
#: of a huge answer would double every update, its memory and the notebook.
PLAIN_COPY_LIMIT = 100_000
#: An answer longer than this many characters continues in a new output (cut
#: between paragraphs): each update then carries at most this much, not the
#: whole answer again, in the kernel's memory, on IOPub and in the browser.
SEGMENT_CHARS = 1_000_000


def bundle(text: str, fmt: str, header: str = "", suffix: str = "", reasoning: str = "",
           fold: str = "collapsed", calls: Calls = NO_CALLS) -> dict:
    """The MIME bundle for ``text`` shown as ``fmt`` ("markdown" or "text"),
    after ``header`` (and a blank line) and the model's ``reasoning`` (shown
    as ``fold`` says, one of ``REASONING_MODES``), and before the ``calls``
    it made and ``suffix`` (a mark)."""
    head = f"{header}\n\n" if header else ""
    answering = bool(text)
    if fmt == "markdown":
        plain = _joined(head, reasoning_plain(reasoning, answering, fold), _plain_copy(text),
                        calls.plain(text), suffix)
        section = reasoning_markdown(reasoning, answering, fold)
        if not (section or calls):
            return {"text/markdown": safe_markdown(head, text, suffix), "text/plain": plain}
        markdown = "".join([safe_markdown(head), section, safe_markdown(text),
                            calls.markdown(text), safe_markdown(suffix)])
        return {"text/markdown": markdown, "text/plain": plain}
    return {"text/plain": _joined(head, reasoning_plain(reasoning, answering, fold), text,
                                  calls.plain(text), suffix)}


def reasoning_markdown(reasoning: str, answering: bool, fold: str) -> str:
    """The reasoning as a foldable quote, escaped like the answer.

    Every line sits inside the quote, so nothing in it (an unclosed code
    fence, say) can reach past the section into the answer.
    """
    if not reasoning:
        return ""
    words = f"{len(reasoning.split()):,} words"
    if fold == "hidden":
        return "" if answering else f"*Thinking… {words}*\n\n"
    opened = " open" if fold == "shown" or not answering else ""
    title = f"Reasoning ({words})" if answering else f"Thinking… ({words})"
    quoted = safe_markdown("> " + _LINE_END.sub("\n> ", reasoning))
    return f"<details{opened}><summary>{title}</summary>\n\n{quoted}\n\n</details>\n\n"


def reasoning_plain(reasoning: str, answering: bool, fold: str) -> str:
    """The reasoning for consoles and logs: whole while thinking (or when
    ``shown``), then a one-line note."""
    if not reasoning:
        return ""
    words = f"{len(reasoning.split()):,} words"
    if fold == "shown" or (fold == "collapsed" and not answering):
        return f"Thinking… ({words})\n{reasoning}\n\n"
    if fold == "hidden":
        return "" if answering else f"Thinking… {words}\n\n"
    return f"(reasoning: {words})\n\n"


def suffix_of(fmt: str, mark: str = "", stats: str = "") -> str:
    """What goes under the answer: its mark, then its stats line."""
    if fmt == "markdown":
        return (f"\n\n*({mark})*" if mark else "") + (f"\n\n*{stats}*" if stats else "")
    return (f"\n({mark})" if mark else "") + (f"\n[{stats}]" if stats else "")


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
                 segment: Optional[int] = SEGMENT_CHARS, reasoning: str = "collapsed",
                 stats: bool = True, previews: bool = True):
        self.fmt = fmt
        self.interval = interval
        self.header = header
        #: How reasoning is shown (``REASONING_MODES``); whether a stats line goes under.
        self.fold = reasoning
        self.stats = stats
        #: Whether tool call lines show a preview of each result (``--quiet-tools``: no).
        self.previews = previews
        self._runs = []  # the tool calls shown, in order
        self._notes = []
        self._calls_open = False  # while a call is the latest thing: the section stays open
        self._changes = 0  # tool lines and notes changed since start (they change in place)
        self._parts = []  # appended, not yet joined: ``text +=`` per chunk is O(n^2)
        self._text = ""
        self._thought = []  # reasoning, likewise
        self._reasoning = ""
        self._notice = ""  # a line shown until the answer starts (a retry's wait)
        self.updates = 0
        self._publish = publish or _ipython_publisher()
        self._pace = Pacer(interval, schedule, clock)
        self._shown = None  # (text length, reasoning length, suffix) last published
        self._handle = None
        self.segment = segment
        self._start = 0  # where the current output's part of the text begins
        self._suffix = ""  # the last suffix published (mark and stats)

    def start(self, placeholder: str = "…") -> None:
        self._handle = self._publish(bundle(placeholder, self.fmt, self.header), None)

    @property
    def text(self) -> str:
        if self._parts:
            # One join into a new string; the old text is freed right after.
            self._text = "".join([self._text, *self._parts])
            self._parts = []
        return self._text

    @property
    def reasoning(self) -> str:
        if self._thought:
            self._reasoning = "".join([self._reasoning, *self._thought])
            self._thought = []
        return self._reasoning

    def append(self, text: str) -> None:
        self._parts.append(text)
        self._calls_open = False
        self._due()

    def tool(self, run) -> None:
        """Show a tool call (``answer.ToolRun``) as it starts, and again once it ended.

        A start is shown at once: a plain tool blocks the loop, so a timer
        could not show it before the tool returns. Each call costs at most
        that one extra update.
        """
        if not any(shown is run for shown in self._runs):
            self._runs.append(run)
        self._calls_open = True
        self._changes += 1
        if run.done:
            self._due()
        else:
            self.flush()

    def note(self, text: str) -> None:
        """A line under the answer about it (a tool call that was not run, say)."""
        self._notes.append(text)
        self._changes += 1
        self._due()

    @property
    def calls(self) -> Calls:
        lines = tuple(call_line(run, self.previews) for run in self._runs)
        return Calls(lines, self._calls_open, tuple(self._notes))

    def reason(self, text: str) -> None:
        """Add a piece of the model's thinking (shown above the answer)."""
        self._thought.append(text)
        self._due()

    def notice(self, line: str) -> None:
        """Show ``line`` where the answer will be, until it starts (at once: it is rare)."""
        self._notice = line
        self.flush()

    def _due(self) -> None:
        if self._pace.wait() <= 0:
            self.flush()
        else:
            self._pace.arm(self._trailing)

    def tick(self) -> None:
        """Flush if text waits and the interval has passed (for callers without a timer)."""
        if self._unshown() and self._pace.wait() <= 0:
            self.flush()

    def flush(self, suffix: str = "") -> None:
        started = self._pace.start()
        text, reasoning = self.text, self.reasoning
        if text or reasoning or self._runs:
            self._notice = ""  # the answer replaces the line
        shown = (len(text), len(reasoning), suffix, self._changes, self._notice)
        if shown == self._shown:
            return
        self._shown = shown
        self._suffix = suffix
        self._seal_full_outputs(text)
        part = text if self._start == 0 else text[self._start:]
        self._handle = self._publish(self._bundle(part, suffix), self._handle)
        self.updates += 1
        self._pace.ran(started)

    def finish(self, mark: str = "", stats: str = "") -> None:
        """Final flush; ``mark`` (e.g. "interrupted") and the ``stats`` line
        are shown after the text."""
        self._notice = ""
        self.flush(suffix_of(self.fmt, _no_answer(mark, self.text), stats))

    def warn(self, line: str) -> None:
        """One more line under a finished answer, after its mark and stats
        (that it could not be logged, say)."""
        self.flush(self._suffix + suffix_of(self.fmt, line))

    def _seal_full_outputs(self, text: str) -> None:
        """Give each output that is full its last update; go on in a new one."""
        while self.segment and len(text) - self._start > self.segment:
            end = segment_end(text, self._start, self.segment)
            self._publish(self._bundle(text[self._start:end], last=False), self._handle)
            self.updates += 1
            self._handle, self._start = None, end

    def _bundle(self, part: str, suffix: str = "", last: bool = True) -> dict:
        """The first output carries the header and the reasoning, the last one
        the tool calls (under the text)."""
        calls = self.calls if last else NO_CALLS
        if self._start:
            return bundle(part, self.fmt, "", suffix, calls=calls)
        if self._notice:
            line = f"*{self._notice}*" if self.fmt == "markdown" else self._notice
            return bundle(line, self.fmt, self.header)
        return bundle(part, self.fmt, self.header, suffix, self.reasoning, self.fold, calls)

    def _trailing(self) -> None:
        if self._unshown():
            self.flush()

    def _unshown(self) -> bool:
        return (len(self.text), len(self.reasoning), "", self._changes,
                self._notice) != self._shown


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
    """Plain streaming to a text stream (terminal IPython, scripts): reasoning
    dimmed as it arrives, then the answer."""

    DIM, RESET = "\x1b[2m", "\x1b[0m"

    def __init__(self, header: str = "", stream=None, reasoning: str = "collapsed",
                 stats: bool = True, previews: bool = True):
        self.header = header
        self.text = ""
        self.reasoning = ""
        self.fold = reasoning
        self.stats = stats
        self.previews = previews
        self.updates = 0
        self._stream = stream or sys.stdout
        self._open_call = None  # a call whose line waits for its end
        self._after_call = False

    def start(self, placeholder: str = "") -> None:
        if self.header:
            self._write(self.header + "\n")

    def notice(self, line: str) -> None:
        self._write(f"{self.DIM}{line}{self.RESET}\n")

    def reason(self, text: str) -> None:
        if not self.reasoning and self.fold != "hidden":
            self._write(f"{self.DIM}Thinking…\n")
        self.reasoning += text
        if self.fold != "hidden":
            self._write(f"{self.DIM}{text}{self.RESET}")

    def append(self, text: str) -> None:
        if self._after_call:  # a blank line between the call lines and the text
            self._write("\n")
            self._after_call = False
        if not self.text and self.reasoning and self.fold != "hidden":
            self._write("\n\n")
        self.text += text
        self._write(text)
        self.updates += 1

    def tool(self, run) -> None:
        """A call's line: its name and arguments as it starts, what came of it
        once it ended (a tool's own prints land in between)."""
        if run.done and self._open_call is run:
            self._write(f"{self.DIM}{call_tail(run, self.previews)}{self.RESET}\n")
        elif run.done:
            self._write(f"\n{self.DIM}{TAG}{call_line(run, self.previews)}{self.RESET}\n")
        else:
            self._write(f"\n{self.DIM}{TAG}{call_head(run)}{self.RESET}")
        self._open_call = None if run.done else run
        self._after_call = run.done
        self.updates += 1

    def note(self, text: str) -> None:
        self._write(f"\n{self.DIM}(note: {text}){self.RESET}\n")

    def tick(self) -> None:
        pass

    def finish(self, mark: str = "", stats: str = "") -> None:
        if self.text or self.header or self.reasoning:
            self._write(f"\n({mark})\n" if mark and self.text else "\n")
        if stats:
            self._write(f"{self.DIM}[{stats}]{self.RESET}\n")

    def warn(self, line: str) -> None:
        self._write(f"({line})\n")

    def _write(self, text: str) -> None:
        self._stream.write(text)
        self._stream.flush()
