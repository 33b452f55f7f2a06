"""Anthropic's Messages API against recording servers on 127.0.0.1."""

import json
import traceback

import pytest
from aiohttp import web

from ipychat import errors
from ipychat.providers import Anthropic, get_provider
from tests.support.calls import answer_of, failure_of
from tests.support.server import stream_pieces

KEY = "sk-ant-test-Very-Secret-0123456789"
MESSAGES = [
    {"role": "system", "content": "be brief"},
    {"role": "user", "content": "hi"},
    {"role": "assistant", "content": "hello"},
    {"role": "system", "content": "answer in French"},
    {"role": "user", "content": "and now?"},
]
TURNS = [m for m in MESSAGES if m["role"] != "system"]


def event(kind: str, data: dict, newline: bytes = b"\n") -> bytes:
    text = f"event: {kind}{newline.decode()}data: {json.dumps(data, ensure_ascii=False)}"
    return text.encode() + newline * 2


def text_delta(text: str, newline: bytes = b"\n") -> bytes:
    return event("content_block_delta", {"type": "content_block_delta", "index": 0,
                                         "delta": {"type": "text_delta", "text": text}}, newline)


START = event("message_start", {"type": "message_start", "message": {"id": "msg_1"}}) \
    + event("content_block_start", {"type": "content_block_start", "index": 0,
                                    "content_block": {"type": "text", "text": ""}})
STOP = event("content_block_stop", {"type": "content_block_stop", "index": 0}) \
    + event("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"}}) \
    + event("message_stop", {"type": "message_stop"})
ANSWER = (
    START
    + event("ping", {"type": "ping"})
    + text_delta("Bon")
    + text_delta("jour 👋", b"\r\n")
    + event("content_block_delta", {"type": "content_block_delta", "index": 0,
                                    "delta": {"type": "input_json_delta", "partial_json": "{"}})
    + event("some_future_event", {"type": "some_future_event"})
    + text_delta(" é")
    + STOP
)


def split(data: bytes, size: int):
    return [data[i:i + size] for i in range(0, len(data), size)]


def sse_route(pieces):
    async def handler(request, rec):
        return await stream_pieces(request, pieces, content_type="text/event-stream")
    return [("POST", "/v1/messages", handler)]


def status_route(status, body):
    async def handler(request, rec):
        return web.json_response(body, status=status)
    return [("POST", "/v1/messages", handler)]


async def answer(base_url, messages=MESSAGES, **kwargs):
    return await answer_of(Anthropic, base_url, messages, **kwargs)


async def failure(base_url, messages=MESSAGES, **kwargs) -> errors.ChatError:
    return await failure_of(Anthropic, base_url, messages, **kwargs)


def assert_key_hidden(err: BaseException):
    shown = str(err) + repr(err) + repr(err.args) + "".join(traceback.format_exception(err))
    assert KEY not in shown


@pytest.fixture(autouse=True)
def no_env_key(monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)


async def test_exact_request_and_answer(make_server):
    server = make_server(sse_route([ANSWER]))
    text = await answer(server.url, api_key=KEY, temperature=0.3, proxy=None, timeout=5)
    assert text == "Bonjour 👋 é"
    [rec] = server.requests
    assert (rec.method, rec.path) == ("POST", "/v1/messages")
    assert rec.headers["x-api-key"] == KEY
    assert rec.headers["anthropic-version"] == "2023-06-01"
    assert rec.headers["Content-Type"] == "application/json"
    assert "Authorization" not in rec.headers
    body = rec.json()
    assert body == {"model": "claude-sonnet-4-5", "max_tokens": 8192, "messages": TURNS,
                    "system": "be brief\n\nanswer in French", "stream": True,
                    "temperature": 0.3}
    assert list(body)[:5] == ["model", "max_tokens", "messages", "system", "stream"]


