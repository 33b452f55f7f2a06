"""One answer that may call tools: model turn, the calls it asked for, their
results sent back, the next turn, into one view, until the model answers
without calls or the round limit is reached.

``answer_into`` (on a running loop: the kernel's, a panel's) and
``answer_blocking`` (terminal IPython, no loop to await on) are the same
loop written twice, because a plain tool must run in the caller's thread:
that is where the user's objects live and where Ctrl-C lands. Everything
else, what a call may do and what it leaves behind, is ``ToolLoop``.

Calls run in order. A call to a tool that was not offered, or with
arguments that do not fit its parameters, never reaches Python: the model
gets an error result. A tool that raises gives the model its exception's
type and message; the answer goes on. An interrupt during a tool ends the
answer (``Interrupted``): a plain function gets a ``KeyboardInterrupt``
(``runner.interruptible``), an async one is cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
from typing import Iterable, List, Optional, Union

from .answer import Answer, Round, ToolRun
from .messages import Messages
from .runner import interruptible
from .session import Feed, Interrupted, _close, turn_messages
from .tools import BadArguments, Tool, ToolBox, error_text, result_text
from .values import MAX_VALUE_CHARS

#: How many times, by default, one answer may run tools and go back to the model.
MAX_TOOL_ROUNDS = 8
INTERRUPTED = "interrupted"

Tools = Union[ToolBox, Iterable, None]


def as_toolbox(tools: Tools) -> Optional[ToolBox]:
    """A ``ToolBox`` from one, or from callables; None when there are none."""
    if tools is None or isinstance(tools, ToolBox):
        return tools or None
    return ToolBox.of(tools) or None


class ToolLoop:
    """The state of one answer's rounds: what to send next, which calls to run."""

    def __init__(self, feed: Feed, messages: Messages, tools: Tools = None,
                 max_rounds: int = MAX_TOOL_ROUNDS, limit: int = MAX_VALUE_CHARS):
        self.feed, self.messages = feed, messages
        self.tools = as_toolbox(tools)
        self.max_rounds, self.limit = max_rounds, limit
        self._before = len(feed.answer.rounds)  # a replayed answer comes with its own

    @property
    def rounds(self) -> int:
        """How many model turns this loop has closed with calls or after them."""
        return len(self.answer.rounds) - self._before

    @property
    def answer(self) -> Answer:
        return self.feed.answer

    def request(self) -> Messages:
        """The messages of the next model turn: the question, then this answer's
        turns so far with their calls and results."""
        return self.messages + turn_messages(self.answer) if self.rounds else self.messages

    def offer(self) -> dict:
        """Keyword arguments for ``Target.stream``: the tools, if any."""
        return {"tools": self.tools.schemas} if self.tools else {}

    def end_round(self) -> List[ToolRun]:
        """Close the model turn that just ended; the calls to run now ([]: done)."""
        text, calls = self.feed.end_round()
        if not calls or self.tools is None:  # none offered: Feed.done notes them
            self.feed.calls = calls
            if self.rounds:
                self.answer.rounds.append(Round(text))
            return []
        if self.rounds >= self.max_rounds:
            self.answer.tool_limit = self.max_rounds
            self.answer.finish_reason = "tool_calls"
            self.answer.rounds.append(Round(text))  # its calls never ran: not history
            return []
        runs = [ToolRun.asked(call.id, call.name, call.arguments) for call in calls]
        self.answer.rounds.append(Round(text, runs))
        return runs

    def prepared(self, run: ToolRun) -> Optional[tuple]:
        """``(tool, arguments)`` for a call that may run, after showing it; or
        None when the model gets an error result instead (already ended)."""
        self.feed.view.tool(run)
        tool: Optional[Tool] = self.tools.get(run.name)
        if tool is None:
            self.ended(run, 0.0, error=f"there is no tool named {run.name!r}; the tools are "
                                       f"{', '.join(self.tools.names)}")
            return None
        try:
            return tool, tool.arguments(run.raw_arguments)
        except BadArguments as err:
            self.ended(run, 0.0, error=f"bad arguments for {run.name}: {err}")
            return None

    def ended(self, run: ToolRun, seconds: float, result=None, error: Optional[str] = None):
        if error is None:
            run.result = result_text(result, self.limit)
        else:
            run.error = error
        run.seconds = seconds
        self.feed.view.tool(run)

    async def run_async(self, run: ToolRun) -> None:
        """Run one call on this loop: a plain tool directly, an async one awaited."""
        found = self.prepared(run)
        if found is None:
            return
        with self.running(run) as outcome:
            value = interruptible(lambda: found[0].call(found[1]))
            outcome.value = await value if inspect.isawaitable(value) else value

    def run_blocking(self, run: ToolRun) -> None:
        """Run one call in this thread; an async tool on ipychat's loop thread."""
        from .loopthread import run_sync

        found = self.prepared(run)
        if found is None:
            return
        with self.running(run) as outcome:
            value = interruptible(lambda: found[0].call(found[1]))
            outcome.value = run_sync(_awaited(value)) if inspect.isawaitable(value) else value

    @contextlib.contextmanager
    def running(self, run: ToolRun):
        """Around one call: whatever way it ends, ``run`` ends so (its result is
        ``outcome.value``). An exception is the model's result; an interrupt
        ends the answer (a cancel goes on as it came)."""
        started, outcome = self.feed.clock(), _Outcome()
        try:
            yield outcome
        except asyncio.CancelledError:
            self.ended(run, self.feed.clock() - started, error=INTERRUPTED)
            raise
        except KeyboardInterrupt:
            self.ended(run, self.feed.clock() - started, error=INTERRUPTED)
            raise Interrupted(INTERRUPTED) from None
        except Exception as err:
            self.ended(run, self.feed.clock() - started, error=error_text(err))
        else:
            self.ended(run, self.feed.clock() - started, outcome.value)


