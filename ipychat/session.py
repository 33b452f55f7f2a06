"""A conversation across cells, and running one answer of it into a view.

The magic and the panel are thin shells over this: both build messages from
a ``Conversation``, stream a provider's events into a view and an
``Answer``, and record the answer; only a complete one enters the history,
and never its reasoning.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import AsyncIterator, List, Optional

from . import errors
from .answer import COMPLETE, ERROR, INTERRUPTED, Answer, remember_last
from .messages import Messages


class Conversation:
    """History of complete answers plus a system prompt.

    ``max_history`` bounds how many past turns are sent (None: all).
    """

    def __init__(self, system: Optional[str] = None, max_history: Optional[int] = None):
        self.system = system
        self.max_history = max_history
        self.turns: List[Answer] = []
        #: The most recent answer, complete or not (for --out, the panel, inspection).
        self.last: Optional[Answer] = None
        #: Names this conversation in the log, so ``%chat resume`` can find it again.
        self.id = uuid.uuid4().hex

    def messages_for(self, prompt: str, *, use_history: bool = True,
                     system: Optional[str] = None) -> Messages:
        messages: Messages = []
        system = self.system if system is None else system
        if system:
            messages.append({"role": "system", "content": system})
        if use_history:
            for turn in self._recent():
                messages.append({"role": "user", "content": turn.prompt})
                messages.append({"role": "assistant", "content": turn.text})
        messages.append({"role": "user", "content": prompt})
        return messages

    def _recent(self) -> List[Answer]:
        if self.max_history is None:
            return self.turns
        return self.turns[-self.max_history:] if self.max_history > 0 else []

    def record(self, answer: Answer, *, remember: bool = True) -> None:
        """Keep ``answer`` as the last one (also for ``last_result()``); only a
        complete one enters the history."""
        self.last = answer
        remember_last(answer)
        if remember and answer.complete:
            self.turns.append(answer)

    def reset(self) -> None:
        self.turns.clear()
        self.last = None
        self.id = uuid.uuid4().hex  # what follows is another conversation

    def resume(self, conversation_id: str, turns: List[Answer],
               system: Optional[str] = None) -> None:
        """Continue an earlier conversation (from the log): its turns, its id, its system prompt."""
        self.turns = list(turns)
        self.id = conversation_id
        self.system = system

    @property
    def messages(self) -> Messages:
        """The whole history as messages (system prompt first)."""
        return self.messages_for("", use_history=True)[:-1]

    def __len__(self) -> int:
        return len(self.turns)


_default: Optional[Conversation] = None


def default_conversation() -> Conversation:
    """The notebook's conversation, shared by ``%%chat`` and the panel."""
    global _default
    if _default is None:
        _default = Conversation()
    return _default


class Interrupted(errors.ChatError):
    hint = "The text so far is kept."


class Feed:
    """Takes one answer's events into its view and its ``Answer``: the one
    place that knows what each event kind means to the notebook (the async
    ``stream_into`` and the magic's blocking path both use it)."""

    def __init__(self, view, answer: Answer, clock=time.monotonic):
        self.view, self.answer, self.clock = view, answer, clock
        self.started = clock()

    def take(self, event) -> None:
        kind = event.kind
        if kind == "text":
            self.view.append(event.text)
        elif kind == "reasoning":
            self.view.reason(event.text)
        else:
            self._note(event)
            return
        if self.answer.first_token_s is None:
            self.answer.first_token_s = self.clock() - self.started

    def _note(self, event) -> None:
        """Keep what an event says about the answer (usage, why it ended), or
        show what happens meanwhile (a retry's wait)."""
        if event.kind == "retry":
            self.view.notice(event.line())
        elif event.kind == "usage":
            for key, value in event.as_dict().items():
                if value is not None:
                    self.answer.usage[key] = value
        elif event.kind == "finish":
            self.answer.finish_reason = event.reason

    def done(self) -> None:
        self._end(COMPLETE)
        stats = self.answer.stats() if self.view.stats else ""
        self.view.finish(self.answer.mark(), stats)

    def fail(self, err: Optional[BaseException], describe=None) -> None:
        """End on a cancel (``err`` None), Ctrl-C or an error; mark the view."""
        if err is None or isinstance(err, KeyboardInterrupt):
            self._end(INTERRUPTED, "interrupted")
            self.view.finish(errors_mark(None))
            return
        self._end(ERROR, errors.one_line(str(err)) or type(err).__name__)
        self.view.finish((describe or errors_mark)(err))

    def _end(self, status: str, error: Optional[str] = None) -> None:
        answer = self.answer
        answer.text, answer.reasoning = self.view.text, self.view.reasoning
        if answer.duration_s is None:  # a replay keeps the recorded times
            answer.duration_s = self.clock() - self.started
        answer.status, answer.error = status, error


async def stream_into(events: AsyncIterator, view, answer: Answer, describe=None,
                      clock=time.monotonic) -> Answer:
    """Feed a provider's ``events`` into ``view`` and ``answer`` until done.

    However it ends, the view gets its final flush and ``answer`` its status
    and times: an error or a cancel leaves the text so far on screen,
    marked as cut short (``describe(err)`` words the mark). A cancel is
    re-raised as it came; the caller decides how to report it.
    """
    feed = Feed(view, answer, clock)
    try:
        async for event in events:
            feed.take(event)
    except asyncio.CancelledError:
        feed.fail(None)
        raise
    except BaseException as err:
        feed.fail(err, describe)
        raise
    else:
        feed.done()
    finally:
        await _close(events)
    return answer


def errors_mark(err: Optional[BaseException]) -> str:
    if err is None or isinstance(err, KeyboardInterrupt):
        return "interrupted"
    return "cut short: error below" if isinstance(err, errors.ChatError) else "cut short"


async def _close(chunks) -> None:
    aclose = getattr(chunks, "aclose", None)
    if aclose is not None:
        await aclose()
