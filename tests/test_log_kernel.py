"""The log through real kernels: what a row holds, that secrets never reach
the file, that a broken log costs a warning line and never an answer, that
kernels writing at once lose nothing, and %chat log / resume / replay.

The emulator runs in this process; its request log counts what was sent.
"""

import ast
import json
import sqlite3
import time

import pytest
from aiohttp import web

from ipychat.emulator import base_url_for
from ipychat.emulator.reply import reply_text
from ipychat.log import Log
from tests.support.files import read_only
from tests.support.kernel import Kernel, loaded_kernel
from tests.support.matrix import emulator  # noqa: F401  (the module's emulator fixture)

pytestmark = [pytest.mark.kernel, pytest.mark.timeout(240)]
NOTEBOOK = "/home/user/logged.ipynb"
KEY_ENV, FAKE_KEY = "LOGTEST_API_KEY", "sk-logtest-0123456789abcdef"
COOKIE = "oa-session-cookie-9876543210"
PROXY_PASSWORD = "proxy-pass-24680"


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return tmp_path_factory.mktemp("ipychat-home")


@pytest.fixture(scope="module")
def kernel(home):
    with loaded_kernel(**env_for(home)) as k:
        yield k


def env_for(home, **extra):
    return {"IPYCHAT_HOME": str(home), "IPYCHAT_DEMO": "0", "OPENAI_API_KEY": "",
            "ANTHROPIC_API_KEY": "", "JPY_SESSION_NAME": NOTEBOOK, KEY_ENV: FAKE_KEY,
            "OPENASSISTANT_SESSION_TOKEN": COOKIE, **extra}


@pytest.fixture
def log(home, kernel, emulator):
    kernel.run("%chat reset\n%chat replay off\n%config ChatMagics.log = True")
    emulator.reset()
    found = Log(home / "log.db")
    found.clear()
    return found


def openai_cell(emulator, question, flags=""):
    url = base_url_for("openai", emulator.url)
    return f"%%chat -p openai --base-url {url} -m emulator {flags}\n{question}"


def vars_of_last_result(kernel) -> dict:
    kernel.run("import ipychat")
    return json.loads(ast.literal_eval(kernel.value(
        "__import__('json').dumps(vars(ipychat.last_result()))")))


def ok(run):
    assert run.reply["content"]["status"] == "ok", (run.errors, run.reply["content"])
    return run


def one_line_error(run) -> str:
    (error,) = run.errors
    assert len(error["content"]["traceback"]) == 1, error["content"]["traceback"]
    return error["content"]["traceback"][0]


# -- what a row holds ---------------------------------------------------------------

def test_a_complete_answer_is_logged_with_what_was_sent(kernel, log, emulator):
    before = time.time()
    ok(kernel.run(openai_cell(emulator, "Tell a story. [[emulator reasoning=5]]",
                              "-s 'Be brief.' -t 0.3 --max-tokens 12 --param top_p=0.5 "
                              f"--api-key-env {KEY_ENV} --timeout 30")))
    (entry,) = log.entries()
    row, live = entry.answer, vars_of_last_result(kernel)
    assert entry.notebook == NOTEBOOK
    assert before - 1 <= row.asked_at <= time.time()
    assert (row.provider, row.model, row.base_url) == (
        "OpenAIChat", "emulator", base_url_for("openai", emulator.url))
    assert row.messages == [{"role": "system", "content": "Be brief."},
                            {"role": "user", "content": "Tell a story. [[emulator reasoning=5]]"}]
    assert row.messages == json.loads(emulator.requests[-1].body)["messages"]
    assert row.options == {"top_p": 0.5, "temperature": 0.3, "max_tokens": 12}
    for name in ("text", "reasoning", "usage", "finish_reason", "first_token_s", "duration_s",
                 "status", "error", "conversation"):
        assert getattr(row, name) == live[name], name
    assert row.finish_reason == "length" and row.status == "complete" and row.reasoning
    assert row.usage["output_tokens"] == 12 and row.conversation


