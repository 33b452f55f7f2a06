"""A conversation across cells, and running one turn of it into a view.

The magic and the panel are thin shells over this: both build messages from
a ``Conversation``, stream a provider's answer into a view, and record the
turn only when the answer is complete.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import AsyncIterator, List, Optional

from . import errors
from .messages import Messages


@dataclass
class Turn:
    prompt: str
    answer: str
    provider: str
    complete: bool = True


class Conversation:
    """History of complete turns plus a system prompt.

    ``max_history`` bounds how many past turns are sent (None: all).
    """

    def __init__(self, system: Optional[str] = None, max_history: Optional[int] = None):
        self.system = system
        self.max_history = max_history
        self.turns: List[Turn] = []
        #: The most recent turn, complete or not (for --out, the panel, inspection).
        self.last: Optional[Turn] = None

    def messages_for(self, prompt: str, *, use_history: bool = True,
                     system: Optional[str] = None) -> Messages:
        messages: Messages = []
        system = self.system if system is None else system
        if system:
            messages.append({"role": "system", "content": system})
        if use_history:
            for turn in self._recent():
                messages.append({"role": "user", "content": turn.prompt})
                messages.append({"role": "assistant", "content": turn.answer})
        messages.append({"role": "user", "content": prompt})
        return messages

    def _recent(self) -> List[Turn]:
        if self.max_history is None:
            return self.turns
        return self.turns[-self.max_history:] if self.max_history > 0 else []

    def record(self, turn: Turn, *, remember: bool = True) -> None:
        """Keep ``turn`` as the last one; only a complete one enters the history."""
        self.last = turn
        if remember and turn.complete:
            self.turns.append(turn)

    def reset(self) -> None:
        self.turns.clear()
        self.last = None

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


async def stream_into(chunks: AsyncIterator[str], view, describe=None) -> str:
    """Feed ``chunks`` into ``view`` until done; return the full text.

    However it ends, the view gets its final flush: an error or a cancel
    leaves the text so far on screen, marked as cut short (``describe(err)``
    words the mark). A cancel is re-raised as it came; the caller decides
    how to report it.
    """
    describe = describe or errors_mark
    try:
        async for text in chunks:
            view.append(text)
    except asyncio.CancelledError:
        view.finish(errors_mark(None))
        raise
    except BaseException as err:
        view.finish(describe(err))
        raise
    else:
        view.finish()
    finally:
        await _close(chunks)
    return view.text


def errors_mark(err: Optional[BaseException]) -> str:
    if err is None or isinstance(err, KeyboardInterrupt):
        return "interrupted"
    return "cut short: error below" if isinstance(err, errors.ChatError) else "cut short"


async def _close(chunks) -> None:
    aclose = getattr(chunks, "aclose", None)
    if aclose is not None:
        await aclose()
