"""OpenAIChat against recording servers on 127.0.0.1: exact requests, split
streams, every mapped error, and the key kept out of every error."""

import json
import socket
import traceback

import pytest
from aiohttp import web

from ipychat import errors
from ipychat.providers import OpenAIChat, get_provider
from tests.support.calls import answer_of, failure_of
from tests.support.server import stream_pieces

KEY = "sk-test-Very-Secret-0123456789"
MESSAGES = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "héllo 👋"}]


def chunk(text: str, newline: bytes = b"\n") -> bytes:
    event = {"id": "c1", "object": "chat.completion.chunk",
             "choices": [{"index": 0, "delta": {"content": text}}]}
    return b"data: " + json.dumps(event, ensure_ascii=False).encode() + newline * 2


ROLE_ONLY = b'data: {"choices": [{"index": 0, "delta": {"role": "assistant"}}]}\n\n'
ANSWER = ROLE_ONLY + chunk("Bonjour ") + chunk("👋 é", b"\r\n") + b": keep-alive\n\n" \
    + chunk("!") + b"data: [DONE]\n\n"


def split(data: bytes, size: int):
    return [data[i:i + size] for i in range(0, len(data), size)]


def sse_route(pieces, path="/v1/chat/completions"):
    async def handler(request, rec):
        return await stream_pieces(request, pieces, content_type="text/event-stream")
    return [("POST", path, handler)]


def status_route(status, body, headers=None, method="POST", path="/v1/chat/completions"):
    async def handler(request, rec):
        return web.json_response(body, status=status, headers=headers)
    return [(method, path, handler)]


async def answer(base_url, **kwargs):
    return await answer_of(OpenAIChat, base_url, MESSAGES, **kwargs)


async def failure(base_url, **kwargs) -> errors.ChatError:
    return await failure_of(OpenAIChat, base_url, MESSAGES, **kwargs)


def assert_key_hidden(err: BaseException):
    shown = str(err) + repr(err) + repr(err.args) + "".join(traceback.format_exception(err))
    assert KEY not in shown


