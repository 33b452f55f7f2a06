"""Retries before the first text, against recording servers on 127.0.0.1:
which failures are sent again, how long the client waits (server-asked or
backoff), the Retry events the live output shows, and what is never
retried. Waits are kept short by the servers' own retry-after-ms or by a
tiny backoff, never by sleeping in the test."""

import asyncio
import email.utils
import json
import time

import pytest
from aiohttp import web

from ipychat import errors
from ipychat.events import Retry
from ipychat.providers import Anthropic, OpenAIChat, OpenAssistant, ProviderChain, retry
from ipychat.providers.retry import backoff, server_wait
from tests.support.calls import events_of, merged
from tests.test_provider_base import json_reply, streaming

MESSAGES = [{"role": "user", "content": "hi"}]
OK = (b'data: {"choices": [{"delta": {"content": "ok"}, "finish_reason": "stop"}]}\n\n'
      b"data: [DONE]\n\n")


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch):
    monkeypatch.setattr(retry, "INITIAL_DELAY", 0.01)


def failing(*statuses, headers=None, body=None):
    """A handler that answers each status in turn (then the answer)."""
    queue = list(statuses)

    async def handler(request, rec):
        if queue:
            status = queue.pop(0)
            data = body or {"error": {"message": f"busy {status}"}}
            return web.json_response(data, status=status, headers=headers or {})
        return await streaming([OK])(request, rec)

    return handler


def openai(make_server, handler):
    server = make_server([("POST", "/v1/chat/completions", handler)])
    return server, server.url + "/v1"


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 529])
async def test_retried_statuses_then_the_answer(make_server, status):
    server, url = openai(make_server, failing(status, headers={"retry-after-ms": "5"}))
    events, err = await events_of(OpenAIChat, url, MESSAGES)
    assert err is None and len(server.requests) == 2
    assert merged(events)[0] == ("retry", Retry(1, 2, 0.005, f"HTTP {status}"))
    assert merged(events)[1] == ("text", "ok")


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
async def test_statuses_a_retry_cannot_change_are_final(make_server, status):
    server, url = openai(make_server, failing(status))
    events, err = await events_of(OpenAIChat, url, MESSAGES)
    assert isinstance(err, errors.ChatError) and len(server.requests) == 1
    assert "attempts" not in str(err) and not [e for e in events if e.kind == "retry"]


async def test_x_should_retry_overrules_the_status(make_server):
    server, url = openai(make_server, failing(400, headers={"x-should-retry": "true"}))
    _, err = await events_of(OpenAIChat, url, MESSAGES)
    assert err is None and len(server.requests) == 2
    server, url = openai(make_server, failing(503, headers={"x-should-retry": "false"}))
    _, err = await events_of(OpenAIChat, url, MESSAGES)
    assert isinstance(err, errors.HTTPStatusError) and len(server.requests) == 1


async def test_spent_retries_name_the_attempts(make_server):
    server, url = openai(make_server, failing(503, 503, 503, headers={"retry-after-ms": "1"}))
    events, err = await events_of(OpenAIChat, url, MESSAGES)
    assert str(err).startswith("OpenAIChat: after 3 attempts: HTTP 503: busy 503")
    assert [e.attempt for e in events if e.kind == "retry"] == [1, 2]
    assert len(server.requests) == 3


@pytest.mark.parametrize("retries, requests", [(0, 1), (1, 2), (4, 5)])
async def test_max_retries_bounds_the_attempts(make_server, retries, requests):
    server, url = openai(make_server, failing(*[500] * 9, headers={"retry-after-ms": "1"}))
    _, err = await events_of(OpenAIChat, url, MESSAGES, max_retries=retries)
    assert isinstance(err, errors.HTTPStatusError) and len(server.requests) == requests


async def test_a_long_server_wait_fails_at_once_saying_how_long(make_server):
    server, url = openai(make_server, failing(429, headers={"Retry-After": "120"}))
    _, err = await events_of(OpenAIChat, url, MESSAGES)
    assert "the server asked to wait 120 s before trying again" in str(err)
    assert len(server.requests) == 1


async def test_connection_refused_is_retried_then_fails(unused_tcp_port):
    url = f"http://127.0.0.1:{unused_tcp_port}/v1"
    events, err = await events_of(OpenAIChat, url, MESSAGES)
    assert isinstance(err, errors.ConnectionFailed) and "after 3 attempts" in str(err)
    assert [e.reason[:14] for e in events] == ["cannot connect"] * 2


async def test_a_reset_before_the_headers_is_retried(make_server):
    calls = []

    async def handler(request, rec):
        calls.append(1)
        if len(calls) == 1:
            request.transport.close()  # the client sees the connection go before any byte
            await asyncio.sleep(5)
        return await streaming([OK])(request, rec)

    server, url = openai(make_server, handler)
    events, err = await events_of(OpenAIChat, url, MESSAGES)
    assert err is None and ("text", "ok") in merged(events) and len(calls) == 2


