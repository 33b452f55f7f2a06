"""Lockchat on the wire: an OpenAI-style request in a fixed key order, an SSE
answer, and one real retry when the server claims the model is missing
(shared/PROTOCOLS.md)."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web

from ipychat import errors
from ipychat.providers import Lockchat
from tests.test_provider_base import (
    DONE, MESSAGES, SSE_REPLY, SSE_TEXT, WIRES, data_line, headers_of, split_cases, sse_chunk,
    streaming,
)

WIRE = WIRES["lockchat"]
MISSING = "The model: `gpt-4` does not exist"


def replies(*answers):
    """A handler that sends the next answer (a list of pieces) per request; the last repeats."""
    queue = list(answers)

    async def handler(request, rec):
        return await streaming(queue.pop(0) if len(queue) > 1 else queue[0])(request, rec)

    return handler


async def ask(make_server, *answers, model="gpt-4", messages=MESSAGES, **kwargs):
    """Ask once, answering each request with the next of ``answers``; return
    (chunks received, error or None, the server)."""
    server = WIRE.serve(make_server, replies(*(answers or [[SSE_REPLY]])))
    chunks = []
    try:
        async for text in Lockchat.create_async_generator(model, messages, base_url=server.url,
                                                          **kwargs):
            chunks.append(text)
    except errors.ChatError as err:
        return chunks, err, server
    return chunks, None, server


async def test_the_request_is_exactly_the_protocols(make_server):
    messages = [{"role": "system", "content": "be nice"}, *MESSAGES]
    chunks, err, server = await ask(make_server, messages=messages)
    assert err is None and "".join(chunks) == SSE_TEXT
    (request,) = server.requests
    assert (request.method, request.path, request.query) == ("POST", "/v1/chat/completions", {})
    assert headers_of(request)["user-agent"] == "ChatX/39 CFNetwork/1408.0.4 Darwin/22.5.0"
    body = request.json()
    assert list(body) == ["temperature", "messages", "model", "stream"]
    assert body == {"temperature": 0.7, "messages": messages, "model": "gpt-4", "stream": True}


@pytest.mark.parametrize("given, sent", [(0.2, 0.2), (1, 1.0), ("0.5", 0.5), (0, 0.0)])
async def test_a_given_temperature_is_sent(make_server, given, sent):
    # The original crashed as soon as a temperature was given.
    _, err, server = await ask(make_server, temperature=given)
    assert err is None
    assert server.requests[0].json()["temperature"] == sent


async def test_a_bad_temperature_is_a_usage_error_before_any_request(make_server):
    _, err, server = await ask(make_server, temperature="hot")
    assert isinstance(err, errors.UsageError) and "temperature" in str(err)
    assert server.requests == []


async def test_the_default_model_is_sent_when_none_is_given(make_server):
    _, err, server = await ask(make_server, model=None)
    assert err is None and server.requests[0].json()["model"] == Lockchat.model


MISSING_LINES = {
    "json_error": data_line({"error": {"message": MISSING, "type": "invalid_request_error"}}),
    "plain_data": f"data: {MISSING}\n".encode(),
    "not_an_event": f'{{"error": {{"message": "{MISSING}"}}}}\n'.encode(),
}
missing_lines = pytest.mark.parametrize("line", list(MISSING_LINES.values()),
                                        ids=list(MISSING_LINES))


@missing_lines
async def test_model_missing_is_retried_once_for_real(make_server, line):
    chunks, err, server = await ask(make_server, [line + b"\n", DONE], [SSE_REPLY])
    assert err is None and "".join(chunks) == SSE_TEXT
    assert len(server.requests) == 2
    assert server.requests[0].body == server.requests[1].body


@missing_lines
async def test_model_missing_twice_is_model_not_found(make_server, line):
    chunks, err, server = await ask(make_server, [line + b"\n", DONE], temperature=0.3)
    assert chunks == [] and isinstance(err, errors.ModelNotFound)
    assert err.model == "gpt-4" and str(err).startswith("Lockchat: model 'gpt-4' not found")
    assert len(server.requests) == 2


async def test_no_retry_once_text_was_shown(make_server):
    shown = asyncio.Event()  # set (on the server's loop) once the client has "Hello"

    async def hello_then_missing(request, rec):
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(sse_chunk("Hello"))
        await shown.wait()
        await response.write(MISSING_LINES["json_error"] + b"\n" + DONE)
        return response

    server = WIRE.serve(make_server, hello_then_missing)
    chunks = []
    with pytest.raises(errors.ModelNotFound):
        async for text in Lockchat.create_async_generator("gpt-4", MESSAGES, base_url=server.url):
            chunks.append(text)
            server.call_soon(shown.set)
    assert chunks == ["Hello"] and len(server.requests) == 1


@pytest.mark.parametrize("case, pieces", split_cases(SSE_REPLY).items())
async def test_sse_split_at_awkward_places_decodes_the_same(make_server, case, pieces):
    chunks, err, _ = await ask(make_server, pieces)
    assert err is None and "".join(chunks) == SSE_TEXT
