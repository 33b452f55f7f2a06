"""Replay without a kernel: the key, the recorded events, and the Recorder
that decides between the log and the model and logs what it should."""

import asyncio

import pytest

from ipychat import errors, replay
from ipychat.answer import Answer
from ipychat.events import Finish, Reasoning, Text, Usage
from ipychat.log import Log
from ipychat.recorder import Recorder, notebook_name
from ipychat.session import Conversation, stream_into
from ipychat.targets import EMULATOR_WHERE, resolve
from tests.support.files import read_only
from tests.test_session import Clock, FakeView

MESSAGES = [{"role": "user", "content": "Hi"}]


def asked(**fields):
    values = dict(model="m", messages=MESSAGES, options={"temperature": 0.1},
                  base_url="http://h/v1")
    values.update(fields)
    return Answer("Hi", "OpenAIChat", **values)


def recorded(**fields):
    values = dict(text="Hello!", reasoning="Greet back.", status="complete",
                  usage={"input_tokens": 3, "output_tokens": 2}, finish_reason="length",
                  first_token_s=0.05, duration_s=0.5, asked_at=1_700_000_000)
    values.update(fields)
    return asked(**values)


# -- the key --------------------------------------------------------------------------

def test_the_key_is_what_decides_the_answer_and_nothing_else():
    key = asked().key()
    assert asked(text="other", status="error", asked_at=1, conversation="c",
                 first_token_s=9).key() == key
    assert asked(options={"temperature": 0.1}).key() == key  # equal, not identical
    for changed in (dict(model="n"), dict(base_url="http://other/v1"),
                    dict(options={"temperature": 0.2}), dict(options={}),
                    dict(messages=[{"role": "user", "content": "Hi!"}]),
                    dict(messages=[{"role": "system", "content": "x"}, *MESSAGES])):
        assert asked(**changed).key() != key, changed
    assert Answer("Hi", "Ollama", model="m", messages=MESSAGES, options={"temperature": 0.1},
                  base_url="http://h/v1").key() != key


def test_a_target_fills_in_what_is_sent_and_never_a_secret(monkeypatch):
    monkeypatch.setenv("MY_SERVER_KEY", "sk-not-in-any-answer")
    target = resolve("openai", model="m", base_url="http://h:1/v1",
                     proxy="http://user:pw-secret@proxy:3128", timeout=5,
                     options={"temperature": 0.3, "max_tokens": 9, "top_p": 0.5,
                              "api_key_env": "MY_SERVER_KEY"})
    answer = target.answer("Hi", MESSAGES, conversation="c1")
    assert answer.options == {"temperature": 0.3, "max_tokens": 9, "top_p": 0.5}
    assert (answer.provider, answer.model, answer.base_url) == ("OpenAIChat", "m", "http://h:1/v1")
    assert answer.messages == MESSAGES and answer.conversation == "c1"
    assert "sk-not" not in repr(vars(answer)) and "pw-secret" not in repr(vars(answer))
    assert set(target.secrets()) == {"sk-not-in-any-answer", "pw-secret"}