async def test_nothing_is_retried_once_text_was_shown(make_server):
    cut = b'data: {"choices": [{"delta": {"content": "half"}}]}\n\n'

    async def handler(request, rec):
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(cut)
        request.transport.close()
        return response

    server, url = openai(make_server, handler)
    events, err = await events_of(OpenAIChat, url, MESSAGES)
    assert isinstance(err, errors.StreamCutShort) and len(server.requests) == 1
    assert merged(events) == [("text", "half")]


async def test_a_timeout_after_the_headers_is_not_retried(make_server):
    hold = asyncio.Event()
    server, url = openai(make_server, streaming([], hold=True))
    _, err = await events_of(OpenAIChat, url, MESSAGES, timeout=0.3)
    assert isinstance(err, errors.ChatTimeout) and len(server.requests) == 1


async def test_a_chain_moves_on_after_the_retries_are_spent(make_server):
    busy, busy_url = openai(make_server, failing(*[503] * 9, headers={"retry-after-ms": "1"}))
    spare, spare_url = openai(make_server, failing())
    chain = ProviderChain([(OpenAIChat, {"base_url": busy_url}),
                           (OpenAIChat, {"base_url": spare_url})])
    events = [event async for event in chain.stream(None, MESSAGES)]
    assert ("text", "ok") in merged(events)
    assert len(busy.requests) == 3 and len(spare.requests) == 1


async def test_a_wait_is_cancelled_at_once(make_server):
    server, url = openai(make_server, failing(429, headers={"Retry-After": "30"}))
    events = OpenAIChat.stream_events(None, MESSAGES, base_url=url)
    first = await asyncio.wait_for(events.__anext__(), 10)
    assert first.kind == "retry" and first.wait_s == 30
    waiting = asyncio.ensure_future(events.__anext__())
    await asyncio.sleep(0)
    started = time.monotonic()
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert time.monotonic() - started < 1 and len(server.requests) == 1
    await events.aclose()


async def test_openassistant_retries_its_steps_but_not_its_event_stream(make_server):
    from tests.test_provider_base import oa_token
    steps = []

    def step(path, reply):
        async def handler(request, rec):
            steps.append(path)
            if path == "/api/chat" and steps.count("/api/chat") == 1:
                return web.json_response({"error": "busy"}, status=503,
                                         headers={"retry-after-ms": "1"})
            return await json_reply(reply)(request, rec)
        return handler

    server = make_server([
        ("POST", "/api/chat", step("/api/chat", {"id": "c1"})),
        ("POST", "/api/chat/prompter_message", step("prompter", {"id": "p1"})),
        ("POST", "/api/chat/assistant_message", step("assistant", {"id": "a1"})),
        ("POST", "/api/chat/events", streaming([oa_token("fine")])),
        ("DELETE", "/api/chat", json_reply({}))])
    events, err = await events_of(OpenAssistant, server.url, MESSAGES,
                                  cookies={"__Secure-next-auth.session-token": "t"})
    assert err is None and merged(events)[-1] == ("text", "fine")
    assert steps == ["/api/chat", "/api/chat", "prompter", "assistant"]


def test_server_waits_in_every_form():
    soon = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert server_wait({"retry-after-ms": "250"}) == 0.25
    assert server_wait({"retry-after": "2"}) == 2.0
    assert 25 < server_wait({"retry-after": soon}) <= 30
    assert server_wait({"retry-after": "soon"}) is None and server_wait({}) is None


def test_backoff_doubles_up_to_its_cap_with_jitter(monkeypatch):
    monkeypatch.setattr(retry, "INITIAL_DELAY", 0.5)
    assert [backoff(n, rand=lambda: 0.0) for n in range(6)] == [0.5, 1, 2, 4, 8, 8]
    assert backoff(0, rand=lambda: 1.0) == 0.375  # at most a quarter less


async def test_anthropic_retries_too(make_server):
    stop = b'event: message_stop\ndata: {"type": "message_stop"}\n\n'
    text = (b'event: content_block_delta\ndata: {"type": "content_block_delta", "index": 0, '
            b'"delta": {"type": "text_delta", "text": "ok"}}\n\n')
    queue = [529]

    async def handler(request, rec):
        if queue:
            return web.json_response({"type": "error", "error": {"type": "overloaded_error"}},
                                     status=queue.pop(), headers={"retry-after-ms": "1"})
        return await streaming([text + stop])(request, rec)

    server = make_server([("POST", "/v1/messages", handler)])
    events, err = await events_of(Anthropic, server.url, MESSAGES, api_key="sk-ant-retry-0123")
    assert err is None and merged(events)[-1] == ("text", "ok") and len(server.requests) == 2
