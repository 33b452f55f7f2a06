"""``%chat log``, ``%chat resume`` and ``%chat replay``: the log from a notebook."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

from . import errors, replay
from .commands import _markdown_table, _show, _text_table
from .log import LogError

DEFAULT_ROWS = 10
FIRST_WORDS = 8
LOG_USAGE = "Use %chat log [N], %chat log --search TEXT, %chat log export PATH or %chat log clear."


def log(magics, rest: str):
    try:
        words = shlex.split(rest)
    except ValueError as err:
        raise errors.UsageError(f"cannot read {rest!r}: {err}", hint=LOG_USAGE) from None
    recorder = magics.recorder
    try:
        if words[:1] == ["export"]:
            return _export(recorder.log, words[1:])
        if words == ["clear"]:
            gone = recorder.log.clear()
            return _show(f"Cleared the log: {gone:,} answer(s) removed from {recorder.log.path}.")
        limit, search = _table_args(words)
        found = recorder.log.entries(limit=limit, search=search)
    except LogError as err:
        raise errors.UsageError(f"cannot read the log: {err}") from None
    if not found:
        what = f"matching {search!r} " if search else ""
        return _show(f"No answers {what}in the log ({recorder.log.path}).")
    return _table(found)


def _table_args(words):
    limit, search = DEFAULT_ROWS, None
    if "--search" in words:
        at = words.index("--search")
        search = " ".join(words[at + 1:])
        if not search.strip():
            raise errors.UsageError("--search needs words to look for", hint=LOG_USAGE)
        words = words[:at]
    if len(words) > 1 or (words and not words[0].isdigit()):
        raise errors.UsageError(f"%chat log does not take {' '.join(words)!r}", hint=LOG_USAGE)
    if words:
        limit = int(words[0])
    return limit, search


def _export(log, words):
    if len(words) != 1:
        raise errors.UsageError("%chat log export takes one file name",
                                hint="For example: %chat log export answers.md (or .jsonl).")
    from .logexport import write

    path = Path(words[0]).expanduser()
    count = write(path, log.entries(limit=None))
    return _show(f"Wrote {count:,} answer(s) to {path}.")


def _table(found):
    head = ("time (UTC)", "notebook", "provider/model", "tokens", "first words")
    rows = [_cells(entry) for entry in found]
    markdown = [tuple(_md_cell(cell) for cell in row) for row in rows]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(row) + " |" for row in markdown]
    return _show(_text_table(head, rows), "\n".join(lines))


def _cells(entry) -> tuple:
    answer = entry.answer
    who = f"{answer.provider}/{answer.model}" if answer.model else answer.provider
    used = answer.usage
    tokens = "" if used.get("input_tokens") is None and used.get("output_tokens") is None else \
        f"{_count(used.get('input_tokens'))} → {_count(used.get('output_tokens'))}"
    words = " ".join(answer.text.split()[:FIRST_WORDS])
    if len(answer.text.split()) > FIRST_WORDS:
        words += " …"
    if answer.status != "complete":
        words = f"({answer.status}) {words}".rstrip()
    notebook = os.path.basename(entry.notebook or "") or "-"
    return entry.time, notebook, who, tokens, words


def _count(value) -> str:
    return "?" if value is None else f"{value:,}"


def _md_cell(text: str) -> str:
    return (text.replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;")
            .replace("`", "\\`").replace("*", "\\*").replace("_", "\\_"))


def resume(magics, rest: str):
    notebook, turns = magics.recorder.conversation(rest.strip() or None)
    if not turns:
        return _show(f"No conversation of {notebook} in the log ({magics.recorder.log.path}). "
                     "Name another notebook as %chat log shows it: %chat resume NAME.")
    last = turns[-1]
    system = next((m["content"] for m in last.messages[:1] if m.get("role") == "system"), None)
    dropped = len(magics.conversation.turns)
    if last.conversation == magics.conversation.id:
        instead = " (the conversation this kernel already has)"
    else:
        instead = f", in place of this kernel's {dropped}" if dropped else ""
    magics.conversation.resume(last.conversation, turns, system)
    return _show(f"Resumed the last conversation of {notebook}: {len(turns)} turn(s){instead}, "
                 f"the last from {replay.date_of(last.asked_at)}. "
                 "The next %%chat cell continues it.")


_STATES = {
    replay.OFF: "off: every question goes to the model",
    replay.ON: "on: a question answered completely before is answered from the log, no request "
               "sent; new questions go to the model and are logged",
    replay.ONLY: "only: answers come from the log alone; a question it has no answer for is an "
                 "error, and no request is ever sent",
}


def replay_mode(magics, rest: str):
    recorder = magics.recorder
    pinned = ""
    if rest and not recorder.set_mode(rest.strip().lower()):
        pinned = " (IPYCHAT_REPLAY=only holds for this run)"
    return _show(f"Replay {_STATES.get(recorder.mode, recorder.mode)}.{pinned}")
