"""ChatPanel without a browser: the widgets' values are what the frontend
would show. Clicks go through the buttons' own handlers, inside a running
loop as in a kernel's comm handler; the servers are real, on 127.0.0.1."""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from hashlib import sha256

import ipywidgets as widgets
import pytest
from aiohttp import web

from ipychat import errors
from ipychat.emulator.reply import FILLER
from ipychat.panel import EMPTY, READY, STOPPED, UPDATE_INTERVAL, ChatPanel
from ipychat.panel_view import EMULATOR_PLACEHOLDER, HINT
from ipychat.session import Conversation, default_conversation
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
    panel.base_url.value = server.url
    return panel


async def until(widget, trait, predicate, timeout=WAIT):
    """Wait (bounded) until ``predicate()`` holds, re-checked on each change of ``trait``."""
    reached = asyncio.Event()

    def check(_change=None):
        if predicate():
            reached.set()

    widget.observe(check, trait)
    try:
        check()
        await asyncio.wait_for(reached.wait(), timeout)
    finally:
        widget.unobserve(check, trait)


async def ask(panel: ChatPanel, prompt: str):
    panel.prompt.value = prompt
    panel.send_button.click()
    await asyncio.wait_for(panel.task, WAIT)


def all_widgets(widget):
    yield widget
    for child in getattr(widget, "children", ()):
        yield from all_widgets(child)


# -- construction ---------------------------------------------------------------


def test_a_new_panel_shows_its_controls_and_is_displayable():
    panel = ChatPanel(conversation=Conversation(), provider="openassistant")
    assert isinstance(panel, widgets.VBox)  # so ChatPanel() as a cell's last line shows it
    assert dict(panel.provider.options)["openassistant (emulator, needs auth)"] == "openassistant"
    assert panel.provider.value == "openassistant"
    assert (panel.model.value, panel.base_url.value) == ("OA_SFT_Llama_30B_6", "")
    assert panel.base_url.placeholder == EMULATOR_PLACEHOLDER
    assert (panel.temperature.min, panel.temperature.max) == (0.0, 2.0)
    assert panel.status_text == READY
    assert (panel.send_button.disabled, panel.stop_button.disabled) == (False, True)
    assert panel.answer_text == "" and panel.task is None


def test_labels_mark_emulator_offline_and_auth():
    demo = dict((v, k) for k, v in ChatPanel(Conversation(), demo=True).provider.options)
    real = dict((v, k) for k, v in ChatPanel(Conversation(), demo=False).provider.options)
    assert (demo["cromicle"], real["cromicle"]) == ("cromicle (emulator)", "cromicle (offline)")
    assert real["openassistant"] == "openassistant (offline, needs auth)"
    assert (demo["openai"], real["openai"]) == ("openai (emulator, needs auth)",
                                                "openai (needs auth)")
    assert (demo["ollama"], real["anthropic"]) == ("ollama", "anthropic (needs auth)")


def test_provider_change_refills_model_and_base_url():
    panel = ChatPanel(Conversation(), provider="cromicle", demo=False)
    assert (panel.model.value, panel.base_url.value) == ("", "https://cromicle.top")
    panel.model.value = "my-model"
    panel.provider.value = "ollama"
    assert (panel.model.value, panel.base_url.value) == ("llama3.2", "http://localhost:11434")
    panel.provider.value = "lockchat"
    assert (panel.model.value, panel.base_url.value) == ("gpt-3.5-turbo",
                                                         "http://supertest.lockchat.app")


