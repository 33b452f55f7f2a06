"""What one answer carries besides its text, decided once before anything is
written: the reasoning pieces, the answer pieces, the cut by the request's
token limit, the finish reason and the token counts.

Counting is a deterministic stand-in for tokens: input tokens are the words
of the messages (``reply.word_count``), output tokens the pieces actually
sent, reasoning, answer and tool call arguments (one piece is one token).

A turn that calls tools (``tooluse.planned_calls``) carries no answer text:
its calls take the text's place, and its finish is the protocol's tool word.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

from .faults import THINK_FORMS, Faults
from .reply import (DEFAULT_REASONING, answer_pieces, reasoning_pieces, split_pieces,
                    tagged_pieces, word_count)

#: The protocols with a wire form for reasoning (Lockchat and Vitalentum are
#: OpenAI-shaped but never had one).
REASONING_PROTOCOLS = ("openai", "anthropic", "ollama")


@dataclass(frozen=True)
class Asked:
    """What a request asks for besides the answer, read by its protocol's handler."""

    #: None: the request says nothing; True or False: it asks for reasoning or turns it off.
    reasoning: Optional[bool] = None
    #: The most tokens (pieces) the answer may have; None: no limit.
    limit: Optional[int] = None
    #: OpenAI ``stream_options.include_usage``.
    include_usage: bool = False
    #: The body carries ``stream_options`` at all (``reject_stream_options`` looks at it).
    stream_options: bool = False


@dataclass(frozen=True)
class Plan:
    """One answer as it goes on the wire; framings read it (``Framing.plan``)."""

    reasoning: Tuple[str, ...] = ()
    pieces: Tuple[str, ...] = ()
    #: How OpenAI sends the reasoning (``faults.THINK_FORMS``); with "tags" the
    #: reasoning pieces include the tags and go out as content.
    form: str = THINK_FORMS[0]
    #: The protocol's word for why the answer ended, or the forced one.
    finish: str = "stop"
    input_tokens: int = 0
    output_tokens: int = 0
    #: Send OpenAI's streamed usage chunk.
    usage: bool = False
    #: Tool calls (``tooluse.PlannedCall``) instead of answer text.
    calls: tuple = ()

    @property
    def text(self) -> str:
        return "".join(self.pieces)

    @property
    def thinking(self) -> str:
        return "".join(self.reasoning)


def reasoning_words(protocol: str, asked: Asked, faults: Faults) -> int:
    """How many words of reasoning: the directive's, else the request's default."""
    if protocol not in REASONING_PROTOCOLS:
        return 0
    if faults.reasoning is not None:
        return faults.reasoning
    return DEFAULT_REASONING if asked.reasoning else 0


def argument_pieces(call) -> list:
    """A call's arguments as streamed: cut like answer text, so split across chunks."""
    return split_pieces(call.arguments) or [""]


def make_plan(turn, faults: Faults, calls: tuple = ()) -> Plan:
    """The plan for ``turn`` (``wire.Turn``) under ``faults``, making ``calls``."""
    form = faults.think_form or THINK_FORMS[0]
    reasoning = reasoning_pieces(reasoning_words(turn.protocol, turn.asked, faults))
    if form == "tags":
        reasoning = tagged_pieces(reasoning, faults.split_tags)
    pieces = [] if calls else answer_pieces(turn.protocol, turn.messages, turn.model, faults,
                                            turn.tools.results)
    limit = None if faults.no_limit else turn.asked.limit
    cut = limit is not None and len(reasoning) + len(pieces) > limit
    if cut:  # the reasoning comes first, so it is what a small limit keeps
        reasoning = reasoning[:limit]
        pieces = pieces[:limit - len(reasoning)]
    framing = turn.framing
    stop = framing.tool_word if calls else framing.stop_word
    finish = faults.finish or (framing.length_word if cut else stop)
    sent = len(reasoning) + len(pieces) + sum(len(argument_pieces(c)) for c in calls)
    return Plan(tuple(reasoning), tuple(pieces), form, finish, word_count(turn.messages), sent,
                turn.asked.include_usage and not faults.no_usage, tuple(calls))