async def test_key_from_env_and_no_system(make_server, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    server = make_server(sse_route([ANSWER]))
    # The env key is sent only to the provider's own service (see test_keys.py).
    monkeypatch.setattr(Anthropic, "default_base_url", server.url)
    await answer(None, messages=TURNS, model="claude-x", max_tokens=64)
    [rec] = server.requests
    assert rec.headers["x-api-key"] == KEY
    assert rec.json() == {"model": "claude-x", "max_tokens": 64, "messages": TURNS,
                          "stream": True}


async def test_missing_key_fails_before_any_request(make_server):
    server = make_server(sse_route([ANSWER]))
    err = await failure(server.url)
    assert isinstance(err, errors.AuthenticationRequired)
    assert "Set ANTHROPIC_API_KEY" in str(err)
    assert server.requests == []


async def test_system_only_is_a_usage_error(make_server):
    server = make_server(sse_route([ANSWER]))
    err = await failure(server.url, api_key=KEY, messages=MESSAGES[:1])
    assert isinstance(err, errors.UsageError) and server.requests == []


@pytest.mark.parametrize("size", [1, 2, 9, 50])
async def test_stream_split_anywhere(make_server, size):
    server = make_server(sse_route(split(ANSWER, size)))
    assert await answer(server.url, api_key=KEY) == "Bonjour 👋 é"


async def test_nothing_after_message_stop_is_read(make_server):
    server = make_server(sse_route([START, text_delta("a"), STOP, text_delta("never")]))
    assert await answer(server.url, api_key=KEY) == "a"


async def test_stream_without_message_stop_is_cut_short(make_server):
    server = make_server(sse_route([START, text_delta("half")]))
    assert isinstance(await failure(server.url, api_key=KEY), errors.StreamCutShort)


async def test_error_event(make_server):
    error = event("error", {"type": "error", "error": {"type": "overloaded_error",
                                                       "message": f"Overloaded {KEY}"}})
    server = make_server(sse_route([START, text_delta("par"), error]))
    err = await failure(server.url, api_key=KEY)
    assert type(err) is errors.ProviderError
    assert "overloaded_error: Overloaded ***" in str(err)
    assert_key_hidden(err)


async def test_event_data_that_is_not_json(make_server):
    server = make_server(sse_route([START, b"event: content_block_delta\ndata: {oops\n\n"]))
    assert isinstance(await failure(server.url, api_key=KEY), errors.MalformedStreamError)


async def test_rejected_key(make_server):
    body = {"type": "error", "error": {"type": "authentication_error",
                                       "message": f"invalid x-api-key {KEY}"}}
    server = make_server(status_route(401, body))
    err = await failure(server.url, api_key=KEY)
    assert isinstance(err, errors.AuthenticationRequired) and err.status == 401
    assert "Set ANTHROPIC_API_KEY" in str(err)
    assert_key_hidden(err)


async def test_unknown_model(make_server):
    body = {"type": "error", "error": {"type": "not_found_error", "message": "model: claude-0"}}
    server = make_server(status_route(404, body))
    err = await failure(server.url, api_key=KEY, model="claude-0")
    assert isinstance(err, errors.ModelNotFound) and err.model == "claude-0"


async def test_rate_limited(make_server):
    async def handler(request, rec):
        return web.json_response({"type": "error", "error": {"type": "rate_limit_error",
                                                             "message": "slow"}},
                                 status=429, headers={"Retry-After": "12"})
    server = make_server([("POST", "/v1/messages", handler)])
    err = await failure(server.url, api_key=KEY, max_retries=0)  # the mapping, not the wait
    assert isinstance(err, errors.RateLimited) and err.retry_after == "12"


async def test_overloaded_529(make_server):
    body = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    server = make_server(status_route(529, body))
    err = await failure(server.url, api_key=KEY)
    assert type(err) is errors.HTTPStatusError and err.status == 529


def test_registered_and_defaults():
    assert get_provider("anthropic") is Anthropic
    assert (Anthropic.default_base_url, Anthropic.model) == ("https://api.anthropic.com",
                                                              "claude-sonnet-4-5")


async def test_against_the_emulator():
    emulator = pytest.importorskip("ipychat.emulator")
    from ipychat.emulator.reply import reply_text

    with emulator.EmulatorServer(delay=0) as emu:
        text = await answer(emu.url, messages=TURNS, api_key=KEY)
    assert text == reply_text("anthropic", TURNS, "claude-sonnet-4-5")


async def test_list_models_sends_the_key_and_version(make_server):
    async def handler(request, rec):
        return web.json_response({"data": [{"type": "model", "id": "claude-b"},
                                           {"type": "model", "id": "claude-a"}],
                                  "has_more": False})

    server = make_server([("GET", "/v1/models", handler)])
    assert await Anthropic.list_models(server.url, api_key=KEY) == ["claude-a", "claude-b"]
    [rec] = server.requests
    assert (rec.method, rec.path) == ("GET", "/v1/models")
    assert rec.headers["x-api-key"] == KEY and rec.headers["anthropic-version"]


async def test_list_models_without_a_key_asks_for_one(monkeypatch, make_server):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    server = make_server([])
    with pytest.raises(errors.AuthenticationRequired, match="ANTHROPIC_API_KEY"):
        await Anthropic.list_models(server.url)
    assert server.requests == []  # nothing sent without a key


async def test_list_models_from_the_emulator():
    from ipychat.emulator import EmulatorServer, base_url_for
    from ipychat.emulator.anthropic import MODELS

    with EmulatorServer(delay=0) as emu:
        base = base_url_for("anthropic", emu.url)
        assert await Anthropic.list_models(base, api_key=KEY) == sorted(MODELS)
