"""Logged answers as files: Markdown to read, JSON Lines to process.

JSON Lines holds every field of every row (``log.Entry.as_dict``), the
messages sent included; Markdown holds what a reader wants: when, where,
who answered, the prompt, the answer, its reasoning folded, and how it ended.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import List

from . import errors

FORMATS = {".md": "Markdown", ".jsonl": "JSON Lines"}


def write(path: Path, entries: List) -> int:
    """Write ``entries`` to ``path`` in the format its suffix names; returns how many."""
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise errors.UsageError(f"cannot export the log as {suffix or 'a file without suffix'}",
                                hint="Name a .md (Markdown) or .jsonl (JSON Lines) file.")
    text = as_markdown(entries) if suffix == ".md" else as_jsonl(entries)
    path.expanduser().write_text(text, encoding="utf-8")
    return len(entries)


def as_jsonl(entries: List) -> str:
    return "".join(json.dumps(entry.as_dict(), ensure_ascii=False) + "\n" for entry in entries)


def as_markdown(entries: List) -> str:
    parts = ["# ipychat log\n"]
    for entry in entries:
        parts.append(_section(entry))
    return "\n".join(parts)


def _section(entry) -> str:
    answer = entry.answer
    who = f"{answer.provider}/{answer.model}" if answer.model else answer.provider
    lines = [f"## {entry.time} UTC · {entry.notebook or 'no notebook'} · {who}", "",
             "> " + answer.prompt.replace("\n", "\n> "), ""]
    if answer.reasoning:
        lines += ["<details><summary>Reasoning</summary>", "",
                  "> " + answer.reasoning.replace("\n", "\n> "), "", "</details>", ""]
    lines += [answer.text or "*(no text)*", "", f"*{_ending(answer)}*", ""]
    return "\n".join(lines)


def _ending(answer) -> str:
    how = answer.status + (f": {answer.error}" if answer.error else "")
    if answer.finish_reason:
        how += f", finish reason {answer.finish_reason}"
    return f"{how} · {answer.stats()}"
