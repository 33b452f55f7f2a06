"""Where API keys go: an environment key reaches only its provider's own
service; any other base URL gets a key only when the user names it."""

import pytest
from aiohttp import web

from ipychat import errors
from ipychat.providers.anthropic import Anthropic
from ipychat.providers.openai import OpenAIChat

KEY = "sk-live-abcdefghijklmnopqrstuvwx"
MESSAGES = [{"role": "user", "content": "hi"}]


def openai_server(make_server):
    async def answer(request, rec):
        body = b'data: {"choices":[{"delta":{"content":"ok"}}]}\n\ndata: [DONE]\n\n'
        return web.Response(body=body, content_type="text/event-stream")

    return make_server([("POST", "/v1/chat/completions", answer)])


async def collect(provider, **kwargs):
    return [t async for t in provider.create_async_generator(None, MESSAGES, **kwargs)]


@pytest.fixture
def keyed_env(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)


async def test_env_key_goes_to_the_providers_own_service(make_server, keyed_env):
    server = openai_server(make_server)

    class Own(OpenAIChat):  # stands in for api.openai.com
        default_base_url = server.url + "/v1"

    assert await collect(Own) == ["ok"]
    assert await collect(Own, base_url=server.url + "/v1/") == ["ok"]
    assert [r.headers.get("Authorization") for r in server.requests] == [f"Bearer {KEY}"] * 2


async def test_env_key_never_goes_to_another_base_url(make_server, keyed_env):
    server = openai_server(make_server)
    assert await collect(OpenAIChat, base_url=server.url + "/v1") == ["ok"]
    assert "Authorization" not in server.requests[0].headers


async def test_a_named_variable_goes_where_the_user_points(make_server, keyed_env, monkeypatch):
    monkeypatch.setenv("GROQ_KEY", "gsk-named-key-0000")
    server = openai_server(make_server)
    await collect(OpenAIChat, base_url=server.url + "/v1", api_key_env="OPENAI_API_KEY")
    await collect(OpenAIChat, base_url=server.url + "/v1", api_key_env="GROQ_KEY")
    auth = [r.headers["Authorization"] for r in server.requests]
    assert auth == [f"Bearer {KEY}", "Bearer gsk-named-key-0000"]
    assert all("api_key_env" not in r.json() for r in server.requests)


async def test_anthropic_elsewhere_without_a_named_key_says_how(make_server, keyed_env):
    server = make_server([])
    with pytest.raises(errors.AuthenticationRequired) as caught:
        await collect(Anthropic, base_url=server.url)
    assert "--api-key-env ANTHROPIC_API_KEY" in str(caught.value)
    assert KEY not in str(caught.value)
    assert server.requests == []


async def test_a_named_variable_that_is_unset_is_an_error(monkeypatch):
    monkeypatch.delenv("NOPE_KEY", raising=False)
    with pytest.raises(errors.AuthenticationRequired, match="NOPE_KEY is not set"):
        await collect(OpenAIChat, base_url="http://127.0.0.1:9/v1", api_key_env="NOPE_KEY")
