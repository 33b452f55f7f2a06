"""Vitalentum on the wire: browser-like headers, the history as a JSON string
inside the JSON body, an SSE answer (shared/PROTOCOLS.md)."""

from __future__ import annotations

import json

import pytest

from ipychat.providers import Vitalentum
from ipychat.providers.vitalentum import CHROME_UA
from tests.test_provider_base import (
    MESSAGES, SSE_REPLY, SSE_TEXT, WIRES, headers_of, split_cases, streaming,
)

WIRE = WIRES["vitalentum"]
HI_CONVERSATION = '{"history": [{"speaker": "human", "text": "hi"}]}'


async def ask(make_server, messages=MESSAGES, pieces=(SSE_REPLY,), **kwargs):
    """Ask once; return (the whole answer, the recorded request, the server)."""
    server = WIRE.serve(make_server, streaming(list(pieces)))
    text = await Vitalentum.create_async("gpt-3.5-turbo", messages, base_url=server.url,
                                         **kwargs)
    (request,) = server.requests
    return text, request, server


async def test_the_request_is_exactly_the_protocols(make_server):
    text, request, server = await ask(make_server)
    assert text == SSE_TEXT
    assert (request.method, request.path, request.query) == ("POST", "/api/converse-edge", {})
    assert request.json() == {"conversation": HI_CONVERSATION, "temperature": 0.7}
    headers = headers_of(request)
    expected = {
        "User-Agent": CHROME_UA, "Accept": "text/event-stream",
        "Accept-language": "de,en-US;q=0.7,en;q=0.3", "Origin": server.url,
        "Referer": f"{server.url}/", "Sec-Fetch-Dest": "empty", "Sec-Fetch-Mode": "cors",
        "Sec-Fetch-Site": "same-origin", "Content-Type": "application/json",
    }
    assert {name: headers.get(name) for name in expected} == expected
    assert "Mozilla/5.0 (Windows NT 10.0; Win64; x64)" in CHROME_UA and "Chrome/" in CHROME_UA


async def test_roles_map_to_human_for_user_and_bot_for_every_other(make_server):
    messages = [
        {"role": "system", "content": "be nice"}, {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"}, {"role": "tool", "content": "42"},
        {"role": "user", "content": "grüß 😀"},
    ]
    _, request, _ = await ask(make_server, messages)
    conversation = request.json()["conversation"]
    assert isinstance(conversation, str)  # encoded twice, as the protocol wants
    assert json.loads(conversation) == {"history": [
        {"speaker": "bot", "text": "be nice"}, {"speaker": "human", "text": "hi"},
        {"speaker": "bot", "text": "hello"}, {"speaker": "bot", "text": "42"},
        {"speaker": "human", "text": "grüß 😀"},
    ]}


async def test_model_is_not_sent_and_caller_options_are(make_server):
    _, request, _ = await ask(make_server, temperature=0.2, max_tokens=5, api_key="sk-123456",
                              timeout=9, stream=True)
    assert request.json() == {"conversation": HI_CONVERSATION, "temperature": 0.2,
                              "max_tokens": 5}


@pytest.mark.parametrize("case, pieces", split_cases(SSE_REPLY).items())
async def test_sse_split_at_awkward_places_decodes_the_same(make_server, case, pieces):
    text, _, _ = await ask(make_server, pieces=pieces)
    assert text == SSE_TEXT
