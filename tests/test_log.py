"""The log module on its own: schema, rows, secrets, search, export, clear,
and what a locked, read-only or corrupt file does."""

import json
import os
import sqlite3
import subprocess
import sys
import threading
import time

import pytest

from ipychat import errors
from ipychat import log as logmod
from ipychat.answer import Answer
from ipychat.log import Log, LogError
from tests.support.files import read_only

MESSAGES = [{"role": "system", "content": "be brief"},
            {"role": "user", "content": "What is a wheel?"}]


def answer(prompt="What is a wheel?", text="A built package.", **fields):
    values = dict(model="gpt-x", messages=MESSAGES, options={"temperature": 0.2, "max_tokens": 50},
                  base_url="http://127.0.0.1:9/v1", reasoning="Think: packages.",
                  usage={"input_tokens": 7, "output_tokens": 4}, finish_reason="stop",
                  first_token_s=0.012, duration_s=0.25, status="complete",
                  conversation="c1", asked_at=1_700_000_000.5)
    values.update(fields)
    return Answer(prompt, "OpenAIChat", text=text, **values)


@pytest.fixture
def log(tmp_path):
    return Log(tmp_path / "home" / "log.db", timeout=0.3)


def test_a_row_keeps_every_field_and_reads_back_as_the_answer(log):
    written = answer()
    row_id = log.write(written, "nb.ipynb")
    (entry,) = log.entries()
    assert (entry.id, entry.time, entry.notebook) == (row_id, "2023-11-14 22:13:20", "nb.ipynb")
    assert entry.key == written.key()
    got = entry.answer
    for name in ("prompt", "provider", "model", "messages", "options", "base_url", "text",
                 "reasoning", "usage", "finish_reason", "first_token_s", "duration_s",
                 "status", "error", "conversation"):
        assert getattr(got, name) == getattr(written, name), name
    assert got.asked_at == 1_700_000_000  # kept to the second


