"""Between the shells and the log: replay on the way in, logging on the way out.

The magic and the panel ask the one ``Recorder`` of the process where a
question's answer comes from (``source``: the log's answer when replay says
so, else the model) and hand it every answer once it ended
(``keep``). Keeping never fails an answer: when the log cannot take it,
``keep`` returns one warning line for the shell to show under the answer.
"""

from __future__ import annotations

import os
import sys
from typing import List, Optional, Sequence, Tuple

from . import errors, replay
from .answer import Answer
from .log import Log, LogError

LOG_ENV, REPLAY_ENV = "IPYCHAT_LOG", "IPYCHAT_REPLAY"
OFF_WORDS = ("0", "off", "false", "no")
NO_NOTEBOOK = "(no notebook)"


def env_flag(name: str, default: bool = True) -> bool:
    value = os.environ.get(name)
    return default if value is None else value.strip().lower() not in OFF_WORDS


class Recorder:
    """Whether answers are logged and replayed, and doing it.

    ``enabled`` starts from ``IPYCHAT_LOG`` (``ChatMagics.log`` sets it),
    ``mode`` from ``IPYCHAT_REPLAY``. ``IPYCHAT_REPLAY=only`` holds for the
    whole run: a notebook cannot loosen what CI asked for.
    """

    def __init__(self, log: Optional[Log] = None):
        self._log = log
        self.enabled = env_flag(LOG_ENV)
        self.pinned = os.environ.get(REPLAY_ENV, "").strip().lower() == replay.ONLY
        self.mode = os.environ.get(REPLAY_ENV, "").strip().lower() or replay.OFF

    @property
    def log(self) -> Log:
        """The log given, else the one ``IPYCHAT_HOME`` names now."""
        return self._log if self._log is not None else Log()

    def set_mode(self, mode: str) -> bool:
        """Switch replay to ``mode``; False when ``IPYCHAT_REPLAY=only`` pins it."""
        if mode not in replay.MODES:
            raise errors.UsageError(f"replay is on, off or only, not {mode!r}")
        if self.pinned and mode != replay.ONLY:
            return False
        self.mode = mode
        return True

    def source(self, target, answer: Answer):
        """What will answer ``answer``'s question: ``target`` itself, or, with
        replay on or only and a complete answer logged under the same key, a
        ``replay.Recorded`` (``answer`` gets its date and times). Either has
        ``stream(messages, **offer)``. With only, a question the log cannot
        answer raises ``NotRecorded``: nothing is sent.
        """
        if self.mode not in replay.MODES:
            raise errors.UsageError(f"{REPLAY_ENV} must be on, off or only, not {self.mode!r}")
        if self.mode != replay.OFF:
            found = self._recorded(answer)
            if found is not None:
                replay.prefill(answer, found)
                return replay.Recorded(found)
            if self.mode == replay.ONLY:
                raise replay.NotRecorded("replay only: this question has no complete answer "
                                         "in the log, and no request is sent")
        return target

    def _recorded(self, answer: Answer) -> Optional[Answer]:
        try:
            entry = self.log.find(answer.key())
        except LogError as err:
            if self.mode == replay.ONLY:
                raise replay.NotRecorded(f"replay only: the log cannot be read: {err}") from None
            return None  # replay on: ask the model; keep() will say what ails the log
        return entry.answer if entry else None

    def keep(self, answer: Answer, secrets: Sequence[str] = ()) -> Optional[str]:
        """Log a finished answer (not a replayed one); a warning line if that failed."""
        if not self.enabled or answer.replayed:
            return None
        try:
            self.log.write(answer, notebook_name(), secrets)
        except LogError as err:
            return f"not logged: {err}"
        except Exception as err:  # a bug here must not cost the user the answer
            return f"not logged: {type(err).__name__}: {errors.one_line(str(err))}"
        return None

    def conversation(self, notebook: Optional[str] = None) -> Tuple[str, List[Answer]]:
        """``notebook``'s (default: this one's) last logged conversation: its name and turns."""
        notebook = notebook or notebook_name()
        try:
            turns = self.log.last_conversation(notebook)
        except LogError as err:
            raise errors.UsageError(f"cannot read the log: {err}") from None
        return notebook, [entry.answer for entry in turns]


def notebook_name() -> str:
    """The notebook this kernel runs: ``JPY_SESSION_NAME`` (Jupyter Server sets it),
    else the kernel's connection file name, else ``(no notebook)``."""
    name = os.environ.get("JPY_SESSION_NAME")
    if name:
        return name
    if "ipykernel" in sys.modules:  # never import it only to ask
        from ipykernel.kernelapp import IPKernelApp

        if IPKernelApp.initialized():
            return os.path.basename(IPKernelApp.instance().connection_file)
    return NO_NOTEBOOK


_default: Optional[Recorder] = None


def default_recorder() -> Recorder:
    """The process's recorder, shared by ``%%chat`` and the panel."""
    global _default
    if _default is None:
        _default = Recorder()
    return _default
