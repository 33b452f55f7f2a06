"""ChatPanel without a browser: ``tests.support.page.Page`` stands in for the
page (it says hello and keeps the messages the panel sends, as messages.js
does); questions go through the panel's own handlers, inside a running loop
as in a kernel's comm handler; the servers are real, on 127.0.0.1."""

from __future__ import annotations

import asyncio
import concurrent.futures
from hashlib import sha256

import pytest
from aiohttp import web

from ipychat import errors
from ipychat.answer import Answer
from ipychat.emulator.reply import FILLER
from ipychat.markdown import safe_markdown
from ipychat.panel import (CELL_ANSWERING, EMPTY, OWN, READY, SHARED, STILL_BUSY, STOPPED,
                           ChatPanel)
from ipychat.panel_view import EMULATOR_PLACEHOLDER, HINT, MAX_MODELS
from ipychat.live import Collector
from ipychat.session import Conversation, default_conversation, stream_into
from tests.support.page import Page
from tests.support.server import stream_pieces

pytestmark = pytest.mark.timeout(60)
WAIT = 20  # seconds; a bound, never a pause


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "OPENASSISTANT_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    yield
    default_conversation().reset()
    default_conversation().system = None


def raw(pieces, hold=None):
    """A Cromicle-style handler: the answer as raw text pieces, optionally held open."""

    async def handler(request, rec):
        return await stream_pieces(request, [p.encode() for p in pieces], hold=hold)

    return handler


async def failing(request, rec):
    return web.Response(status=500, text="boom")


def cromicle_body(prompt: str) -> dict:
    digest = sha256(b"abc" + prompt.encode()).hexdigest()
    return {"message": prompt, "token": "abc", "hash": digest}


def panel_for(server, conversation=None, **kwargs) -> ChatPanel:
    panel = ChatPanel(conversation=conversation or Conversation(), provider="cromicle", **kwargs)
    panel.base_url = server.url
    return panel


async def until(page: Page, predicate, timeout=WAIT):
    """Wait (bounded) until ``predicate()`` holds, re-checked on each message the page gets."""
    def wait():
        with page.changed:
            return page.changed.wait_for(predicate, timeout)

    assert await asyncio.to_thread(wait), "the page never showed it"


async def ask(panel: ChatPanel, prompt: str):
    assert panel.ask(prompt)
    await asyncio.wait_for(panel.task, WAIT)


def turns_of(conversation, answers=None):
    """(prompt, text, provider, complete) of each answer (by default: the history)."""
    answers = conversation.turns if answers is None else answers
    return [(a.prompt, a.text, a.provider, a.complete) for a in answers]


def done(prompt, text):
    return Answer(prompt, "Cromicle", text=text, status="complete", duration_s=1.0)


# -- construction ---------------------------------------------------------------


def test_a_new_panel_shows_its_controls():
    panel = ChatPanel(conversation=Conversation(), provider="openassistant")
    assert ["openassistant (emulator, needs auth)", "openassistant"] in panel.providers
    assert panel.provider == "openassistant"
    assert (panel.model, panel.base_url) == ("OA_SFT_Llama_30B_6", "")
    assert panel.base_url_placeholder == EMULATOR_PLACEHOLDER
    assert (panel.status_text, panel.busy, panel.stoppable) == (READY, False, False)
    assert (panel.max_tokens, panel.reasoning, panel.scope) == (0, "", OWN)
    assert panel.task is None and panel.rows == []
    assert ChatPanel().scope == SHARED


def test_labels_mark_emulator_offline_and_auth():
    demo = {name: label for label, name in ChatPanel(Conversation(), demo=True).providers}
    real = {name: label for label, name in ChatPanel(Conversation(), demo=False).providers}
    assert (demo["cromicle"], real["cromicle"]) == ("cromicle (emulator)", "cromicle (offline)")
    assert real["openassistant"] == "openassistant (offline, needs auth)"
    assert (demo["openai"], real["openai"]) == ("openai (emulator, needs auth)",
                                                "openai (needs auth)")
    assert (demo["ollama"], real["anthropic"]) == ("ollama", "anthropic (needs auth)")