class _Outcome:
    value = None


async def _awaited(value):
    return await value


async def answer_into(target, messages: Messages, view, answer: Answer, tools: Tools = None,
                      *, max_rounds: int = MAX_TOOL_ROUNDS, limit: int = MAX_VALUE_CHARS,
                      describe=None, clock=time.monotonic) -> Answer:
    """Stream the answer to ``messages`` from ``target`` into ``view`` and
    ``answer``, running the ``tools`` (a ``ToolBox`` or callables) the model
    calls, until it answers without calls or ``max_rounds`` rounds ran.

    ``target`` is anything with ``stream(messages, tools=...)`` returning
    events (``targets.Target``). However it ends, the view gets its final
    flush and ``answer`` its status, as with ``session.stream_into``; a
    cancel is re-raised as it came, an interrupted plain tool raises
    ``Interrupted``.
    """
    loop = ToolLoop(Feed(view, answer, clock), messages, tools, max_rounds, limit)
    try:
        runs = True
        while runs:
            events = target.stream(loop.request(), **loop.offer())
            try:
                async for event in events:
                    loop.feed.take(event)
            finally:
                await _close(events)
            runs = loop.end_round()
            for run in runs:
                await loop.run_async(run)
    except asyncio.CancelledError:
        loop.feed.fail(None)
        raise
    except BaseException as err:
        loop.feed.fail(err, describe)
        raise
    loop.feed.done()
    return answer


def answer_blocking(target, messages: Messages, view, answer: Answer, tools: Tools = None,
                    *, max_rounds: int = MAX_TOOL_ROUNDS, limit: int = MAX_VALUE_CHARS,
                    describe=None) -> Answer:
    """``answer_into`` for a thread with no loop to await on: the provider
    streams on ipychat's loop thread (``loopthread``), waited for in slices
    so Ctrl-C lands; tools run here. Ctrl-C raises ``Interrupted``."""
    from .loopthread import iterate_sync

    loop = ToolLoop(Feed(view, answer), messages, tools, max_rounds, limit)
    try:
        runs = True
        while runs:
            stream = target.stream(loop.request(), **loop.offer())
            for event in iterate_sync(stream, idle=view.tick):
                loop.feed.take(event)
            runs = loop.end_round()
            for run in runs:
                loop.run_blocking(run)
    except KeyboardInterrupt:
        loop.feed.fail(None)
        raise Interrupted(INTERRUPTED) from None
    except BaseException as err:
        loop.feed.fail(err, describe)
        raise
    loop.feed.done()
    return answer
