"""The emulator through ipychat's own classic providers and the official
openai SDK; request checking, control endpoints, the log and the CLI."""

from __future__ import annotations

import asyncio
import hashlib
import select
import signal
import subprocess
import sys

import aiohttp
import pytest

from ipychat import emulator as emulator_pkg
from ipychat.emulator import DEMO_COOKIES, base_url_for, shared_emulator
from ipychat.emulator.reply import reply_text, unflatten
from ipychat.errors import AuthenticationRequired, ModelNotFound
from ipychat.messages import format_prompt
from ipychat.providers import Cromicle, Lockchat, OpenAssistant, Vitalentum
from tests.test_emulator_kit import USER_HI, emu, fetch, post, server, user  # noqa: F401

HISTORY = [
    {"role": "system", "content": "be brief"},
    {"role": "user", "content": "first [[emulator status=500]]"},
    {"role": "assistant", "content": "ok [[emulator drop]]"},
    {"role": "user", "content": "café 😀\nsecond line"},
]
CLASSIC = [(Cromicle, "cromicle", None), (OpenAssistant, "openassistant", "OA_SFT_Llama_30B_6"),
           (Vitalentum, "vitalentum", None), (Lockchat, "lockchat", "gpt-3.5-turbo")]


def provider_kwargs(provider, url):
    cookies = {"cookies": DEMO_COOKIES} if provider is OpenAssistant else {}
    return {"base_url": base_url_for(provider.__name__, url), **cookies}


@pytest.mark.parametrize("provider, protocol, model", CLASSIC)
@pytest.mark.parametrize("messages", [USER_HI, HISTORY], ids=["one", "history"])
async def test_classic_provider_gets_exact_reply(emu, provider, protocol, model, messages):
    text = await provider.create_async(None, messages, **provider_kwargs(provider, emu.url))
    # A directive in an earlier message must not apply: the answer is the normal one.
    assert text == reply_text(protocol, messages, model)
    assert {r.protocol for r in emu.requests} == {protocol}
    # The client may hold the whole answer a moment before the handler returns.
    assert emu.wait_for(lambda: all(r.finished for r in emu.requests))
    assert all(not r.disconnected and r.status < 300 for r in emu.requests)


def test_reply_text_shows_what_was_received():
    text = reply_text("openai", HISTORY, "gpt-4o")
    assert text.startswith("**Emulator answer (openai)**\n")
    assert "- protocol: `openai`\n- messages received: 4\n- model: `gpt-4o`\n" in text
    assert "> café 😀\n> second line\n" in text
    assert "built-in emulator" in text.splitlines()[-1]
    assert "- model: none sent" in reply_text("cromicle", USER_HI, None)
    assert "> System: be brief\n> User: first" in reply_text("cromicle", HISTORY)


@pytest.mark.parametrize("messages", [USER_HI, HISTORY, [{"role": "system", "content": "a"},
                                                          {"role": "user", "content": "b\nc"}]])
def test_unflatten_round_trips(messages):
    assert unflatten(format_prompt(messages)) == messages


def test_unflatten_keeps_an_unformatted_prompt_whole():
    assert unflatten("Note: x\nAssistant:") == user("Note: x\nAssistant:")


async def test_openassistant_chat_is_deleted_and_steps_logged(emu):
    await OpenAssistant.create_async(None, USER_HI, **provider_kwargs(OpenAssistant, emu.url))
    assert [(r.method, r.path) for r in emu.requests] == [
        ("POST", "/api/chat"), ("POST", "/api/chat/prompter_message"),
        ("POST", "/api/chat/assistant_message"), ("POST", "/api/chat/events"),
        ("DELETE", "/api/chat")]
    assert emu.requests[-1].query == {"chat_id": "chat-1"}
    assert emu.deleted_chats == ["chat-1"]
    # The cookie was sent, but its value is not in the log.
    assert emu.requests[0].headers["Cookie"] == "(hidden)"
    state = (await fetch("GET", emu.url + "/_emulator/state")).json()
    assert state["openassistant"] == {"open_chats": [], "deleted_chats": ["chat-1"]}


