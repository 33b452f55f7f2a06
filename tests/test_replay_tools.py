"""Answers that called tools, in the log and replayed: the calls are kept
with their results, a replay shows them without running anything, and the
history after a replay is the one the live answer left, so the next cell of
a Run All under ``IPYCHAT_REPLAY=only`` is found too. The tools offered are
part of what decides an answer (its key)."""

from __future__ import annotations

import hashlib
import json
import sqlite3

import pytest

from ipychat.answer import Answer, Round, ToolRun
from ipychat.emulator import base_url_for
from ipychat.events import Text, ToolRan
from ipychat.log import Log
from ipychat.recorder import Recorder
from ipychat.render import StreamView
from ipychat.session import Conversation, turn_messages
from ipychat.toolloop import answer_into
from tests.support.kernel import loaded_kernel
from tests.support.matrix import emulator  # noqa: F401  (the module's emulator fixture)
from tests.test_log_kernel import env_for, ok

MESSAGES = [{"role": "user", "content": "Weather in Paris?"}]
SCHEMA = {"name": "get_weather", "description": "Weather.",
          "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}


def called(**fields) -> Answer:
    """A complete answer whose first turn called get_weather."""
    answer = Answer("Weather in Paris?", "OpenAIChat", "m", messages=MESSAGES,
                    base_url="http://h/v1", tools=[SCHEMA], text="Checking.\n\nIt is sunny.",
                    status="complete", finish_reason="stop", duration_s=1.0, **fields)
    answer.rounds = [Round("Checking.", [ToolRun.asked("c1", "get_weather", '{"city": "Paris"}',
                                                       result='{"temp": 21}', seconds=0.01)]),
                     Round("It is sunny.")]
    return answer


def test_the_tools_offered_decide_the_key_and_no_tools_keep_the_old_key():
    plain = Answer("q", "OpenAIChat", "m", messages=MESSAGES, options={"temperature": 0.2})
    with_tools = Answer("q", "OpenAIChat", "m", messages=MESSAGES, options={"temperature": 0.2},
                        tools=[SCHEMA])
    assert plain.key() != with_tools.key()
    other = {**SCHEMA, "description": "Another."}
    assert with_tools.key() != Answer("q", "OpenAIChat", "m", messages=MESSAGES,
                                      options={"temperature": 0.2}, tools=[other]).key()
    assert plain.key() == _old_key(plain)  # so logs written before tools still replay


def _old_key(answer: Answer) -> str:
    """``Answer.key`` as it was before tools were part of it."""
    decides = {"provider": answer.provider, "model": answer.model, "base_url": answer.base_url,
               "messages": answer.messages, "options": answer.options}
    text = json.dumps(decides, sort_keys=True, ensure_ascii=False, separators=(",", ":"),
                      default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def test_the_log_keeps_the_calls_with_their_results(tmp_path):
    log = Log(tmp_path / "log.db")
    log.write(called(), "nb")
    (entry,) = log.entries()
    assert entry.answer.rounds == called().rounds
    assert entry.as_dict()["rounds"][0]["calls"][0] == {
        "id": "c1", "name": "get_weather", "arguments": '{"city": "Paris"}',
        "result": '{"temp": 21}', "error": None, "seconds": 0.01}
    assert log.find(called().key()).answer.tool_calls == called().tool_calls


def test_a_log_of_the_first_schema_takes_the_new_column(tmp_path):
    path = tmp_path / "log.db"
    Log(path).write(Answer("old", "Cromicle", text="kept", status="complete"), "nb")
    with sqlite3.connect(path) as db:  # back to schema 1: no rounds column
        db.execute("ALTER TABLE answers DROP COLUMN rounds")
        db.execute("PRAGMA user_version = 1")
    db.close()
    old = Log(path)
    assert [e.answer.text for e in old.entries()] == ["kept"]  # read before any write
    old.write(called(), "nb")
    assert [e.answer.rounds for e in old.entries()] == [[], called().rounds]


async def test_a_replay_shows_the_calls_runs_nothing_and_leaves_the_same_history(tmp_path):
    recorder = Recorder(Log(tmp_path / "log.db"))
    recorder.keep(called())
    recorder.set_mode("on")
    answer = Answer("Weather in Paris?", "OpenAIChat", "m", messages=MESSAGES,
                    base_url="http://h/v1", tools=[SCHEMA])
    source = recorder.source(object(), answer)
    shown = []
    view = StreamView(interval=0, publish=lambda data, handle: shown.append(data) or "h")
    view.start()
    await answer_into(source, MESSAGES, view, answer, None)
    assert answer.replayed and answer.tool_calls == called().tool_calls
    assert answer.text == "Checking.\n\nIt is sunny." and answer.complete
    assert turn_messages(answer) == turn_messages(called())  # the next question's history
    assert 'get_weather(city="Paris") → {"temp": 21}' in shown[-1]["text/plain"]
    chat = Conversation()
    chat.record(answer)
    live = Conversation()
    live.record(called())
    assert chat.messages_for("Tomorrow?") == live.messages_for("Tomorrow?")


async def test_the_replay_events_carry_each_call_once():
    from ipychat.replay import events_of

    found = [event async for event in events_of(called())]
    assert [e.kind for e in found][:2] == ["tool_ran", "text"]
    assert found[0] == ToolRan(called().tool_calls[0]) and found[1] == Text(called().text)


def test_the_round_limit_mark_comes_back_from_the_log(tmp_path):
    limited = called()
    limited.rounds = limited.rounds[:1] * 2
    limited.finish_reason, limited.tool_limit = "tool_calls", 2
    log = Log(tmp_path / "log.db")
    log.write(limited, "nb")
    assert log.entries()[0].answer.mark() == limited.mark() != ""


TOOL = '''
ran = []

def get_weather(city: str) -> dict:
    """Today's weather in a city."""
    ran.append(city)
    return {"city": city, "temp": 21}
'''


@pytest.mark.kernel
@pytest.mark.timeout(180)
def test_run_all_with_a_tool_cell_replays_every_cell_under_replay_only(tmp_path, emulator):
    home = tmp_path / "home"
    url = base_url_for("openai", emulator.url)
    cells = [f"%%chat -p openai --base-url {url} -m emulator --tools get_weather\n"
             "Paris? [[emulator call=get_weather args='{\"city\": \"Paris\"}']]",
             f"%%chat -p openai --base-url {url} -m emulator\nAnd tomorrow?"]

    def run_all(env) -> list:
        with loaded_kernel(TOOL, **env) as k:
            shown = [ok(k.run(cell)).last_text() for cell in cells]
            return shown + [k.value("ran")]

    live = run_all(env_for(home))
    asked = len(emulator.requests)
    again = run_all(env_for(home, IPYCHAT_REPLAY="only", IPYCHAT_LOG="0"))
    assert len(emulator.requests) == asked  # both cells from the log, the second one too
    assert live[2] == "['Paris']" and again[2] == "[]"  # the tool ran live only
    for before, after in zip(live[:2], again[:2]):
        assert after.endswith(before)  # the same text and call lines, under the replay note
    assert '[tool] get_weather(city="Paris") → {"city": "Paris", "temp": 21}' in again[0]
