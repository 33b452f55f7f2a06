"""Watching an answer grow: the view wrappers behind ``Conversation.live``.

A ``LiveView`` wraps the asking shell's view and tells the conversation's
watchers (the panel) as its answer starts and grows (text, reasoning, tool
calls), at most once per ``LIVE_INTERVAL`` but a tool call's start at once;
``Conversation.record`` tells them it ended. A ``Collector`` is the view of
a shell that shows answers only through those watchers. Split from ``session`` so that each stays one responsibility.
"""

from __future__ import annotations

from .answer import Answer
from .pacing import Pacer

#: Seconds between two "grew" notices of one answer, as between output updates.
LIVE_INTERVAL = 0.1
#: What a watcher is told: ``watcher(change, answer)``; ``answer`` is None for "reset".
STARTED, GREW, ENDED, RESET = "started", "grew", "ended", "reset"


class LiveView:
    """A view that also tells a conversation's watchers how its answer grows.

    The watchers read the answer (``text``, ``reasoning``), kept up to date
    here at most once per interval, and its ``tool_calls`` (the tool loop
    keeps those); the view itself is paced on its own.
    """

    def __init__(self, conversation, answer: Answer, view, pace: Pacer):
        self.conversation, self.answer, self.view = conversation, answer, view
        self._pace = pace
        self._tools = 0  # tool calls started or ended so far
        self._told = (0, 0, 0)  # lengths of text and reasoning, and _tools, last told

    @property
    def text(self) -> str:
        return self.view.text

    @property
    def reasoning(self) -> str:
        return self.view.reasoning

    @property
    def stats(self) -> bool:
        return self.view.stats

    def start(self, placeholder: str = "…") -> None:
        self.view.start(placeholder)
        self.conversation.tell(STARTED, self.answer)

    def append(self, text: str) -> None:
        self.view.append(text)
        self._due()

    def reason(self, text: str) -> None:
        self.view.reason(text)
        self._due()

    def tick(self) -> None:
        self.view.tick()
        if self._pace.wait() <= 0:
            self._tell()

    def finish(self, mark: str = "", stats: str = "") -> None:
        self._pace.disarm()  # the end is told by ``Conversation.record``
        self.view.finish(mark, stats)

    def notice(self, line: str) -> None:
        self.view.notice(line)

    def warn(self, line: str) -> None:
        self.view.warn(line)

    def tool(self, run) -> None:
        """A call started (told at once: a plain tool blocks the loop, so a
        timer would fire only once it returned) or ended (told in its turn)."""
        self.view.tool(run)
        self._tools += 1
        if run.done:
            self._due()
        else:
            self._tell()

    def note(self, text: str) -> None:
        self.view.note(text)

    def _due(self) -> None:
        if self._pace.wait() <= 0:
            self._tell()
        else:
            self._pace.arm(self._tell)

    def _tell(self) -> None:
        started = self._pace.start()
        text, reasoning = self.view.text, self.view.reasoning
        if (len(text), len(reasoning), self._tools) == self._told:
            return
        self._told = (len(text), len(reasoning), self._tools)
        self.answer.text, self.answer.reasoning = text, reasoning
        self.conversation.tell(GREW, self.answer)
        self._pace.ran(started)


class Collector:
    """A view that only keeps the text: for a shell that shows answers
    through the conversation's watchers (the panel)."""

    stats = True

    def __init__(self):
        self._parts, self._thought = [], []

    @property
    def text(self) -> str:
        return _joined(self._parts)

    @property
    def reasoning(self) -> str:
        return _joined(self._thought)

    def start(self, placeholder: str = "") -> None:
        pass

    def append(self, text: str) -> None:
        self._parts.append(text)

    def reason(self, text: str) -> None:
        self._thought.append(text)

    def tick(self) -> None:
        pass

    def finish(self, mark: str = "", stats: str = "") -> None:
        pass

    def notice(self, line: str) -> None:
        """A retry's wait: the panel shows its status line meanwhile, not this."""

    def warn(self, line: str) -> None:
        """The panel puts a log warning in its status line, not here."""

    def tool(self, run) -> None:
        """Tool calls reach the panel with the answer (``Answer.tool_calls``);
        ``LiveView`` tells it when."""

    def note(self, text: str) -> None:
        pass


def _joined(parts: list) -> str:
    """The parts as one text, kept joined: each piece is copied about once
    per read (~10 a second), not once per piece."""
    if len(parts) != 1:
        parts[:] = ["".join(parts)]
    return parts[0]