async def test_openassistant_without_cookie_is_401(emu):
    raw = await post(emu.url + "/api/chat")
    assert raw.status == 401 and "Unauthorized" in raw.json()["message"]
    with pytest.raises(AuthenticationRequired):
        await OpenAssistant.create_async(None, USER_HI, base_url=emu.url,
                                         cookies={"__Secure-next-auth.session-token": ""})


async def test_openassistant_checks_ids_and_order(emu):
    url = emu.url + "/api/chat"
    chat_id = (await post(url, cookies=DEMO_COOKIES)).json()["id"]
    prompter = {"chat_id": chat_id, "content": "hi", "parent_id": None}
    assert (await post(url + "/prompter_message", {**prompter, "chat_id": "nope"},
                       cookies=DEMO_COOKIES)).status == 404
    assert (await post(url + "/prompter_message", {**prompter, "parent_id": "msg-9"},
                       cookies=DEMO_COOKIES)).status == 400
    parent = (await post(url + "/prompter_message", prompter, cookies=DEMO_COOKIES)).json()["id"]
    assistant = {"chat_id": chat_id, "parent_id": "msg-404", "model_config_name": "m",
                 "sampling_parameters": {}, "plugins": []}
    assert (await post(url + "/assistant_message", assistant, cookies=DEMO_COOKIES)).status == 400
    events = f"{url}/events?chat_id={chat_id}&message_id={parent}"
    raw = await post(events, cookies=DEMO_COOKIES)  # a prompter id is not an answer to stream
    assert raw.status == 404 and "not found" in raw.json()["message"]
    assert (await fetch("DELETE", url + "?chat_id=chat-404", cookies=DEMO_COOKIES)).status == 404
    assert (await fetch("DELETE", f"{url}?chat_id={chat_id}", cookies=DEMO_COOKIES)).status == 204
    assert emu.deleted_chats == [chat_id]


async def test_cromicle_rejects_a_wrong_hash(emu):
    body = {"message": "hi", "token": "abc", "hash": "0" * 64}
    raw = await post(emu.url + "/chat", body)
    assert (raw.status, raw.headers["Content-Type"]) == (403, "text/plain; charset=utf-8")
    assert raw.body == b"Forbidden: invalid token or hash"
    good = hashlib.sha256(b"abc" + "hi".encode()).hexdigest()
    assert (await post(emu.url + "/chat", {**body, "token": "abd", "hash": good})).status == 403
    assert (await post(emu.url + "/chat", {**body, "hash": good})).status == 200


@pytest.mark.parametrize("conversation", [None, "not json", '{"history": []}',
                                          '{"history": [{"speaker": "robot", "text": "x"}]}'])
async def test_vitalentum_rejects_bad_conversations(emu, conversation):
    raw = await post(emu.url + "/api/converse-edge", {"conversation": conversation})
    assert raw.status == 400 and isinstance(raw.json()["error"], str)


async def test_unknown_lockchat_model_is_an_error(emu):
    with pytest.raises(ModelNotFound) as caught:
        await Lockchat.create_async("gpt-9", USER_HI, base_url=emu.url)
    assert "The model `gpt-9` does not exist" in str(caught.value)


async def test_request_log_hides_secrets(emu):
    headers = {"Authorization": "Bearer sk-secret-1", "x-api-key": "sk-secret-2"}
    await post(emu.url + "/v1/chat/completions", {"model": "gpt-4o", "messages": USER_HI},
               headers=headers, cookies={"session": "sk-secret-3"})
    listed = (await fetch("GET", emu.url + "/_emulator/requests")).body.decode()
    assert "sk-secret" not in listed and "sk-secret" not in repr(emu.requests)
    entry = (await fetch("GET", emu.url + "/_emulator/requests")).json()[0]
    assert entry["headers"]["Authorization"] == entry["headers"]["x-api-key"] == "(hidden)"
    assert (entry["method"], entry["path"], entry["protocol"]) == (
        "POST", "/v1/chat/completions", "openai")
    assert entry["finished"] is True and entry["disconnected"] is False