async def test_an_answer_keeps_an_image_as_its_digest_and_the_model_gets_the_bytes(
        recorder, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    data = "iVBORw0KGgo" + "B" * 10_000
    sent = [{"role": "user", "content": [{"type": "text", "text": "What is it?"},
                                         {"type": "image", "media_type": "image/png",
                                          "data": data}]}]
    answer = resolve("openai", base_url="http://h/v1").answer("What is it? [image]", sent)
    (_, image) = answer.messages[0]["content"]
    assert "data" not in image and image["data_chars"] == len(data)
    assert sent[0]["content"][1]["data"] == data  # what is sent is left alone
    holding = Answer("What is it? [image]", answer.provider, answer.model, messages=sent,
                     options=answer.options, base_url=answer.base_url)
    assert holding.key() == answer.key()
    other = [{**sent[0], "content": [sent[0]["content"][0], {**sent[0]["content"][1],
                                                              "data": data + "C"}]}]
    assert Answer("q", answer.provider, answer.model, messages=other, options=answer.options,
                  base_url=answer.base_url).key() != answer.key()
    target = FakeTarget()
    await drain(recorder.source(target, answer).stream(sent))
    assert target.asked == [sent]


def test_demo_answers_are_keyed_by_the_emulator_not_its_port(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    answer = resolve(None, demo=True).answer("Hi", MESSAGES)
    assert answer.base_url == EMULATOR_WHERE
    chain = resolve("ollama,openai", demo=True).answer("Hi", MESSAGES)
    assert chain.base_url == f"http://localhost:11434 → {EMULATOR_WHERE}"


# -- the recorded events ----------------------------------------------------------

async def test_a_replay_feeds_the_recorded_answer_with_its_recorded_times():
    old = recorded()
    new = asked()
    replay.prefill(new, old)
    view = FakeView()
    await stream_into(replay.events_of(old), view, new, clock=Clock())
    assert view.order == [("reasoning", "Greet back."), ("text", "Hello!")]
    assert (new.text, new.reasoning, new.usage, new.finish_reason, new.status) == (
        old.text, old.reasoning, old.usage, old.finish_reason, "complete")
    assert (new.first_token_s, new.duration_s) == (0.05, 0.5)  # not the clock's 1 s, 2 s
    assert new.replayed == "2023-11-14 22:13 UTC" and new.stats() == old.stats()
    assert view.marks == [(old.mark(), old.stats())]


async def test_a_replay_of_an_answer_without_usage_or_reason_sends_neither():
    old = recorded(reasoning="", usage={"input_tokens": None, "output_tokens": None},
                   finish_reason=None)
    found = [event async for event in replay.events_of(old)]
    assert found == [Text("Hello!")]


# -- the recorder -----------------------------------------------------------------

class FakeTarget:
    def __init__(self):
        self.asked = []

    def stream(self, messages):
        self.asked.append(messages)

        async def live():
            yield Text("live")
            yield Finish("stop")

        return live()


async def drain(events):
    return [event async for event in events]


@pytest.fixture
def recorder(tmp_path, monkeypatch):
    monkeypatch.delenv("IPYCHAT_REPLAY", raising=False)
    monkeypatch.delenv("IPYCHAT_LOG", raising=False)
    return Recorder(Log(tmp_path / "log.db", timeout=0.3))


async def test_off_asks_the_model_even_for_a_known_question(recorder):
    recorder.log.write(recorded())
    target, answer = FakeTarget(), asked()
    assert await drain(recorder.source(target, answer).stream(MESSAGES)) == [Text("live"),
                                                                        Finish("stop")]
    assert target.asked == [MESSAGES] and answer.replayed is None


async def test_on_replays_a_complete_answer_and_asks_the_model_otherwise(recorder):
    recorder.log.write(recorded(text="cut", status="interrupted"))
    recorder.set_mode("on")
    target = FakeTarget()
    answer = asked()
    assert await drain(recorder.source(target, answer).stream(MESSAGES)) == [Text("live"),
                                                                        Finish("stop")]
    recorder.log.write(recorded())
    again = asked()
    got = await drain(recorder.source(target, again).stream(MESSAGES))
    assert got == [Reasoning("Greet back."), Text("Hello!"), Usage(3, 2), Finish("length")]
    assert len(target.asked) == 1 and again.replayed == "2023-11-14 22:13 UTC"


async def test_only_never_asks_and_says_what_is_missing(recorder):
    recorder.set_mode("only")
    target = FakeTarget()
    with pytest.raises(replay.NotRecorded, match="no complete answer in the log") as caught:
        recorder.source(target, asked())
    assert target.asked == [] and "\n" not in str(caught.value)
    recorder.log.path.write_bytes(b"not a database" * 100)
    with pytest.raises(replay.NotRecorded, match="the log cannot be read"):
        recorder.source(target, asked())
    assert target.asked == []


async def test_on_with_an_unreadable_log_asks_the_model(recorder):
    recorder.log.path.parent.mkdir(parents=True, exist_ok=True)
    recorder.log.path.write_bytes(b"not a database" * 100)
    recorder.set_mode("on")
    target = FakeTarget()
    assert await drain(recorder.source(target, asked()).stream(MESSAGES)) == [Text("live"),
                                                                         Finish("stop")]


def test_keep_logs_finished_answers_but_not_replays_nor_when_off(recorder):
    assert recorder.keep(recorded()) is None
    replayed = recorded()
    replayed.replayed = "2023-11-14 22:13 UTC"
    assert recorder.keep(replayed) is None
    recorder.enabled = False
    assert recorder.keep(recorded()) is None
    assert recorder.log.count() == 1
    assert recorder.log.entries()[0].notebook == notebook_name()


def test_keep_turns_any_failure_into_one_warning_line(recorder, monkeypatch):
    recorder.keep(recorded())
    with read_only(recorder.log.path):
        warning = recorder.keep(recorded())
    assert warning.startswith("not logged: attempt to write a readonly database (")
    assert str(recorder.log.path) in warning and "\n" not in warning

    def broken(*args, **kwargs):
        raise TypeError("a bug")

    monkeypatch.setattr(recorder.log, "write", broken)
    assert recorder.keep(recorded()) == "not logged: TypeError: a bug"


def test_replay_modes_come_from_the_environment_and_only_is_pinned(monkeypatch, tmp_path):
    monkeypatch.setenv("IPYCHAT_REPLAY", "ONLY")
    pinned = Recorder(Log(tmp_path / "log.db"))
    assert pinned.mode == "only" and not pinned.set_mode("off") and pinned.mode == "only"
    monkeypatch.setenv("IPYCHAT_REPLAY", "on")
    free = Recorder(Log(tmp_path / "log.db"))
    assert free.mode == "on" and free.set_mode("off") and free.mode == "off"
    with pytest.raises(errors.UsageError):
        free.set_mode("sometimes")
    monkeypatch.setenv("IPYCHAT_REPLAY", "yes")
    with pytest.raises(errors.UsageError, match="IPYCHAT_REPLAY must be on, off or only"):
        Recorder(Log(tmp_path / "log.db")).source(FakeTarget(), asked())
    monkeypatch.setenv("IPYCHAT_LOG", "off")
    assert Recorder().enabled is False


def test_a_conversation_resumes_from_the_log(recorder, monkeypatch):
    monkeypatch.setenv("JPY_SESSION_NAME", "/work/nb.ipynb")
    chat = Conversation(system="be kind")
    for prompt in ("one", "two"):
        turn = recorded(conversation=chat.id,
                        messages=chat.messages_for(prompt))
        turn.prompt = prompt
        chat.record(turn)
        recorder.keep(turn)
    notebook, turns = recorder.conversation()
    assert notebook == "/work/nb.ipynb" and [t.prompt for t in turns] == ["one", "two"]
    fresh = Conversation()
    fresh.resume(turns[-1].conversation, turns, "be kind")
    assert fresh.messages_for("three") == chat.messages_for("three") and fresh.id == chat.id


def test_each_conversation_has_its_own_id_and_reset_starts_another():
    chat = Conversation()
    first = chat.id
    assert Conversation().id != first
    chat.reset()
    assert chat.id != first


async def test_a_replayed_answer_reaches_a_view_the_way_a_live_one_did():
    """The final output of a replay equals the live one's, given the same header."""
    from ipychat.render import StreamView

    outputs = []

    def publish(data, handle):
        outputs.append(data)
        return handle or 1

    live = asked()
    view = StreamView(publish=publish, header="note", clock=Clock())
    stream = [Reasoning("Greet "), Reasoning("back."), Text("Hel"), Text("lo!"), Usage(3, 2),
              Finish("length")]

    async def arrive():
        for event in stream:
            yield event
            await asyncio.sleep(0)

    view.start()
    await stream_into(arrive(), view, live)
    live.status, live.asked_at = "complete", 1_700_000_000
    final_live = outputs[-1]
    again = asked()
    replay.prefill(again, live)
    view = StreamView(publish=publish, header="note", clock=Clock())
    view.start()
    await stream_into(replay.events_of(live), view, again)
    assert outputs[-1] == final_live


def test_a_base_url_from_the_environment_is_where_the_answer_went(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_BASE_URL", "http://my-server:8000/v1")
    answer = resolve("openai", demo=True).answer("Hi", MESSAGES)
    assert answer.base_url == "http://my-server:8000/v1"
    monkeypatch.delenv("OPENAI_BASE_URL")
    assert resolve("openai", demo=False).answer("Hi", MESSAGES).base_url == \
        "https://api.openai.com/v1"