def test_failed_and_interrupted_answers_are_logged_too(kernel, log, emulator):
    failed = kernel.run(openai_cell(emulator, "Fail. [[emulator status=503]]", "--no-history"))
    assert "503" in one_line_error(failed)
    interrupted = []

    def interrupt_on_text(msg):
        text = msg["content"].get("data", {}).get("text/plain", "")
        if msg["msg_type"] == "update_display_data" and "Emulator" in text and not interrupted:
            interrupted.append(True)
            kernel.interrupt()

    run = kernel.run(openai_cell(emulator, "Stall. [[emulator stall_mid=30 after=3]]"),
                     on_message=interrupt_on_text)
    assert "interrupted" in one_line_error(run)
    error, cut = log.entries()
    assert error.answer.status == "error" and "503" in error.answer.error
    assert error.answer.conversation is None  # --no-history: a one-off
    assert (cut.answer.status, cut.answer.error) == ("interrupted", "interrupted")
    assert cut.answer.text and cut.answer.text == vars_of_last_result(kernel)["text"]


def test_a_background_answer_is_logged_when_it_ends(kernel, log, emulator):
    ok(kernel.run(openai_cell(emulator, "Later. [[emulator chunks=6 delay=0.2]]",
                              "--background")))
    assert log.entries() == []  # the cell returned; the answer still streams
    kernel.listen(lambda m: m["msg_type"] == "update_display_data"
                  and " in all" in m["content"]["data"].get("text/plain", ""), timeout=30)
    kernel.value("1")  # runs once the answer's task has finished its last step
    (entry,) = log.entries()
    assert entry.answer.prompt.startswith("Later.") and entry.answer.status == "complete"


# -- secrets ----------------------------------------------------------------------------

def echo_credentials(status):
    async def handler(request, rec):
        seen = {"authorization": request.headers.get("Authorization", ""),
                "cookie": request.headers.get("Cookie", ""), "body": (await request.text())}
        text = f"you sent {json.dumps(seen)}"
        return web.Response(status=status, text=text)

    return handler


def test_keys_and_cookies_echoed_by_servers_never_reach_the_file(kernel, log, make_server,
                                                                 home):
    failing = make_server([("POST", "/v1/chat/completions", echo_credentials(401)),
                           ("POST", "/api/chat", echo_credentials(403))])
    answering = make_server([("POST", "/v1/chat/completions", echo_credentials(200))])
    cells = [
        f"%%chat -p openai --base-url {failing.url}/v1 --api-key-env {KEY_ENV}\nkey please",
        f"%%chat -p openassistant --base-url {failing.url}\ncookie please",
        f"%%chat -p lockchat --base-url {answering.url} --api-key-env {KEY_ENV}\necho it",
        f"%%chat -p cromicle --base-url {failing.url} "
        f"--proxy http://user:{PROXY_PASSWORD}@127.0.0.1:9\nproxy please",
    ]
    for cell in cells:
        kernel.run(cell)
    heard = [r.headers.get("Authorization", "") + r.headers.get("Cookie", "")
             for r in failing.requests + answering.requests]
    assert any(FAKE_KEY in h for h in heard) and any(COOKIE in h for h in heard)
    assert [e.answer.prompt for e in log.entries()] == [
        "key please", "cookie please", "echo it", "proxy please"]
    data = b"".join(path.read_bytes() for path in home.iterdir() if path.is_file())
    for secret in (FAKE_KEY, COOKIE, PROXY_PASSWORD):
        assert secret.encode() not in data, secret
    assert b"***" in data  # the echoes are there, without the secrets


# -- a broken log never costs an answer ---------------------------------------------

def test_a_log_made_read_only_mid_session_warns_and_the_answer_shows(kernel, log, emulator):
    ok(kernel.run(openai_cell(emulator, "First.")))
    with read_only(log.path):
        run = ok(kernel.run(openai_cell(emulator, "Second.", "-o second")))
        markdown = run.last_text("text/markdown")
        assert "**Emulator answer (openai)**" in markdown
        assert markdown.endswith(f"*(not logged: attempt to write a readonly database "
                                 f"({log.path}))*")
        assert "not logged: attempt to write a readonly database" in run.last_text()
        assert len(run.of_type("stream", "error")) == 0  # no traceback, no stray print
        assert kernel.value("len(second) > 100") == "True"
    assert [e.answer.prompt for e in log.entries()] == ["First."]
    ok(kernel.run(openai_cell(emulator, "Third.")))
    assert [e.answer.prompt for e in log.entries()] == ["First.", "Third."]


