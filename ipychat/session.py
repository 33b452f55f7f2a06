"""A conversation across cells, and running one answer of it into a view.

The magic and the panel are thin shells over this: both build messages from
a ``Conversation``, stream a provider's events into a view and an
``Answer``, and record the answer; only a complete one enters the history,
and never its reasoning. An answer that used tools enters it with its calls
and their results (``turn_messages``), so a follow-up can refer to them.

Whoever watches a conversation (the panel) sees each answer of it start,
grow and end, whichever shell asked: ``Conversation.live`` wraps the
asking shell's view, so the answer's pieces go one way, from the provider
through the view, and the watchers hear of them at most ~10 times a second.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import AsyncIterator, Callable, List, Optional, Tuple

from . import errors
from .answer import COMPLETE, ERROR, INTERRUPTED, Answer, remember_last
from .messages import Message, Messages
from .live import ENDED, LIVE_INTERVAL, RESET, STARTED, LiveView
from .pacing import Pacer

_log = logging.getLogger(__name__)


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
        self._watchers: List[Callable] = []
        self._live: List[Answer] = []  # started and not yet recorded

    def messages_for(self, prompt: str, *, use_history: bool = True,
                     system: Optional[str] = None) -> Messages:
        messages: Messages = []
        system = self.system if system is None else system
        if system:
            messages.append({"role": "system", "content": system})
        if use_history:
            for turn in self._recent():
                messages.append({"role": "user", "content": turn.prompt})
                messages += turn_messages(turn)
        messages.append({"role": "user", "content": prompt})
        return messages

    def _recent(self) -> List[Answer]:
        if self.max_history is None:
            return self.turns
        return self.turns[-self.max_history:] if self.max_history > 0 else []

    def record(self, answer: Answer, *, remember: bool = True) -> None:
        """Keep ``answer`` as the last one (also for ``last_result()``); only a
        complete one enters the history. A live answer ends here."""
        self.last = answer
        remember_last(answer)
        if remember and answer.complete:
            self.turns.append(answer)
        if any(live is answer for live in self._live):
            self._live = [live for live in self._live if live is not answer]
            self.tell(ENDED, answer)

    def reset(self) -> None:
        self.turns.clear()
        self.last = None
        self.id = uuid.uuid4().hex  # what follows is another conversation
        self.tell(RESET, None)

    def resume(self, conversation_id: str, turns: List[Answer],
               system: Optional[str] = None) -> None:
        """Continue an earlier conversation (from the log): its turns, its id, its system prompt."""
        self.turns = list(turns)
        self.id = conversation_id
        self.system = system

    # -- watching ---------------------------------------------------------------

    def watch(self, watcher: Callable) -> Callable[[], None]:
        """Call ``watcher(change, answer)`` when an answer starts, grows or
        ends, and on reset; returns the function that stops it."""
        self._watchers.append(watcher)

        def unwatch() -> None:
            if watcher in self._watchers:
                self._watchers.remove(watcher)

        return unwatch

    def live(self, answer: Answer, view, schedule: Optional[Callable] = None,
             interval: float = LIVE_INTERVAL, clock=time.monotonic) -> "LiveView":
        """``view`` for ``answer``, telling the watchers as the answer streams;
        ``schedule(delay, callback)`` (``loop.call_later``) brings the last
        piece to them when no next one comes."""
        return LiveView(self, answer, view, Pacer(interval, schedule, clock))

    @property
    def streaming(self) -> Optional[Answer]:
        """The answer streaming now, if one is."""
        return self._live[-1] if self._live else None

    def tell(self, change: str, answer: Optional[Answer]) -> None:
        if change == STARTED:
            self._live.append(answer)
        for watcher in list(self._watchers):
            try:
                watcher(change, answer)
            except Exception:  # a broken watcher must not break the answer it watches
                _log.exception("a conversation watcher failed on %r", change)

    @property
    def messages(self) -> Messages:
        """The whole history as messages (system prompt first)."""
        return self.messages_for("", use_history=True)[:-1]

    def __len__(self) -> int:
        return len(self.turns)


def turn_messages(answer: Answer) -> Messages:
    """What follows an answer's question in the history: its text, or each of
    its model turns with the tool calls it made and their results."""
    if not answer.rounds:
        return [{"role": "assistant", "content": answer.text}]
    found: Messages = []
    for turn in answer.rounds:
        if not turn.calls:
            found.append({"role": "assistant", "content": turn.text})
            continue
        found.append({"role": "assistant", "content": turn.text, "tool_calls": [
            {"id": run.id, "name": run.name, "arguments": run.raw_arguments}
            for run in turn.calls]})
        found += [tool_result(run) for run in turn.calls]
    return found


def tool_result(run) -> Message:
    failed = run.error is not None
    return {"role": "tool", "tool_call_id": run.id, "name": run.name,
            "content": run.error if failed else run.result, "is_error": failed}


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
    ``stream_into``, the tool loop and the magic's blocking path all use it).

    An answer may span several model turns (rounds) when it calls tools:
    ``end_round`` hands over a turn's text and calls; the next turn's text
    continues the same view after a paragraph break; usage adds up.
    """

    def __init__(self, view, answer: Answer, clock=time.monotonic):
        self.view, self.answer, self.clock = view, answer, clock
        self.started = clock()
        #: The tool calls the current model turn asked for.
        self.calls: list = []
        self._round_start = 0  # where the current turn's text begins in the view's text
        self._next_round = False
        self._usage: dict = {}  # the current turn's

    def take(self, event) -> None:
        kind = event.kind
        if kind == "text":
            if self._next_round:
                self._begin_round()
            self.view.append(event.text)
        elif kind == "reasoning":
            self.view.reason(event.text)
        elif kind == "tool_call":  # run, if at all, once the turn has ended
            self.calls.append(event)
        elif kind == "note":
            self.view.note(event.text)
            return
        elif kind == "tool_ran":  # a replay's: the Answer has it already (replay.prefill)
            self.view.tool(event.run)
            return
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
            self._usage.update({k: v for k, v in event.as_dict().items() if v is not None})
        elif event.kind == "finish":
            self.answer.finish_reason = event.reason

    def end_round(self) -> Tuple[str, list]:
        """The current model turn's text and tool calls; the next turn starts."""
        text = self.view.text[self._round_start:]
        calls, self.calls = self.calls, []
        self._add_usage()
        self._next_round = True
        return text, calls

    def _begin_round(self) -> None:
        self._next_round = False
        shown = self.view.text
        if shown and not shown.endswith("\n\n"):  # the turns read as paragraphs
            self.view.append("\n" if shown.endswith("\n") else "\n\n")
            shown = self.view.text
        self._round_start = len(shown)

    def _add_usage(self) -> None:
        """Each model turn reports its own tokens: an answer costs their sum."""
        for key, value in self._usage.items():
            self.answer.usage[key] = (self.answer.usage.get(key) or 0) + value
        self._usage = {}

    def done(self) -> None:
        for call in self.calls:  # asked for with no tools offered: say so, run nothing
            self.view.note(f"the model asked to call {call.name}, but no tools were offered: "
                           "not run")
        self._end(COMPLETE)
        stats = self.answer.stats() if self.view.stats else ""
        self.view.finish(self.answer.mark(), stats)

    def fail(self, err: Optional[BaseException], describe=None) -> None:
        """End on a cancel (``err`` None), Ctrl-C or an error; mark the view."""
        if err is None or isinstance(err, (KeyboardInterrupt, Interrupted)):
            self._end(INTERRUPTED, "interrupted")
            self.view.finish(errors_mark(None))
            return
        self._end(ERROR, errors.one_line(str(err)) or type(err).__name__)
        self.view.finish((describe or errors_mark)(err))

    def _end(self, status: str, error: Optional[str] = None) -> None:
        answer = self.answer
        self._add_usage()
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
