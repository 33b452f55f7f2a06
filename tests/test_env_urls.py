"""Default base URLs from the environment, as the vendors' SDKs read them:
``OPENAI_BASE_URL``, ``ANTHROPIC_BASE_URL`` and ``OLLAMA_HOST`` (Ollama's
``host:port`` form too). A provider's own key variable goes with the base URL
variable set in the same environment; a base URL given per call (typed in a
cell) still gets no key unless one is named. Against recording servers."""

from __future__ import annotations

import pytest
from aiohttp import web
from multidict import CIMultiDict

from ipychat import errors
from ipychat.providers import Anthropic, Ollama, OpenAIChat, list_providers
from ipychat.providers.http import base_url_from_env
from ipychat.targets import resolve
from tests.support.server import stream_pieces
from tests.test_provider_anthropic import STOP as ANTHROPIC_STOP
from tests.test_provider_anthropic import text_delta
from tests.test_provider_base import DONE, MESSAGES, sse_chunk
from tests.test_provider_ollama import DONE as OLLAMA_DONE
from tests.test_provider_ollama import line as ollama_line

ENV = ("OPENAI_BASE_URL", "OPENAI_API_KEY", "ANTHROPIC_BASE_URL", "ANTHROPIC_API_KEY",
       "OLLAMA_HOST")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in ENV:
        monkeypatch.delenv(name, raising=False)


def answering(pieces, content_type="text/event-stream"):
    async def handler(request, rec):
        return await stream_pieces(request, pieces, content_type=content_type)

    return handler


def openai_server(make_server):
    return make_server([
        ("POST", "/v1/chat/completions", answering([sse_chunk("ok"), DONE])),
        ("GET", "/v1/models", lambda request, rec: _models()),
    ])


async def _models():
    return web.json_response({"data": [{"id": "b"}, {"id": "a"}]})


def sent(server, header: str) -> list:
    return [CIMultiDict(r.headers).get(header) for r in server.requests]


async def ask(cls, **kwargs) -> str:
    return await cls.create_async(None, MESSAGES, **kwargs)


# -- reading the variables ---------------------------------------------------------


@pytest.mark.parametrize("value, url", [
    ("example.com", "http://example.com:11434"),
    ("example.com:56789", "http://example.com:56789"),
    (":56789", "http://127.0.0.1:56789"),
    ("0.0.0.0", "http://0.0.0.0:11434"),
    ("example.com:56789/path/", "http://example.com:56789/path"),
    ("[::1]", "http://[::1]:11434"),
    ("[::1]:56789", "http://[::1]:56789"),
    ("http://example.com", "http://example.com"),
    ("https://example.com:56789/path/", "https://example.com:56789/path"),
    ("  http://127.0.0.1:8000/v1/  ", "http://127.0.0.1:8000/v1"),
])
def test_ollama_host_forms(value, url):
    assert base_url_from_env(value, default_port=11434) == url


def test_a_url_with_a_scheme_is_used_as_given():
    assert base_url_from_env("https://proxy.example/openai/v1/") == "https://proxy.example/openai/v1"
    assert base_url_from_env("localhost:8000/v1") == "http://localhost:8000/v1"


@pytest.mark.parametrize("name, cls, var, builtin", [
    ("openai", OpenAIChat, "OPENAI_BASE_URL", "https://api.openai.com/v1"),
    ("anthropic", Anthropic, "ANTHROPIC_BASE_URL", "https://api.anthropic.com"),
    ("ollama", Ollama, "OLLAMA_HOST", "http://localhost:11434"),
])
def test_unset_or_blank_means_the_builtin_default(monkeypatch, name, cls, var, builtin):
    assert cls.default_base_url == builtin
    monkeypatch.setenv(var, "  ")
    assert cls.default_base_url == builtin
    monkeypatch.setenv(var, "http://10.0.0.7:9000")
    assert cls.default_base_url == "http://10.0.0.7:9000"
    # %chat providers and the panel list what a cell would use
    assert {p.name: p.base_url for p in list_providers()}[name] == "http://10.0.0.7:9000"


# -- where requests and keys go ----------------------------------------------------