def test_no_secret_sits_in_any_widget(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret-4321")
    panel = ChatPanel(Conversation())
    assert panel.provider.value == "openai"  # a key picks the real provider...
    assert panel.base_url.value == "https://api.openai.com/v1"  # ...at its real address
    parts = list(all_widgets(panel))
    assert not any(isinstance(w, widgets.Password) for w in parts)
    assert all("sk-test-secret-4321" not in repr(w.get_state()) for w in parts)
    assert "environment" in HINT and any(HINT in repr(w.get_state()) for w in parts)


def test_an_unknown_provider_is_a_clear_error():
    with pytest.raises(errors.ProviderNotFound, match="unknown provider 'nope'"):
        ChatPanel(Conversation(), provider="nope")


# -- sending --------------------------------------------------------------------


async def test_send_streams_the_answer_into_the_panel_and_the_history(make_server):
    server = make_server([("POST", "/chat", raw(["Hello ", "there", "!"]))])
    panel = panel_for(server)
    panel.system.value = "be brief"
    panel.prompt.value = "hi"
    panel.send_button.click()
    assert panel.busy and panel.task is not None  # the click returned at once
    assert (panel.send_button.disabled, panel.stop_button.disabled) == (True, False)
    await asyncio.wait_for(panel.task, WAIT)
    assert panel.answer_text == "Hello there!"
    assert panel.status_text.startswith("Done: Cromicle answered. Cromicle · first text ")
    assert turns_of(panel.conversation) == [("hi", "Hello there!", "Cromicle", True)]
    assert panel.conversation.system == "be brief"
    (request,) = server.requests
    assert request.json() == cromicle_body("System: be brief\nUser: hi\nAssistant:")
    assert panel.prompt.value == ""
    assert (panel.send_button.disabled, panel.stop_button.disabled) == (False, True)
    assert "Hello there!" in panel.history.outputs[0]["data"]["text/markdown"]


async def test_a_huge_answer_fills_several_outputs_and_the_next_one_replaces_them(make_server):
    paragraph = "A paragraph of a very long answer, with a <b> tag to escape.\n\n"
    pieces = [paragraph * 1000] * 40  # 2.5 M characters: three outputs
    answers = iter([raw(pieces), raw(["short"])])

    async def handler(request, rec):
        return await next(answers)(request, rec)

    server = make_server([("POST", "/chat", handler)])
    panel = panel_for(server)
    await ask(panel, "long")
    assert len(panel.answer.outputs) == 3
    shown = "".join(o["data"]["text/markdown"] for o in panel.answer.outputs)
    whole = shown == "".join(pieces).replace("<b>", "&lt;b>")  # no 2.5 MB diff on failure
    assert whole and panel.conversation.turns[-1].text == "".join(pieces)
    panel.conversation.reset()  # 2.5 MB of history is past the test server's body limit
    await ask(panel, "short")
    assert panel.answer_text == "short" and len(panel.answer.outputs) == 1


async def test_the_next_question_carries_the_history(make_server):
    server = make_server([("POST", "/chat", raw(["one"]))])
    panel = panel_for(server)
    await ask(panel, "first")
    await ask(panel, "second")
    assert server.requests[1].json() == cromicle_body(
        "User: first\nAssistant: one\nUser: second\nAssistant:")
    assert [t.prompt for t in panel.conversation.turns] == ["first", "second"]


async def test_names_in_braces_come_from_the_namespace(make_server):
    server = make_server([("POST", "/chat", raw(["ok"]))])
    panel = panel_for(server, namespace={"topic": "lists"})
    await ask(panel, "Explain {topic}, keep {{x}} and {unknown}")
    assert server.requests[0].json() == cromicle_body("Explain lists, keep {x} and {unknown}")
    assert panel.conversation.turns[0].prompt == "Explain lists, keep {x} and {unknown}"
    assert panel.prompt.value == ""


async def test_an_empty_prompt_sends_nothing():
    panel = ChatPanel(Conversation(), provider="cromicle")
    panel.prompt.value = "  \n "
    panel.send_button.click()
    assert panel.status_text == EMPTY
    assert panel.task is None and not panel.busy


async def test_a_demo_provider_answers_from_the_emulator():
    panel = ChatPanel(Conversation(), provider="openassistant")
    await ask(panel, "hi")
    assert panel.answer_text.startswith("**Emulator answer (openassistant)**")
    assert panel.status_text.startswith(
        "Done: OpenAssistant answered (built-in emulator, demo mode). OA_SFT_Llama_30B_6 · ")
    assert panel.conversation.turns[0].text == panel.answer_text


async def test_a_long_fast_answer_takes_few_widget_updates():
    panel = ChatPanel(Conversation(), provider="cromicle")  # the demo emulator
    sets = []
    panel.answer.observe(sets.append, "outputs")
    started = time.monotonic()
    await ask(panel, "go [[emulator delay=0 chunks=2000]]")
    elapsed = time.monotonic() - started
    assert panel.answer_text == FILLER * 2000
    # The placeholder, the first chunk at once, at most one per interval, the last flush:
    # a bound that holds however slow the machine is, and far below one set per chunk.
    assert 2 <= len(sets) <= 3 + elapsed / UPDATE_INTERVAL
    assert len(sets) <= 100


# -- stopping and failing -------------------------------------------------------


async def test_stop_mid_stream_closes_the_connection_and_keeps_the_text(make_server):
    never = asyncio.Event()
    server = make_server([("POST", "/chat", raw(["partial "], hold=never))])
    panel = panel_for(server)
    panel.prompt.value = "wait"
    panel.send_button.click()
    await until(panel.answer, "outputs", lambda: panel.answer_text.startswith("partial"))
    panel.stop_button.click()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(panel.task, WAIT)
    (request,) = server.requests
    assert await asyncio.to_thread(server.wait_for, lambda: request.disconnected, WAIT)
    assert panel.status_text == STOPPED
    assert panel.answer_text == "partial \n\n*(interrupted)*"
    assert panel.conversation.turns == []
    assert turns_of(panel.conversation, [panel.conversation.last]) == [
        ("wait", "partial ", "Cromicle", False)]
    assert panel.prompt.value == "wait"  # nothing typed is lost
    assert (panel.send_button.disabled, panel.stop_button.disabled) == (False, True)


async def test_an_http_error_is_one_sentence_and_the_panel_stays_usable(make_server):
    bad = make_server([("POST", "/chat", failing)])
    good = make_server([("POST", "/chat", raw(["fine"]))])
    panel = panel_for(bad)
    await ask(panel, "hi")
    assert panel.status_text == ("Cromicle: after 3 attempts: HTTP 500: boom. The server failed; "
                                 "try again later.")
    assert "\n" not in panel.status_text
    assert "ipychat-status-error" in panel.status.value
    assert panel.answer_text == "\n\n*(no answer: see the status above)*"
    assert panel.conversation.turns == [] and panel.prompt.value == "hi"
    panel.base_url.value = good.url
    await ask(panel, "hi")
    assert panel.answer_text == "fine"
    assert panel.status_text.startswith("Done: Cromicle answered. Cromicle · first text ")
    assert turns_of(panel.conversation) == [("hi", "fine", "Cromicle", True)]


def test_without_a_running_loop_the_answer_runs_on_ipychats_loop(make_server):
    server = make_server([("POST", "/chat", raw(["from ", "a thread"]))])
    panel = panel_for(server)
    panel.prompt.value = "hi"
    panel.send_button.click()
    assert isinstance(panel.task, concurrent.futures.Future)
    panel.task.result(WAIT)
    assert panel.answer_text == "from a thread"
    assert panel.status_text.startswith("Done: Cromicle answered.")


# -- whose conversation ---------------------------------------------------------


async def test_the_default_panel_shares_the_notebooks_conversation(make_server):
    server = make_server([("POST", "/chat", raw(["shared"]))])
    shared, own = ChatPanel(provider="cromicle"), panel_for(server)
    assert shared.conversation is default_conversation()
    assert own.conversation is not default_conversation()
    shared.base_url.value = server.url
    shared.system.value = "be kind"
    await ask(shared, "hello")
    assert default_conversation().system == "be kind"
    assert turns_of(default_conversation()) == [("hello", "shared", "Cromicle", True)]
    assert own.conversation.turns == [] and own.conversation.system is None
    assert ChatPanel().system.value == "be kind"  # a new panel continues the same chat


def turns_of(conversation, answers=None):
    """(prompt, text, provider, complete) of each answer (by default: the history)."""
    answers = conversation.turns if answers is None else answers
    return [(a.prompt, a.text, a.provider, a.complete) for a in answers]


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
    assert fresh.answer_text == "Hello there"
    assert "(replayed from the log (" in fresh.status_text
    assert turns_of(fresh.conversation) == [("hi", "Hello there", "Cromicle", True)]
    assert recorder.log.count() == 2  # a replay is not logged again


async def test_replay_only_in_the_panel_says_what_is_missing(make_server, recorder):
    server = make_server([("POST", "/chat", raw(["never"]))])
    recorder.set_mode("only")
    panel = panel_for(server, recorder=recorder)
    panel.prompt.value = "unknown"
    panel.send_button.click()
    assert panel.status_text.startswith("replay only: this question has no complete answer")
    assert panel.task is None and server.requests == [] and not panel.busy


async def test_a_log_that_cannot_be_written_is_a_note_in_the_status_line(make_server, recorder):
    server = make_server([("POST", "/chat", raw(["kept"]))])
    recorder.log.path.write_bytes(b"not a database" * 100)
    panel = panel_for(server, recorder=recorder)
    await ask(panel, "hi")
    assert panel.answer_text == "kept"
    assert panel.status_text.startswith("Done: Cromicle answered. ")
    assert panel.status_text.endswith(
        f" (not logged: file is not a database ({recorder.log.path}))")