def test_provider_change_refills_model_and_base_url():
    panel = ChatPanel(Conversation(), provider="cromicle", demo=False)
    assert (panel.model, panel.base_url) == ("", "https://cromicle.top")
    panel.model = "my-model"
    panel.provider = "ollama"
    assert (panel.model, panel.base_url) == ("llama3.2", "http://localhost:11434")
    panel.provider = "lockchat"
    assert (panel.model, panel.base_url) == ("gpt-3.5-turbo", "http://supertest.lockchat.app")


def test_the_page_state_is_small_and_holds_no_secret(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret-4321")
    chat = Conversation()
    for i in range(200):
        chat.record(done(f"question {i}", "an answer " * 50))
    panel = ChatPanel(chat)
    assert panel.provider == "openai"  # a key picks the real provider...
    assert panel.base_url == "https://api.openai.com/v1"  # ...at its real address
    state = panel.get_state()
    assert "sk-test-secret-4321" not in repr(state) and HINT in repr(state)
    assert not any("key" in name.lower() for name in state)
    synced = {k: v for k, v in state.items() if k not in ("_esm", "_css")}
    assert len(repr(synced)) < 3000  # the controls only: no conversation in the state


def test_an_unknown_provider_is_a_clear_error():
    with pytest.raises(errors.ProviderNotFound, match="unknown provider 'nope'"):
        ChatPanel(Conversation(), provider="nope")


def test_a_page_gets_the_conversation_so_far_when_it_says_hello():
    chat = Conversation()
    chat.record(done("first", "one <b>"))
    chat.record(done("second", "two"))
    page = Page(ChatPanel(chat))
    assert [c["kind"] for c in page.sent] == ["sync"]
    assert [(m["role"], m["who"]) for m in page.ordered()] == [
        ("user", "You"), ("assistant", "Cromicle")] * 2
    assert page.texts() == ["first", "one &lt;b>", "second", "two"]  # safe Markdown
    assert page.ordered()[1]["text"] == "one <b>"  # the raw text, for the copy button


# -- asking ---------------------------------------------------------------------


async def test_a_question_streams_into_a_new_message_and_the_history(make_server):
    server = make_server([("POST", "/chat", raw(["Hello ", "there", "!"]))])
    panel = panel_for(server)
    page = Page(panel)
    panel.system = "be brief"
    page.say("ask", text="hi")
    assert page.sent[-1] == {"kind": "asked", "ok": True}  # the page may empty its box
    assert panel.busy and panel.stoppable and panel.task is not None  # returned at once
    await asyncio.wait_for(panel.task, WAIT)
    assert page.texts() == ["hi", "Hello there!"]
    answer = page.ordered()[1]
    assert (answer["state"], answer["text"], answer["mark"], answer["error"]) == (
        "complete", "Hello there!", "", "")
    assert answer["stats"].startswith("Cromicle · first text ")
    assert panel.status_text == "Done: Cromicle answered."
    assert turns_of(panel.conversation) == [("hi", "Hello there!", "Cromicle", True)]
    (request,) = server.requests
    assert request.json() == cromicle_body("System: be brief\nUser: hi\nAssistant:")
    assert (panel.busy, panel.stoppable) == (False, False)
    assert page.ordered() == panel.messages()  # the small updates added up to the whole


async def test_a_second_question_shows_both_turns_and_carries_the_history(make_server):
    answers = iter(["one", "two"])

    async def handler(request, rec):
        return await raw([next(answers)])(request, rec)

    server = make_server([("POST", "/chat", handler)])
    panel = panel_for(server)
    page = Page(panel)
    await ask(panel, "first")
    await ask(panel, "second")
    assert page.texts() == ["first", "one", "second", "two"]
    assert server.requests[1].json() == cromicle_body(
        "User: first\nAssistant: one\nUser: second\nAssistant:")
    assert Page(panel).texts() == page.texts()  # a view drawn later shows the same


async def test_names_in_braces_come_from_the_namespace(make_server):
    server = make_server([("POST", "/chat", raw(["ok"]))])
    panel = panel_for(server, namespace={"topic": "lists"})
    await ask(panel, "Explain {topic}, keep {{x}} and {unknown}")
    assert server.requests[0].json() == cromicle_body("Explain lists, keep {x} and {unknown}")
    assert panel.conversation.turns[0].prompt == "Explain lists, keep {x} and {unknown}"


async def test_an_empty_question_is_not_sent():
    panel = ChatPanel(Conversation(), provider="cromicle")
    page = Page(panel)
    page.say("ask", text="  \n ")
    assert page.sent[-1] == {"kind": "asked", "ok": False}  # the page keeps its box
    assert panel.status_text == EMPTY
    assert panel.task is None and not panel.busy and page.texts() == []


async def test_no_second_question_while_an_answer_streams(make_server):
    never = asyncio.Event()
    server = make_server([("POST", "/chat", raw(["partial "], hold=never))])
    panel = panel_for(server)
    page = Page(panel)
    panel.ask("wait")
    await until(page, lambda: page.texts()[-1:] == ["partial "])
    assert not panel.ask("another") and panel.status_text == STILL_BUSY
    panel.stop()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(panel.task, WAIT)


async def test_a_demo_provider_answers_from_the_emulator():
    panel = ChatPanel(Conversation(), provider="openassistant")
    page = Page(panel)
    await ask(panel, "hi")
    assert page.texts()[1].startswith("**Emulator answer (openassistant)**")
    assert panel.status_text == "Done: OpenAssistant answered (built-in emulator, demo mode)."
    assert page.ordered()[1]["stats"].startswith("OA_SFT_Llama_30B_6 · first text ")


async def test_max_tokens_and_reasoning_reach_the_provider():
    panel = ChatPanel(Conversation(), provider="openai")  # the emulator, in demo mode
    page = Page(panel)
    panel.max_tokens, panel.reasoning = 5, "low"
    await ask(panel, "think about it [[emulator reasoning=3]]")
    answer = page.ordered()[1]
    assert answer["words"] == 3 and answer["reasoning"]
    # 3 reasoning + 2 answer tokens: cut at 5, and the mark names the panel's control
    assert answer["mark"] == "stopped at the token limit: raise Max tokens"
    assert " → 5 tokens" in answer["stats"]
    panel.max_tokens = -3
    assert panel.max_tokens == 0  # the provider's default
    panel.temperature = 7
    assert panel.temperature == 2.0


# -- small updates --------------------------------------------------------------


async def stream_fast(panel, page):
    """A 2,000-piece answer from the emulator; the messages the page got meanwhile."""
    before = len(page.sent)
    await ask(panel, "go [[emulator delay=0 chunks=2000]]")
    return page.sent[before:]


async def test_while_an_answer_streams_updates_carry_that_message_only():
    long_chat = Conversation()
    for i in range(200):
        long_chat.record(done(f"question {i}", f"answer {i} " * 100))
    empty, long = (ChatPanel(chat, provider="cromicle") for chat in (Conversation(), long_chat))
    empty_page, long_page = Page(empty), Page(long)
    sent = {"empty": await stream_fast(empty, empty_page),
            "long": await stream_fast(long, long_page)}
    for name, page in (("empty", empty_page), ("long", long_page)):
        kinds = {c["kind"] for c in sent[name]}
        assert kinds == {"upsert"}, name  # never a sync of the whole chat
        ids = {c["message"]["id"] for c in sent[name] if c["kind"] == "upsert"}
        assert len(ids) == 2  # the question, and the answer it streams into
        assert page.texts()[-1] == FILLER * 2000
        assert len(sent[name]) <= 100  # far below one per piece
    biggest = {name: max(Page.size(c) for c in found) for name, found in sent.items()}
    # The same answer: the same largest update, whatever came before it.
    assert abs(biggest["long"] - biggest["empty"]) <= 64


async def test_a_huge_answer_is_sent_in_parts_and_adds_up(make_server):
    paragraph = "A paragraph of a very long answer, with a <b> tag to escape.\n\n"
    pieces = [paragraph * 1000] * 40  # 2.5 M characters: three parts
    server = make_server([("POST", "/chat", raw(pieces))])
    panel = panel_for(server)
    page = Page(panel)
    await ask(panel, "long")
    answer = page.ordered()[1]
    assert len(answer["parts"]) == 3
    whole = "".join(answer["parts"]) == safe_markdown("".join(pieces))
    assert whole  # no 2.5 MB diff on failure
    updates = [m for m in page.upserts() if m["id"] == answer["id"]]
    streaming = [m for m in updates if m["state"] == "streaming"]
    assert all(sum(map(len, m["parts"])) <= 1_100_000 for m in streaming)  # the open part only
    assert panel.conversation.turns[-1].text == "".join(pieces)


# -- stopping and failing -------------------------------------------------------


async def test_stop_keeps_the_text_so_far_and_marks_it(make_server):
    never = asyncio.Event()
    server = make_server([("POST", "/chat", raw(["partial "], hold=never))])
    panel = panel_for(server)
    page = Page(panel)
    page.say("ask", text="wait")
    await until(page, lambda: page.texts()[-1:] == ["partial "])
    page.say("stop")
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(panel.task, WAIT)
    (request,) = server.requests
    assert await asyncio.to_thread(server.wait_for, lambda: request.disconnected, WAIT)
    assert panel.status_text == STOPPED
    answer = page.ordered()[1]
    assert (answer["state"], answer["mark"], answer["text"]) == ("interrupted", "interrupted",
                                                                 "partial ")
    assert panel.conversation.turns == []  # not in the history
    assert (panel.busy, panel.stoppable) == (False, False)


async def test_an_error_shows_in_its_message_and_the_panel_stays_usable(make_server):
    bad = make_server([("POST", "/chat", failing)])
    good = make_server([("POST", "/chat", raw(["fine"]))])
    panel = panel_for(bad)
    page = Page(panel)
    await ask(panel, "hi")
    failed = page.ordered()[1]
    assert failed["state"] == "error" and "\n" not in failed["error"]
    assert failed["error"] == ("Cromicle: after 3 attempts: HTTP 500: boom. The server "
                               "failed; try again later.")
    assert panel.status_text == failed["error"] and panel.status_kind == "error"
    assert panel.conversation.turns == []
    panel.base_url = good.url
    await ask(panel, "hi")
    assert page.texts()[2:] == ["hi", "fine"]
    assert page.ordered()[1]["error"] == failed["error"]  # still in its place
    assert turns_of(panel.conversation) == [("hi", "fine", "Cromicle", True)]


async def test_a_setting_that_cannot_work_is_one_line_and_nothing_is_sent():
    panel = ChatPanel(Conversation(), provider="cromicle")
    page = Page(panel)
    panel.base_url = "not a url"
    page.say("ask", text="hi")
    await asyncio.wait_for(panel.task, WAIT)
    assert panel.status_kind == "error" and "\n" not in panel.status_text
    assert page.ordered()[1]["state"] == "error"


def test_without_a_running_loop_the_answer_runs_on_ipychats_loop(make_server):
    server = make_server([("POST", "/chat", raw(["from ", "a thread"]))])
    panel = panel_for(server)
    page = Page(panel)
    assert panel.ask("hi")
    assert isinstance(panel.task, concurrent.futures.Future)
    panel.task.result(WAIT)
    assert page.texts() == ["hi", "from a thread"]
    assert panel.status_text == "Done: Cromicle answered."


# -- whose conversation ---------------------------------------------------------


async def test_an_answer_asked_elsewhere_shows_live_and_sending_waits_for_it():
    """What a %%chat cell does (magics.ChatMagics._prepare): its view, made live."""
    chat = Conversation()
    panel = ChatPanel(chat, provider="cromicle")
    page = Page(panel)
    cell = Answer("from a cell", "Cromicle")
    view = chat.live(cell, Collector(), asyncio.get_running_loop().call_later)
    view.start()
    assert page.texts() == ["from a cell", ""] and panel.busy and not panel.stoppable
    assert panel.status_text == CELL_ANSWERING
    assert not panel.ask("me too")  # Send waits: answers never interleave

    async def pieces():
        from ipychat.events import Text

        yield Text("streamed ")
        await asyncio.sleep(0)
        yield Text("live")

    await stream_into(pieces(), view, cell)
    chat.record(cell)
    assert page.texts() == ["from a cell", "streamed live"]
    assert not panel.busy and panel.status_text == "Done: Cromicle answered in a %%chat cell."


async def test_the_default_panel_shares_the_notebooks_conversation(make_server):
    server = make_server([("POST", "/chat", raw(["shared"]))])
    shared, own = ChatPanel(provider="cromicle"), panel_for(server)
    assert shared.conversation is default_conversation()
    assert own.conversation is not default_conversation()
    shared.base_url = server.url
    shared.system = "be kind"
    await ask(shared, "hello")
    assert default_conversation().system == "be kind"
    assert turns_of(default_conversation()) == [("hello", "shared", "Cromicle", True)]
    assert own.conversation.turns == [] and own.conversation.system is None
    later = ChatPanel()
    assert later.system == "be kind" and Page(later).texts() == ["hello", "shared"]


async def test_new_chat_empties_the_conversation_for_every_panel_on_it(make_server):
    server = make_server([("POST", "/chat", raw(["one"]))])
    panel = panel_for(server)
    other = ChatPanel(panel.conversation)
    page, other_page = Page(panel), Page(other)
    panel.system = "stay"
    await ask(panel, "first")
    assert other_page.texts() == ["first", "one"]
    page.say("new")
    assert page.texts() == other_page.texts() == [] and panel.conversation.turns == []
    assert panel.status_text == "New chat: this panel's conversation starts empty."
    assert panel.conversation.system == "stay"  # a setting, kept
    shared = ChatPanel()
    Page(shared).say("new")
    assert shared.status_text == "New chat: the notebook's conversation starts empty."


async def test_export_writes_markdown_named_in_the_status(make_server, tmp_path, monkeypatch):
    server = make_server([("POST", "/chat", raw(["Use `x<y` here."]))])
    panel = panel_for(server)
    page = Page(panel)
    monkeypatch.chdir(tmp_path)
    page.say("export")
    assert panel.status_text == "Nothing to export yet."
    await ask(panel, "compare?")
    page.say("export")
    (path,) = tmp_path.glob("chat-*.md")
    assert panel.status_text == f"Exported 1 turns to {path}"
    text = path.read_text()
    assert text.startswith("# Chat\n") and OWN in text
    assert "## You\n\ncompare?\n\n## Cromicle\n\nUse `x<y` here.\n" in text
    assert panel.export(str(tmp_path)) != path  # a second export never overwrites


# -- the model list -------------------------------------------------------------


async def test_the_model_list_comes_from_the_server_in_the_background():
    panel = ChatPanel(Conversation(), provider="ollama")  # not the emulator: ollama's own port
    panel.base_url = "http://127.0.0.1:9"  # nothing listens there
    page = Page(panel)  # hello: the page shows the model box, so the list is asked for
    await asyncio.wait_for(panel.models_task, WAIT)
    assert panel.models == [] and panel.models_note.startswith("No model list (Ollama: cannot ")
    assert "\n" not in panel.models_note
    panel.provider = "openai"  # the emulator in demo mode
    await asyncio.wait_for(panel.models_task, WAIT)
    assert "gpt-4o-mini" in panel.models and panel.models == sorted(panel.models)
    assert panel.models_note == (f"{len(panel.models)} models from the built-in emulator "
                                 "(demo mode); any name may be typed.")
    panel.provider = "cromicle"
    await asyncio.wait_for(panel.models_task, WAIT)
    assert panel.models == [] and panel.models_note.startswith("cromicle has no model list")
    page.say("models")  # the refresh button
    await asyncio.wait_for(panel.models_task, WAIT)
    assert panel.models_note.startswith("cromicle has no model list")


async def test_a_silent_server_costs_the_model_list_a_bounded_wait(make_server, monkeypatch):
    never = asyncio.Event()

    async def silent(request, rec):
        await never.wait()

    server = make_server([("GET", "/api/tags", silent)])
    monkeypatch.setattr("ipychat.panel.MODELS_WAIT", 0.5)
    panel = ChatPanel(Conversation(), provider="ollama")
    panel.base_url = server.url
    Page(panel)
    await asyncio.wait_for(panel.models_task, WAIT)
    assert panel.models_note == "No model list within 0.5 s: type a model name."


def test_the_model_list_is_bounded():
    panel = ChatPanel(Conversation(), provider="openai")
    panel.models = [f"m{i}" for i in range(5000)]
    assert len(panel.models) == MAX_MODELS


def test_nothing_is_fetched_before_a_page_shows_the_panel():
    panel = ChatPanel(Conversation(), provider="ollama")
    panel.provider = "openai"
    assert panel.models_task is None


# -- the log and replay ---------------------------------------------------------


@pytest.fixture
def recorder(tmp_path):
    from ipychat.log import Log
    from ipychat.recorder import Recorder

    return Recorder(Log(tmp_path / "log.db", timeout=0.3))


async def test_panel_answers_are_logged_and_replayed_without_a_request(make_server, recorder):
    server = make_server([("POST", "/chat", raw(["Hello ", "there"]))])
    panel = panel_for(server, recorder=recorder)
    await ask(panel, "hi")
    await ask(panel, "again")
    assert [e.answer.prompt for e in recorder.log.entries()] == ["hi", "again"]
    recorder.set_mode("on")
    fresh = panel_for(server, recorder=recorder)
    await ask(fresh, "hi")
    assert len(server.requests) == 2  # answered from the log
    assert fresh.last_answer.text == "Hello there"
    assert "(replayed from the log (" in fresh.status_text
    assert turns_of(fresh.conversation) == [("hi", "Hello there", "Cromicle", True)]
    assert recorder.log.count() == 2  # a replay is not logged again


async def test_replay_only_in_the_panel_says_what_is_missing(make_server, recorder):
    server = make_server([("POST", "/chat", raw(["never"]))])
    recorder.set_mode("only")
    panel = panel_for(server, recorder=recorder)
    assert not panel.ask("unknown")
    assert panel.status_text.startswith("replay only: this question has no complete answer")
    assert panel.task is None and server.requests == [] and not panel.busy


async def test_a_log_that_cannot_be_written_is_a_note_in_the_status_line(make_server, recorder):
    server = make_server([("POST", "/chat", raw(["kept"]))])
    recorder.log.path.write_bytes(b"not a database" * 100)
    panel = panel_for(server, recorder=recorder)
    await ask(panel, "hi")
    assert panel.last_answer.text == "kept"
    assert panel.status_text.startswith("Done: Cromicle answered. ")
    assert panel.status_text.endswith(
        f" (not logged: file is not a database ({recorder.log.path}))")