async def test_control_endpoints(emu):
    health = await fetch("GET", emu.url + "/_emulator/health")
    assert health.json()["status"] == "ok"
    queued = await post(emu.url + "/_emulator/faults", {"status": 503, "count": 2})
    assert queued.json() == {"queued": [{"status": 503, "count": 2}]}
    bad = await post(emu.url + "/_emulator/faults", {"stauts": 503})
    assert bad.status == 400 and "stauts" in bad.json()["error"]
    await post(emu.url + "/api/converse-edge", {"conversation": "{}"})  # rejected: no fault used
    statuses = []
    for _ in range(3):
        statuses.append((await post(emu.url + "/chat", {
            "message": "hi", "token": "abc",
            "hash": hashlib.sha256(b"abchi").hexdigest()})).status)
    assert statuses == [503, 503, 200]
    assert len((await fetch("GET", emu.url + "/_emulator/requests")).json()) == 4
    assert (await post(emu.url + "/_emulator/reset")).json() == {"status": "reset"}
    assert (await fetch("GET", emu.url + "/_emulator/requests")).json() == []


async def test_a_client_that_leaves_is_marked_disconnected(emu):
    body = {"model": "gpt-4o", "stream": True, "messages": user("[[emulator stall_mid=30]]")}
    async with aiohttp.ClientSession() as session:
        async with session.post(emu.url + "/v1/chat/completions", json=body) as response:
            await response.content.readuntil(b"\n\n")
    assert emu.wait_for(lambda: emu.requests[0].disconnected, timeout=10)
    assert not emu.requests[0].finished and not emu.requests[0].dropped


async def test_openai_sdk_streams_and_lists_models(emu):
    openai = pytest.importorskip("openai")
    client = openai.AsyncOpenAI(base_url=emu.url + "/v1", api_key="sk-test", max_retries=0)
    try:
        stream = await client.chat.completions.create(model="gpt-4o-mini", messages=HISTORY,
                                                      stream=True)
        parts = [c.choices[0].delta.content or "" async for c in stream if c.choices]
        assert "".join(parts) == reply_text("openai", HISTORY, "gpt-4o-mini")
        whole = await client.chat.completions.create(model="gpt-4", messages=USER_HI)
        assert whole.choices[0].message.content == reply_text("openai", USER_HI, "gpt-4")
        models = [m.id async for m in client.models.list()]
        assert {"gpt-3.5-turbo", "gpt-4", "gpt-4o", "gpt-4o-mini", "emulator"} <= set(models)
        with pytest.raises(openai.NotFoundError):
            await client.chat.completions.create(model="x", messages=USER_HI)
    finally:
        await client.close()


def test_base_url_for_maps_every_provider():
    url = "http://127.0.0.1:5"
    assert base_url_for("openai", url + "/") == url + "/v1"
    assert base_url_for("Ollama", url) == url + "/ollama"
    for name in ("cromicle", "openassistant", "vitalentum", "lockchat", "anthropic"):
        assert base_url_for(name, url) == url
    with pytest.raises(ValueError, match="does not speak"):
        base_url_for("bard", url)


async def test_shared_emulator_is_one_per_process():
    first = shared_emulator()
    assert shared_emulator() == first and emulator_pkg._shared.url == first
    assert (await fetch("GET", first + "/_emulator/health")).status == 200


def test_cli_prints_a_url_that_answers():
    process = subprocess.Popen([sys.executable, "-m", "ipychat.emulator", "--port", "0"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready, _, _ = select.select([process.stdout], [], [], 30)
        assert ready, "the emulator printed no URL within 30 s"
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")

        async def health():
            return (await fetch("GET", url + "/_emulator/health")).json()

        assert asyncio.run(health())["status"] == "ok"
        process.send_signal(signal.SIGINT)  # Ctrl-C: a clean exit, no traceback
        assert process.wait(10) == 0
        assert "Traceback" not in process.stderr.read()
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(10)
