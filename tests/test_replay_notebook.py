"""Replay in CI: a notebook run once live, then twice with IPYCHAT_REPLAY=only,
each time by nbclient in a fresh kernel, against one emulator whose request
log counts what reached it.

What is identical to what (README, "Log and replay"):
- a replay run to the live run: every output, byte for byte, once the one
  line a replayed answer adds to its header is taken out (the stats line
  too: it shows the recorded figures);
- a replay run to another replay run of the same log: every output of
  every cell, byte for byte.
"""

from __future__ import annotations

import json
import re
import sys

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from ipychat.emulator import EmulatorServer, base_url_for
from tests.test_notebooks import execute_notebook, offline_env

pytestmark = [pytest.mark.kernel, pytest.mark.timeout(300)]
REPLAY_LINE = re.compile(r"\*Replayed from the log \(\d{4}-\d\d-\d\d \d\d:\d\d UTC\): "
                         r"no request was sent\.\*\n\n")
KEY_ENV = "REPLAYTEST_API_KEY"


def cells(url: str):
    openai, ollama = base_url_for("openai", url), base_url_for("ollama", url)
    return [
        ("load", "%load_ext ipychat"),
        ("first", f"%%chat -p openai --base-url {openai} -m emulator -s \"Be brief.\" -t 0.2\n"
                  "What is a list comprehension? [[emulator reasoning=8]]"),
        ("topic", 'topic = "generator expressions"'),
        ("second", f"%%chat -p openai --base-url {openai} -m emulator -o answer\n"
                   "How do {topic} differ from them?"),
        ("use-out", "print(len(answer))\nprint(answer.splitlines()[0])"),
        ("limit", f"%%chat -p ollama --base-url {ollama} --max-tokens 5 --no-history\n"
                  "Tell a long story."),
        ("keyed", f"%%chat -p anthropic --base-url {url} --api-key-env {KEY_ENV} "
                  "--no-history --param top_k=3\nHello, Anthropic!"),
        ("result", "import ipychat\nr = ipychat.last_result()\n"
                   "print(r.status, r.finish_reason, r.usage, r.first_token_s, r.duration_s)"),
        ("history", "%chat history"),
    ]


CHAT_CELLS = ("first", "second", "limit", "keyed")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The notebook run live, then twice replayed; the emulator's request counts."""
    root = tmp_path_factory.mktemp("replay")
    home, specs = root / "home", root / "kernels"
    with EmulatorServer(delay=0.0) as emulator:
        nb = new_notebook(cells=[new_code_cell(source, id=name) for name, source in
                                 cells(emulator.url)])
        env = {**offline_env(), "IPYCHAT_HOME": str(home), KEY_ENV: "sk-replaytest-0123456789"}
        done, counts = [], []
        for replay in (None, "only", "only"):
            path = root / f"run{len(done)}.ipynb"
            nbformat.write(nb, str(path))
            run_env = dict(env) if replay is None else {**env, "IPYCHAT_REPLAY": replay}
            if replay:
                run_env.pop(KEY_ENV)  # CI replays need no keys
            done.append(execute_notebook(path, sys.executable, specs, run_env))
            counts.append(len(emulator.requests))
    return done, counts


def outputs(nb, cell_id):
    (cell,) = [c for c in nb.cells if c.id == cell_id]
    return cell.outputs


def as_bytes(value) -> bytes:
    return json.dumps(value, sort_keys=True, ensure_ascii=False).encode()


def test_the_replay_runs_send_nothing(runs):
    _, counts = runs
    assert counts[0] == 4  # the live run asked four questions
    assert counts == [4, 4, 4]


def test_two_replay_runs_give_byte_identical_outputs(runs):
    (_, first, second), _ = runs
    for a, b in zip(first.cells, second.cells):
        assert as_bytes(a.outputs) == as_bytes(b.outputs), a.id
        assert a.execution_count == b.execution_count


def test_a_replay_shows_the_live_outputs_plus_one_header_line(runs):
    (live, replayed, _), _ = runs
    for cell_id in CHAT_CELLS:
        (was,), (now,) = outputs(live, cell_id), outputs(replayed, cell_id)
        assert now.output_type == was.output_type == "display_data"
        for mime in ("text/markdown", "text/plain"):
            shown = now.data[mime]
            assert len(REPLAY_LINE.findall(shown)) == 1, (cell_id, mime)
            assert REPLAY_LINE.sub("", shown).encode() == was.data[mime].encode(), cell_id
    # the stats line (recorded times and tokens) is there and the same
    assert re.search(r"\*emulator · first text \d+ ms · [\d.]+ (ms|s) in all · \d+ → \d+ "
                     r"tokens · [\d.]+ tokens/s\*\Z", outputs(replayed, "first")[0].data[
                         "text/markdown"])
    assert "stopped at the token limit" in outputs(replayed, "limit")[0].data["text/markdown"]


def test_out_last_result_and_history_are_as_live(runs):
    (live, replayed, _), _ = runs
    for cell_id in ("use-out", "result", "history"):
        assert as_bytes(outputs(replayed, cell_id)) == as_bytes(outputs(live, cell_id)), cell_id
    printed = outputs(replayed, "result")[0].text
    assert printed.startswith("complete stop {'input_tokens': ")
