"""Between an ``Answer`` and a row of the log: what is kept, and how.

A row keeps what was sent and what came back, scrubbed of secrets (the
ones a request used, and the values of environment variables named like
secrets), and an image as its size and digest rather than its bytes.
"""

from __future__ import annotations

import calendar
import json
import os
import re
import sqlite3
import time
from dataclasses import dataclass
from typing import List, Optional, Sequence

from . import errors
from .answer import Answer, Round
from .messages import without_image_bytes

TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
#: The columns ``row_of`` fills, in its order.
COLUMNS = ("time", "notebook", "provider", "model", "base_url", "messages", "options",
           "prompt", "text", "reasoning", "input_tokens", "output_tokens", "finish_reason",
           "first_token_s", "duration_s", "status", "error", "conversation", "key", "rounds")
#: Environment variables whose values are secrets, by name.
_SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|COOKIE|CREDENTIAL", re.I)


@dataclass
class Entry:
    """One logged answer: its row id, when (UTC), which notebook, and the ``Answer``."""

    id: int
    time: str
    notebook: Optional[str]
    key: Optional[str]
    answer: Answer

    def as_dict(self) -> dict:
        a = self.answer
        return {"id": self.id, "time": self.time, "notebook": self.notebook,
                "provider": a.provider, "model": a.model, "base_url": a.base_url,
                "messages": a.messages, "options": a.options, "prompt": a.prompt,
                "text": a.text, "reasoning": a.reasoning, "usage": dict(a.usage),
                "finish_reason": a.finish_reason, "first_token_s": a.first_token_s,
                "duration_s": a.duration_s, "status": a.status, "error": a.error,
                "conversation": a.conversation, "key": self.key,
                "rounds": [turn.as_dict() for turn in a.rounds]}


def row_of(answer: Answer, notebook: Optional[str], secrets: Sequence[str]) -> tuple:
    """The values of ``COLUMNS`` for ``answer``, every text scrubbed of ``secrets``."""
    def clean(value):
        return None if value is None else errors.redact(str(value), secrets)

    def as_json(value):
        return clean(json.dumps(value, ensure_ascii=False, default=str))

    usage = answer.usage or {}
    when = time.strftime(TIME_FORMAT, time.gmtime(answer.asked_at))
    messages = without_image_bytes(answer.messages)  # an Answer made by hand may hold bytes
    url = errors.hide_credentials(answer.base_url) if answer.base_url else None
    return (when, clean(notebook), clean(answer.provider), clean(answer.model), clean(url),
            as_json(messages), as_json(answer.options), clean(answer.prompt),
            clean(answer.text), clean(answer.reasoning), usage.get("input_tokens"),
            usage.get("output_tokens"), answer.finish_reason, answer.first_token_s,
            answer.duration_s, answer.status, clean(answer.error), answer.conversation,
            answer.key(), as_json([turn.as_dict() for turn in answer.rounds]) if answer.rounds
            else None)


def entry_of(row: sqlite3.Row) -> Entry:
    answer = Answer(
        row["prompt"] or "", row["provider"] or "", row["model"],
        messages=_json(row["messages"], []), options=_json(row["options"], {}),
        base_url=row["base_url"], conversation=row["conversation"],
        asked_at=calendar.timegm(time.strptime(row["time"], TIME_FORMAT)),
        text=row["text"] or "", reasoning=row["reasoning"] or "",
        usage={"input_tokens": row["input_tokens"], "output_tokens": row["output_tokens"]},
        finish_reason=row["finish_reason"], first_token_s=row["first_token_s"],
        duration_s=row["duration_s"], status=row["status"], error=row["error"],
        rounds=[Round.of(turn) for turn in _json(_get(row, "rounds"), [])])
    if answer.finish_reason == "tool_calls" and answer.rounds:  # stopped by the round limit
        answer.tool_limit = sum(1 for turn in answer.rounds if turn.calls)
    return Entry(row["id"], row["time"], row["notebook"], row["key"], answer)


def _get(row: sqlite3.Row, name: str):
    """A column a log of an older schema, read before any write, may lack."""
    return row[name] if name in row.keys() else None


def _json(text: Optional[str], empty):
    try:
        return json.loads(text) if text else empty
    except ValueError:
        return empty


def env_secrets() -> List[str]:
    """Values of environment variables named like secrets (``*_API_KEY``, ``*_TOKEN``...)."""
    return [value for name, value in os.environ.items()
            if _SECRET_NAME.search(name) and len(value) >= 8]