async def test_openai_base_url_gets_the_key_set_with_it(make_server, monkeypatch):
    server = openai_server(make_server)
    monkeypatch.setenv("OPENAI_BASE_URL", server.url + "/v1/")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env-123")
    assert await ask(OpenAIChat) == "ok"
    assert await OpenAIChat.list_models() == ["a", "b"]
    assert sent(server, "Authorization") == ["Bearer sk-env-123"] * 2


async def test_a_compatible_server_set_by_the_variable_gets_compatible_fields(make_server,
                                                                             monkeypatch):
    server = openai_server(make_server)
    monkeypatch.setenv("OPENAI_BASE_URL", server.url + "/v1")
    assert await ask(OpenAIChat, max_tokens=5) == "ok"
    body = server.requests[0].json()
    assert body["max_tokens"] == 5 and "max_completion_tokens" not in body


async def test_a_base_url_given_per_call_still_gets_no_key(make_server, monkeypatch):
    configured, typed = openai_server(make_server), openai_server(make_server)
    monkeypatch.setenv("OPENAI_BASE_URL", configured.url + "/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env-123")
    assert await ask(OpenAIChat, base_url=typed.url + "/v1") == "ok"
    assert await ask(OpenAIChat, base_url=typed.url + "/v1", api_key_env="OPENAI_API_KEY") == "ok"
    assert sent(typed, "Authorization") == [None, "Bearer sk-env-123"]
    assert configured.requests == []
    hint = OpenAIChat.key_hint(typed.url + "/v1")
    assert f"sent only to {configured.url}/v1" in hint and "--api-key-env" in hint


async def test_without_the_base_url_variable_the_key_stays_with_openai(make_server,
                                                                       monkeypatch):
    server = openai_server(make_server)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env-123")
    assert await ask(OpenAIChat, base_url=server.url + "/v1") == "ok"
    assert sent(server, "Authorization") == [None]


async def test_the_magic_stack_uses_the_variables(make_server, monkeypatch):
    server = openai_server(make_server)
    monkeypatch.setenv("OPENAI_BASE_URL", server.url + "/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env-123")
    target = resolve("openai", demo=True)  # a key is set: no emulator
    events = [event async for event in target.stream(MESSAGES)]
    assert "".join(e.text for e in events if e.kind == "text") == "ok"
    assert sent(server, "Authorization") == ["Bearer sk-env-123"]


async def test_a_base_url_variable_without_a_key_is_no_demo(make_server, monkeypatch):
    # A local server named in OPENAI_BASE_URL needs no key: a bare %%chat goes there,
    # not to the emulator.
    server = openai_server(make_server)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_BASE_URL", server.url + "/v1")
    for spec in (None, "openai"):
        target = resolve(spec, demo=True)
        assert target.note == "" and "base_url" not in target.legs[0].kwargs
        events = [event async for event in target.stream(MESSAGES)]
        assert "".join(e.text for e in events if e.kind == "text") == "ok"
    assert sent(server, "Authorization") == [None, None]


async def test_anthropic_base_url_gets_the_key_set_with_it(make_server, monkeypatch):
    server = make_server([("POST", "/v1/messages",
                           answering([text_delta("ok"), ANTHROPIC_STOP]))])
    monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-env")
    assert await ask(Anthropic) == "ok"
    assert sent(server, "x-api-key") == ["sk-ant-env"]
    with pytest.raises(errors.AuthenticationRequired):
        await ask(Anthropic, base_url="http://127.0.0.1:9")  # typed: no key, no request


@pytest.mark.parametrize("form", ["{host}:{port}", "http://{host}:{port}", "{host}:{port}/"])
async def test_ollama_host_points_ollama_at_its_server(make_server, monkeypatch, form):
    server = make_server([("POST", "/api/chat", answering(
        [ollama_line("ok"), OLLAMA_DONE], content_type="application/x-ndjson"))])
    host, port = server.url[len("http://"):].split(":")
    monkeypatch.setenv("OLLAMA_HOST", form.format(host=host, port=port))
    assert await ask(Ollama) == "ok"
    assert len(server.requests) == 1
