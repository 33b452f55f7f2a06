"""The fault matrix through ``%%chat`` in a real kernel (one for the module).

Every row for a raw-text provider (Cromicle) and an SSE one (Vitalentum), a
subset for Anthropic's typed events. Each failing cell must show one error
line and no traceback, keep the text so far in its last display update
marked as cut short (and in ``-o``), leave ``%chat history`` as it was, and
the next cell must answer with a history that does not hold the failed turn.
"""

from __future__ import annotations

import json

import pytest

from ipychat.emulator import base_url_for
from ipychat.emulator.reply import answer_text
from ipychat.markdown import safe_markdown
from tests.support.matrix import (FAULTS, base_url, chat_cell, closed, emulator, label,
                                  loaded_kernel, markdown_table, model_seen, outcome_name, user,
                                  write_section)

pytestmark = [pytest.mark.kernel, pytest.mark.timeout(180)]
__all__ = ["closed", "emulator"]  # fixtures, used by name below
ANTHROPIC_ROWS = ("http-401-json", "http-503-text", "drop", "stall-mid", "malformed",
                  "unknown-event", "error-event", "empty", "no-end", "retry-429",
                  "retry-503-spent", "retry-reset", "retry-drop")
CASES = [(row, name) for row in FAULTS for name in ("cromicle", "vitalentum")] + [
    (row, "anthropic") for row in FAULTS if row.id in ANTHROPIC_ROWS]
SHOWN = {}  # (row id, provider) -> the error class the cell showed, or "ok"


@pytest.fixture(scope="module")
def kernel():
    with loaded_kernel() as k:
        yield k
    if len(SHOWN) == len(CASES):
        write_section("fault-matrix-kernel", kernel_table())


def kernel_table() -> str:
    names = ("cromicle", "vitalentum", "anthropic")
    rows = [[row.title, *(SHOWN.get((row.id, n), "—") for n in names)] for row in FAULTS]
    return ("## Fault matrix through `%%chat` in a kernel\n\nCells: the error class of the "
            "cell's one error line, or `ok`. Each failed cell kept its text, marked as cut "
            "short, left `%chat history` unchanged, and the next cell answered.\n\n"
            + markdown_table(["fault", *names], rows))


def one_error(run) -> dict:
    (error,) = run.errors
    assert len(error["content"]["traceback"]) == 1, error["content"]["traceback"]
    return error["content"]


def marked(text: str) -> str:
    mark = "cut short: error below" if text else "no answer: error below"
    return f"{text}\n\n*({mark})*"


def updates(run) -> list:
    return [m["content"]["data"].get("text/markdown", "")
            for m in run.of_type("display_data", "update_display_data")]


def shown(run) -> str:
    """The answer as the notebook shows it: every output's last Markdown, joined."""
    return "".join(run.outputs("text/markdown"))


@pytest.mark.parametrize("row, name", CASES, ids=[f"{r.id}-{n}" for r, n in CASES])
def test_a_failing_cell_keeps_text_history_and_kernel(kernel, emulator, closed, row, name):
    kernel.run("%chat reset")
    emulator.reset()
    before = kernel.run("%chat history").last_text()
    url = base_url(row, name, emulator.url, closed)
    run = kernel.run(chat_cell(name, url, row.prompt(), f"--timeout {row.timeout:g}", "-o out",
                               f"--retries {row.retries}"))
    if row.retry_lines is not None:  # each wait was shown, and then replaced
        waits = {s for s in updates(run) if "retrying in" in s}
        assert len(waits) == row.retry_lines, waits
    expected, kept = row.error_for(name), row.kept_text(name)
    if expected is None:
        SHOWN[row.id, name] = outcome_name(None)
        assert run.errors == []
        assert kernel.run("%chat history").last_text() != before  # a complete turn is kept
        kernel.run("%chat reset")
    else:
        error = one_error(run)
        SHOWN[row.id, name] = error["ename"]
        assert error["ename"] == expected.__name__
        assert error["traceback"][0].startswith(f"ChatError: {label(name)}: ")
        assert kernel.run("%chat history").last_text() == before  # no incomplete turn
    follow_up(kernel, emulator, name)
    mark = marked(kept)[len(kept):] if expected else ""
    assert shown(run) == safe_markdown(kept, mark)  # the answer whole, over 1 or 2 outputs
    assert kernel.value("out") == repr(kept)


def follow_up(kernel, emulator, name: str) -> None:
    """The next cell answers, and the emulator saw no failed turn in its history."""
    url = base_url_for(name, emulator.url)
    run = kernel.run(chat_cell(name, url, "follow up"))
    assert run.errors == [] and run.reply["content"]["status"] == "ok"
    assert run.last_text() == answer_text(name, user("follow up"), model_seen(name))


def test_a_proxy_password_is_never_shown(kernel, emulator, closed):
    secret = "k3rnel-pr0xy-secret"
    url = base_url_for("cromicle", emulator.url)
    run = kernel.run(chat_cell("cromicle", url, "hi",
                               f"--proxy http://user:{secret}@127.0.0.1:{closed.port}"))
    error = one_error(run)
    assert error["ename"] == "ConnectionFailed" and "through the proxy" in error["evalue"]
    echoed = [m for m in run.messages if m["msg_type"] != "execute_input"]  # the user's own code
    assert secret not in json.dumps([m["content"] for m in echoed])
    assert secret not in kernel.run("%chat history").last_text()
