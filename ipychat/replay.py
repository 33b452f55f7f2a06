"""Answering a question from the log instead of the model.

A replayed answer flows like a live one: ``events_of`` yields the recorded
reasoning, text, usage and finish reason as the events a provider would
have sent (and its tool calls as ``ToolRan``: shown, not run again), so the view, ``session.Feed``, the history, ``--out`` and
``last_result()`` take it the way they take any answer. Only the times are
not measured again: ``prefill`` gives the new ``Answer`` the recorded ones,
so its stats line is the one the live answer had, and its model turns with
their calls, so the history after it is the one the live answer left (and
the next question's key the same).

Pure: no I/O. Looking the answer up is ``log.find``'s job.
"""

from __future__ import annotations

import time
from typing import AsyncIterator

from . import errors
from .answer import Answer, Round
from .events import Event, Finish, Reasoning, Text, ToolRan, usage

#: ``%chat replay`` and ``IPYCHAT_REPLAY`` words.
OFF, ON, ONLY = "off", "on", "only"
MODES = (OFF, ON, ONLY)


class NotRecorded(errors.ChatError):
    hint = ("Run the notebook once with replay off or on to record it; the provider, model, "
            "base URL, options and the conversation so far must be the same.")


def date_of(epoch: float) -> str:
    """A recorded answer's date as replays show it: UTC, to the minute, so
    that the same log replays the same way in every time zone."""
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(epoch))


def note(answer: Answer) -> str:
    """The line a replayed answer shows above its text."""
    return f"*Replayed from the log ({answer.replayed}): no request was sent.*"


def prefill(answer: Answer, recorded: Answer) -> None:
    """Make ``answer`` the replay of ``recorded``: its date, its times, its turns."""
    answer.replayed = date_of(recorded.asked_at)
    answer.first_token_s = recorded.first_token_s
    answer.duration_s = recorded.duration_s
    answer.rounds = [Round.of(turn.as_dict()) for turn in recorded.rounds]  # copies
    answer.tool_limit = recorded.tool_limit


class Recorded:
    """A logged answer where a target would stream: ``stream`` yields its
    events whatever is asked (the tool loop asks once: a replay runs no tools)."""

    def __init__(self, recorded: Answer):
        self.recorded = recorded

    def stream(self, messages, **offer) -> AsyncIterator[Event]:
        return events_of(self.recorded)


async def events_of(recorded: Answer) -> AsyncIterator[Event]:
    """The recorded answer as the events that made it: reasoning, tool calls,
    text, usage, finish."""
    for run in recorded.tool_calls:
        yield ToolRan(run)
    if recorded.reasoning:
        yield Reasoning(recorded.reasoning)
    if recorded.text:
        yield Text(recorded.text)
    counted = usage(recorded.usage.get("input_tokens"), recorded.usage.get("output_tokens"))
    if counted is not None:
        yield counted
    if recorded.finish_reason:
        yield Finish(recorded.finish_reason)