def test_a_corrupt_or_locked_log_warns_and_the_answer_shows(kernel, log, emulator):
    ok(kernel.run(openai_cell(emulator, "First.")))
    holder = sqlite3.connect(log.path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        kernel.run("import ipychat.log; ipychat.log.BUSY_TIMEOUT = 0.3")
        run = ok(kernel.run(openai_cell(emulator, "While locked.")))
        assert "not logged: database is locked" in run.last_text("text/markdown")
        assert "**Emulator answer (openai)**" in run.last_text("text/markdown")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        kernel.run("ipychat.log.BUSY_TIMEOUT = 5.0")
    for extra in log.path.parent.glob("log.db-*"):
        extra.unlink()
    log.path.write_bytes(b"garbage, not SQLite " * 500)
    run = ok(kernel.run(openai_cell(emulator, "While corrupt.")))
    assert "not logged: file is not a database" in run.last_text("text/markdown")
    assert "**Emulator answer (openai)**" in run.last_text("text/markdown")
    assert "file is not a database" in one_line_error(kernel.run("%chat log"))
    log.path.unlink()
    ok(kernel.run(openai_cell(emulator, "After.")))
    assert [e.answer.prompt for e in log.entries()] == ["After."]


def test_config_log_false_turns_it_off_for_the_magic(kernel, log, emulator):
    kernel.run("%config ChatMagics.log = False")
    ok(kernel.run(openai_cell(emulator, "Unlogged.")))
    kernel.run("%config ChatMagics.log = True")
    ok(kernel.run(openai_cell(emulator, "Logged.")))
    assert [e.answer.prompt for e in log.entries()] == ["Logged."]


# -- two kernels at once -------------------------------------------------------------

LOOP = """
import pathlib, time
go = pathlib.Path({go!r})
deadline = time.monotonic() + 60
while not go.exists() and time.monotonic() < deadline:  # a bounded barrier
    time.sleep(0.005)
for i in range(25):
    await get_ipython().run_cell_magic("chat", "-p openai --base-url {url} -m emulator "
                                       "--no-history --no-stats",
                                       f"{who} question {{i}} [[emulator delay=0.003]]")
"""


def test_two_kernels_logging_25_answers_each_at_once_give_50_rows(tmp_path, emulator):
    home = tmp_path / "home"
    kernels = [Kernel(env=env_for(home, JPY_SESSION_NAME=f"{who}.ipynb")) for who in "ab"]
    try:
        for k in kernels:
            ok(k.run("%load_ext ipychat"))
        go = tmp_path / "go"
        url = base_url_for("openai", emulator.url)
        ids = [k.kc.execute(LOOP.format(go=str(go), url=url, who=who))
               for k, who in zip(kernels, "ab")]
        go.touch()
        for k, msg_id in zip(kernels, ids):
            reply = k.reply_to(msg_id, timeout=120)
            assert reply["content"]["status"] == "ok", reply["content"]
    finally:
        for k in kernels:
            k.shutdown()
    entries = Log(home / "log.db").entries(limit=None)
    assert sorted(e.answer.prompt for e in entries) == sorted(
        f"{who} question {i} [[emulator delay=0.003]]" for who in "ab" for i in range(25))
    assert all(e.answer.status == "complete" for e in entries)
    order = [e.notebook for e in entries]
    switches = sum(1 for this, that in zip(order, order[1:]) if this != that)
    assert switches >= 2, \
        "one kernel wrote all its rows before the other began: this test showed nothing"


# -- reading the log from a notebook ---------------------------------------------------

def test_log_table_search_export_and_clear(kernel, log, emulator, tmp_path):
    for question in ("What are decorators?", "What is a wheel?", "Why generators?"):
        ok(kernel.run(openai_cell(emulator, question)))
    table = ok(kernel.run("%chat log 2"))
    text, markdown = table.last_text(), table.last_text("text/markdown")
    assert text.splitlines()[0].split() == ["time", "(UTC)", "notebook", "provider/model",
                                            "tokens", "first", "words"]
    assert len(text.splitlines()) == 3 and "logged.ipynb" in text
    assert "OpenAIChat/emulator" in text and "\\*\\*Emulator answer (openai)\\*\\*" in markdown
    found = ok(kernel.run("%chat log --search decorators")).last_text()
    assert len(found.splitlines()) == 2
    assert "No answers matching 'nothing-like-this'" in ok(
        kernel.run("%chat log --search nothing-like-this")).last_text()
    exported = ok(kernel.run(f"%chat log export {tmp_path}/all.jsonl")).last_text()
    assert exported == f"Wrote 3 answer(s) to {tmp_path}/all.jsonl."
    rows = [json.loads(line) for line in (tmp_path / "all.jsonl").read_text().splitlines()]
    assert [r["prompt"] for r in rows] == ["What are decorators?", "What is a wheel?",
                                           "Why generators?"]
    ok(kernel.run(f"%chat log export {tmp_path}/all.md"))
    assert (tmp_path / "all.md").read_text().count("\n## ") == 3
    assert "log export takes one file name" in one_line_error(kernel.run("%chat log export"))
    cleared = ok(kernel.run("%chat log clear")).last_text()
    assert cleared == f"Cleared the log: 3 answer(s) removed from {log.path}."
    assert log.count() == 0


# -- resume ------------------------------------------------------------------------------

def test_resume_after_a_restart_continues_the_conversation(tmp_path, emulator):
    home = tmp_path / "home"
    with loaded_kernel(**env_for(home, JPY_SESSION_NAME="resumed.ipynb")) as first:
        ok(first.run(openai_cell(emulator, "One.", "-s 'Be brief.'")))
        ok(first.run(openai_cell(emulator, "Aside.", "--no-history")))
        ok(first.run(openai_cell(emulator, "Two.")))
        ok(first.run(openai_cell(emulator, "Three.", "-o three")))
        sent_three = json.loads(emulator.requests[-1].body)["messages"]
        three = ast.literal_eval(first.value("three"))
    with loaded_kernel(**env_for(home, JPY_SESSION_NAME="resumed.ipynb")) as second:
        said = ok(second.run("%chat resume")).last_text()
        assert said.startswith("Resumed the last conversation of resumed.ipynb: 3 turn(s), ")
        ok(second.run(openai_cell(emulator, "Four.")))
        assert json.loads(emulator.requests[-1].body)["messages"] == [
            *sent_three, {"role": "assistant", "content": three},
            {"role": "user", "content": "Four."}]
        assert sent_three[0] == {"role": "system", "content": "Be brief."}
        assert "No conversation of nobody.ipynb" in second.run(
            "%chat resume nobody.ipynb").last_text()


# -- replay ------------------------------------------------------------------------------

def test_replay_on_answers_known_questions_from_the_log(kernel, log, emulator):
    live = ok(kernel.run(openai_cell(emulator, "Known?", "-o first")))
    kernel.run("%chat reset")
    asked = len(emulator.requests)
    said = ok(kernel.run("%chat replay on")).last_text()
    assert said.startswith("Replay on: a question answered completely before")
    replayed = ok(kernel.run(openai_cell(emulator, "Known?", "-o again")))
    assert len(emulator.requests) == asked  # nothing sent
    header, _, rest = replayed.last_text("text/markdown").partition("\n\n")
    assert header.startswith("*Replayed from the log (") and header.endswith(
        " UTC): no request was sent.*")
    assert rest == live.last_text("text/markdown")
    assert kernel.value("again == first") == "True"
    result = vars_of_last_result(kernel)
    assert result["replayed"] and result["status"] == "complete"
    assert "replayed: from the log (" in ok(kernel.run("%chat last")).last_text()
    ok(kernel.run(openai_cell(emulator, "New one.")))  # goes to the model, with the history
    assert len(emulator.requests) == asked + 1
    sent = json.loads(emulator.requests[-1].body)["messages"]
    assert [m["content"] for m in sent] == ["Known?", result["text"], "New one."]
    assert [e.answer.prompt for e in log.entries()] == ["Known?", "New one."]  # no re-log


def test_replay_only_never_sends_and_says_so(tmp_path, emulator):
    home = tmp_path / "home"
    url = base_url_for("openai", emulator.url)
    cell = f"%%chat -p openai --base-url {url} -m emulator -o said\nRecorded?"
    with loaded_kernel(**env_for(home)) as recording:
        ok(recording.run(cell))
    with loaded_kernel(**env_for(home, IPYCHAT_REPLAY="only", IPYCHAT_LOG="0")) as k:
        asked = len(emulator.requests)
        assert "(IPYCHAT_REPLAY=only holds for this run)" in k.run(
            "%chat replay off").last_text()
        ok(k.run(cell))
        expected = reply_text("openai", [{"role": "user", "content": "Recorded?"}], "emulator")
        assert k.value("said") == repr(expected)
        missing = k.run(cell.replace("Recorded?", "Never asked?"))
        line = one_line_error(missing)
        assert "replay only: this question has no complete answer in the log" in line
        assert missing.of_type("display_data") == []
        assert len(emulator.requests) == asked
    assert len(Log(home / "log.db").entries()) == 1  # IPYCHAT_LOG=0: nothing more