@pytest.fixture(autouse=True)
def no_env_keys(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("MY_VAR", raising=False)


async def test_exact_request_and_answer(make_server):
    server = make_server(sse_route([ANSWER]))
    text = await answer(server.url + "/v1", api_key=KEY, temperature=0.2, max_tokens=50,
                        proxy=None, timeout=5)
    assert text == "Bonjour 👋 é!"
    [rec] = server.requests
    assert (rec.method, rec.path) == ("POST", "/v1/chat/completions")
    assert rec.headers["Authorization"] == f"Bearer {KEY}"
    assert rec.headers["Content-Type"] == "application/json"
    assert rec.json() == {"model": "gpt-4o-mini", "messages": MESSAGES, "max_tokens": 50,
                          "temperature": 0.2, "stream": True,
                          "stream_options": {"include_usage": True}}


async def test_no_key_sends_no_authorization_header(make_server):
    server = make_server(sse_route([ANSWER]))
    assert await answer(server.url + "/v1", model="local-model") == "Bonjour 👋 é!"
    [rec] = server.requests
    assert "Authorization" not in rec.headers
    assert rec.json()["model"] == "local-model"


async def test_key_from_openai_api_key_goes_to_its_own_service(make_server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    server = make_server(sse_route([ANSWER]))
    # The env key is sent only to the provider's own service (see test_keys.py).
    monkeypatch.setattr(OpenAIChat, "default_base_url", server.url + "/v1")
    await answer(None)
    assert server.requests[0].headers["Authorization"] == f"Bearer {KEY}"


async def test_key_from_named_variable_wins(make_server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-other-key-000")
    monkeypatch.setenv("MY_VAR", KEY)
    server = make_server(sse_route([ANSWER]))
    await answer(server.url + "/v1", api_key_env="MY_VAR")
    [rec] = server.requests
    assert rec.headers["Authorization"] == f"Bearer {KEY}"
    assert "api_key_env" not in rec.json()


async def test_named_variable_missing_fails_before_any_request(make_server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    server = make_server(sse_route([ANSWER]))
    err = await failure(server.url + "/v1", api_key_env="MY_VAR")
    assert isinstance(err, errors.AuthenticationRequired)
    assert "MY_VAR" in str(err)
    assert server.requests == []


@pytest.mark.parametrize("size", [1, 2, 5, 13])
async def test_stream_split_anywhere(make_server, size):
    server = make_server(sse_route(split(ANSWER, size)))
    assert await answer(server.url + "/v1") == "Bonjour 👋 é!"


async def test_stream_without_done_is_cut_short(make_server):
    server = make_server(sse_route([chunk("half")]))
    assert isinstance(await failure(server.url + "/v1"), errors.StreamCutShort)


@pytest.mark.parametrize("status", [401, 403])
async def test_rejected_key(make_server, status):
    body = {"error": {"message": f"Incorrect API key provided: {KEY}", "type": "auth"}}
    server = make_server(status_route(status, body))
    err = await failure(server.url + "/v1", api_key=KEY)
    assert isinstance(err, errors.AuthenticationRequired) and err.status == status
    assert "Set OPENAI_API_KEY" in str(err)
    assert "Incorrect API key provided: ***" in str(err)
    assert_key_hidden(err)


async def test_rejected_key_hint_names_the_chosen_variable(make_server, monkeypatch):
    monkeypatch.setenv("MY_VAR", KEY)
    server = make_server(status_route(401, {"error": {"message": "bad key"}}))
    err = await failure(server.url + "/v1", api_key_env="MY_VAR")
    assert "Set MY_VAR" in str(err)


async def test_unknown_model(make_server):
    body = {"error": {"message": "The model `gpt-9` does not exist", "code": "model_not_found"}}
    server = make_server(status_route(404, body))
    err = await failure(server.url + "/v1", model="gpt-9", api_key=KEY)
    assert isinstance(err, errors.ModelNotFound) and err.model == "gpt-9"


async def test_wrong_path_is_not_a_model_error(make_server):
    server = make_server(status_route(404, {"error": "nothing here"}))
    err = await failure(server.url + "/v2")
    assert type(err) is errors.HTTPStatusError and err.status == 404


async def test_rate_limited_with_retry_after(make_server):
    server = make_server(status_route(429, {"error": {"message": "slow down"}},
                                      headers={"Retry-After": "7"}))
    err = await failure(server.url + "/v1", api_key=KEY, max_retries=0)  # the mapping
    assert isinstance(err, errors.RateLimited) and err.retry_after == "7"
    assert "retry after 7 s" in str(err)


async def test_server_error_echoing_the_key(make_server):
    server = make_server(status_route(500, {"error": {"message": f"boom for {KEY}"}}))
    err = await failure(server.url + "/v1", api_key=KEY)
    assert type(err) is errors.HTTPStatusError and err.status == 500
    assert_key_hidden(err)


async def test_error_event_in_stream_echoing_the_key(make_server):
    event = json.dumps({"error": {"message": f"key {KEY} over quota"}}).encode()
    server = make_server(sse_route([b"data: " + event + b"\n\n"]))
    err = await failure(server.url + "/v1", api_key=KEY)
    assert isinstance(err, errors.ProviderError)
    assert "key *** over quota" in str(err)
    assert_key_hidden(err)


async def test_redirect_is_not_followed(make_server):
    async def redirect(request, rec):
        raise web.HTTPFound("/elsewhere")
    server = make_server([("POST", "/v1/chat/completions", redirect)]
                         + sse_route([ANSWER], path="/elsewhere"))
    err = await failure(server.url + "/v1", api_key=KEY)
    assert isinstance(err, errors.HTTPStatusError) and err.status == 302
    assert [rec.path for rec in server.requests] == ["/v1/chat/completions"]


async def test_connection_refused():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    err = await failure(f"http://127.0.0.1:{port}/v1", api_key=KEY)
    assert isinstance(err, errors.ConnectionFailed)
    assert_key_hidden(err)


async def test_list_models(make_server):
    models = {"object": "list", "data": [{"id": "b-model"}, {"id": "a-model"}, {"id": "c"}]}
    server = make_server(status_route(200, models, method="GET", path="/v1/models"))
    assert await OpenAIChat.list_models(server.url + "/v1", KEY) == ["a-model", "b-model", "c"]
    [rec] = server.requests
    assert (rec.method, rec.path, rec.body) == ("GET", "/v1/models", b"")
    assert rec.headers["Authorization"] == f"Bearer {KEY}"


async def test_list_models_rejected(make_server):
    server = make_server(status_route(401, {"error": {"message": f"bad {KEY}"}},
                                      method="GET", path="/v1/models"))
    with pytest.raises(errors.AuthenticationRequired) as caught:
        await OpenAIChat.list_models(base_url=server.url + "/v1", api_key=KEY)
    assert "Set OPENAI_API_KEY" in str(caught.value)
    assert_key_hidden(caught.value)


def test_registered_and_defaults():
    assert get_provider("openai") is OpenAIChat
    assert (OpenAIChat.default_base_url, OpenAIChat.model) == ("https://api.openai.com/v1",
                                                                "gpt-4o-mini")


def test_call_repr_hides_the_key():
    call = OpenAIChat.make_call(None, MESSAGES, api_key=KEY)
    assert KEY not in repr(call) and call.api_key == KEY


async def test_against_the_emulator():
    emulator = pytest.importorskip("ipychat.emulator")
    from ipychat.emulator.reply import reply_text

    with emulator.EmulatorServer(delay=0) as emu:
        text = await answer(emu.url + "/v1", api_key=KEY)
        models = await OpenAIChat.list_models(emu.url + "/v1")
    assert text == reply_text("openai", MESSAGES, "gpt-4o-mini")
    assert "gpt-4o-mini" in models and models == sorted(models)