def test_the_schema_is_wal_with_a_version_and_a_full_text_index(log):
    log.write(answer())
    db = sqlite3.connect(log.path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA user_version").fetchone()[0] == logmod.SCHEMA_VERSION
    columns = [row[1] for row in db.execute("PRAGMA table_info(answers)")]
    assert columns[:2] == ["id", "time"] and {"key", "conversation", "error"} <= set(columns)
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
    assert ("answers_fts" in tables) == logmod.fts5_available()
    db.close()


def test_reading_a_log_that_does_not_exist_makes_none(log):
    assert log.entries() == [] and log.find("x") is None and log.count() == 0
    assert log.clear() == 0
    assert not log.path.exists()


def test_entries_are_the_last_n_oldest_first_and_by_notebook(log):
    for i in range(5):
        log.write(answer(f"q{i}"), "a.ipynb" if i % 2 else "b.ipynb")
    assert [e.answer.prompt for e in log.entries(3)] == ["q2", "q3", "q4"]
    assert [e.answer.prompt for e in log.entries(None, notebook="a.ipynb")] == ["q1", "q3"]


def test_no_key_cookie_or_proxy_password_reaches_the_file(log, monkeypatch):
    key, cookie, password = "sk-envkey-1234567890", "cookie-value-777", "proxy-pw-4242"
    monkeypatch.setenv("SOME_SERVICE_API_KEY", key)
    echoed = f"401: bad key {key}; cookie {cookie}; via {password}"
    leaky = answer(prompt=f"use {key}", text=f"Your key is {key}.", status="error",
                   error=echoed, base_url=f"http://user:{password}@host/v1",
                   messages=[{"role": "user", "content": f"use {key}"}])
    log.write(leaky, "nb", secrets=[cookie, password])
    data = b"".join(p.read_bytes() for p in log.path.parent.iterdir())
    for secret in (key, cookie, password):
        assert secret.encode() not in data
    (entry,) = log.entries()
    assert entry.answer.error == "401: bad key ***; cookie ***; via ***"
    assert entry.answer.base_url == "http://***@host/v1"


def test_search_finds_words_in_prompts_and_answers(log):
    log.write(answer("How do decorators work?", "They wrap functions."))
    log.write(answer("What is a wheel?", "A built package, 100% zipped_up."))
    log.write(answer("Generators?", "Lazy iterators that wrap state."))
    assert [e.answer.prompt for e in log.entries(search="decorator")] == [
        "How do decorators work?"]
    assert [e.answer.prompt for e in log.entries(search="wrap")] == [
        "How do decorators work?", "Generators?"]
    assert [e.answer.prompt for e in log.entries(search="wrap lazy")] == ["Generators?"]
    assert log.entries(search='"quoted" AND ( stray') == []  # never an FTS syntax error


def test_search_without_fts5_uses_like_and_escapes_its_wildcards(tmp_path, monkeypatch):
    monkeypatch.setattr(logmod, "_fts5", False)
    log = Log(tmp_path / "log.db")
    log.write(answer("What is a wheel?", "A built package, 100% zipped_up."))
    log.write(answer("Percent?", "one hundred"))
    db = sqlite3.connect(log.path)
    assert not db.execute("SELECT 1 FROM sqlite_master WHERE name = 'answers_fts'").fetchall()
    db.close()
    assert [e.answer.prompt for e in log.entries(search="100%")] == ["What is a wheel?"]
    assert [e.answer.prompt for e in log.entries(search="d_u")] == ["What is a wheel?"]
    assert log.entries(search="1_0") == []
    assert [e.answer.prompt for e in log.entries(search="PERCENT hundred")] == ["Percent?"]


def test_a_log_made_without_fts5_gets_its_index_when_fts5_is_there(tmp_path, monkeypatch):
    monkeypatch.setattr(logmod, "_fts5", False)
    Log(tmp_path / "log.db").write(answer("Old question", "about decorators"))
    db = sqlite3.connect(tmp_path / "log.db")
    db.execute("PRAGMA user_version = 0")  # as an older schema would leave it
    db.commit()
    db.close()
    monkeypatch.setattr(logmod, "_fts5", None)
    if not logmod.fts5_available():
        pytest.skip("this SQLite has no FTS5")
    log = Log(tmp_path / "log.db")
    assert [e.answer.prompt for e in log.entries(search="decorators")] == ["Old question"]


def test_find_gives_the_latest_complete_answer_of_a_key(log):
    log.write(answer(text="first"))
    log.write(answer(text="second"))
    log.write(answer(text="cut", status="interrupted", error="interrupted"))
    found = log.find(answer().key())
    assert found.answer.text == "second"
    assert log.find(answer(model="other").key()) is None


def test_last_conversation_of_a_notebook_holds_its_complete_turns(log):
    log.write(answer("old", conversation="c0"), "nb")
    log.write(answer("one", conversation="c1"), "nb")
    log.write(answer("aside", conversation=None), "nb")
    log.write(answer("cut", conversation="c1", status="error", error="boom"), "nb")
    log.write(answer("elsewhere", conversation="c9"), "other")
    log.write(answer("two", conversation="c1"), "nb")
    assert [e.answer.prompt for e in log.last_conversation("nb")] == ["one", "two"]
    assert log.last_conversation("nobody") == []


@pytest.mark.parametrize("suffix", [".md", ".jsonl"])
def test_export_writes_markdown_or_json_lines(log, tmp_path, suffix):
    log.write(answer("What is a wheel?", "A built package."), "nb.ipynb")
    log.write(answer("Cut?", "Par", status="interrupted", error="interrupted",
                     reasoning=""), "nb.ipynb")
    target = tmp_path / f"out{suffix}"
    assert logmod.export(target, path=log.path) == 2
    text = target.read_text(encoding="utf-8")
    if suffix == ".jsonl":
        rows = [json.loads(line) for line in text.splitlines()]
        assert [r["prompt"] for r in rows] == ["What is a wheel?", "Cut?"]
        assert rows[0]["messages"] == MESSAGES and rows[0]["usage"] == {
            "input_tokens": 7, "output_tokens": 4}
        assert rows[1]["status"] == "interrupted"
    else:
        assert text.startswith("# ipychat log\n")
        assert "## 2023-11-14 22:13:20 UTC · nb.ipynb · OpenAIChat/gpt-x\n\n> What is a wheel?" \
            in text
        assert "<details><summary>Reasoning</summary>\n\n> Think: packages." in text
        assert "*complete, finish reason stop · gpt-x · first text 12 ms" in text
        assert "*interrupted: interrupted, finish reason stop" in text


def test_export_refuses_other_formats(log, tmp_path):
    with pytest.raises(errors.UsageError, match=r"\.csv"):
        logmod.export(tmp_path / "out.csv", entries=[], path=log.path)


def test_clear_says_how_many_went_and_leaves_no_trace_in_the_file(log):
    for i in range(3):
        log.write(answer(f"q{i}", "a distinctive-answer-text"))
    assert log.clear() == 3
    assert log.count() == 0 and log.entries(search="distinctive") == []
    data = b"".join(p.read_bytes() for p in log.path.parent.iterdir())
    assert b"distinctive-answer-text" not in data
    log.write(answer("after"))
    assert [e.answer.prompt for e in log.entries()] == ["after"]


def test_a_corrupt_file_is_one_line_error_naming_it(log):
    log.path.parent.mkdir(parents=True)
    log.path.write_bytes(b"this is not a database" * 100)
    for attempt in (lambda: log.write(answer()), log.entries):
        with pytest.raises(LogError) as caught:
            attempt()
        assert "file is not a database" in str(caught.value)
        assert str(log.path) in str(caught.value) and "\n" not in str(caught.value)


def test_a_locked_log_gives_up_within_its_timeout(log):
    log.write(answer())
    holder = sqlite3.connect(log.path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        started = time.monotonic()
        with pytest.raises(LogError, match="locked"):
            log.write(answer())
        assert time.monotonic() - started < 0.3 + 2
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    log.write(answer())
    assert log.count() == 2


def test_a_read_only_log_can_be_read_but_not_written(log):
    log.write(answer())
    with read_only(log.path):
        with pytest.raises(LogError, match="readonly"):
            log.write(answer())
        assert len(log.entries()) == 1
    log.write(answer())
    assert log.count() == 2


def test_writers_in_two_processes_lose_nothing(tmp_path):
    path = tmp_path / "log.db"
    code = ("import sys; from ipychat.log import Log; from ipychat.answer import Answer\n"
            "log = Log(sys.argv[1])\n"
            "for i in range(100): log.write(Answer(f'{sys.argv[2]}{i}', 'P', text='x'), 'nb')\n")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(path), who])
             for who in ("a", "b")]
    assert [p.wait(60) for p in procs] == [0, 0]
    prompts = [e.answer.prompt for e in Log(path).entries(None)]
    assert sorted(prompts) == sorted(f"{who}{i}" for who in "ab" for i in range(100))


