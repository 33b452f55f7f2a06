"""The notebook's cells as conversation material: ``Err[n]``, the last cells
as context, and code from an answer as the next cell.

``Err`` sits next to IPython's ``In`` and ``Out``: a dict from execution
count to the error that cell raised, as plain text. It is filled from the
``post_run_cell`` event, which sees every cell's result and changes nothing
about how errors are shown (IPython's own display, another extension's
custom exception handler and ipychat's one-line ``ChatError`` are untouched).
"""

from __future__ import annotations

import re
import traceback
from typing import Callable, Optional

from .values import MAX_VALUE_CHARS, as_text

ERR = "Err"
_FENCE = re.compile(r"^( {0,3})(`{3,}|~{3,})[^\n]*\n(.*?)^\1?\2[`~]*[ \t]*$", re.M | re.S)


class ErrorRecorder:
    """Keeps ``Err[n]`` for each failing cell (``post_run_cell`` callback)."""

    def __init__(self, shell, limit: Callable[[], int] = lambda: MAX_VALUE_CHARS):
        self.shell, self.limit = shell, limit
        self.errors: dict = {}

    def __call__(self, result) -> None:
        err = result.error_in_exec or result.error_before_exec
        count = getattr(result, "execution_count", None)
        if err is not None and count is not None:
            self.errors[count] = error_text(err, self.limit())

    def install(self) -> None:
        if self not in self.shell.events.callbacks["post_run_cell"]:
            self.shell.events.register("post_run_cell", self)
        self.shell.user_ns[ERR] = self.errors
        self.shell.user_ns_hidden[ERR] = self.errors  # like In and Out: not in %who

    def uninstall(self) -> None:
        if self in self.shell.events.callbacks["post_run_cell"]:
            self.shell.events.unregister("post_run_cell", self)
        for space in (self.shell.user_ns, self.shell.user_ns_hidden):
            if space.get(ERR) is self.errors:
                del space[ERR]


def error_text(err: BaseException, limit: int = MAX_VALUE_CHARS) -> str:
    """Type, message and traceback as plain text (no colours), from the cell's
    own frame on, its end kept when it is too long (the message is there)."""
    tb = err.__traceback__
    while tb is not None and tb.tb_next is not None and _is_ipython(tb.tb_frame):
        tb = tb.tb_next  # IPython's run_code frame is not the user's
    text = "".join(traceback.format_exception(type(err), err, tb)).rstrip("\n")
    if len(text) <= limit:
        return text
    return f"… [{len(text) - limit:,} characters cut from the start]\n{text[-limit:]}"


def _is_ipython(frame) -> bool:
    return "IPython" in frame.f_code.co_filename.replace("\\", "/").split("/")[-4:-1]


def last_failed(errors: dict, before: int) -> Optional[int]:
    """The most recent cell before ``before`` that raised, or None."""
    failed = [n for n in errors if n < before]
    return max(failed) if failed else None


def context_block(shell, count: int, limit: int = MAX_VALUE_CHARS) -> str:
    """The code of the last ``count`` executed cells before this one, each with
    its result or its error, marked as context."""
    current = shell.execution_count
    inputs, outputs = shell.user_ns.get("In", []), shell.user_ns.get("Out", {})
    errors = shell.user_ns.get(ERR, {})
    numbers = [n for n in range(max(1, current - count), current) if n < len(inputs)]
    if not numbers:
        return ""
    blocks = [f"Context: the last {len(numbers)} cells run in this notebook, before the "
              "question."]
    for n in numbers:
        blocks.append(f"In [{n}]:\n```python\n{inputs[n]}\n```")
        if n in outputs:
            blocks.append(f"Out [{n}]:\n```\n{as_text(outputs[n], limit)}\n```")
        if n in errors:
            blocks.append(f"Error in [{n}]:\n```\n{errors[n]}\n```")
    return "\n\n".join(blocks) + "\n\nQuestion:\n"


def code_of(answer: str) -> str:
    """The fenced code blocks of an answer, joined; the whole answer when it has none."""
    blocks = [m.group(3).rstrip("\n") for m in _FENCE.finditer(answer)]
    return "\n\n".join(blocks) if blocks else answer.strip()


def fix_prompt(code: str, error: str) -> str:
    return ("This notebook cell failed. Explain the error in a few sentences, then give "
            "the corrected cell as one Python code block.\n\n"
            f"The cell:\n```python\n{code}\n```\n\nThe error:\n```\n{error}\n```")