def test_threads_writing_at_once_lose_nothing(tmp_path):
    log = Log(tmp_path / "log.db")
    failures = []

    def write(who):
        try:
            for i in range(30):
                log.write(answer(f"{who}{i}"))
        except Exception as err:  # reported below
            failures.append(err)

    threads = [threading.Thread(target=write, args=(who,)) for who in "abc"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert failures == [] and log.count() == 90


def test_where_the_log_lives(monkeypatch, tmp_path):
    monkeypatch.setenv("IPYCHAT_HOME", str(tmp_path / "h"))
    assert logmod.log_path() == tmp_path / "h" / "log.db"
    monkeypatch.delenv("IPYCHAT_HOME")
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "jd"))
    assert logmod.log_path() == tmp_path / "jd" / "ipychat" / "log.db"
    monkeypatch.setitem(sys.modules, "jupyter_core.paths", None)  # jupyter_core missing
    assert logmod.log_path() == tmp_path / "jd" / "ipychat" / "log.db"
    monkeypatch.delenv("JUPYTER_DATA_DIR")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert logmod.log_path() == tmp_path / "xdg" / "jupyter" / "ipychat" / "log.db"


def test_the_package_reaches_the_log_module_as_an_attribute():
    code = "import ipychat; print(ipychat.log.entries.__module__)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, env={**os.environ})
    assert done.stdout.strip() == "ipychat.log", done.stderr


def test_images_are_kept_as_their_digest_not_their_bytes(log):
    data = "iVBORw0KGgo" + "A" * 50_000
    content = [{"type": "text", "text": "What is this?"},
               {"type": "image", "media_type": "image/png", "data": data}]
    asked = answer(messages=[{"role": "user", "content": content}])
    log.write(asked)
    (entry,) = log.entries()
    (part,) = [p for p in entry.answer.messages[0]["content"] if p["type"] == "image"]
    assert part["media_type"] == "image/png" and part["data_chars"] == len(data)
    assert "data" not in part and len(part["sha256"]) == 64
    assert entry.key == asked.key()  # the key was taken from the real bytes
    assert b"AAAAAAAAAA" not in b"".join(f.read_bytes() for f in log.path.parent.iterdir())
